package apitoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Users pushed by an identity provider over SCIM: the provider creates,
// changes, disables and deletes them, and says which groups they are in.

// ByScim is who SCIM's changes are logged by.
const ByScim = "scim"

// Provision is what an identity provider says about a user; nil fields
// stay. Join and Leave change the user's groups one membership at a time
// (a SCIM Group's members), after Groups replaced them.
type Provision struct {
	Name   *string
	Email  *string
	Active *bool
	Groups *[]string
	Join   []string
	Leave  []string
}

// ProvisionMode says whether Provision may create the user, must, or must
// not.
type ProvisionMode int

// The modes: a SCIM POST creates (ErrConflict when the user exists), PUT
// and PATCH change (ErrNotFound when it does not).
const (
	ProvisionCreate ProvisionMode = iota
	ProvisionChange
)

// Provision creates or changes the person id as an identity provider says,
// logs what changed (USER_UPDATE by scim, ROLE_GRANT and ROLE_REMOVE by
// groups) and gives the roles the groups give. A user made inactive is
// disabled: their tokens stop at once, and work again when made active. A
// service account is never provisioned (ErrConflict).
func (s *Service) Provision(ctx context.Context, id string, p Provision, mode ProvisionMode) (User, error) {
	if err := CheckUserID(id); err != nil {
		return User{}, err
	}
	if err := checkProvision(&p); err != nil {
		return User{}, err
	}
	now := s.Now()
	u, err := s.updateUser(ctx, id, func(u *User, created bool) ([]Log, error) {
		switch {
		case created && mode == ProvisionChange:
			return nil, Errorf(ErrNotFound, "no user %q", id)
		case !created && mode == ProvisionCreate:
			return nil, Errorf(ErrConflict, "user %q exists", id)
		case u.IsService():
			return nil, Errorf(ErrConflict, "%q is a service account; SCIM provisions people only", id)
		}
		var changes []string
		if created {
			newUser(u, now, SourceSCIM)
			changes = append(changes, "created by SCIM")
		}
		changes = setText(changes, "name", &u.Name, p.Name)
		changes = setText(changes, "email", &u.Email, p.Email)
		if p.Active != nil && *p.Active == u.Disabled {
			changes = append(changes, fmt.Sprintf("disabled %t -> %t", u.Disabled, !*p.Active))
			u.Disabled = !*p.Active
		}
		groups := u.Groups
		if p.Groups != nil {
			groups = *p.Groups
		}
		groups = slices.DeleteFunc(append(slices.Clone(groups), p.Join...), func(g string) bool { return slices.Contains(p.Leave, g) })
		slices.Sort(groups)
		groups = slices.Compact(groups)
		if len(groups) > MaxGroups {
			return nil, Errorf(ErrInvalid, "user %q would be in %d groups; the limit is %d", id, len(groups), MaxGroups)
		}
		if !slices.Equal(groups, u.Groups) {
			changes = append(changes, fmt.Sprintf("groups %q -> %q", u.Groups, groups))
			u.Groups = groups
		}
		var logs []Log
		if len(changes) > 0 {
			logs = append(logs, Log{Subject: id, Activity: ActivityUserUpdate, ActivityOn: now, ActivityBy: ByScim, Reason: strings.Join(changes, "; ")})
		}
		for _, l := range s.applyGroupRoles(u, now) {
			l.Subject = id
			logs = append(logs, l)
		}
		if len(logs) == 0 {
			return nil, errUnchanged
		}
		return logs, nil
	})
	if errors.Is(err, errUnchanged) {
		return s.cfg.Store.GetUser(ctx, id)
	}
	return u, err
}

// checkProvision checks and cleans what the provider sent.
func checkProvision(p *Provision) error {
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if err := checkText("name", n, MaxUserNameLen); err != nil {
			return err
		}
		p.Name = &n
	}
	if p.Email != nil {
		e := strings.TrimSpace(*p.Email)
		if err := checkEmail(e); err != nil {
			return err
		}
		p.Email = &e
	}
	if p.Groups != nil {
		g, err := NormalizeGroups(*p.Groups)
		if err != nil {
			return err
		}
		p.Groups = &g
	}
	for _, l := range [][]string{p.Join, p.Leave} {
		if _, err := NormalizeGroups(l); err != nil {
			return err
		}
	}
	return nil
}

// Deprovision disables the person id and revokes every token they own
// (REVOKE by scim; each owner is notified as for any revocation), as an
// identity provider's DELETE asks.
func (s *Service) Deprovision(ctx context.Context, id string) error {
	active := false
	if _, err := s.Provision(ctx, id, Provision{Active: &active}, ProvisionChange); err != nil {
		return err
	}
	f := TokenFilter{Owner: id, Now: s.Now(), Page: Page{Limit: MaxPageLimit}}
	for {
		tokens, next, err := s.cfg.Store.ListTokens(ctx, f)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if t.RevokedAt != nil {
				continue
			}
			if _, err := s.revoke(ctx, t.ID, revocation{by: ByScim, may: anyToken, reason: RevokeBySCIM}); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}

// SCIMUser returns the person id for SCIM (ErrNotFound for a service
// account, which SCIM does not see).
func (s *Service) SCIMUser(ctx context.Context, id string) (User, error) {
	if !storable(id) {
		return User{}, Errorf(ErrNotFound, "no user %q", id)
	}
	u, err := s.cfg.Store.GetUser(ctx, id)
	if err == nil && u.IsService() {
		return User{}, Errorf(ErrNotFound, "no user %q", id)
	}
	return u, err
}

// SCIMUsers calls fn with every person, newest first, until fn returns
// false; with q, only those whose id, name or email holds q (ignoring
// case), as UserFilter.Q.
func (s *Service) SCIMUsers(ctx context.Context, q string, fn func(u User) bool) error {
	f := UserFilter{Kind: KindPerson, Q: q, Page: Page{Limit: MaxPageLimit}}
	for {
		users, next, err := s.cfg.Store.ListUsers(ctx, f)
		if err != nil {
			return err
		}
		for _, u := range users {
			if !fn(u) {
				return nil
			}
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}
