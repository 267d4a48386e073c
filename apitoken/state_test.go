package apitoken_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
)

// silentStore is a fault injector over the real store: while silent, every
// read the guard makes waits until its context ends, as over a network path
// that passes no bytes, and is counted.
type silentStore struct {
	apitoken.Store
	silent atomic.Bool
	reads  atomic.Int64
}

func (s *silentStore) hang(ctx context.Context) error {
	s.reads.Add(1)
	<-ctx.Done()
	return apitoken.Errorf(apitoken.ErrUnavailable, "silent: %v", ctx.Err())
}

func (s *silentStore) GetToken(ctx context.Context, id string) (apitoken.Token, error) {
	if s.silent.Load() {
		return apitoken.Token{}, s.hang(ctx)
	}
	return s.Store.GetToken(ctx, id)
}

func (s *silentStore) GetUser(ctx context.Context, id string) (apitoken.User, error) {
	if s.silent.Load() {
		return apitoken.User{}, s.hang(ctx)
	}
	return s.Store.GetUser(ctx, id)
}

func (s *silentStore) Changes(ctx context.Context, after int64, limit int) ([]apitoken.Change, error) {
	if s.silent.Load() {
		return nil, s.hang(ctx)
	}
	return s.Store.Changes(ctx, after, limit)
}

// silentEnv is an env whose authenticator reads the store through a
// silentStore, with a short lookup timeout.
func silentEnv(t *testing.T, cfg apitoken.AuthConfig) (*env, *silentStore, *apitoken.Authenticator) {
	e := newEnv(t, apitoken.AuthConfig{})
	silent := &silentStore{Store: e.store}
	state, err := apitoken.NewState(apitoken.StateConfig{Store: silent, Now: e.clock.Now, SyncTimeout: 50 * time.Millisecond, LookupTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Signer, cfg.State, cfg.Now = e.signer, state, e.clock.Now
	auth, err := apitoken.NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := state.Sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	return e, silent, auth
}

// Once a query of the store has failed, requests stop waiting on it: they
// are answered at once (stale state or refused) until a read of the change
// sequence succeeds again, which State.Follow keeps trying.
func TestState_AStoreThatStopsAnsweringIsNotWaitedOnByEveryRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale time.Duration
	}{{"fail closed", 0}, {"stale_if_error", time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			e, silent, auth := silentEnv(t, apitoken.AuthConfig{StaleIfError: tc.stale})
			_, _, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
			if _, f := auth.Authenticate(e.ctx, jwt); f != nil {
				t.Fatalf("refused before the fault: %+v", *f)
			}
			silent.silent.Store(true)
			e.clock.Advance(time.Second) // past MaxLag: the sequence must be read again
			for i := range 100 {
				_, f := auth.Authenticate(e.ctx, jwt)
				switch {
				case tc.stale == 0 && (f == nil || !f.Unavailable):
					t.Fatalf("request %d with the store silent: %+v, want unavailable", i, f)
				case tc.stale > 0 && f != nil:
					t.Fatalf("request %d with the store silent and stale_if_error: refused %+v", i, *f)
				}
			}
			if n := silent.reads.Load(); n != 1 {
				t.Errorf("100 requests with the store silent waited on it %d times, want 1 (the first finds it down)", n)
			}
			if !auth.State().Stats().Down {
				t.Error("the state does not say the store is down")
			}

			silent.silent.Store(false)
			if err := auth.State().Sync(e.ctx); err != nil { // Follow's next poll
				t.Fatal(err)
			}
			if _, f := auth.Authenticate(e.ctx, jwt); f != nil {
				t.Fatalf("refused once the store answers again: %+v", *f)
			}
		})
	}
}

// What changed while the store could not be read is caught up on from the
// change sequence before cached state is trusted again.
func TestState_ChangesMadeDuringAnOutageAreCaughtUpOn(t *testing.T) {
	e, silent, auth := silentEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	if _, f := auth.Authenticate(e.ctx, jwt); f != nil {
		t.Fatalf("refused: %+v", *f)
	}
	if err := auth.State().Sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	silent.silent.Store(true)
	e.clock.Advance(time.Second)
	if err := auth.State().Sync(e.ctx); err == nil {
		t.Fatal("Sync succeeded with the store silent")
	}
	// Another process revokes meanwhile (this one was not told: e.svc's
	// hook drops e.auth's cache, not this authenticator's).
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	silent.silent.Store(false)
	if err := auth.State().Sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, f := auth.Authenticate(e.ctx, jwt); f == nil || f.Reason != apitoken.ReasonRevoked {
		t.Fatalf("after the outage: %+v, want revoked", f)
	}
}

// Two processes on one SQLite file (an old and a new Caddy during an
// upgrade) are one deployment: what one changes, the other's Follow sees
// within a poll.
func TestState_FollowSeesWhatAnotherProcessOnTheFileChanged(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	other, err := sqlite.Open(e.ctx, e.path) // the other process's store
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	state, err := apitoken.NewState(apitoken.StateConfig{Store: other, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The JWT's times come from e's clock; this process's state runs on
	// the wall clock.
	auth, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: e.signer, State: state, CacheTTL: time.Hour, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		state.Follow(ctx, nil, func(err error) { t.Logf("follow: %v", err) })
	}()
	t.Cleanup(func() { cancel(); <-done })

	alice, tok, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	if _, f := auth.Authenticate(e.ctx, jwt); f != nil {
		t.Fatalf("refused: %+v", *f)
	}
	if _, err := e.svc.Revoke(e.ctx, alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, f := auth.Authenticate(e.ctx, jwt)
		if f != nil && f.Reason == apitoken.ReasonRevoked {
			break
		}
		if f != nil {
			t.Fatalf("refused with %+v, want accepted then revoked", *f)
		}
		if time.Since(start) > time.Second {
			t.Fatal("the revocation was not seen by the other process within 1s")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("the other process saw the revocation after %v", time.Since(start))
}
