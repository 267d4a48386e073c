package apitoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	Signer *Signer
	// State is the cached token and user state, shared by the
	// Authenticators of successive configs. Without it, one is made on
	// Store with default settings and this clock.
	State *State
	Store Store
	// CacheTTL bounds how long a token's or user's state is served from the
	// cache without asking the store, however fresh the State's change
	// sequence (default 30s): a safety net.
	CacheTTL time.Duration
	// StaleIfError lets a cached state be served this long past its TTL
	// while the store fails. 0 fails closed.
	StaleIfError time.Duration
	// CacheSize bounds the cache of verified JWTs, in entries (default
	// 100,000).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Authenticator checks a JWT and the live state of its token and owner. It
// caches verified JWTs by their exact string (a JWT's signature and claims
// never change); the state of tokens and users comes from a State, so that
// the steady state costs map lookups and no store query.
type Authenticator struct {
	cfg   AuthConfig
	state *State
	fresh freshness
	// jwts is read with Peek: a read lock, which readers share, and no
	// move in the LRU list, so a full cache drops the JWT verified first
	// (it is verified again at its next use).
	jwts  *lru.Cache[string, *Verified]
	stats struct{ jwtHits, jwtMisses atomic.Uint64 }
}

// AuthStats are the Authenticator's counters since it was built, and those
// of its State.
type AuthStats struct {
	JWTCacheHits, JWTCacheMisses     uint64 // misses are full verifications
	StateCacheHits, StateCacheMisses uint64 // token and user state; misses ask the store
	JWTCacheLen                      int
}

// JWTStats reads the counters of the verified-JWT cache alone: the State's
// are shared with other Authenticators.
func (a *Authenticator) JWTStats() AuthStats {
	return AuthStats{JWTCacheHits: a.stats.jwtHits.Load(), JWTCacheMisses: a.stats.jwtMisses.Load(), JWTCacheLen: a.jwts.Len()}
}

// Stats reads the counters: JWTStats and those of the State.
func (a *Authenticator) Stats() AuthStats {
	s := a.JWTStats()
	st := a.state.Stats()
	s.StateCacheHits, s.StateCacheMisses = st.Hits, st.Lookups
	return s
}

// NewAuthenticator builds an Authenticator, applying defaults to cfg.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Signer == nil || (cfg.State == nil && cfg.Store == nil) {
		return nil, errors.New("authenticator needs a signer and a state or store")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{cfg: cfg, state: cfg.State, fresh: freshness{ttl: cfg.CacheTTL, stale: cfg.StaleIfError}}
	var err error
	if a.state == nil {
		if a.state, err = NewState(StateConfig{Store: cfg.Store, Now: cfg.Now}); err != nil {
			return nil, err
		}
	}
	if a.jwts, err = lru.New[string, *Verified](cfg.CacheSize); err != nil {
		return nil, err
	}
	return a, nil
}

// Principal is an authenticated token.
type Principal struct {
	Token *Token // shared, read-only snapshot
	// Scopes are the effective scopes: the JWT's claims cut by the record.
	Scopes Scopes
	// ExpiresAt is the effective expiry; zero when there is none. For the
	// previous JWT, the end of its overlap when that comes first.
	ExpiresAt time.Time
	// Previous is set when the JWT is the token's previous one, used
	// during a regeneration's overlap: its use is recorded OK with
	// ReasonPreviousJWT.
	Previous bool
}

// Failure says why an authentication failed. TokenID is set when the JWT's
// signature was verified (the attempt names a token and is recorded in its
// log). Unavailable means the store could not be asked: not the token's fault.
type Failure struct {
	Reason      string
	TokenID     string
	Unavailable bool
	Err         error // detail for the server's log; never shown to clients
}

// Reasons that name no token (they go to the server's log only).
const (
	ReasonMalformed   = "malformed"
	ReasonUnavailable = "store_unavailable"
)

// Lookups counts the token and user state the State has read from the store.
func (a *Authenticator) Lookups() uint64 { return a.state.stats.lookups.Load() }

// State is the token and user state the Authenticator checks.
func (a *Authenticator) State() *State { return a.state }

