// Package storetest is the conformance suite of apitoken.Store: every backend
// runs it from its own tests with storetest.Run, so that all of them keep the
// same contract (the comments of apitoken.Store).
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Run runs the suite. newStore must return an empty store; Run closes it at
// the end of each subtest.
func Run(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s apitoken.Store)
	}{
		// Users.
		{"GetUserOfUnknownIDIsNotFound", testGetUserUnknown},
		{"UpdateUserHandsAMissingUserToFnAsCreated", testUpdateUserCreates},
		{"UpdateUserHandsTheStoredUserToFn", testUpdateUserExisting},
		{"UpdateUserWritesNothingWhenFnFails", testUpdateUserFnError},
		{"UserRolesRoundTripSorted", testUserRoles},
		{"UpdateUserWritesTheLogsFnReturns", testUpdateUserLogs},
		{"ListUsersIsNewestFirstAndPaginates", testListUsers},

		// Tokens.
		{"CreateTokenNeedsAnExistingOwner", testCreateTokenNeedsOwner},
		{"CreateTokenWithATakenIDIsConflict", testCreateTokenTakenID},
		{"TokenRoundTripsEveryField", testTokenRoundTrip},
		{"CreateTokenWritesItsLog", testCreateTokenLog},
		{"GetTokenOfUnknownIDIsNotFound", testGetTokenUnknown},
		{"DuplicateNameAmongLiveTokensIsConflict", testDuplicateName},
		{"RevokedTokenFreesItsName", testRevokedFreesName},
		{"CreateTokenPastTheLimitOfLiveTokensIsRefused", testTokenLimit},
		{"ConcurrentCreatesNeverExceedTheLimit", testTokenLimitConcurrent},
		{"RenameToALiveNameIsConflict", testRenameConflict},
		{"UpdateTokenOfUnknownIDIsNotFound", testUpdateTokenUnknown},
		{"UpdateTokenWritesNothingWhenFnFails", testUpdateTokenFnError},
		{"UpdateTokenWritesTheTokenAndItsLog", testUpdateTokenWrites},
		{"UpdateTokenWithoutActivityWritesNoLog", testUpdateTokenNoLog},
		{"UpdateTokenKeepsTheFieldsFnMayNotChange", testUpdateTokenProtectedFields},
		{"ConcurrentGenerationsLeaveExactlyTheLastCommittedHash", testConcurrentGenerations},
		{"ListTokensIsNewestFirstAndPaginates", testListTokens},
		{"ListTokensFiltersByStatusAtNow", testListTokensByStatus},
		{"ListTokensRefusesAnUnknownStatus", testListTokensUnknownStatus},

		// Logs.
		{"ListLogsFiltersAndPaginatesNewestFirst", testListLogs},
		{"PageLimitDefaultsAndIsClamped", testPageLimits},
		{"MalformedCursorIsInvalid", testMalformedCursor},
		{"RecordAuthCoalescesIdenticalAttempts", testRecordAuthCoalesces},
		{"RecordAuthKeepsAtMostMaxRowsPerTokenAndWindow", testRecordAuthBound},
		{"RecordAuthMovesLastUsedForwardOnly", testRecordAuthLastUsed},
		{"RecordAuthSkipsUnknownTokens", testRecordAuthUnknownToken},
		{"RecordAuthAppliesABatchIDOnce", testRecordAuthBatchIDOnce},
		{"ConcurrentRecordAuthCountsSumExactly", testRecordAuthConcurrent},

		// Times.
		{"TimesRoundTripToTheMicrosecondInUTC", testTimeRoundTrip},
	}
	tests = append(tests, outboxTests...) // outbox.go
	tests = append(tests, changeTests...) // changes.go
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing the store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 is the base of every time in the suite: fixed, so that nothing depends
// on the wall clock, and long past, so that a store comparing with the wall
// clock instead of TokenFilter.Now gets statuses wrong.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

var errBoom = errors.New("boom: fn refused")

// ---- helpers ----

func putUser(t testing.TB, s apitoken.Store, id string, created time.Time, roles ...apitoken.Role) apitoken.User {
	t.Helper()
	u, err := s.UpdateUser(t.Context(), id, func(u *apitoken.User, isNew bool) ([]apitoken.Log, error) {
		u.CreatedAt = created
		u.Roles = roles
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser(%q): %v", id, err)
	}
	return u
}

func newToken(owner, name string, created time.Time) apitoken.Token {
	return apitoken.Token{ID: apitoken.NewTokenID(), Name: name, Owner: owner, Scopes: apitoken.AllScopes,
		Expires: apitoken.Expiry30d, CreatedAt: created}
}

func createLog(tok apitoken.Token) apitoken.Log {
	return apitoken.Log{TokenID: tok.ID, TokenName: tok.Name, Activity: apitoken.ActivityCreate,
		ActivityOn: tok.CreatedAt, ActivityBy: tok.Owner, Reason: "created"}
}

func createToken(t testing.TB, s apitoken.Store, tok apitoken.Token) apitoken.Token {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok, createLog(tok), 0); err != nil {
		t.Fatalf("CreateToken(%q): %v", tok.Name, err)
	}
	return tok
}

func mustGetToken(t *testing.T, s apitoken.Store, id string) apitoken.Token {
	t.Helper()
	tok, err := s.GetToken(t.Context(), id)
	if err != nil {
		t.Fatalf("GetToken(%q): %v", id, err)
	}
	return tok
}

func hash(seed string) []byte {
	h := sha256.Sum256([]byte(seed))
	return h[:]
}

// generate does what a generation does to the record: GeneratedAt, the exp
// of the new JWT (from the record's expiry unless exp is given) and its jti
// hash, and a GENERATE log.
func generate(t *testing.T, s apitoken.Store, id string, at time.Time, exp ...time.Time) apitoken.Token {
	t.Helper()
	tok, err := s.UpdateToken(t.Context(), id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.GeneratedAt = &at
		tok.GeneratedExp = tok.Expires.ExpiresAt(at)
		if len(exp) > 0 {
			tok.GeneratedExp = &exp[0]
		}
		tok.JTIHash = hash(tok.ID + at.String())
		return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at, ActivityBy: tok.Owner}, nil
	})
	if err != nil {
		t.Fatalf("generating %q: %v", id, err)
	}
	return tok
}

func revoke(t *testing.T, s apitoken.Store, id string, at time.Time) apitoken.Token {
	t.Helper()
	tok, err := s.UpdateToken(t.Context(), id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.RevokedAt, tok.RevokedBy = &at, "admin"
		return apitoken.Log{Activity: apitoken.ActivityRevoke, ActivityOn: at, ActivityBy: "admin"}, nil
	})
	if err != nil {
		t.Fatalf("revoking %q: %v", id, err)
	}
	return tok
}

func rename(s apitoken.Store, ctx context.Context, id, name string, at time.Time) (apitoken.Token, error) {
	return s.UpdateToken(ctx, id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.Name = name
		return apitoken.Log{Activity: apitoken.ActivityUpdate, ActivityOn: at, ActivityBy: tok.Owner, Reason: "renamed"}, nil
	})
}

func recordAuth(t *testing.T, s apitoken.Store, records ...apitoken.AuthRecord) {
	t.Helper()
	if err := s.RecordAuth(t.Context(), "", records); err != nil {
		t.Fatalf("RecordAuth: %v", err)
	}
}

