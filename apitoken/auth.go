package apitoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	Signer *Signer
	Store  Store
	// CacheTTL bounds how long a token's or user's state is served from the
	// cache without asking the store. Changes made through this instance
	// drop the entry at once; the TTL is the safety net (default 30s).
	CacheTTL time.Duration
	// StaleIfError lets a cached state be served this long past its TTL
	// while the store fails. 0 fails closed.
	StaleIfError time.Duration
	// LookupTimeout bounds one store lookup (default 2s).
	LookupTimeout time.Duration
	// CacheSize bounds each cache, in entries (default 100,000).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Authenticator checks a JWT and the live state of its token and owner. It
// caches verified JWTs by their exact string (a JWT's signature and claims
// never change) and the state of tokens and users for CacheTTL, so that the
// steady state costs map lookups and no store query.
type Authenticator struct {
	cfg    AuthConfig
	jwts   *lru.Cache[string, *Verified]
	tokens *lru.Cache[string, cached[*Token]]
	users  *lru.Cache[string, cached[*User]]
	flight singleflight.Group
	// epoch moves on every invalidation; a lookup that began in an older
	// epoch does not fill the cache, so a stale read never outlives a change.
	epoch   atomic.Uint64
	lookups atomic.Uint64
	stats   struct{ jwtHits, jwtMisses, stateHits atomic.Uint64 }
}

// AuthStats are the Authenticator's counters since it was built.
type AuthStats struct {
	JWTCacheHits, JWTCacheMisses     uint64 // misses are full verifications
	StateCacheHits, StateCacheMisses uint64 // token and user state; misses ask the store
	JWTCacheLen                      int
}

// Stats reads the counters.
func (a *Authenticator) Stats() AuthStats {
	return AuthStats{JWTCacheHits: a.stats.jwtHits.Load(), JWTCacheMisses: a.stats.jwtMisses.Load(),
		StateCacheHits: a.stats.stateHits.Load(), StateCacheMisses: a.lookups.Load(), JWTCacheLen: a.jwts.Len()}
}

type cached[T any] struct {
	v  T // nil: known not to exist
	at time.Time
}

// NewAuthenticator builds an Authenticator, applying defaults to cfg.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Signer == nil || cfg.Store == nil {
		return nil, errors.New("authenticator needs a signer and a store")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 2 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{cfg: cfg}
	var err error
	if a.jwts, err = lru.New[string, *Verified](cfg.CacheSize); err != nil {
		return nil, err
	}
	if a.tokens, err = lru.New[string, cached[*Token]](cfg.CacheSize); err != nil {
		return nil, err
	}
	if a.users, err = lru.New[string, cached[*User]](cfg.CacheSize); err != nil {
		return nil, err
	}
	return a, nil
}

// Principal is an authenticated token.
type Principal struct {
	Token *Token // shared, read-only snapshot
	// Scopes are the effective scopes: the JWT's claims cut by the record.
	Scopes Scopes
	// ExpiresAt is the effective expiry; zero when there is none.
	ExpiresAt time.Time
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

// Lookups counts the store queries the Authenticator has made.
func (a *Authenticator) Lookups() uint64 { return a.lookups.Load() }

// InvalidateToken drops the cached state of a token.
func (a *Authenticator) InvalidateToken(id string) {
	a.epoch.Add(1)
	a.tokens.Remove(id)
}

// InvalidateUser drops the cached state of a user.
func (a *Authenticator) InvalidateUser(id string) {
	a.epoch.Add(1)
	a.users.Remove(id)
}

// InvalidateAll drops every cached state (after the change feed of a shared
// store was lost, for example). Verified JWTs stay: they cannot change.
func (a *Authenticator) InvalidateAll() {
	a.epoch.Add(1)
	a.tokens.Purge()
	a.users.Purge()
}

// Authenticate checks raw and the state of its token and owner. On success
// the Failure is nil.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, *Failure) {
	now := a.cfg.Now()
	v, ok := a.jwts.Get(raw)
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
	t, err := a.token(ctx, v.TokenID, now)
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
	case !bytes.Equal(t.JTIHash, v.JTIHash[:]):
		return fail(ReasonSuperseded)
	}
	end := v.Exp
	if e := t.ExpiresAt(); e != nil && (end.IsZero() || e.Before(end)) {
		end = *e
	}
	if !end.IsZero() && !now.Before(end) {
		return fail(ReasonExpired)
	}
	u, err := a.user(ctx, t.Owner, now)
	if err != nil {
		return Principal{}, &Failure{Reason: ReasonUnavailable, TokenID: v.TokenID, Unavailable: true, Err: err}
	}
	if u == nil {
		return fail(ReasonRoleMissing)
	}
	if reason := u.TokenRoleReason(); reason != "" {
		return fail(reason)
	}
	return Principal{Token: t, Scopes: v.Scopes & t.Scopes, ExpiresAt: end}, nil
}

func (a *Authenticator) token(ctx context.Context, id string, now time.Time) (*Token, error) {
	return lookup(a, a.tokens, ctx, "t", id, now, func(ctx context.Context) (*Token, error) {
		t, err := a.cfg.Store.GetToken(ctx, id)
		return &t, err
	})
}

func (a *Authenticator) user(ctx context.Context, id string, now time.Time) (*User, error) {
	return lookup(a, a.users, ctx, "u", id, now, func(ctx context.Context) (*User, error) {
		u, err := a.cfg.Store.GetUser(ctx, id)
		return &u, err
	})
}

// lookup serves id from c while fresh, else asks the store once for all
// concurrent callers of the same epoch. A missing object is cached as nil.
// When the store fails, an entry within StaleIfError past its TTL is served.
func lookup[T any](a *Authenticator, c *lru.Cache[string, cached[*T]], ctx context.Context, kind, id string, now time.Time, get func(context.Context) (*T, error)) (*T, error) {
	e, hit := c.Get(id)
	if hit && now.Sub(e.at) < a.cfg.CacheTTL {
		a.stats.stateHits.Add(1)
		return e.v, nil
	}
	epoch := a.epoch.Load()
	key := kind + strconv.FormatUint(epoch, 36) + ":" + id
	res, err, _ := a.flight.Do(key, func() (any, error) {
		a.lookups.Add(1)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.LookupTimeout)
		defer cancel()
		v, err := get(lctx)
		if errors.Is(err, ErrNotFound) {
			v, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if a.epoch.Load() == epoch {
			c.Add(id, cached[*T]{v: v, at: now})
		}
		return v, nil
	})
	if err != nil {
		if hit && a.cfg.StaleIfError > 0 && now.Sub(e.at) < a.cfg.CacheTTL+a.cfg.StaleIfError {
			return e.v, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return res.(*T), nil
}