// InvalidateToken drops the cached state of a token.
func (a *Authenticator) InvalidateToken(id string) { a.state.InvalidateToken(id) }

// InvalidateUser drops the cached state of a user.
func (a *Authenticator) InvalidateUser(id string) { a.state.InvalidateUser(id) }

// InvalidateAll drops every cached state. Verified JWTs stay: they cannot
// change.
func (a *Authenticator) InvalidateAll() { a.state.InvalidateAll() }

// Authenticate checks raw and the state of its token and owner. On success
// the Failure is nil.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, *Failure) {
	now := a.cfg.Now()
	v, ok := a.jwts.Peek(raw)
	if ok && !a.cfg.Signer.Trusts(v) {
		// Verified before the signer's keys changed: its key may be
		// retired. Verify it again (one signature check).
		a.jwts.Remove(raw)
		ok = false
	}
	if ok {
		a.stats.jwtHits.Add(1)
	} else {
		a.stats.jwtMisses.Add(1)
		var err error
		v, err = a.cfg.Signer.Verify(raw)
		if errors.Is(err, ErrJWTExpired) {
			// The signature is good but the JWT is past its exp: name the
			// token when the claims say which.
			return Principal{}, &Failure{Reason: ReasonExpired, TokenID: v.TokenID, Err: err}
		}
		if err != nil {
			return Principal{}, &Failure{Reason: ReasonMalformed, Err: err}
		}
		a.jwts.Add(raw, v)
	}
	fail := func(reason string) (Principal, *Failure) {
		return Principal{}, &Failure{Reason: reason, TokenID: v.TokenID}
	}
	if !v.Exp.IsZero() && !now.Before(v.Exp.Add(Leeway)) {
		return fail(ReasonExpired)
	}
	// One reading of the State's clock serves both lookups: the user's is
	// at most the token's lookup behind, and a clock read costs about as
	// much as a cache hit.
	stateNow := a.state.cfg.Now()
	t, err := a.state.token(ctx, v.TokenID, a.fresh, stateNow)
	if err != nil {
		return Principal{}, &Failure{Reason: ReasonUnavailable, TokenID: v.TokenID, Unavailable: true, Err: err}
	}
	switch {
	case t == nil:
		return Principal{}, &Failure{Reason: ReasonUnknownToken, Err: fmt.Errorf("token %s is not in the store", v.TokenID)}
	case t.Owner != v.Subject:
		return fail(ReasonOwnerMismatch)
	case t.RevokedAt != nil:
		return fail(ReasonRevoked)
	case t.GeneratedAt == nil:
		return fail(ReasonNotGenerated)
	}
	end, until := v.Exp, t.ExpiresAt()
	previous := !bytes.Equal(t.JTIHash, v.JTIHash[:])
	if previous {
		// Only the previous JWT may differ, and only during its overlap.
		if !bytes.Equal(t.PrevJTIHash, v.JTIHash[:]) || t.PreviousValidUntil(now) == nil {
			return fail(ReasonSuperseded)
		}
		// The record's expiry (narrowed since, maybe) counts from the
		// previous JWT's own iat.
		until = nil
		if !v.IssuedAt.IsZero() {
			until = t.Expires.ExpiresAt(v.IssuedAt)
		}
	}
	if until != nil && (end.IsZero() || until.Before(end)) {
		end = *until
	}
	if !end.IsZero() && !now.Before(end) {
		return fail(ReasonExpired)
	}
	u, err := a.state.user(ctx, t.Owner, a.fresh, stateNow)
	if err != nil {
		return Principal{}, &Failure{Reason: ReasonUnavailable, TokenID: v.TokenID, Unavailable: true, Err: err}
	}
	if u == nil {
		return fail(ReasonRoleMissing)
	}
	if reason := u.TokenRoleReason(); reason != "" {
		return fail(reason)
	}
	p := Principal{Token: t, Scopes: v.Scopes & t.Scopes, ExpiresAt: end, Previous: previous}
	if previous && (end.IsZero() || t.PrevUntil.Before(end)) {
		p.ExpiresAt = *t.PrevUntil // it stops working then
	}
	return p, nil
}