// okAt is one OK attempt of a token at a time, from ip.
func okAt(tokenID string, at time.Time, ip string) apitoken.AuthRecord {
	return apitoken.AuthRecord{TokenID: tokenID, ActivityBy: "Reports API", Result: apitoken.ResultOK, ClientIP: ip,
		UserAgent: "curl/8", Window: at.Truncate(time.Minute), First: at, Last: at, Count: 1}
}

// allLogs lists every log row matching f, following the cursors.
func allLogs(t *testing.T, s apitoken.Store, f apitoken.LogFilter) []apitoken.Log {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = apitoken.MaxPageLimit
	}
	var out []apitoken.Log
	for i := 0; ; i++ {
		logs, next, err := s.ListLogs(t.Context(), f)
		if err != nil {
			t.Fatalf("ListLogs(%+v): %v", f, err)
		}
		out = append(out, logs...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatalf("ListLogs never ends")
		}
		f.Cursor = next
	}
}

func allTokens(t *testing.T, s apitoken.Store, f apitoken.TokenFilter) []apitoken.Token {
	t.Helper()
	var out []apitoken.Token
	for i := 0; ; i++ {
		toks, next, err := s.ListTokens(t.Context(), f)
		if err != nil {
			t.Fatalf("ListTokens(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(toks) > f.Limit {
			t.Fatalf("ListTokens returned %d tokens for limit %d", len(toks), f.Limit)
		}
		if next != "" && f.Limit > 0 && len(toks) != f.Limit {
			t.Fatalf("ListTokens returned a short page (%d of %d) with a next cursor", len(toks), f.Limit)
		}
		out = append(out, toks...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatalf("ListTokens never ends")
		}
		f.Cursor = next
	}
}

func tokenNames(toks []apitoken.Token) []string {
	names := make([]string, len(toks))
	for i, tok := range toks {
		names[i] = tok.Name
	}
	return names
}

func utc(tm time.Time) time.Time { return tm.Truncate(time.Microsecond).UTC() }

func utcPtr(tm *time.Time) *time.Time {
	if tm == nil {
		return nil
	}
	v := utc(*tm)
	return &v
}

// stored is tok as a store must return it: times to the microsecond in UTC.
func stored(tok apitoken.Token) apitoken.Token {
	tok.CreatedAt = utc(tok.CreatedAt)
	tok.GeneratedAt, tok.GeneratedExp = utcPtr(tok.GeneratedAt), utcPtr(tok.GeneratedExp)
	tok.LastUsedAt, tok.RevokedAt = utcPtr(tok.LastUsedAt), utcPtr(tok.RevokedAt)
	if len(tok.JTIHash) == 0 {
		tok.JTIHash = nil
	}
	return tok
}

func sameToken(t *testing.T, what string, got, want apitoken.Token) {
	t.Helper()
	if len(got.JTIHash) == 0 {
		got.JTIHash = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, fmtToken(got), fmtToken(want))
	}
}

func fmtToken(tok apitoken.Token) string {
	p := func(tm *time.Time) string {
		if tm == nil {
			return "nil"
		}
		return tm.Format(time.RFC3339Nano) + " " + tm.Location().String()
	}
	return fmt.Sprintf("{ID:%s Name:%q Owner:%s Scopes:%s Expires:%s CreatedAt:%s GeneratedAt:%s GeneratedExp:%s JTIHash:%x LastUsedAt:%s LastUsedIP:%q RevokedAt:%s RevokedBy:%q}",
		tok.ID, tok.Name, tok.Owner, tok.Scopes, tok.Expires, p(&tok.CreatedAt), p(tok.GeneratedAt), p(tok.GeneratedExp),
		tok.JTIHash, p(tok.LastUsedAt), tok.LastUsedIP, p(tok.RevokedAt), tok.RevokedBy)
}

func isUTC(tm time.Time) bool { return tm.Location() == time.UTC }

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want one that is %v", what, err, kind)
	}
}

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
		users, next, err := s.ListUsers(t.Context(), page)
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
	users, next, err := s.ListUsers(t.Context(), apitoken.Page{})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(users) != len(want) || next != "" {
		t.Errorf("ListUsers with the default limit = %d users, next %q; want %d and no next", len(users), next, len(want))
	}
}

// ---- tokens ----

func testCreateTokenNeedsOwner(t *testing.T, s apitoken.Store) {
	tok := newToken("nobody", "orphan", t0)
	err := s.CreateToken(t.Context(), tok, createLog(tok), 0)
	wantErr(t, "CreateToken for a missing owner", err, apitoken.ErrNotFound)
	if _, err := s.GetToken(t.Context(), tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetToken after a refused create = %v, want ErrNotFound", err)
	}
	if logs := allLogs(t, s, apitoken.LogFilter{}); len(logs) != 0 {
		t.Errorf("a refused create wrote logs: %+v", logs)
	}
}

func testCreateTokenTakenID(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	first := createToken(t, s, newToken("alice", "first", t0))
	dup := newToken("alice", "second", t0.Add(time.Second))
	dup.ID = first.ID
	err := s.CreateToken(t.Context(), dup, createLog(dup), 0)
	wantErr(t, "CreateToken with a taken id", err, apitoken.ErrConflict)
	sameToken(t, "the first token after the refused create", mustGetToken(t, s, first.ID), stored(first))
}

func testTokenRoundTrip(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := newToken("alice", "Nightly export", t0.Add(1500*time.Nanosecond))
	tok.Scopes, _ = apitoken.ScopeBit(apitoken.ScopeReport)
	tok.Expires = apitoken.Expiry90d
	createToken(t, s, tok)
	sameToken(t, "GetToken after CreateToken", mustGetToken(t, s, tok.ID), stored(tok))

	gen := t0.Add(time.Hour)
	exp := gen.Add(10 * day)
	rev := t0.Add(2 * time.Hour)
	h := hash("jti")
	got, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Name = "Nightly export (old)"
		tk.Scopes = apitoken.AllScopes
		tk.Expires = apitoken.ExpiryNever
		tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash = &gen, &exp, h
		tk.RevokedAt, tk.RevokedBy = &rev, "root"
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	want := stored(tok)
	want.Name, want.Scopes, want.Expires = "Nightly export (old)", apitoken.AllScopes, apitoken.ExpiryNever
	want.GeneratedAt, want.GeneratedExp, want.JTIHash = &gen, &exp, h
	want.RevokedAt, want.RevokedBy = &rev, "root"
	sameToken(t, "UpdateToken's result", got, want)
	sameToken(t, "GetToken after UpdateToken", mustGetToken(t, s, tok.ID), want)

	// And every field cleared again.
	_, err = s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash, tk.RevokedAt, tk.RevokedBy = nil, nil, nil, nil, ""
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	want.GeneratedAt, want.GeneratedExp, want.JTIHash, want.RevokedAt, want.RevokedBy = nil, nil, nil, nil, ""
	sameToken(t, "GetToken after clearing", mustGetToken(t, s, tok.ID), want)
}

