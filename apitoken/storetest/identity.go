package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// ---- what the identity layer says about users ----

func testUserIdentityRoundTrip(t *testing.T, s apitoken.Store) {
	seen := t0.Add(time.Minute)
	set := func(fn func(u *apitoken.User)) apitoken.User {
		t.Helper()
		u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
			fn(u)
			return nil, nil
		})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		got, err := s.GetUser(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if !reflect.DeepEqual(got, u) {
			t.Errorf("GetUser = %+v, UpdateUser returned %+v", got, u)
		}
		return got
	}
	got := set(func(u *apitoken.User) {
		u.Name, u.Email, u.Kind, u.Source, u.CreatedAt = "Alice Liddell", "alice@example.com", apitoken.KindPerson, apitoken.SourceSignIn, t0
		u.Groups = []string{"report users", "staff,eu"}
		u.GroupRoles = []apitoken.Role{apitoken.RoleAPITokens, apitoken.RoleAdmin, apitoken.RoleAPITokens}
		u.Roles = []apitoken.Role{apitoken.RoleAdmin}
		u.LastSeenAt = &seen
	})
	want := apitoken.User{ID: "alice", Name: "Alice Liddell", Email: "alice@example.com", Kind: apitoken.KindPerson,
		Source: apitoken.SourceSignIn, Groups: []string{"report users", "staff,eu"},
		GroupRoles: []apitoken.Role{apitoken.RoleAdmin, apitoken.RoleAPITokens}, Roles: []apitoken.Role{apitoken.RoleAdmin},
		CreatedAt: t0, LastSeenAt: &seen}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after setting every field: %+v, want %+v", got, want)
	}
	// Group roles and hand roles are kept apart: clearing one keeps the other.
	got = set(func(u *apitoken.User) { u.Groups, u.GroupRoles, u.Kind = nil, nil, apitoken.KindService })
	want.Groups, want.GroupRoles, want.Kind = nil, nil, apitoken.KindService
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after clearing the groups: %+v, want %+v", got, want)
	}
	got = set(func(u *apitoken.User) { u.LastSeenAt, u.Name = nil, "" })
	if got.LastSeenAt != nil || got.Name != "" || !slices.Equal(got.Roles, want.Roles) {
		t.Errorf("after clearing last seen and name: %+v", got)
	}
}

func testListUsersFilters(t *testing.T, s apitoken.Store) {
	for i, u := range []apitoken.User{
		{ID: "alice", Name: "Alice Liddell", Email: "alice@example.com", Kind: apitoken.KindPerson},
		{ID: "bob", Name: "Bob", Email: "BOB@Example.org", Kind: apitoken.KindPerson},
		{ID: "svc-export", Name: "Nightly export", Kind: apitoken.KindService},
		{ID: "svc-bi", Email: "bi-team@example.com", Kind: apitoken.KindService},
	} {
		if _, err := s.UpdateUser(t.Context(), u.ID, func(x *apitoken.User, created bool) ([]apitoken.Log, error) {
			*x = u
			x.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
			return nil, nil
		}); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	for _, c := range []struct {
		f    apitoken.UserFilter
		want []string
	}{
		{apitoken.UserFilter{}, []string{"svc-bi", "svc-export", "bob", "alice"}},
		{apitoken.UserFilter{Kind: apitoken.KindService}, []string{"svc-bi", "svc-export"}},
		{apitoken.UserFilter{Kind: apitoken.KindPerson}, []string{"bob", "alice"}},
		{apitoken.UserFilter{Q: "EXAMPLE.COM"}, []string{"svc-bi", "alice"}}, // email, any case
		{apitoken.UserFilter{Q: "liddell"}, []string{"alice"}},               // name
		{apitoken.UserFilter{Q: "svc-"}, []string{"svc-bi", "svc-export"}},   // id
		{apitoken.UserFilter{Q: "export", Kind: apitoken.KindPerson}, nil},   // both must match
		{apitoken.UserFilter{Q: "%"}, nil},                                   // no pattern syntax
		{apitoken.UserFilter{Q: "e", Page: apitoken.Page{Limit: 1}}, []string{"svc-bi"}},
	} {
		users, _, err := s.ListUsers(t.Context(), c.f)
		if err != nil {
			t.Fatalf("ListUsers(%+v): %v", c.f, err)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ListUsers(%+v) = %q, want %q", c.f, got, c.want)
		}
	}
	// The cursor carries on within the filter.
	first, next, err := s.ListUsers(t.Context(), apitoken.UserFilter{Kind: apitoken.KindService, Page: apitoken.Page{Limit: 1}})
	if err != nil || len(first) != 1 || next == "" {
		t.Fatalf("first page: %v, next %q, %v", first, next, err)
	}
	rest, next, err := s.ListUsers(t.Context(), apitoken.UserFilter{Kind: apitoken.KindService, Page: apitoken.Page{Limit: 1, Cursor: next}})
	if err != nil || len(rest) != 1 || rest[0].ID != "svc-export" || next != "" {
		t.Errorf("second page: %+v, next %q, %v; want svc-export and the end", rest, next, err)
	}
}
