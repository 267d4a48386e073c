package apitoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Users come from the identity layer: the first request of a caller makes
// the user, later ones keep name, email, groups and last seen up to date,
// and groups give roles by the deployment's group map.

// Identity is what the authentication in front of the management routes
// says about the caller.
type Identity struct {
	ID    string
	Name  string // "" when not known: a stored name stays
	Email string // "" when not known: a stored email stays
	// Groups are the caller's identity-provider groups when HasGroups; a
	// layer that says nothing of groups leaves the stored ones.
	Groups    []string
	HasGroups bool
}

// SeenInterval is the least time between two writes of a signed-in user's
// name, email and last_seen_at: requests in between write nothing, unless
// the groups (or the roles they give) changed.
const SeenInterval = time.Minute

// By-names of the logs that sign-in and groups write.
const (
	BySignIn = "sign_in"
	ByGroups = "groups"
)

// SignIn is Caller for a caller of the management routes, as the identity
// layer describes them. A caller seen for the first time becomes a user
// (SourceSignIn, KindPerson). Otherwise name and email (when given) and
// last_seen_at are written at most once per SeenInterval, and a change of
// groups, or of the roles they give, is written at once, so it applies to
// this request. A service account never signs in (ErrForbidden), nor does
// a disabled user.
func (s *Service) SignIn(ctx context.Context, in Identity) (Caller, error) {
	if err := CheckUserID(in.ID); err != nil {
		return Caller{}, Errorf(ErrForbidden, "your user name cannot be used here: %s", Message(err))
	}
	if err := checkIdentity(&in); err != nil {
		return Caller{}, err
	}
	u, err := s.cfg.Store.GetUser(ctx, in.ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Caller{}, err
	case u.IsService():
		return Caller{}, Errorf(ErrForbidden, "%q is a service account; service accounts cannot sign in", in.ID)
	case u.Disabled:
		return s.callerOf(u, true)
	case !s.signInDue(&u, &in, s.Now()):
		return s.callerOf(u, true)
	}
	now := s.Now()
	u, err = s.updateUser(ctx, in.ID, func(u *User, created bool) ([]Log, error) {
		var logs []Log
		switch {
		case created:
			newUser(u, now, SourceSignIn)
			logs = append(logs, Log{Activity: ActivityUserUpdate, ActivityOn: now, ActivityBy: BySignIn, Reason: "created at sign-in"})
		case u.IsService():
			return nil, Errorf(ErrForbidden, "%q is a service account; service accounts cannot sign in", in.ID)
		case u.Disabled || !s.signInDue(u, &in, now):
			return nil, errUnchanged
		}
		return append(logs, s.applyIdentity(u, &in, now)...), nil
	})
	if errors.Is(err, errUnchanged) {
		// Another request wrote it first.
		u, err = s.cfg.Store.GetUser(ctx, in.ID)
	}
	if err != nil {
		return Caller{}, err
	}
	return s.callerOf(u, true)
}

// errUnchanged ends an UpdateUser that found nothing left to write.
var errUnchanged = errors.New("nothing to write")

// checkIdentity checks and cleans what the identity layer sent.
func checkIdentity(in *Identity) error {
	in.Name = strings.TrimSpace(in.Name)
	in.Email = strings.TrimSpace(in.Email)
	if err := checkText("the name your sign-in gave", in.Name, MaxUserNameLen); err != nil {
		return err
	}
	if err := checkEmail(in.Email); err != nil {
		return Errorf(ErrInvalid, "the email your sign-in gave: %s", Message(err))
	}
	if in.HasGroups {
		g, err := NormalizeGroups(in.Groups)
		if err != nil {
			return Errorf(ErrInvalid, "the groups your sign-in gave: %s", Message(err))
		}
		in.Groups = g
	}
	return nil
}

// signInDue reports whether u must be written for this sign-in: its groups
// or the roles they give changed, or SeenInterval has passed since it was
// last seen.
func (s *Service) signInDue(u *User, in *Identity, now time.Time) bool {
	groups := u.Groups
	if in.HasGroups {
		groups = in.Groups
	}
	switch {
	case !slices.Equal(groups, u.Groups), !slices.Equal(s.cfg.Groups.Roles(groups, u.ViewOnly), u.GroupRoles):
		return true
	case u.LastSeenAt == nil:
		return true
	}
	return now.Sub(*u.LastSeenAt) >= SeenInterval
}

// applyIdentity writes in over u: name and email when given, groups when
// the layer sent them and the roles they give, and last seen. It returns the
// logs of what changed.
func (s *Service) applyIdentity(u *User, in *Identity, now time.Time) []Log {
	var logs []Log
	var changes []string
	if in.Name != "" && in.Name != u.Name {
		changes = append(changes, fmt.Sprintf("name %q -> %q", u.Name, in.Name))
		u.Name = in.Name
	}
	if in.Email != "" && in.Email != u.Email {
		changes = append(changes, fmt.Sprintf("email %q -> %q", u.Email, in.Email))
		u.Email = in.Email
	}
	if in.HasGroups && !slices.Equal(in.Groups, u.Groups) {
		changes = append(changes, fmt.Sprintf("groups %q -> %q", u.Groups, in.Groups))
		u.Groups = in.Groups
	}
	if len(changes) > 0 {
		logs = append(logs, Log{Activity: ActivityUserUpdate, ActivityOn: now, ActivityBy: BySignIn, Reason: strings.Join(changes, "; ")})
	}
	logs = append(logs, s.applyGroupRoles(u, now)...)
	u.LastSeenAt = &now
	return logs
}

// applyGroupRoles sets u's group roles to what its groups give, and returns
// the ROLE_GRANT and ROLE_REMOVE logs of the difference.
func (s *Service) applyGroupRoles(u *User, now time.Time) []Log {
	roles := s.cfg.Groups.Roles(u.Groups, u.ViewOnly)
	var logs []Log
	for _, r := range roles {
		if !slices.Contains(u.GroupRoles, r) {
			logs = append(logs, Log{Activity: ActivityRoleGrant, ActivityOn: now, ActivityBy: ByGroups,
				Reason: "granted " + string(r) + " by group " + s.groupOf(u.Groups, r)})
		}
	}
	for _, r := range u.GroupRoles {
		if !slices.Contains(roles, r) {
			logs = append(logs, Log{Activity: ActivityRoleRemove, ActivityOn: now, ActivityBy: ByGroups,
				Reason: "removed " + string(r) + ": no group gives it"})
		}
	}
	u.GroupRoles = roles
	return logs
}

// groupOf names the first of groups that gives r.
func (s *Service) groupOf(groups []string, r Role) string {
	for _, g := range groups {
		if s.cfg.Groups[g] == r {
			return fmt.Sprintf("%q", g)
		}
	}
	return ""
}