func testCreateTokenLog(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "CI", t0.Add(time.Minute)))
	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID})
	if len(logs) != 1 {
		t.Fatalf("token logs = %+v, want one CREATE", logs)
	}
	l := logs[0]
	if l.ID == 0 || l.TokenID != tok.ID || l.TokenName != "CI" || l.Activity != apitoken.ActivityCreate ||
		!l.ActivityOn.Equal(tok.CreatedAt) || l.ActivityBy != "alice" || l.Reason != "created" {
		t.Errorf("CREATE log = %+v", l)
	}
	if l.Count != 1 || !l.LastOn.Equal(l.ActivityOn) {
		t.Errorf("CREATE log has Count %d and LastOn %v, want 1 and its ActivityOn", l.Count, l.LastOn)
	}
}

func testGetTokenUnknown(t *testing.T, s apitoken.Store) {
	_, err := s.GetToken(t.Context(), "tok_missing")
	wantErr(t, "GetToken of an unknown id", err, apitoken.ErrNotFound)
}

func testDuplicateName(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	createToken(t, s, newToken("alice", "Reports", t0))
	createToken(t, s, newToken("alice", "Ärger", t0))
	for _, name := range []string{"Reports", "reports", "REPORTS", "äRGER"} {
		tok := newToken("alice", name, t0.Add(time.Second))
		err := s.CreateToken(t.Context(), tok, createLog(tok), 0)
		wantErr(t, fmt.Sprintf("creating a second live token named %q", name), err, apitoken.ErrConflict)
		if _, err := s.GetToken(t.Context(), tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("the refused token %q was stored (GetToken: %v)", name, err)
		}
	}
	// Other names, and the same name for another owner, are fine.
	createToken(t, s, newToken("alice", "Reports 2", t0))
	createToken(t, s, newToken("bob", "reports", t0))
	if logs := allLogs(t, s, apitoken.LogFilter{Activity: apitoken.ActivityCreate}); len(logs) != 4 {
		t.Errorf("%d CREATE logs, want 4 (refused creates write none)", len(logs))
	}
}

func testRevokedFreesName(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	first := createToken(t, s, newToken("alice", "Reports", t0))
	revoke(t, s, first.ID, t0.Add(time.Hour))
	second := createToken(t, s, newToken("alice", "reports", t0.Add(2*time.Hour)))
	// The name is taken again by the new live token.
	tok := newToken("alice", "REPORTS", t0.Add(3*time.Hour))
	wantErr(t, "creating a third token of the name", s.CreateToken(t.Context(), tok, createLog(tok), 0), apitoken.ErrConflict)
	// Two revoked tokens may share a name.
	revoke(t, s, second.ID, t0.Add(4*time.Hour))
	createToken(t, s, newToken("alice", "Reports", t0.Add(5*time.Hour)))
	// Renaming to the name of a revoked token is fine.
	other := createToken(t, s, newToken("alice", "other", t0))
	revoke(t, s, other.ID, t0.Add(6*time.Hour))
	fresh := createToken(t, s, newToken("alice", "fresh", t0))
	if _, err := rename(s, t.Context(), fresh.ID, "OTHER", t0.Add(7*time.Hour)); err != nil {
		t.Errorf("renaming to the name of a revoked token: %v", err)
	}
}

func testTokenLimit(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	create := func(owner, name string, limit int) (apitoken.Token, error) {
		tok := newToken(owner, name, t0)
		return tok, s.CreateToken(t.Context(), tok, createLog(tok), limit)
	}
	var live []apitoken.Token
	for i := range 3 {
		tok, err := create("alice", fmt.Sprint("live ", i), 3)
		if err != nil {
			t.Fatalf("creating token %d of 3 with limit 3: %v", i+1, err)
		}
		live = append(live, tok)
	}
	tok, err := create("alice", "one too many", 3)
	wantErr(t, "creating a 4th live token with limit 3", err, apitoken.ErrTokenLimit)
	wantErr(t, "creating a 4th live token with limit 3", err, apitoken.ErrConflict)
	if !strings.Contains(apitoken.Message(err), "limit of 3") {
		t.Errorf("the refusal says %q, want it to name the limit of 3", apitoken.Message(err))
	}
	if _, err := s.GetToken(t.Context(), tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("the refused token was stored (GetToken: %v)", err)
	}
	if logs := allLogs(t, s, apitoken.LogFilter{Activity: apitoken.ActivityCreate}); len(logs) != 3 {
		t.Errorf("%d CREATE logs, want 3 (a refused create writes none)", len(logs))
	}
	// Another owner has a count of their own; no limit is no limit.
	if _, err := create("bob", "bob's", 3); err != nil {
		t.Errorf("another owner's create: %v", err)
	}
	if _, err := create("alice", "unlimited", 0); err != nil {
		t.Errorf("a create with limit 0: %v", err)
	}
	// A revoked token does not count, an expired one does.
	revoke(t, s, live[0].ID, t0.Add(time.Hour))
	revoke(t, s, live[1].ID, t0.Add(time.Hour))
	generate(t, s, live[2].ID, t0, t0.Add(time.Second)) // long expired
	// alice now has 2 that are not revoked: the expired one and "unlimited".
	if _, err := create("alice", "after revoking", 3); err != nil {
		t.Errorf("creating a 3rd token that is not revoked (2 others revoked) with limit 3: %v", err)
	}
	_, err = create("alice", "over again", 3)
	wantErr(t, "creating a 4th token that is not revoked (one expired) with limit 3", err, apitoken.ErrTokenLimit)
}

// testTokenLimitConcurrent races creates for one owner: the limit holds only
// if each create counts in the transaction of its insert, after every other
// create that committed before it.
func testTokenLimitConcurrent(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	for i := range 2 {
		revoke(t, s, createToken(t, s, newToken("alice", fmt.Sprint("revoked ", i), t0)).ID, t0)
	}
	const limit, n = 5, 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := newToken("alice", fmt.Sprint("racer ", i), t0.Add(time.Duration(i)*time.Second))
			errs <- s.CreateToken(t.Context(), tok, createLog(tok), limit)
		}()
	}
	wg.Wait()
	close(errs)
	created := 0
	for err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, apitoken.ErrTokenLimit):
			t.Errorf("a concurrent create failed with %v, want success or ErrTokenLimit", err)
		}
	}
	live := allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Now: t0})
	notRevoked := 0
	for _, tok := range live {
		if tok.RevokedAt == nil {
			notRevoked++
		}
	}
	if created != limit || notRevoked != limit {
		t.Errorf("%d of %d concurrent creates succeeded and alice has %d tokens that are not revoked; want %d and %d (the 2 revoked ones do not count)",
			created, n, notRevoked, limit, limit)
	}
}

func testRenameConflict(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	a := createToken(t, s, newToken("alice", "alpha", t0))
	b := createToken(t, s, newToken("alice", "beta", t0))
	createToken(t, s, newToken("bob", "gamma", t0))
	_, err := rename(s, t.Context(), b.ID, "ALPHA", t0.Add(time.Hour))
	wantErr(t, "renaming to another live token's name", err, apitoken.ErrConflict)
	sameToken(t, "the token after a refused rename", mustGetToken(t, s, b.ID), stored(b))
	if logs := allLogs(t, s, apitoken.LogFilter{TokenID: b.ID}); len(logs) != 1 {
		t.Errorf("a refused rename wrote a log: %+v", logs)
	}
	// A token may take its own name in another case, and another owner's name.
	if _, err := rename(s, t.Context(), a.ID, "ALPHA", t0.Add(time.Hour)); err != nil {
		t.Errorf("renaming a token to its own name in capitals: %v", err)
	}
	if _, err := rename(s, t.Context(), b.ID, "Gamma", t0.Add(time.Hour)); err != nil {
		t.Errorf("renaming to another owner's token name: %v", err)
	}
}

