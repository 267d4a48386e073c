package apitoken_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// overlap regenerates tok with an overlap, failing the test on error.
func (e *env) overlap(c apitoken.Caller, id string, d time.Duration) (string, apitoken.Token) {
	e.tb.Helper()
	jwt, t, err := e.svc.GenerateOverlap(e.ctx, c, id, d)
	if err != nil {
		e.tb.Fatalf("GenerateOverlap(%s, %v): %v", id, d, err)
	}
	return jwt, t
}

func TestGenerateOverlap_PreviousJWTWorksUntilTheOverlapEnds(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(old) // cached for an hour: the change must drop it
	e.clock.Advance(time.Minute)
	fresh, regen := e.overlap(alice, tok.ID, time.Hour)
	until := t0.Add(time.Minute + time.Hour)
	if got := regen.PreviousValidUntil(e.clock.Now()); got == nil || !got.Equal(until) {
		t.Fatalf("previous valid until = %v, want %v", got, until)
	}
	p := e.accepted(old)
	if !p.Previous || !p.ExpiresAt.Equal(until) || p.Scopes != apitoken.DefaultScopes {
		t.Errorf("the previous JWT's principal = previous %v, expires %v, scopes %v; want previous, %v, %v",
			p.Previous, p.ExpiresAt, p.Scopes, until, apitoken.DefaultScopes)
	}
	if p := e.accepted(fresh); p.Previous {
		t.Errorf("the new JWT is taken for the previous one")
	}
	logs, _, err := e.svc.TokenLogs(e.ctx, alice, tok.ID, apitoken.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "previous JWT valid until " + until.Format(time.RFC3339); logs[0].Activity != apitoken.ActivityGenerate || !strings.Contains(logs[0].Reason, want) {
		t.Errorf("GENERATE log = %+v, want a reason saying %q", logs[0], want)
	}
	e.clock.Advance(time.Hour - time.Second)
	e.accepted(old)
	e.clock.Advance(time.Second)
	e.refused(old, apitoken.ReasonSuperseded)
	e.accepted(fresh)
	now, err := e.svc.OwnedToken(e.ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := now.PreviousValidUntil(e.clock.Now()); got != nil {
		t.Errorf("previous valid until = %v after the overlap, want none", got)
	}
}

func TestGenerateOverlap_OnlyTheLatestPreviousJWTOverlaps(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, first := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	second, _ := e.overlap(alice, tok.ID, time.Hour)
	e.accepted(first)
	third, _ := e.overlap(alice, tok.ID, time.Hour)
	e.refused(first, apitoken.ReasonSuperseded)
	e.accepted(second)
	e.accepted(third)
	// Generating without an overlap ends the previous JWT at once.
	fourth, regen := e.generate(alice, tok.ID)
	if regen.PrevUntil != nil || regen.PrevJTIHash != nil {
		t.Errorf("a generation without overlap kept a previous JWT until %v", regen.PrevUntil)
	}
	e.refused(second, apitoken.ReasonSuperseded)
	e.refused(third, apitoken.ReasonSuperseded)
	e.accepted(fourth)
}

func TestGenerateOverlap_RevokeEndsTheOverlap(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	fresh, _ := e.overlap(alice, tok.ID, 24*time.Hour)
	e.accepted(old)
	revoked, err := e.svc.Revoke(e.ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.PrevUntil != nil || revoked.PreviousValidUntil(e.clock.Now()) != nil {
		t.Errorf("a revoked token keeps a previous JWT until %v", revoked.PrevUntil)
	}
	e.refused(old, apitoken.ReasonRevoked)
	e.refused(fresh, apitoken.ReasonRevoked)
}

// The previous JWT is narrowed like the live one: by the record's scopes,
// by the record's expiry counted from its own iat, and by its own exp.
func TestGenerateOverlap_NarrowingAppliesToThePreviousJWT(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.clock.Advance(2 * day)
	fresh, _ := e.overlap(alice, tok.ID, time.Hour)
	meta := mustScopes(t, "meta")
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Scopes: &meta}); err != nil {
		t.Fatal(err)
	}
	if p := e.accepted(old); p.Scopes != meta {
		t.Errorf("the previous JWT's scopes = %v after narrowing, want %v", p.Scopes, meta)
	}
	// A 1d expiry counts from the previous JWT's iat, two days ago; the new
	// JWT was issued just now.
	oneDay := apitoken.Expiry1d
	if _, err := e.svc.UpdateToken(e.ctx, alice, tok.ID, apitoken.TokenPatch{Expires: &oneDay}); err != nil {
		t.Fatal(err)
	}
	e.refused(old, apitoken.ReasonExpired)
	e.accepted(fresh)
}

func TestGenerateOverlap_EndsNoLaterThanThePreviousJWT(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry1d)
	e.clock.Advance(day - 30*time.Minute)
	_, regen := e.overlap(alice, tok.ID, 24*time.Hour)
	if want := t0.Add(day); regen.PrevUntil == nil || !regen.PrevUntil.Equal(want) {
		t.Errorf("previous valid until = %v, want the previous JWT's own end %v", regen.PrevUntil, want)
	}
	if p := e.accepted(old); !p.ExpiresAt.Equal(t0.Add(day)) {
		t.Errorf("the previous JWT's principal expires at %v, want %v", p.ExpiresAt, t0.Add(day))
	}
	e.clock.Advance(30 * time.Minute)
	e.refused(old, apitoken.ReasonSuperseded) // the overlap ended with it
	e.clock.Advance(apitoken.Leeway)
	e.refused(old, apitoken.ReasonExpired) // its exp, past the leeway
	// An expired JWT has nothing to overlap.
	e.clock.Advance(day)
	_, regen = e.overlap(alice, tok.ID, time.Hour)
	if regen.PrevUntil != nil {
		t.Errorf("overlapping an expired JWT kept it until %v", regen.PrevUntil)
	}
}

