package apitoken_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Tests of SignIn: users come from the identity layer, and groups give
// roles.

// groupEnv is an env whose deployment maps report-users to the token role
// and report-admins to admin.
func groupEnv(t *testing.T) *env {
	e := newEnv(t, apitoken.AuthConfig{})
	e.reconfigure(func(c *apitoken.ServiceConfig) {
		c.Groups = apitoken.GroupMap{"report-users": apitoken.RoleAPITokens, "report-admins": apitoken.RoleAdmin}
	})
	return e
}

func (e *env) signIn(in apitoken.Identity) apitoken.Caller {
	e.tb.Helper()
	c, err := e.svc.SignIn(e.ctx, in)
	if err != nil {
		e.tb.Fatalf("SignIn(%+v): %v", in, err)
	}
	return c
}

// writes counts the store writes so far: each adds one change.
func (e *env) writes() int64 {
	e.tb.Helper()
	n, err := e.store.LastChange(e.ctx)
	if err != nil {
		e.tb.Fatalf("LastChange: %v", err)
	}
	return n
}

func TestSignIn_TheFirstRequestMakesThePersonAndLaterOnesRefreshIt(t *testing.T) {
	e := groupEnv(t)
	c := e.signIn(apitoken.Identity{ID: "alice", Name: "Alice", Email: "alice@example.com"})
	u := c.User
	if !c.Known || u.Kind != apitoken.KindPerson || u.Source != apitoken.SourceSignIn || u.Name != "Alice" ||
		u.Email != "alice@example.com" || u.LastSeenAt == nil || !u.LastSeenAt.Equal(t0) || !u.CreatedAt.Equal(t0) {
		t.Fatalf("after the first sign-in: %+v", u)
	}
	logs := allLogs(t, e, apitoken.LogFilter{Activity: apitoken.ActivityUserUpdate})
	if len(logs) != 2 || logs[1].Reason != "created at sign-in" || logs[1].ActivityBy != apitoken.BySignIn {
		t.Errorf("USER_UPDATE logs = %+v, want the creation then the name and email", logs)
	}

	// Within the minute: nothing is written, whatever changed but groups.
	before := e.writes()
	e.clock.Advance(30 * time.Second)
	c = e.signIn(apitoken.Identity{ID: "alice", Name: "Alice L.", Email: "alice@example.org"})
	if e.writes() != before || c.User.Name != "Alice" {
		t.Errorf("a sign-in within the minute wrote %d times (name now %q)", e.writes()-before, c.User.Name)
	}
	// After it: name, email and last seen are written once.
	e.clock.Advance(31 * time.Second)
	c = e.signIn(apitoken.Identity{ID: "alice", Name: "Alice L.", Email: "alice@example.org"})
	if e.writes() != before+1 || c.User.Name != "Alice L." || c.User.Email != "alice@example.org" ||
		!c.User.LastSeenAt.Equal(t0.Add(61*time.Second)) {
		t.Errorf("a sign-in after the minute: %d writes, %+v", e.writes()-before, c.User)
	}
	// An email or name the layer does not give never clears the stored one.
	e.clock.Advance(time.Hour)
	c = e.signIn(apitoken.Identity{ID: "alice"})
	if c.User.Email != "alice@example.org" || c.User.Name != "Alice L." {
		t.Errorf("a sign-in without name and email cleared them: %+v", c.User)
	}
}