func testUpdateTokenUnknown(t *testing.T, s apitoken.Store) {
	called := false
	_, err := s.UpdateToken(t.Context(), "tok_missing", func(*apitoken.Token) (apitoken.Log, error) {
		called = true
		return apitoken.Log{}, nil
	})
	wantErr(t, "UpdateToken of an unknown id", err, apitoken.ErrNotFound)
	if called {
		t.Errorf("fn was called for a missing token")
	}
}

func testUpdateTokenFnError(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "keep", t0))
	at := t0.Add(time.Hour)
	for _, fnErr := range []error{errBoom, apitoken.Errorf(apitoken.ErrConflict, "token is revoked")} {
		_, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
			tk.Name, tk.Scopes, tk.Expires = "changed", 1, apitoken.Expiry1d
			tk.GeneratedAt, tk.JTIHash, tk.RevokedAt = &at, hash("x"), &at
			return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at}, fnErr
		})
		if err != fnErr && !errors.Is(err, fnErr) {
			t.Fatalf("UpdateToken returned %v, want fn's error %v", err, fnErr)
		}
		if apitoken.Message(err) != apitoken.Message(fnErr) {
			t.Errorf("fn's message was lost: got %q, want %q", apitoken.Message(err), apitoken.Message(fnErr))
		}
	}
	sameToken(t, "the token after failed updates", mustGetToken(t, s, tok.ID), stored(tok))
	if logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID}); len(logs) != 1 {
		t.Errorf("failed updates wrote logs: %+v", logs)
	}
}

func testUpdateTokenWrites(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "old name", t0))
	at := t0.Add(time.Hour)
	var seen apitoken.Token
	got, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		seen = *tk
		tk.Name = "new name"
		return apitoken.Log{Activity: apitoken.ActivityUpdate, ActivityOn: at, ActivityBy: "alice", Reason: "renamed"}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	sameToken(t, "the token fn was given", seen, stored(tok))
	want := stored(tok)
	want.Name = "new name"
	sameToken(t, "UpdateToken's result", got, want)
	sameToken(t, "GetToken after the update", mustGetToken(t, s, tok.ID), want)
	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID})
	if len(logs) != 2 {
		t.Fatalf("token logs = %+v, want CREATE and UPDATE", logs)
	}
	l := logs[0]
	if l.Activity != apitoken.ActivityUpdate || l.TokenID != tok.ID || l.TokenName != "new name" ||
		!l.ActivityOn.Equal(at) || l.ActivityBy != "alice" || l.Reason != "renamed" {
		t.Errorf("UPDATE log = %+v", l)
	}
}

func testUpdateTokenNoLog(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "quiet", t0))
	if _, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Expires = apitoken.Expiry7d
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	if got := mustGetToken(t, s, tok.ID); got.Expires != apitoken.Expiry7d {
		t.Errorf("Expires = %s, want 7d", got.Expires)
	}
	if logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID}); len(logs) != 1 {
		t.Errorf("an update without activity wrote a log: %+v", logs)
	}
}

func testUpdateTokenProtectedFields(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "mallory", t0)
	tok := createToken(t, s, newToken("alice", "mine", t0))
	recordAuth(t, s, okAt(tok.ID, t0.Add(time.Minute), "192.0.2.1"))
	before := mustGetToken(t, s, tok.ID)
	later := t0.Add(day)
	got, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Owner, tk.CreatedAt, tk.LastUsedAt, tk.LastUsedIP = "mallory", later, &later, "203.0.113.9"
		tk.Name = "renamed"
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	want := before
	want.Name = "renamed"
	sameToken(t, "UpdateToken's result", got, want)
	sameToken(t, "GetToken after fn changed fields it may not", mustGetToken(t, s, tok.ID), want)
}

func testConcurrentGenerations(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "busy", t0))
	const n = 20
	var (
		mu     sync.Mutex
		prevOf = map[string]string{} // new hash -> the hash fn saw
		wg     sync.WaitGroup
		errs   = make(chan error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hash(fmt.Sprint("generation ", i))
			at := t0.Add(time.Duration(i+1) * time.Second)
			_, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
				mu.Lock()
				prevOf[hex.EncodeToString(h)] = hex.EncodeToString(tk.JTIHash)
				mu.Unlock()
				tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash = &at, tk.Expires.ExpiresAt(at), h
				return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at, ActivityBy: "alice",
					Reason: hex.EncodeToString(h)}, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent generation failed: %v", err)
		}
	}
	// Serialized generations form one chain: every fn saw a different
	// previous hash, the first saw none, and the stored hash is the only one
	// no later generation saw.
	seen := map[string]bool{}
	for _, prev := range prevOf {
		if seen[prev] {
			t.Fatalf("two generations both replaced hash %q: they were not serialized", prev)
		}
		seen[prev] = true
	}
	if len(prevOf) != n || !seen[""] {
		t.Fatalf("%d generations ran, %v saw no previous hash; want %d and one", len(prevOf), seen[""], n)
	}
	var last []string
	for h := range prevOf {
		if !seen[h] {
			last = append(last, h)
		}
	}
	if len(last) != 1 {
		t.Fatalf("%d hashes were never replaced, want 1", len(last))
	}
	got := mustGetToken(t, s, tok.ID)
	if hex.EncodeToString(got.JTIHash) != last[0] {
		t.Errorf("stored hash %x, want the last committed %s", got.JTIHash, last[0])
	}
	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityGenerate})
	if len(logs) != n {
		t.Fatalf("%d GENERATE logs, want %d", len(logs), n)
	}
	if logs[0].Reason != last[0] {
		t.Errorf("newest GENERATE log is of hash %s, want the last committed %s", logs[0].Reason, last[0])
	}
}

