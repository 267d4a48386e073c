package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// ---- users ----

func testGetUserUnknown(t *testing.T, s apitoken.Store) {
	_, err := s.GetUser(t.Context(), "nobody")
	wantErr(t, "GetUser of an unknown id", err, apitoken.ErrNotFound)
}

func testUpdateUserCreates(t *testing.T, s apitoken.Store) {
	calls := 0
	u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		calls++
		if !created {
			t.Errorf("fn was told created=false for a missing user")
		}
		if !reflect.DeepEqual(*u, apitoken.User{ID: "alice"}) {
			t.Errorf("fn got %+v for a missing user, want only ID set", *u)
		}
		u.Email, u.ViewOnly, u.CreatedAt = "alice@example.com", true, t0
		u.Roles = []apitoken.Role{apitoken.RoleAdmin}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if calls != 1 {
		t.Errorf("fn was called %d times, want 1", calls)
	}
	want := apitoken.User{ID: "alice", Email: "alice@example.com", ViewOnly: true, Roles: []apitoken.Role{apitoken.RoleAdmin}, CreatedAt: t0}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("UpdateUser returned %+v, want %+v", u, want)
	}
	got, err := s.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetUser = %+v, want %+v", got, want)
	}
}

func testUpdateUserExisting(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0, apitoken.RoleAPITokens)
	before, err := s.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		if created {
			t.Errorf("fn was told created=true for a stored user")
		}
		if !reflect.DeepEqual(*u, before) {
			t.Errorf("fn got %+v, want the stored %+v", *u, before)
		}
		u.Email, u.Disabled = "a@example.org", true
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := before
	want.Email, want.Disabled = "a@example.org", true
	got, _ := s.GetUser(t.Context(), "alice")
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(u, want) {
		t.Errorf("after the update: GetUser = %+v, returned %+v, want %+v", got, u, want)
	}
	// And back: false values must be written too.
	putFlags := func(viewOnly, disabled bool) {
		if _, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
			u.ViewOnly, u.Disabled, u.Email = viewOnly, disabled, ""
			return nil, nil
		}); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	putFlags(true, false)
	got, _ = s.GetUser(t.Context(), "alice")
	if !got.ViewOnly || got.Disabled || got.Email != "" {
		t.Errorf("GetUser = %+v, want view-only, not disabled, no email", got)
	}
}

func testUpdateUserFnError(t *testing.T, s apitoken.Store) {
	// A missing user: nothing is created, whatever fn did to it.
	_, err := s.UpdateUser(t.Context(), "ghost", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Email, u.CreatedAt = "ghost@example.com", t0
		return []apitoken.Log{{Subject: "ghost", Activity: apitoken.ActivityUserUpdate, ActivityOn: t0}}, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("UpdateUser returned %v, want fn's error", err)
	}
	_, err = s.UpdateUser(t.Context(), "ghost", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		return nil, apitoken.Errorf(apitoken.ErrNotFound, "no user %q", u.ID)
	})
	wantErr(t, "UpdateUser whose fn says not found", err, apitoken.ErrNotFound)
	if _, err := s.GetUser(t.Context(), "ghost"); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetUser after failed creations = %v, want ErrNotFound", err)
	}
	// A stored user: unchanged.
	before := putUser(t, s, "alice", t0, apitoken.RoleAPITokens)
	_, err = s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Email, u.Disabled, u.Roles = "x@example.com", true, nil
		return []apitoken.Log{{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: t0}}, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("UpdateUser returned %v, want fn's error", err)
	}
	got, _ := s.GetUser(t.Context(), "alice")
	if !reflect.DeepEqual(got, before) {
		t.Errorf("user after a failed update = %+v, want unchanged %+v", got, before)
	}
	if logs := allLogs(t, s, apitoken.LogFilter{}); len(logs) != 0 {
		t.Errorf("failed updates wrote %d logs: %+v", len(logs), logs)
	}
}

