package apitoken

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User administration: the Service's calls on users and their roles, and
// the rules of user ids and emails.

// ListUsers lists users matching f (admins only).
func (s *Service) ListUsers(ctx context.Context, c Caller, f UserFilter) ([]User, string, error) {
	if err := c.checkAdmin(); err != nil {
		return nil, "", err
	}
	return s.cfg.Store.ListUsers(ctx, f)
}

// UserPatch is what an admin gives to create or change a user; nil fields
// stay (or take their zero value for a new user, whose kind is then
// person).
type UserPatch struct {
	Name     *string
	Email    *string
	Kind     *Kind // only when the user is created: a kind never changes
	ViewOnly *bool
	Disabled *bool
}

// PutUser creates the user or changes the fields given (admins only), and
// logs USER_UPDATE.
func (s *Service) PutUser(ctx context.Context, c Caller, id string, p UserPatch) (User, error) {
	if err := c.checkAdminOn(id); err != nil {
		return User{}, err
	}
	if p.Email != nil {
		if err := checkEmail(*p.Email); err != nil {
			return User{}, err
		}
	}
	if p.Name != nil {
		if err := checkText("name", *p.Name, MaxUserNameLen); err != nil {
			return User{}, err
		}
	}
	now := s.Now()
	return s.updateUser(ctx, id, func(u *User, created bool) ([]Log, error) {
		var changes []string
		if created {
			newUser(u, now, SourceManual)
			changes = append(changes, "created")
			if p.Kind != nil {
				u.Kind = *p.Kind
				changes = append(changes, "kind "+string(u.Kind))
			}
		} else if p.Kind != nil && *p.Kind != u.Kind {
			// A person made a service account would let admins hold the
			// person's JWT; a service account made a person could sign in.
			return nil, Errorf(ErrConflict, "user %q is a %s; a user's kind is set when it is created and never changes", id, u.Kind)
		}
		changes = setText(changes, "name", &u.Name, p.Name)
		changes = setText(changes, "email", &u.Email, p.Email)
		if p.ViewOnly != nil && *p.ViewOnly != u.ViewOnly {
			changes = append(changes, fmt.Sprintf("view_only %t -> %t", u.ViewOnly, *p.ViewOnly))
			u.ViewOnly = *p.ViewOnly
			// A group never gives the token role to a view-only user.
			u.GroupRoles = s.cfg.Groups.Roles(u.Groups, u.ViewOnly)
		}
		if p.Disabled != nil && *p.Disabled != u.Disabled {
			changes = append(changes, fmt.Sprintf("disabled %t -> %t", u.Disabled, *p.Disabled))
			u.Disabled = *p.Disabled
		}
		if len(changes) == 0 {
			return nil, nil
		}
		return []Log{{Subject: id, Activity: ActivityUserUpdate, ActivityOn: now, ActivityBy: c.ID, Reason: strings.Join(changes, "; ")}}, nil
	})
}

// GrantRole grants role to the user (admins only), creating the user if
// needed, and logs ROLE_GRANT. The token role cannot go to a view-only user.
func (s *Service) GrantRole(ctx context.Context, c Caller, id string, role Role) (User, error) {
	if err := c.checkAdminOn(id); err != nil {
		return User{}, err
	}
	now := s.Now()
	return s.updateUser(ctx, id, func(u *User, created bool) ([]Log, error) {
		if created {
			newUser(u, now, SourceManual)
		}
		if role == RoleAPITokens && u.ViewOnly {
			return nil, Errorf(ErrConflict, "user %q is view-only; view-only users cannot be given the api_tokens role", id)
		}
		if slices.Contains(u.Roles, role) {
			return nil, nil
		}
		u.Roles = sortedRoles(append(u.Roles, role))
		return []Log{{Subject: id, Activity: ActivityRoleGrant, ActivityOn: now, ActivityBy: c.ID, Reason: "granted " + string(role)}}, nil
	})
}

// RemoveRole removes role from the user (admins only; idempotent) and logs
// ROLE_REMOVE when it was held.
func (s *Service) RemoveRole(ctx context.Context, c Caller, id string, role Role) (User, error) {
	if err := c.checkAdminOn(id); err != nil {
		return User{}, err
	}
	now := s.Now()
	return s.updateUser(ctx, id, func(u *User, created bool) ([]Log, error) {
		if created {
			return nil, Errorf(ErrNotFound, "no user %q", id)
		}
		if !slices.Contains(u.Roles, role) {
			return nil, nil
		}
		u.Roles = slices.DeleteFunc(slices.Clone(u.Roles), func(r Role) bool { return r == role })
		return []Log{{Subject: id, Activity: ActivityRoleRemove, ActivityOn: now, ActivityBy: c.ID, Reason: "removed " + string(role)}}, nil
	})
}

func (s *Service) updateUser(ctx context.Context, id string, fn func(u *User, created bool) ([]Log, error)) (User, error) {
	u, err := s.cfg.Store.UpdateUser(ctx, id, fn)
	if err != nil {
		return User{}, err
	}
	s.cfg.Changed("", id)
	return u, nil
}

// setText sets *dst to *v when v is given and differs, and adds the
// change to changes.
func setText(changes []string, what string, dst, v *string) []string {
	if v != nil && *v != *dst {
		changes = append(changes, fmt.Sprintf("%s %q -> %q", what, *dst, *v))
		*dst = *v
	}
	return changes
}

// newUser fills in what a user created now from source starts with.
func newUser(u *User, now time.Time, source Source) {
	u.CreatedAt, u.Kind, u.Source = now, KindPerson, source
}

func sortedRoles(roles []Role) []Role {
	for i := 1; i < len(roles); i++ {
		for j := i; j > 0 && roles[j] < roles[j-1]; j-- {
			roles[j], roles[j-1] = roles[j-1], roles[j]
		}
	}
	return roles
}

// MaxUserIDLen is the longest user id, in bytes.
const MaxUserIDLen = 200

// CheckUserID checks a user id: 1 to 200 bytes of printable UTF-8 with no
// spaces at either end and no slash.
func CheckUserID(id string) error {
	switch {
	case id == "":
		return Errorf(ErrInvalid, "user id must not be empty")
	case len(id) > MaxUserIDLen:
		return Errorf(ErrInvalid, "user id is %d bytes; the limit is %d", len(id), MaxUserIDLen)
	case !utf8.ValidString(id):
		return Errorf(ErrInvalid, "user id must be valid UTF-8 text")
	case strings.TrimSpace(id) != id:
		return Errorf(ErrInvalid, "user id must not start or end with spaces")
	case strings.ContainsRune(id, '/'):
		return Errorf(ErrInvalid, "user id must not contain a slash")
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return Errorf(ErrInvalid, "user id must contain only printable characters")
		}
	}
	return nil
}

// storable reports whether s is text that every store can hold (PostgreSQL
// refuses invalid UTF-8 and NUL): an id that is not was never stored, so
// looking it up finds nothing rather than failing.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return Errorf(ErrInvalid, "email %q is not a plain address such as alice@example.com", email)
	}
	return nil
}