func testListTokens(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	var all []apitoken.Token
	for i := range 5 {
		all = append(all, createToken(t, s, newToken("alice", fmt.Sprint("a", i), t0.Add(time.Duration(i)*time.Minute))))
	}
	for i := range 3 {
		all = append(all, createToken(t, s, newToken("bob", fmt.Sprint("b", i), t0.Add(time.Duration(2*i)*time.Minute+time.Second))))
	}
	// Created in the same microsecond: ordered by id.
	all = append(all, createToken(t, s, newToken("alice", "tie1", t0.Add(time.Hour))))
	all = append(all, createToken(t, s, newToken("alice", "tie2", t0.Add(time.Hour))))
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	ofAlice := slices.DeleteFunc(slices.Clone(all), func(tk apitoken.Token) bool { return tk.Owner != "alice" })

	for _, limit := range []int{1, 2, 3, 100} {
		got := allTokens(t, s, apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(tokenNames(got), tokenNames(all)) {
			t.Errorf("every token, pages of %d = %q, want %q", limit, tokenNames(got), tokenNames(all))
		}
		got = allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Now: t0, Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(tokenNames(got), tokenNames(ofAlice)) {
			t.Errorf("alice's tokens, pages of %d = %q, want %q", limit, tokenNames(got), tokenNames(ofAlice))
		}
	}
	got, next, err := s.ListTokens(t.Context(), apitoken.TokenFilter{Owner: "carol", Now: t0})
	if err != nil || len(got) != 0 || next != "" {
		t.Errorf("tokens of an owner with none = %v, %q, %v; want none", tokenNames(got), next, err)
	}
	// The listed tokens are whole.
	got = allTokens(t, s, apitoken.TokenFilter{Owner: "bob", Now: t0})
	for _, tk := range got {
		for _, w := range all {
			if w.ID == tk.ID {
				sameToken(t, "a listed token", tk, stored(w))
			}
		}
	}
}

func testListTokensByStatus(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	now := t0.Add(10 * day)
	ids := map[string]string{} // name -> id
	n := 0
	mk := func(owner, name string, expires apitoken.Expiry) string {
		n++
		tok := newToken(owner, name, t0.Add(time.Duration(n)*time.Second))
		tok.Expires = expires
		createToken(t, s, tok)
		ids[name] = tok.ID
		return tok.ID
	}
	use := func(id string, at time.Time) { recordAuth(t, s, okAt(id, at, "192.0.2.7")) }

	mk("alice", "fresh", apitoken.Expiry30d)
	mk("bob", "bob-fresh", apitoken.Expiry30d)

	generate(t, s, mk("alice", "unused", apitoken.Expiry30d), t0)

	id := mk("alice", "used", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	id = mk("alice", "failed-only", apitoken.Expiry30d)
	generate(t, s, id, t0)
	recordAuth(t, s, apitoken.AuthRecord{TokenID: id, ActivityBy: "app", Result: apitoken.ResultFail,
		Reason: apitoken.ReasonInsufficientScope, Window: t0, First: t0.Add(time.Hour), Last: t0.Add(time.Hour), Count: 1})

	id = mk("alice", "used-then-regenerated", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))
	generate(t, s, id, t0.Add(2*time.Hour))

	id = mk("alice", "used-at-generation", apitoken.Expiry30d)
	generate(t, s, id, t0.Add(3*time.Hour))
	use(id, t0.Add(3*time.Hour))

	id = mk("alice", "never-expires", apitoken.ExpiryNever)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	generate(t, s, mk("alice", "short", apitoken.Expiry1d), t0)

	id = mk("alice", "short-used", apitoken.Expiry1d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	// The JWT's exp is earlier than generated_at + expires: it wins.
	generate(t, s, mk("alice", "exp-claim-earlier", apitoken.Expiry30d), t0, t0.Add(2*day))

	// Expiring exactly now is expired; a microsecond later is not.
	generate(t, s, mk("alice", "ends-now", apitoken.Expiry1d), now.Add(-day))
	generate(t, s, mk("alice", "ends-after-now", apitoken.Expiry1d), now.Add(-day+time.Microsecond))

	// Narrowing the expiry after generation applies at once.
	id = mk("alice", "narrowed", apitoken.Expiry30d)
	generate(t, s, id, t0)
	if _, err := s.UpdateToken(t.Context(), id, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Expires = apitoken.Expiry7d
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatalf("narrowing: %v", err)
	}

	revoke(t, s, mk("alice", "revoked-fresh", apitoken.Expiry30d), t0.Add(time.Hour))
	id = mk("alice", "revoked-used", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))
	revoke(t, s, id, t0.Add(2*time.Hour))
	id = mk("alice", "revoked-expired", apitoken.Expiry1d)
	generate(t, s, id, t0)
	revoke(t, s, id, t0.Add(2*time.Hour))

	want := map[apitoken.Status][]string{
		apitoken.StatusNotGenerated:      {"fresh", "bob-fresh"},
		apitoken.StatusGeneratedInactive: {"unused", "failed-only", "used-then-regenerated", "ends-after-now"},
		apitoken.StatusGeneratedActive:   {"used", "used-at-generation", "never-expires"},
		apitoken.StatusExpired:           {"short", "short-used", "exp-claim-earlier", "ends-now", "narrowed"},
		apitoken.StatusRevoked:           {"revoked-fresh", "revoked-used", "revoked-expired"},
	}
	// The expectations agree with the domain's own rule.
	for st, names := range want {
		for _, name := range names {
			tok := mustGetToken(t, s, ids[name])
			if got := tok.StatusAt(now); got != st {
				t.Errorf("token %q: StatusAt(now) = %s, the suite expects %s (%s)", name, got, st, fmtToken(tok))
			}
		}
	}
	for st, names := range want {
		got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Status: st, Now: now}))
		if !sameSet(got, names) {
			t.Errorf("tokens with status %s at now = %q, want %q", st, got, names)
		}
		// Filters combine with the owner and with pagination.
		got = tokenNames(allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Status: st, Now: now, Page: apitoken.Page{Limit: 1}}))
		wantAlice := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "bob-fresh" })
		if !sameSet(got, wantAlice) {
			t.Errorf("alice's tokens with status %s, pages of 1 = %q, want %q", st, got, wantAlice)
		}
	}
	// Status is taken at the filter's Now, not at the wall clock.
	early := t0.Add(12 * time.Hour)
	got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Status: apitoken.StatusExpired, Now: early}))
	if len(got) != 0 {
		t.Errorf("tokens expired 12h after t0 = %q, want none", got)
	}
	got = tokenNames(allTokens(t, s, apitoken.TokenFilter{Status: apitoken.StatusGeneratedActive, Now: early}))
	if !sameSet(got, []string{"used", "used-at-generation", "never-expires", "short-used"}) {
		t.Errorf("tokens active 12h after t0 = %q", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func testListTokensUnknownStatus(t *testing.T, s apitoken.Store) {
	_, _, err := s.ListTokens(t.Context(), apitoken.TokenFilter{Status: "dormant", Now: t0})
	wantErr(t, "ListTokens with an unknown status", err, apitoken.ErrInvalid)
}

// ---- logs ----

func testListLogs(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	a := createToken(t, s, newToken("alice", "A", t0))
	b := createToken(t, s, newToken("alice", "B", t0.Add(30*time.Minute)))
	if _, err := rename(s, t.Context(), a.ID, "A2", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	generate(t, s, a.ID, t0.Add(2*time.Hour))
	if _, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Email = "alice@example.com"
		return []apitoken.Log{{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: t0.Add(3 * time.Hour), ActivityBy: "root"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// An attempt row started at 4h and last seen at 5h.
	recordAuth(t, s, apitoken.AuthRecord{TokenID: a.ID, ActivityBy: "Reports API", Result: apitoken.ResultOK, ClientIP: "192.0.2.1",
		Window: t0.Add(4 * time.Hour), First: t0.Add(4 * time.Hour), Last: t0.Add(5 * time.Hour), Count: 3})

	all := allLogs(t, s, apitoken.LogFilter{})
	acts := func(logs []apitoken.Log) []string {
		out := make([]string, len(logs))
		for i, l := range logs {
			out[i] = string(l.Activity) + ":" + l.TokenName + l.Subject
		}
		return out
	}
	wantAll := []string{"AUTHENTICATE:A2", "USER_UPDATE:alice", "GENERATE:A2", "UPDATE:A2", "CREATE:B", "CREATE:A"}
	if !slices.Equal(acts(all), wantAll) {
		t.Fatalf("every log, newest first = %q, want %q", acts(all), wantAll)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("log ids are not newest first: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	for _, limit := range []int{1, 2, 4} {
		got := allLogs(t, s, apitoken.LogFilter{Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(acts(got), wantAll) {
			t.Errorf("every log, pages of %d = %q, want %q", limit, acts(got), wantAll)
		}
	}
	auth := all[0]
	if auth.Count != 3 || !auth.ActivityOn.Equal(t0.Add(4*time.Hour)) || !auth.LastOn.Equal(t0.Add(5*time.Hour)) ||
		auth.Result != apitoken.ResultOK || auth.ClientIP != "192.0.2.1" || auth.ActivityBy != "Reports API" || auth.TokenID != a.ID {
		t.Errorf("AUTHENTICATE log = %+v", auth)
	}

	cases := []struct {
		f    apitoken.LogFilter
		want []string
	}{
		{apitoken.LogFilter{TokenID: a.ID}, []string{"AUTHENTICATE:A2", "GENERATE:A2", "UPDATE:A2", "CREATE:A"}},
		{apitoken.LogFilter{TokenID: b.ID}, []string{"CREATE:B"}},
		{apitoken.LogFilter{TokenID: "tok_none"}, nil},
		{apitoken.LogFilter{Activity: apitoken.ActivityCreate}, []string{"CREATE:B", "CREATE:A"}},
		{apitoken.LogFilter{TokenID: a.ID, Activity: apitoken.ActivityUpdate}, []string{"UPDATE:A2"}},
		{apitoken.LogFilter{Activity: apitoken.ActivityUserUpdate}, []string{"USER_UPDATE:alice"}},
		// Since compares with LastOn, inclusive.
		{apitoken.LogFilter{Since: t0.Add(4*time.Hour + 30*time.Minute)}, []string{"AUTHENTICATE:A2"}},
		{apitoken.LogFilter{Since: t0.Add(3 * time.Hour)}, []string{"AUTHENTICATE:A2", "USER_UPDATE:alice"}},
		{apitoken.LogFilter{Since: t0.Add(5*time.Hour + time.Microsecond)}, nil},
		{apitoken.LogFilter{TokenID: a.ID, Since: t0.Add(time.Hour)}, []string{"AUTHENTICATE:A2", "GENERATE:A2", "UPDATE:A2"}},
	}
	for _, c := range cases {
		for _, limit := range []int{1, 0} {
			f := c.f
			f.Limit = limit
			if got := acts(allLogs(t, s, f)); !slices.Equal(got, c.want) {
				t.Errorf("ListLogs(%+v) = %q, want %q", f, got, c.want)
			}
		}
	}
}

func testPageLimits(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "many", t0))
	// 1,170 attempt rows (more than MaxPageLimit): 13 windows of 90
	// distinct clients, under the per-window row bound.
	var recs []apitoken.AuthRecord
	for w := range 13 {
		for i := range 90 {
			at := t0.Add(time.Duration(w) * time.Minute)
			recs = append(recs, apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultFail,
				Reason: apitoken.ReasonExpired, ClientIP: fmt.Sprintf("198.51.100.%d", i), Window: at, First: at, Last: at, Count: 1})
		}
	}
	recordAuth(t, s, recs...)
	total := len(recs) + 1 // and the CREATE log
	logs, next, err := s.ListLogs(t.Context(), apitoken.LogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != apitoken.DefaultPageLimit || next == "" {
		t.Errorf("limit 0 gave %d logs (next %q), want %d and a next cursor", len(logs), next, apitoken.DefaultPageLimit)
	}
	logs, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: -5}})
	if err != nil || len(logs) != apitoken.DefaultPageLimit {
		t.Errorf("a negative limit gave %d logs (%v), want %d", len(logs), err, apitoken.DefaultPageLimit)
	}
	logs, next, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 50_000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != apitoken.MaxPageLimit || next == "" {
		t.Errorf("limit 50000 gave %d logs (next %q), want %d and a next cursor", len(logs), next, apitoken.MaxPageLimit)
	}
	rest, next2, err := s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 50_000, Cursor: next}})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs)+len(rest) != total || next2 != "" {
		t.Errorf("two clamped pages hold %d logs (next %q), want all %d and no next", len(logs)+len(rest), next2, total)
	}
	// A page that ends exactly at the last row has no next cursor.
	exact, next, err := s.ListLogs(t.Context(), apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityCreate, Page: apitoken.Page{Limit: 1}})
	if err != nil || len(exact) != 1 || next != "" {
		t.Errorf("a page holding the last row: %d logs, next %q, %v; want 1 and no next", len(exact), next, err)
	}
}