func testUserRoles(t *testing.T, s apitoken.Store) {
	set := func(roles ...apitoken.Role) apitoken.User {
		u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
			if created {
				u.CreatedAt = t0
			}
			u.Roles = roles
			return nil, nil
		})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		return u
	}
	check := func(want ...apitoken.Role) {
		t.Helper()
		got, err := s.GetUser(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if len(got.Roles) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got.Roles, want)) {
			t.Errorf("roles = %q, want %q", got.Roles, want)
		}
	}
	set(apitoken.RoleAPITokens, apitoken.RoleAdmin) // unsorted on purpose
	check(apitoken.RoleAdmin, apitoken.RoleAPITokens)
	set(apitoken.RoleAPITokens)
	check(apitoken.RoleAPITokens)
	set()
	check()
	set(apitoken.RoleAdmin)
	check(apitoken.RoleAdmin)
	// Roles of one user are not another's.
	putUser(t, s, "bob", t0, apitoken.RoleAPITokens)
	check(apitoken.RoleAdmin)
}

func testUpdateUserLogs(t *testing.T, s apitoken.Store) {
	_, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.CreatedAt = t0
		u.Roles = []apitoken.Role{apitoken.RoleAPITokens}
		return []apitoken.Log{
			{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: t0, ActivityBy: "root", Reason: "created"},
			{Subject: "alice", Activity: apitoken.ActivityRoleGrant, ActivityOn: t0.Add(time.Second), ActivityBy: "root", Reason: "granted api_tokens"},
		}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	logs := allLogs(t, s, apitoken.LogFilter{})
	if len(logs) != 2 {
		t.Fatalf("got %d logs, want 2: %+v", len(logs), logs)
	}
	grant, upd := logs[0], logs[1] // newest first
	if grant.Activity != apitoken.ActivityRoleGrant || upd.Activity != apitoken.ActivityUserUpdate {
		t.Fatalf("logs = %+v, want ROLE_GRANT then USER_UPDATE", logs)
	}
	if grant.Subject != "alice" || grant.TokenID != "" || grant.ActivityBy != "root" || grant.Reason != "granted api_tokens" ||
		!grant.ActivityOn.Equal(t0.Add(time.Second)) {
		t.Errorf("ROLE_GRANT log = %+v", grant)
	}
	if grant.Count != 1 || !grant.LastOn.Equal(grant.ActivityOn) {
		t.Errorf("a single event's log has Count %d and LastOn %v, want 1 and its ActivityOn", grant.Count, grant.LastOn)
	}
	if got := allLogs(t, s, apitoken.LogFilter{Activity: apitoken.ActivityUserUpdate}); len(got) != 1 || got[0].ID != upd.ID {
		t.Errorf("USER_UPDATE logs = %+v, want the one", got)
	}
}

func testListUsers(t *testing.T, s apitoken.Store) {
	var want []string
	ids := []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"}
	for i, id := range ids {
		putUser(t, s, id, t0.Add(time.Duration(i)*time.Minute))
	}
	// Two users created in the same microsecond: the larger id first.
	putUser(t, s, "tie-a", t0.Add(time.Hour))
	putUser(t, s, "tie-b", t0.Add(time.Hour))
	want = []string{"tie-b", "tie-a", "u7", "u6", "u5", "u4", "u3", "u2", "u1"}

	var got []string
	page := apitoken.Page{Limit: 2}
	for i := 0; ; i++ {
		users, next, err := s.ListUsers(t.Context(), apitoken.UserFilter{Page: page})
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(users) > 2 || (next != "" && len(users) != 2) {
			t.Fatalf("page %d has %d users (next %q) for limit 2", i, len(users), next)
		}
		for _, u := range users {
			got = append(got, u.ID)
		}
		if next == "" {
			break
		}
		if i > 20 {
			t.Fatalf("ListUsers never ends")
		}
		page.Cursor = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers pages = %q, want %q", got, want)
	}
	users, next, err := s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{}})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(users) != len(want) || next != "" {
		t.Errorf("ListUsers with the default limit = %d users, next %q; want %d and no next", len(users), next, len(want))
	}
}