func TestSignIn_GroupsGrantAndRemoveRolesAtOnceAndKeepHandRolesApart(t *testing.T) {
	e := groupEnv(t)
	in := apitoken.Identity{ID: "alice", HasGroups: true, Groups: []string{" report-users", "staff", ""}}
	c := e.signIn(in)
	if err := c.CheckOwner(); err != nil || !slices.Equal(c.User.Groups, []string{"report-users", "staff"}) ||
		!slices.Equal(c.User.GroupRoles, []apitoken.Role{apitoken.RoleAPITokens}) || len(c.User.Roles) != 0 {
		t.Fatalf("a member of report-users: %+v (%v)", c.User, err)
	}
	tok := e.create(c, "excel", apitoken.DefaultScopes, apitoken.Expiry30d)
	jwt, _ := e.generate(c, tok.ID)
	e.accepted(jwt)

	// Joining report-admins within the same second applies to this request.
	in.Groups = []string{"report-users", "report-admins"}
	if c = e.signIn(in); !c.Admin {
		t.Errorf("a member of report-admins is not a system admin: %+v", c.User)
	}
	// An admin grants admin by hand too; leaving the group keeps it.
	if _, err := e.svc.GrantRole(e.ctx, e.admin, "alice", apitoken.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	in.Groups = nil
	c = e.signIn(in)
	if !c.Admin || c.User.HasRole(apitoken.RoleAPITokens) || len(c.User.GroupRoles) != 0 {
		t.Errorf("after leaving every group: %+v, want the hand-granted admin only", c.User)
	}
	// The token stops with the role, at once.
	e.refused(jwt, apitoken.ReasonRoleMissing)
	grants := allLogs(t, e, apitoken.LogFilter{Activity: apitoken.ActivityRoleRemove})
	if len(grants) != 2 || grants[0].ActivityBy != apitoken.ByGroups {
		t.Errorf("ROLE_REMOVE logs = %+v, want two by groups", grants)
	}
	// Rejoining brings it back.
	in.Groups = []string{"report-users"}
	e.signIn(in)
	e.accepted(jwt)

	// A layer that says nothing of groups leaves them.
	if c = e.signIn(apitoken.Identity{ID: "alice"}); !slices.Equal(c.User.Groups, []string{"report-users"}) {
		t.Errorf("a sign-in without groups changed them: %+v", c.User)
	}
}

func TestSignIn_AGroupNeverGivesTheTokenRoleToAViewOnlyUser(t *testing.T) {
	e := groupEnv(t)
	e.putUser("bob", apitoken.UserPatch{ViewOnly: ptr(true)})
	c := e.signIn(apitoken.Identity{ID: "bob", HasGroups: true, Groups: []string{"report-users"}})
	if c.User.HasRole(apitoken.RoleAPITokens) {
		t.Errorf("a view-only member of report-users got the token role: %+v", c.User)
	}
	// Undoing view-only gives it from the group; doing it again takes it away.
	e.putUser("bob", apitoken.UserPatch{ViewOnly: ptr(false)})
	if u, _ := e.store.GetUser(e.ctx, "bob"); !slices.Equal(u.GroupRoles, []apitoken.Role{apitoken.RoleAPITokens}) {
		t.Errorf("after view-only was undone: %+v", u)
	}
	e.putUser("bob", apitoken.UserPatch{ViewOnly: ptr(true)})
	if u, _ := e.store.GetUser(e.ctx, "bob"); len(u.GroupRoles) != 0 {
		t.Errorf("after view-only was set again: %+v", u)
	}
}

func TestSignIn_ServiceAccountsAndDisabledUsersAreRefused(t *testing.T) {
	e := groupEnv(t)
	e.service("svc-export")
	_, err := e.svc.SignIn(e.ctx, apitoken.Identity{ID: "svc-export", HasGroups: true, Groups: []string{"report-admins"}})
	wantKind(t, err, apitoken.ErrForbidden)
	if u, _ := e.store.GetUser(e.ctx, "svc-export"); u.HasRole(apitoken.RoleAdmin) || u.LastSeenAt != nil {
		t.Errorf("a refused sign-in of a service account changed it: %+v", u)
	}
	e.putUser("mallory", apitoken.UserPatch{Disabled: ptr(true)})
	_, err = e.svc.SignIn(e.ctx, apitoken.Identity{ID: "mallory"})
	wantKind(t, err, apitoken.ErrForbidden)
}

func TestSignIn_WhatTheLayerSendsIsChecked(t *testing.T) {
	e := groupEnv(t)
	for _, in := range []apitoken.Identity{
		{ID: "a", Email: "not an address"},
		{ID: "a", Name: "bad\x00name"},
		{ID: "a", HasGroups: true, Groups: []string{strings.Repeat("g", apitoken.MaxGroupLen+1)}},
		{ID: "a", Name: strings.Repeat("n", apitoken.MaxUserNameLen+1)},
	} {
		_, err := e.svc.SignIn(e.ctx, in)
		wantKind(t, err, apitoken.ErrInvalid)
	}
	_, err := e.svc.SignIn(e.ctx, apitoken.Identity{ID: "a/b"})
	wantKind(t, err, apitoken.ErrForbidden)
	if _, err := e.store.GetUser(e.ctx, "a"); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("a refused sign-in made the user: %v", err)
	}
}

func TestPutUser_AKindIsSetAtCreationAndNeverChanges(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	e.service("svc")
	e.holder("alice")
	for _, tc := range []struct {
		id   string
		kind apitoken.Kind
	}{{"svc", apitoken.KindPerson}, {"alice", apitoken.KindService}} {
		_, err := e.svc.PutUser(e.ctx, e.admin, tc.id, apitoken.UserPatch{Kind: &tc.kind})
		wantKind(t, err, apitoken.ErrConflict)
	}
	// A person's token is the person's: admins may neither create nor
	// generate it.
	tok := e.create(e.caller("alice"), "mine", apitoken.DefaultScopes, apitoken.Expiry30d)
	_, _, err := e.svc.GenerateFor(e.ctx, e.admin, tok.ID)
	wantKind(t, err, apitoken.ErrForbidden)
	_, err = e.svc.CreateTokenFor(e.ctx, e.admin, "alice", apitoken.TokenInput{Name: "x", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1d})
	wantKind(t, err, apitoken.ErrForbidden)
	if got, _ := e.store.GetToken(e.ctx, tok.ID); got.GeneratedAt != nil {
		t.Error("a refused GenerateFor generated a person's token")
	}
}

// allLogs is every log row matching f, newest first.
func allLogs(t *testing.T, e *env, f apitoken.LogFilter) []apitoken.Log {
	t.Helper()
	ls, _, err := e.store.ListLogs(e.ctx, f)
	if err != nil {
		t.Fatalf("ListLogs: %v", err)
	}
	return ls
}