func testMalformedCursor(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0.Add(time.Second))
	createToken(t, s, newToken("alice", "one", t0))
	createToken(t, s, newToken("alice", "two", t0.Add(time.Second)))
	_, userNext, err := s.ListUsers(t.Context(), apitoken.Page{Limit: 1})
	if err != nil || userNext == "" {
		t.Fatalf("ListUsers: next %q, %v", userNext, err)
	}
	_, logNext, err := s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 1}})
	if err != nil || logNext == "" {
		t.Fatalf("ListLogs: next %q, %v", logNext, err)
	}
	check := func(what string, err error) {
		t.Helper()
		wantErr(t, what, err, apitoken.ErrInvalid)
		if msg := apitoken.Message(err); !strings.Contains(msg, "cursor") {
			t.Errorf("%s: message %q does not say the cursor is wrong", what, msg)
		}
	}
	for _, c := range []string{"!!not base64!!", "bm90LWEtY3Vyc29y", "%%%", "AAAA", strings.Repeat("x", 40)} {
		_, _, err := s.ListUsers(t.Context(), apitoken.Page{Cursor: c})
		check(fmt.Sprintf("ListUsers with cursor %q", c), err)
		_, _, err = s.ListTokens(t.Context(), apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListTokens with cursor %q", c), err)
		_, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListLogs with cursor %q", c), err)
	}
	// So is a cursor whose id is not text a store can hold.
	for _, id := range []string{"\xff", "tok_\x00"} {
		c := base64.RawURLEncoding.EncodeToString([]byte("u:0:" + id))
		_, _, err := s.ListUsers(t.Context(), apitoken.Page{Cursor: c})
		check(fmt.Sprintf("ListUsers with cursor %q", c), err)
		c = base64.RawURLEncoding.EncodeToString([]byte("t:0:" + id))
		_, _, err = s.ListTokens(t.Context(), apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListTokens with cursor %q", c), err)
	}
	// A truncated cursor is malformed too.
	_, _, err = s.ListUsers(t.Context(), apitoken.Page{Cursor: userNext[:len(userNext)/2]})
	check("ListUsers with a truncated cursor", err)
	_, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Cursor: logNext[:1]}})
	check("ListLogs with a truncated cursor", err)
}

func authKey(l apitoken.Log) string {
	return strings.Join([]string{l.TokenID, l.ActivityBy, l.Result, l.Reason, l.ClientIP, l.UserAgent}, "|")
}

