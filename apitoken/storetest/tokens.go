package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

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
	tok.AllowedIPs = networks(t, "198.51.100.0/24", "2001:db8::7")
	createToken(t, s, tok)
	sameToken(t, "GetToken after CreateToken", mustGetToken(t, s, tok.ID), stored(tok))

	gen := t0.Add(time.Hour)
	exp := gen.Add(10 * day)
	rev := t0.Add(2 * time.Hour)
	h := hash("jti")
	// Scopes are kept by name: one that no config of this process declared
	// reads back as itself.
	custom, err := apitoken.ScopesOf("meta sales:eu-2")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Name = "Nightly export (old)"
		tk.Scopes = custom
		tk.Expires = apitoken.ExpiryNever
		tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash = &gen, &exp, h
		tk.GeneratedScopes = apitoken.DefaultScopes
		tk.RevokedAt, tk.RevokedBy = &rev, "root"
		tk.AllowedIPs = networks(t, "0.0.0.0/0", "10.0.0.0/8", "192.0.2.1", "2001:db8:1::/48")
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	want := stored(tok)
	want.Name, want.Scopes, want.Expires = "Nightly export (old)", custom, apitoken.ExpiryNever
	want.AllowedIPs = networks(t, "0.0.0.0/0", "10.0.0.0/8", "192.0.2.1", "2001:db8:1::/48")
	want.GeneratedAt, want.GeneratedExp, want.JTIHash, want.GeneratedScopes = &gen, &exp, h, apitoken.DefaultScopes
	want.RevokedAt, want.RevokedBy = &rev, "root"
	sameToken(t, "UpdateToken's result", got, want)
	sameToken(t, "GetToken after UpdateToken", mustGetToken(t, s, tok.ID), want)

	// And every field cleared again.
	_, err = s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash, tk.RevokedAt, tk.RevokedBy = nil, nil, nil, nil, ""
		tk.GeneratedScopes = 0
		tk.AllowedIPs = apitoken.Networks{} // empty: any client, read back as nil
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	want.GeneratedAt, want.GeneratedExp, want.JTIHash, want.RevokedAt, want.RevokedBy = nil, nil, nil, nil, ""
	want.GeneratedScopes = 0
	want.AllowedIPs = nil
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
