package apitoken_test

import (
	"crypto/hmac"
	"crypto/sha512"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// benchJWT issues the JWT every benchmark works on, with a signer whose clock
// stands a minute after issue.
func benchJWT(b *testing.B) (*apitoken.Signer, apitoken.Key, string) {
	b.Helper()
	k := testKey(b, 1)
	s := newSigner(b, issuer, func() time.Time { return t0.Add(time.Minute) }, k)
	tok := testToken(apitoken.Expiry30d)
	tok.ID = apitoken.NewTokenID()
	raw, err := s.Issue(tok, apitoken.NewJTI(), t0)
	if err != nil {
		b.Fatal(err)
	}
	return s, k, raw
}

// BenchmarkVerifyFirstSeen is the cost of a JWT not yet in the
// Authenticator's cache: a full Signer.Verify.
func BenchmarkVerifyFirstSeen(b *testing.B) {
	s, _, raw := benchJWT(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGolangJWTParse is the baseline: plain golang-jwt with map claims.
func BenchmarkGolangJWTParse(b *testing.B) {
	_, k, raw := benchJWT(b)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS512"}), jwt.WithTimeFunc(func() time.Time { return t0.Add(time.Minute) }))
	keyFunc := func(*jwt.Token) (any, error) { return k.Secret, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseWithClaims(raw, jwt.MapClaims{}, keyFunc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMACSHA512 is the floor: one HMAC-SHA512 over an input the size
// of a JWT's signing input, and the constant-time compare.
func BenchmarkHMACSHA512(b *testing.B) {
	_, k, raw := benchJWT(b)
	signing := []byte(raw[:strings.LastIndexByte(raw, '.')])
	want := hmac.New(sha512.New, k.Secret)
	want.Write(signing)
	sum := want.Sum(nil)
	b.SetBytes(int64(len(signing)))
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha512.New, k.Secret)
		m.Write(signing)
		if !hmac.Equal(m.Sum(nil), sum) {
			b.Fatal("HMAC mismatch")
		}
	}
}

// BenchmarkAuthenticateCached is the steady state of the guard: a JWT seen
// before, its token and owner cached. Target: under 10 µs and 40 allocs.
func BenchmarkAuthenticateCached(b *testing.B) {
	e := newEnv(b, apitoken.AuthConfig{CacheTTL: time.Hour})
	_, _, raw := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(raw)
	lookups := e.auth.Lookups()
	b.ReportAllocs()
	for b.Loop() {
		if _, f := e.auth.Authenticate(e.ctx, raw); f != nil {
			b.Fatalf("refused: %s", f.Reason)
		}
	}
	b.StopTimer()
	if n := e.auth.Lookups() - lookups; n != 0 {
		b.Fatalf("the steady state made %d store lookups", n)
	}
}

// BenchmarkAuditorRecord is the audit record of each guarded request: one
// token from one client, coalesced into one queued row (the steady state),
// serially and on every P at once (the queue's lock).
func BenchmarkAuditorRecord(b *testing.B) {
	e := newEnv(b, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: e.store, Window: time.Minute, FlushInterval: time.Hour})
	b.Cleanup(func() { a.Close(e.ctx) })
	ev := event(tok.ID, time.Now())
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a.Record(ev)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a.Record(ev)
			}
		})
	})
}