func testRecordAuthCoalesces(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "coalesced", t0))
	w := t0.Add(time.Hour)
	base := apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "Reports API", Result: apitoken.ResultFail,
		Reason: apitoken.ReasonInsufficientScope, ClientIP: "192.0.2.1", UserAgent: "curl/8", Window: w}
	rec := func(first, last time.Duration, count int64, change func(r *apitoken.AuthRecord)) apitoken.AuthRecord {
		r := base
		r.First, r.Last, r.Count = w.Add(first), w.Add(last), count
		if change != nil {
			change(&r)
		}
		return r
	}
	recordAuth(t, s, rec(10*time.Second, 20*time.Second, 3, nil))
	recordAuth(t, s, rec(5*time.Second, 15*time.Second, 4, nil))
	// Twice in one batch.
	recordAuth(t, s, rec(12*time.Second, 12*time.Second, 1, nil), rec(30*time.Second, 30*time.Second, 2, nil))
	// Each part of the key makes a row of its own.
	recordAuth(t, s,
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.ClientIP = "192.0.2.2" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.UserAgent = "wget" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.Reason = apitoken.ReasonExpired }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.Result, r.Reason = apitoken.ResultOK, "" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.ActivityBy = "Other API" }),
		rec(time.Minute, time.Minute, 1, func(r *apitoken.AuthRecord) { r.Window = w.Add(time.Minute) }),
	)
	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	if len(logs) != 7 {
		t.Fatalf("%d AUTHENTICATE rows, want 7: %+v", len(logs), logs)
	}
	var main []apitoken.Log
	for _, l := range logs {
		if l.TokenName != "coalesced" {
			t.Errorf("row %d has token name %q, want the token's", l.ID, l.TokenName)
		}
		if authKey(l) == strings.Join([]string{tok.ID, "Reports API", apitoken.ResultFail, apitoken.ReasonInsufficientScope, "192.0.2.1", "curl/8"}, "|") &&
			l.ActivityOn.Before(w.Add(time.Minute)) {
			main = append(main, l)
		} else if l.Count != 1 {
			t.Errorf("row %+v has count %d, want 1", l, l.Count)
		}
	}
	if len(main) != 1 {
		t.Fatalf("%d rows of the repeated key in its window, want 1", len(main))
	}
	m := main[0]
	if m.Count != 10 {
		t.Errorf("coalesced count = %d, want 3+4+1+2 = 10", m.Count)
	}
	if !m.ActivityOn.Equal(w.Add(5*time.Second)) || !m.LastOn.Equal(w.Add(30*time.Second)) {
		t.Errorf("coalesced row spans %v to %v, want the earliest first (5s) and the latest last (30s)", m.ActivityOn.Sub(w), m.LastOn.Sub(w))
	}
}

func testRecordAuthBound(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "popular", t0))
	other := createToken(t, s, newToken("alice", "other", t0))
	w := t0.Add(time.Hour)
	attempt := func(id, result, reason, ip string, count int64, win time.Time) apitoken.AuthRecord {
		return apitoken.AuthRecord{TokenID: id, ActivityBy: "Reports API", Result: result, Reason: reason, ClientIP: ip,
			UserAgent: "ua/" + ip, Window: win, First: win.Add(time.Second), Last: win.Add(2 * time.Second), Count: count}
	}
	var fails, oks []apitoken.AuthRecord
	for i := range 150 {
		fails = append(fails, attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonExpired, fmt.Sprintf("10.0.%d.%d", i/200, i%200), 1, w))
	}
	for i := range 30 {
		oks = append(oks, attempt(tok.ID, apitoken.ResultOK, "", fmt.Sprintf("10.1.0.%d", i), 2, w))
	}
	recordAuth(t, s, fails[:60]...)
	recordAuth(t, s, fails[60:]...)
	recordAuth(t, s, oks...)
	// Past the bound, a record with a row of its own still goes to that row.
	again := fails[0]
	again.Count = 5
	recordAuth(t, s, again)
	// A record the auditor already folded goes to the folded row.
	folded := attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonFolded, "", 7, w)
	folded.UserAgent = ""
	recordAuth(t, s, folded)
	// Other windows and other tokens have bounds of their own.
	recordAuth(t, s, attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonExpired, "10.9.9.9", 1, w.Add(time.Minute)),
		attempt(other.ID, apitoken.ResultFail, apitoken.ReasonExpired, "10.9.9.9", 1, w))

	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	var inWindow []apitoken.Log
	for _, l := range logs {
		if l.ActivityOn.Before(w.Add(time.Minute)) {
			inWindow = append(inWindow, l)
		} else if l.Reason != apitoken.ReasonExpired || l.Count != 1 {
			t.Errorf("the next window's row = %+v, want a row of its own", l)
		}
	}
	if len(logs)-len(inWindow) != 1 {
		t.Errorf("%d rows in the next window, want 1", len(logs)-len(inWindow))
	}
	if len(inWindow) > apitoken.MaxAuthRowsPerWindow {
		t.Fatalf("%d rows in one window, want at most %d", len(inWindow), apitoken.MaxAuthRowsPerWindow)
	}
	sums := map[string]int64{}
	foldedRows := map[string]int{}
	kept := 0
	for _, l := range inWindow {
		sums[l.Result] += l.Count
		if l.Reason == apitoken.ReasonFolded {
			foldedRows[l.Result]++
			if l.ClientIP != "" || l.UserAgent != "" {
				t.Errorf("folded row %+v names a client", l)
			}
			if !l.ActivityOn.Equal(w.Add(time.Second)) || !l.LastOn.Equal(w.Add(2*time.Second)) {
				t.Errorf("folded row spans %v to %v", l.ActivityOn, l.LastOn)
			}
			continue
		}
		kept++
		if l.ClientIP == fails[0].ClientIP && l.Count != 6 {
			t.Errorf("the first client's row has count %d, want 1+5", l.Count)
		}
	}
	if want := int64(150 + 5 + 7); sums[apitoken.ResultFail] != want {
		t.Errorf("Fail attempts sum to %d, want %d: none may be lost", sums[apitoken.ResultFail], want)
	}
	if want := int64(60); sums[apitoken.ResultOK] != want {
		t.Errorf("OK attempts sum to %d, want %d", sums[apitoken.ResultOK], want)
	}
	if foldedRows[apitoken.ResultFail] != 1 || foldedRows[apitoken.ResultOK] != 1 {
		t.Errorf("folded rows per result = %v, want one for Fail and one for OK", foldedRows)
	}
	if kept < apitoken.MaxAuthRowsPerWindow-2 {
		t.Errorf("only %d rows kept their client before folding, want at least %d", kept, apitoken.MaxAuthRowsPerWindow-2)
	}
	if o := allLogs(t, s, apitoken.LogFilter{TokenID: other.ID, Activity: apitoken.ActivityAuthenticate}); len(o) != 1 || o[0].Reason != apitoken.ReasonExpired {
		t.Errorf("the other token's rows = %+v, want its own unfolded row", o)
	}
}

