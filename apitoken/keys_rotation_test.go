package apitoken_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// A cached verified JWT must not outlive its key: after SetKeys retires the
// key, the next authentication verifies the JWT again and refuses it.
func TestAuthenticate_ACachedJWTOfARetiredKeyIsRefusedAtOnce(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	_, _, oldJWT := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(oldJWT) // verified and cached

	newKey := testKey(t, 2)
	if err := e.signer.SetKeys([]apitoken.Key{newKey, e.key}); err != nil {
		t.Fatal(err)
	}
	e.accepted(oldJWT) // the old key still verifies during rotation
	_, _, newJWT := e.live("bob", apitoken.DefaultScopes, apitoken.Expiry30d)
	if h, _ := segments(t, newJWT); h["kid"] != newKey.ID {
		t.Fatalf("new JWTs are signed by %v, want %s", h["kid"], newKey.ID)
	}
	cached := e.auth.Stats().JWTCacheLen

	if err := e.signer.SetKeys([]apitoken.Key{newKey}); err != nil {
		t.Fatal(err)
	}
	f := e.refused(oldJWT, apitoken.ReasonMalformed)
	if !errors.Is(f.Err, apitoken.ErrMalformedJWT) {
		t.Errorf("failure detail %v", f.Err)
	}
	if got := e.auth.Stats().JWTCacheLen; got != cached-1 {
		t.Errorf("the JWT cache holds %d entries after refusing the retired key's JWT, had %d: it is still cached", got, cached)
	}
	e.accepted(newJWT)
}

func TestSetKeys_RefusesBadKeysAndKeepsTheOnesInUse(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	jwt, _ := s.Issue(testToken(apitoken.Expiry30d), "jti", t0)
	for name, keys := range map[string][]apitoken.Key{
		"none":                 nil,
		"an EdDSA key":         {edKey(t, 1)},
		"a short key":          {{ID: "short", Secret: make([]byte, 10)}},
		"the same key twice":   {k, k},
		"HS512 then EdDSA key": {k, edKey(t, 2)},
	} {
		if err := s.SetKeys(keys); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("%s: SetKeys = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Verify(jwt); err != nil {
		t.Fatalf("after refused SetKeys calls: %v", err)
	}
}

// Verify, Issue and Trusts run while the keys change (go test -race).
func TestSetKeys_IsSafeWhileVerifying(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	s := newSigner(t, issuer, func() time.Time { return t0 }, a, b)
	jwt, _ := s.Issue(testToken(apitoken.Expiry30d), "jti", t0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := s.Verify(jwt) // key a is in every set used below
				if err != nil {
					t.Error(err)
					return
				}
				s.Trusts(v)
				if _, err := s.Issue(testToken(apitoken.Expiry1d), "jti2", t0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		keys := []apitoken.Key{a, b}
		if i%2 == 1 {
			keys = []apitoken.Key{b, a}
		}
		if err := s.SetKeys(keys); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
