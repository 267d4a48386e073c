package apitoken

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Role is a right granted to a user by a system admin, or by an
// identity-provider group the user belongs to.
type Role string

// The roles.
const (
	// RoleAPITokens is the right to own tokens.
	RoleAPITokens Role = "api_tokens"
	// RoleAdmin makes a user a system admin.
	RoleAdmin Role = "admin"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAPITokens, RoleAdmin:
		return r, nil
	}
	return "", Errorf(ErrInvalid, `unknown role %q: roles are "api_tokens" and "admin"`, s)
}

// Kind is what a user is: a person, or a service account.
type Kind string

// The kinds. A service account is made by an admin, never signs in, and owns
// tokens that admins manage.
const (
	KindPerson  Kind = "person"
	KindService Kind = "service"
)

// ParseKind checks a kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindPerson, KindService:
		return k, nil
	}
	return "", Errorf(ErrInvalid, `unknown kind %q: kinds are "person" and "service"`, s)
}

// Source is how a user record came to be.
type Source string

// The sources.
const (
	SourceManual Source = "manual"  // an admin's PUT or role grant
	SourceSignIn Source = "sign_in" // the user's first request to the management routes
	SourceSCIM   Source = "scim"    // provisioned by an identity provider
)

// User is an identity known to the management routes.
type User struct {
	ID     string
	Name   string
	Email  string
	Kind   Kind   // KindPerson when empty
	Source Source // SourceManual when empty
	// ViewOnly users may not have the token role's effect.
	ViewOnly bool
	Disabled bool
	// Roles are those granted by hand (sorted); GroupRoles those that come
	// from Groups by the deployment's group map (sorted). A group change
	// never touches Roles.
	Roles      []Role
	GroupRoles []Role
	// Groups are the identity-provider groups the user was last seen in
	// (sorted).
	Groups     []string
	CreatedAt  time.Time
	LastSeenAt *time.Time
}

// IsService reports whether u is a service account.
func (u *User) IsService() bool { return u.Kind == KindService }

// HasRole reports whether r is in effect for u, by hand or from a group
// (whether or not view-only or disabled takes its effect away).
func (u *User) HasRole(r Role) bool {
	return slices.Contains(u.Roles, r) || slices.Contains(u.GroupRoles, r)
}

// EffectiveRoles is every role in effect for u, sorted, without duplicates.
func (u *User) EffectiveRoles() []Role {
	out := append(slices.Clone(u.Roles), u.GroupRoles...)
	slices.Sort(out)
	return slices.Compact(out)
}

// TokenRoleReason says why u's tokens may not authenticate, or "" when they
// may: the token role must be held and have effect.
func (u *User) TokenRoleReason() string {
	switch {
	case u.Disabled:
		return ReasonDisabled
	case u.ViewOnly:
		return ReasonViewOnly
	case !u.HasRole(RoleAPITokens):
		return ReasonRoleMissing
	}
	return ""
}

// GroupMap maps identity-provider groups to the roles their members get.
type GroupMap map[string]Role

// Roles is what groups give a user: sorted, without duplicates, and never
// the token role to a view-only user.
func (m GroupMap) Roles(groups []string, viewOnly bool) []Role {
	var out []Role
	for _, g := range groups {
		r, ok := m[g]
		if ok && !(r == RoleAPITokens && viewOnly) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Limits of what the identity layer may say about a user.
const (
	MaxUserNameLen = 200 // bytes
	MaxGroupLen    = 200 // bytes
	MaxGroups      = 200
)

// NormalizeGroups cleans a list of group names as an identity layer sends
// them: trimmed, empty ones dropped, sorted, without duplicates. A group that
// is not printable text of at most MaxGroupLen bytes, or more than MaxGroups
// of them, is refused.
func NormalizeGroups(groups []string) ([]string, error) {
	var out []string
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if err := checkText("group name", g, MaxGroupLen); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxGroups {
		return nil, Errorf(ErrInvalid, "%d groups; the limit is %d", len(out), MaxGroups)
	}
	return out, nil
}

// checkText checks that s is printable UTF-8 text of at most max bytes.
func checkText(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return Errorf(ErrInvalid, "%s must be valid UTF-8 text", what)
	}
	if len(s) > max {
		return Errorf(ErrInvalid, "%s is %d bytes; the limit is %d", what, len(s), max)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return Errorf(ErrInvalid, "%s must contain only printable characters", what)
		}
	}
	return nil
}

// UserFilter selects users.
type UserFilter struct {
	Kind Kind   // "" for every kind
	Q    string // "" for every user; else a part of the id, name or email (case-insensitive)
	Page
}
