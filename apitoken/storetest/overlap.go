package storetest

import (
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// The previous JWT of a regeneration's overlap: its hash and end are
// written by UpdateToken, read back by every read, and cleared again; its
// uses are logged but are not uses of the live JWT.

func testPreviousJWTRoundTrip(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "overlapping", t0))
	if got := mustGetToken(t, s, tok.ID); got.PrevJTIHash != nil || got.PrevUntil != nil {
		t.Fatalf("a new token has a previous JWT %x until %v", got.PrevJTIHash, got.PrevUntil)
	}
	first := generate(t, s, tok.ID, t0)
	zone := time.FixedZone("UTC-3", -3*3600)
	gen, until := t0.Add(time.Hour), t0.Add(2*time.Hour+123456789*time.Nanosecond).In(zone)
	updated, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.PrevJTIHash, tk.PrevUntil = tk.JTIHash, &until
		tk.GeneratedAt, tk.JTIHash = &gen, hash("second")
		return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: gen, ActivityBy: "alice"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.PrevJTIHash, want.PrevUntil = first.JTIHash, &until
	want.GeneratedAt, want.JTIHash = &gen, hash("second")
	want = stored(want)
	sameToken(t, "UpdateToken's result", updated, want)
	sameToken(t, "GetToken", mustGetToken(t, s, tok.ID), want)
	if listed := allTokens(t, s, apitoken.TokenFilter{Owner: "alice"}); len(listed) != 1 {
		t.Errorf("ListTokens = %d tokens, want 1", len(listed))
	} else {
		sameToken(t, "ListTokens", listed[0], want)
	}

	// Another update (a rename) keeps it; clearing it (a revocation)
	// clears both columns.
	if _, err := rename(s, t.Context(), tok.ID, "renamed", gen.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want.Name = "renamed"
	sameToken(t, "GetToken after a rename", mustGetToken(t, s, tok.ID), want)
	revoked := gen.Add(2 * time.Minute)
	if _, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.RevokedAt, tk.RevokedBy = &revoked, "alice"
		tk.PrevJTIHash, tk.PrevUntil = nil, nil
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	want.RevokedAt, want.RevokedBy = utcPtr(&revoked), "alice"
	want.PrevJTIHash, want.PrevUntil = nil, nil
	sameToken(t, "GetToken after clearing the previous JWT", mustGetToken(t, s, tok.ID), want)
}

func testRecordAuthPreviousJWT(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "overlapping", t0))
	prev := okAt(tok.ID, t0.Add(10*time.Minute), "192.0.2.1")
	prev.Reason = apitoken.ReasonPreviousJWT
	recordAuth(t, s, prev, okAt(tok.ID, t0.Add(5*time.Minute), "192.0.2.2"))
	got := mustGetToken(t, s, tok.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0.Add(5*time.Minute)) || got.LastUsedIP != "192.0.2.2" {
		t.Errorf("last used = %v from %q, want the live JWT's use at %v from 192.0.2.2, not the previous JWT's",
			got.LastUsedAt, got.LastUsedIP, t0.Add(5*time.Minute))
	}
	recordAuth(t, s, prev)
	rows := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	var prevRows int
	for _, r := range rows {
		if r.Reason == apitoken.ReasonPreviousJWT {
			prevRows++
			if r.Result != apitoken.ResultOK || r.Count != 2 || r.ClientIP != "192.0.2.1" {
				t.Errorf("the previous JWT's row = %+v, want OK, count 2, from 192.0.2.1", r)
			}
		}
	}
	if prevRows != 1 || len(rows) != 2 {
		t.Errorf("AUTHENTICATE rows = %+v, want one of the live JWT and one of the previous JWT", rows)
	}
	if got := mustGetToken(t, s, tok.ID); !got.LastUsedAt.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("a second batch of the previous JWT's uses moved last used to %v", got.LastUsedAt)
	}
}
