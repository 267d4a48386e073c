package apitoken_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func TestAuthenticate_RevokeIsSeenAtOnceThroughTheChangeHook(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt) // token and owner now cached for an hour
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.refused(jwt, apitoken.ReasonRevoked)
}

// Without the change hook (another process revoked the token), the cached
// state serves until the change sequence is read again: at the latest
// MaxLag (1s) later, whatever the TTL.
func TestAuthenticate_ChangeMadeElsewhereIsSeenWithinMaxLag(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.Changed = nil }) // as if the revoke happened in another process
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.accepted(jwt) // the sequence was read less than MaxLag ago
	e.clock.Advance(time.Second)
	e.refused(jwt, apitoken.ReasonRevoked)
}

// However fresh the change sequence, cached state is read again after its
// TTL: the safety net.
func TestAuthenticate_CachedStateIsReloadedAfterItsTTL(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: 30 * time.Second})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.sync() // past the changes that made the token
	e.accepted(jwt)
	lookups := e.auth.Lookups()
	e.clock.Advance(29 * time.Second)
	e.accepted(jwt)
	if n := e.auth.Lookups() - lookups; n != 0 {
		t.Fatalf("within the TTL: %d lookups, want 0", n)
	}
	e.clock.Advance(time.Second)
	e.accepted(jwt)
	if n := e.auth.Lookups() - lookups; n != 2 {
		t.Errorf("after the TTL: %d lookups, want 2 (the token and its owner)", n)
	}
}

func TestAuthenticate_InvalidateAllDropsEveryCachedState(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.Changed = nil })
	e.putUser("alice", apitoken.UserPatch{Disabled: ptr(true)})
	e.accepted(jwt) // the cache does not know yet
	e.auth.InvalidateAll()
	e.refused(jwt, apitoken.ReasonDisabled)
}

func TestAuthenticate_SteadyStateAsksTheStoreNothing(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	before := e.auth.Lookups()
	if before == 0 {
		t.Fatal("the first authentication made no store lookup")
	}
	for i := 0; i < 1000; i++ {
		if _, f := e.auth.Authenticate(e.ctx, jwt); f != nil {
			t.Fatalf("call %d refused: %q", i, f.Reason)
		}
	}
	if after := e.auth.Lookups(); after != before {
		t.Errorf("1000 repeat authentications made %d store lookups, want 0", after-before)
	}
}

func TestAuthenticate_ConcurrentFirstUsesShareOneLookupEach(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, f := e.auth.Authenticate(e.ctx, jwt); f != nil {
				errs <- f.Reason
			}
		}()
	}
	wg.Wait()
	close(errs)
	for r := range errs {
		t.Errorf("concurrent authentication refused: %q", r)
	}
	// One token and one user; concurrent misses may overlap a little but
	// must not ask once per request.
	if n := e.auth.Lookups(); n < 2 || n > 16 {
		t.Errorf("64 concurrent first uses made %d store lookups", n)
	}
}

func TestAuthenticate_StoreDownAndStateNotCachedIsUnavailable(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{StaleIfError: time.Hour})
	_, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, f := e.auth.Authenticate(e.ctx, jwt)
	if f == nil {
		t.Fatal("authenticated with the store closed and nothing cached")
	}
	if !f.Unavailable || f.Reason != apitoken.ReasonUnavailable || f.TokenID != tok.ID {
		t.Errorf("failure = %+v, want Unavailable naming token %s", *f, tok.ID)
	}
	if !errors.Is(f.Err, apitoken.ErrUnavailable) {
		t.Errorf("failure error = %v, want one wrapping ErrUnavailable", f.Err)
	}
}

func TestAuthenticate_StaleStateServesOnlyWithinTheStaleWindow(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: 30 * time.Second, StaleIfError: time.Minute})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second) // TTL passed: the store is asked and fails
	e.accepted(jwt)
	e.clock.Advance(time.Minute - time.Second) // 1s before the stale window ends
	e.accepted(jwt)
	e.clock.Advance(time.Second)
	if f := e.refused(jwt, apitoken.ReasonUnavailable); !f.Unavailable {
		t.Errorf("failure past the stale window = %+v, want Unavailable", *f)
	}
}

// Without StaleIfError, cached state is trusted for MaxLag after the last
// read of the change sequence; once the store cannot be read, no longer.
func TestAuthenticate_WithoutStaleIfErrorCachedStateFailsClosedAfterMaxLag(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: 30 * time.Second})
	_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	e.accepted(jwt)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(999 * time.Millisecond)
	e.accepted(jwt) // the sequence was read within MaxLag: no store needed
	e.clock.Advance(time.Millisecond)
	e.refused(jwt, apitoken.ReasonUnavailable)
}

func TestAuthenticate_GarbageIsMalformedAndNamesNoToken(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	for _, raw := range []string{"", "not a jwt", "a.b.c", "Bearer x"} {
		f := e.refused(raw, apitoken.ReasonMalformed)
		if f.TokenID != "" || f.Unavailable || f.Err == nil {
			t.Errorf("%q: failure = %+v", raw, *f)
		}
	}
	if n := e.auth.Lookups(); n != 0 {
		t.Errorf("malformed JWTs made %d store lookups", n)
	}
}

// slowStore is a fault injector over the real store: once armed, the next
// GetToken reads the store, then holds its answer until released.
type slowStore struct {
	apitoken.Store
	armed   chan struct{} // receives once per held call
	read    chan struct{} // closed when the held call has read the store
	release chan struct{}
}

func (s *slowStore) GetToken(ctx context.Context, id string) (apitoken.Token, error) {
	t, err := s.Store.GetToken(ctx, id)
	select {
	case <-s.armed:
		close(s.read)
		<-s.release
	default:
	}
	return t, err
}

// A lookup that read the store before a change and answers after it must not
// put its stale answer in the cache.
func TestAuthenticate_LookupOverlappingAChangeDoesNotCacheStaleState(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	slow := &slowStore{Store: e.store, armed: make(chan struct{}, 1), read: make(chan struct{}), release: make(chan struct{})}
	a, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: e.signer, Store: slow, Now: e.clock.Now, CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.reconfigure(func(c *apitoken.ServiceConfig) {
		c.Changed = func(tokenID, userID string) {
			if tokenID != "" {
				a.InvalidateToken(tokenID)
			}
			if userID != "" {
				a.InvalidateUser(userID)
			}
		}
	})
	slow.armed <- struct{}{}
	done := make(chan *apitoken.Failure)
	go func() {
		_, f := a.Authenticate(e.ctx, jwt)
		done <- f
	}()
	<-slow.read // the lookup holds the token as it was before the revoke
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	close(slow.release)
	<-done // raced with the revoke: either answer is acceptable
	if _, f := a.Authenticate(e.ctx, jwt); f == nil || f.Reason != apitoken.ReasonRevoked {
		t.Fatalf("after the revoke: failure %+v, want reason %q", f, apitoken.ReasonRevoked)
	}
}
