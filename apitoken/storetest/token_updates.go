package storetest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

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