func testRecordAuthLastUsed(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "used", t0))
	check := func(at time.Time, ip string) {
		t.Helper()
		got := mustGetToken(t, s, tok.ID)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) || got.LastUsedIP != ip {
			t.Errorf("last used = %v from %q, want %v from %q", got.LastUsedAt, got.LastUsedIP, at, ip)
		}
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt != nil || got.LastUsedIP != "" {
		t.Fatalf("a new token has last used %v from %q", got.LastUsedAt, got.LastUsedIP)
	}
	recordAuth(t, s, okAt(tok.ID, t0.Add(10*time.Minute), "192.0.2.1"))
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// An older OK (a late flush) does not move it back.
	recordAuth(t, s, okAt(tok.ID, t0.Add(5*time.Minute), "192.0.2.2"))
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// A failure does not move it.
	fail := okAt(tok.ID, t0.Add(20*time.Minute), "192.0.2.3")
	fail.Result, fail.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
	recordAuth(t, s, fail)
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// The latest Last of a run counts, whatever the order in the batch.
	run := okAt(tok.ID, t0.Add(25*time.Minute), "192.0.2.4")
	run.Last = t0.Add(40 * time.Minute)
	recordAuth(t, s, run, okAt(tok.ID, t0.Add(30*time.Minute), "192.0.2.5"))
	check(t0.Add(40*time.Minute), "192.0.2.4")
	recordAuth(t, s, okAt(tok.ID, t0.Add(45*time.Minute), "192.0.2.6"), okAt(tok.ID, t0.Add(50*time.Minute), "192.0.2.7"))
	check(t0.Add(50*time.Minute), "192.0.2.7")
}

func testRecordAuthUnknownToken(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "known", t0))
	recordAuth(t, s, okAt("tok_gone", t0, "192.0.2.1"), okAt(tok.ID, t0, "192.0.2.1"), okAt("tok_gone", t0, "192.0.2.2"))
	recordAuth(t, s, okAt("tok_gone", t0, "192.0.2.1"))
	recordAuth(t, s)
	logs := allLogs(t, s, apitoken.LogFilter{Activity: apitoken.ActivityAuthenticate})
	if len(logs) != 1 || logs[0].TokenID != tok.ID {
		t.Errorf("AUTHENTICATE rows = %+v, want only the known token's", logs)
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt == nil {
		t.Errorf("the known token's use was not recorded")
	}
}

// A batch written again under its id (a retry after a lost COMMIT answer)
// is not applied again; another id is.
func testRecordAuthBatchIDOnce(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "retried", t0))
	batch := []apitoken.AuthRecord{okAt(tok.ID, t0, "192.0.2.1"), okAt(tok.ID, t0, "192.0.2.2")}
	id := apitoken.NewBatchID()
	for range 3 {
		if err := s.RecordAuth(t.Context(), id, batch); err != nil {
			t.Fatalf("RecordAuth: %v", err)
		}
	}
	if err := s.RecordAuth(t.Context(), apitoken.NewBatchID(), batch); err != nil {
		t.Fatalf("RecordAuth: %v", err)
	}
	var n int64
	for _, l := range allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate}) {
		n += l.Count
	}
	if n != 4 {
		t.Errorf("counted %d, want 4: the batch once under each of its two ids", n)
	}
}

func testRecordAuthConcurrent(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "hot", t0))
	const workers, batches = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				at := t0.Add(time.Duration(g*batches+b) * time.Millisecond)
				shared := okAt(tok.ID, at, "192.0.2.1")
				double := okAt(tok.ID, at, "192.0.2.2")
				double.Count = 2
				own := okAt(tok.ID, at, fmt.Sprintf("198.51.100.%d", g))
				errs <- s.RecordAuth(t.Context(), "", []apitoken.AuthRecord{shared, double, own})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent RecordAuth failed: %v", err)
		}
	}
	last := t0.Add(time.Duration(workers*batches-1) * time.Millisecond)
	counts := map[string]int64{}
	for _, l := range allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate}) {
		counts[l.ClientIP] += l.Count
		if shared := l.ClientIP == "192.0.2.1" || l.ClientIP == "192.0.2.2"; shared && (!l.ActivityOn.Equal(t0) || !l.LastOn.Equal(last)) {
			t.Errorf("row of %s spans %v to %v, want t0 to %v", l.ClientIP, l.ActivityOn, l.LastOn, last)
		}
	}
	if counts["192.0.2.1"] != workers*batches || counts["192.0.2.2"] != 2*workers*batches {
		t.Errorf("shared rows count %d and %d, want %d and %d", counts["192.0.2.1"], counts["192.0.2.2"], workers*batches, 2*workers*batches)
	}
	for g := range workers {
		if c := counts[fmt.Sprintf("198.51.100.%d", g)]; c != batches {
			t.Errorf("worker %d's row counts %d, want %d", g, c, batches)
		}
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(last) {
		t.Errorf("last used = %v, want the latest attempt %v", got.LastUsedAt, last)
	}
}

// ---- times ----

func testTimeRoundTrip(t *testing.T, s apitoken.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := time.Date(2025, 6, 30, 23, 59, 59, 123456789, zone)
	want := local.Truncate(time.Microsecond).UTC()

	u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.CreatedAt = local
		return []apitoken.Log{{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: local, ActivityBy: "root"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gotU, _ := s.GetUser(t.Context(), "alice")
	users, _, _ := s.ListUsers(t.Context(), apitoken.Page{})
	for what, tm := range map[string]time.Time{"UpdateUser": u.CreatedAt, "GetUser": gotU.CreatedAt, "ListUsers": users[0].CreatedAt} {
		if !tm.Equal(want) || !isUTC(tm) || tm != want {
			t.Errorf("%s CreatedAt = %v (%s), want %v in UTC", what, tm, tm.Location(), want)
		}
	}

	tok := newToken("alice", "timed", local)
	l1, l2, l3, l4 := local.Add(time.Hour), local.Add(2*time.Hour), local.Add(3*time.Hour), local.Add(4*time.Hour)
	tok.GeneratedAt, tok.GeneratedExp = &l1, &l2
	tok.JTIHash = hash("t")
	createToken(t, s, tok)
	updated, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.RevokedAt, tk.RevokedBy = &l3, "root"
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recordAuth(t, s, apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1",
		Window: local, First: l4, Last: l4, Count: 1})
	wantTok := stored(tok)
	wantTok.RevokedAt, wantTok.RevokedBy = utcPtr(&l3), "root"
	sameToken(t, "UpdateToken's result", updated, wantTok)
	wantTok.LastUsedAt, wantTok.LastUsedIP = utcPtr(&l4), "192.0.2.1"
	sameToken(t, "GetToken", mustGetToken(t, s, tok.ID), wantTok)
	listed := allTokens(t, s, apitoken.TokenFilter{Now: local})
	if len(listed) != 1 {
		t.Fatalf("listed %d tokens", len(listed))
	}
	sameToken(t, "ListTokens", listed[0], wantTok)

	for _, l := range allLogs(t, s, apitoken.LogFilter{}) {
		if !isUTC(l.ActivityOn) || !isUTC(l.LastOn) {
			t.Errorf("log %d times are not in UTC: %v, %v", l.ID, l.ActivityOn, l.LastOn)
		}
		var wantOn time.Time
		switch l.Activity {
		case apitoken.ActivityUserUpdate, apitoken.ActivityCreate:
			wantOn = want
		case apitoken.ActivityAuthenticate:
			wantOn = utc(l4)
		}
		if l.ActivityOn != wantOn || l.LastOn != wantOn {
			t.Errorf("%s log times = %v, %v; want %v", l.Activity, l.ActivityOn, l.LastOn, wantOn)
		}
	}
}
