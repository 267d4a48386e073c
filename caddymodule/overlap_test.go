package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// A generation with an overlap, through the real guard: the previous JWT
// opens the API until the overlap ends (logged OK previous_jwt, leaving
// the new generation inactive), narrowed like the live one, then it is
// refused as superseded; a revocation ends the overlap at once.
func TestGuard_PreviousJWTWorksDuringTheOverlapOnly(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	tok, first := e.token("rotating", apitoken.Expiry30d, apitoken.DefaultScopes)
	if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 200 {
		t.Fatalf("first JWT got %d", res.StatusCode)
	}
	second, regen, err := e.svc.GenerateOverlap(ctx, e.owner, tok.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.Secret(second)
	until := *regen.PrevUntil

	hits := e.up.Hits.Load()
	res, _ := e.do("GET", "/data/sales", bearer(first)...)
	if res.StatusCode != 200 || e.up.Hits.Load() != hits+1 || e.up.LastHeaders().Get("X-Api-Token-Id") != tok.ID {
		t.Fatalf("the previous JWT during the overlap got %d (upstream reached %d times, token %q)",
			res.StatusCode, e.up.Hits.Load()-hits, e.up.LastHeaders().Get("X-Api-Token-Id"))
	}
	if got, want := res.Header.Get("Api-Token-Expiration"), until.UTC().Format(http.TimeFormat); got != want {
		t.Errorf("Api-Token-Expiration of the previous JWT = %q, want the end of the overlap %q", got, want)
	}
	var prevOK int64
	for _, l := range e.authLogs(tok.ID) {
		if l.Reason == apitoken.ReasonPreviousJWT && l.Result == apitoken.ResultOK {
			prevOK += l.Count
		}
	}
	if prevOK != 1 {
		t.Errorf("the previous JWT's use is logged %d times OK %s, want once", prevOK, apitoken.ReasonPreviousJWT)
	}
	stored, err := e.svc.OwnedToken(ctx, e.owner, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := stored.StatusAt(e.clock.Now()); st != apitoken.StatusGeneratedInactive {
		t.Errorf("after a use of the previous JWT the new generation is %q, want %q", st, apitoken.StatusGeneratedInactive)
	}

	// Narrowing the record narrows the previous JWT too.
	meta := apitoken.DefaultScopes & apitoken.Scopes(1)
	if _, err := e.svc.UpdateToken(ctx, e.owner, tok.ID, apitoken.TokenPatch{Scopes: &meta}); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do("GET", "/data/sales", bearer(first)...); res.StatusCode != 403 {
		t.Errorf("the previous JWT after narrowing to meta got %d on /data, want 403", res.StatusCode)
	}

	// The overlap ends: 401, logged superseded, upstream not reached.
	e.clock.Set(until)
	hits = e.up.Hits.Load()
	if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 401 || e.up.Hits.Load() != hits {
		t.Fatalf("the previous JWT after the overlap got %d (upstream reached %d times)", res.StatusCode, e.up.Hits.Load()-hits)
	}
	var superseded int64
	for _, l := range e.authLogs(tok.ID) {
		if l.Reason == apitoken.ReasonSuperseded && l.Result == apitoken.ResultFail {
			superseded += l.Count
		}
	}
	if superseded != 1 {
		t.Errorf("the refusal after the overlap is logged %d times Fail superseded, want once", superseded)
	}
	if res, _ := e.do("GET", "/meta", bearer(second)...); res.StatusCode != 200 {
		t.Fatalf("the new JWT got %d", res.StatusCode)
	}
	e.authLogs(tok.ID) // flush
	if stored, err = e.svc.OwnedToken(ctx, e.owner, tok.ID); err != nil {
		t.Fatal(err)
	}
	if st := stored.StatusAt(e.clock.Now()); st != apitoken.StatusGeneratedActive {
		t.Errorf("after a use of the new JWT the token is %q, want %q", st, apitoken.StatusGeneratedActive)
	}

	// A revocation ends a running overlap at once, for both JWTs.
	third, _, err := e.svc.GenerateOverlap(ctx, e.owner, tok.ID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.Secret(third)
	if res, _ := e.do("GET", "/meta", bearer(second)...); res.StatusCode != 200 {
		t.Fatalf("the previous JWT of the second overlap got %d", res.StatusCode)
	}
	if _, err := e.svc.Revoke(ctx, e.owner, tok.ID); err != nil {
		t.Fatal(err)
	}
	hits = e.up.Hits.Load()
	for _, jwt := range []string{second, third} {
		if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 401 {
			t.Errorf("a JWT of a revoked token during its overlap got %d", res.StatusCode)
		}
	}
	if e.up.Hits.Load() != hits {
		t.Errorf("refused requests reached the upstream")
	}
}