func TestGenerateOverlap_FirstGenerationHasNothingToOverlap(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice := e.holder("alice")
	tok := e.create(alice, "new", apitoken.DefaultScopes, apitoken.Expiry30d)
	jwt, regen := e.overlap(alice, tok.ID, time.Hour)
	if regen.PrevUntil != nil || regen.PrevJTIHash != nil {
		t.Errorf("a first generation has a previous JWT until %v", regen.PrevUntil)
	}
	e.accepted(jwt)
	logs, _, err := e.svc.TokenLogs(e.ctx, alice, tok.ID, apitoken.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs[0].Reason, "no live previous JWT to overlap") {
		t.Errorf("GENERATE reason = %q, want it to say there was nothing to overlap", logs[0].Reason)
	}
}

func TestGenerateOverlap_RefusesAnOverlapOutOfRange(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, old := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	for _, d := range []time.Duration{-time.Second, apitoken.MaxOverlap + time.Second} {
		if _, _, err := e.svc.GenerateOverlap(e.ctx, alice, tok.ID, d); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("GenerateOverlap(%v) = %v, want ErrInvalid", d, err)
		}
	}
	e.accepted(old) // nothing was generated
}

func TestParseOverlap(t *testing.T) {
	for s, want := range map[string]time.Duration{"1h": time.Hour, "30m": 30 * time.Minute, "24h": 24 * time.Hour, "90s": 90 * time.Second} {
		if got, err := apitoken.ParseOverlap(s); err != nil || got != want {
			t.Errorf("ParseOverlap(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "0s", "-1h", "24h0m1s", "25h", "1d", "soon", "1 h"} {
		_, err := apitoken.ParseOverlap(s)
		if !errors.Is(err, apitoken.ErrInvalid) || !strings.Contains(apitoken.Message(err), "at most 24h") {
			t.Errorf("ParseOverlap(%q) = %v, want ErrInvalid saying what to give", s, err)
		}
	}
}
