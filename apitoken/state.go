package apitoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// StateConfig configures a State.
type StateConfig struct {
	Store Store
	// MaxLag bounds how long cached state is trusted after the last read of
	// the store's change sequence (default 1s). Past it, a request reads the
	// sequence itself before it trusts the cache.
	MaxLag time.Duration
	// PollInterval is how often Follow reads the change sequence (default
	// 200ms), and so how late a change made by another process is seen at
	// worst when no Waker says so sooner.
	PollInterval time.Duration
	// SyncTimeout bounds one read of the change sequence (default 500ms).
	// With PollInterval it must stay under MaxLag, so that a store that
	// goes silent is found down before cached state stops being trusted,
	// and requests never wait on it.
	SyncTimeout time.Duration
	// LookupTimeout bounds one read of a token's or user's state (default
	// 2s).
	LookupTimeout time.Duration
	// CacheSize bounds each cache, in entries (default 100,000).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// State is the cached state of tokens and users that the guard checks on
// every request, kept coherent with the store: every change committed by
// any process on the store (another Caddy instance, an old and a new
// process on one SQLite file) is in the store's change sequence, which
// Follow reads every PollInterval. Cached state is trusted only while that
// sequence has been read within MaxLag; otherwise a request reads it first.
//
// When a store query fails, the store is taken to be down: requests stop
// waiting on it (they are answered at once from what StaleIfError allows,
// or refused) until the next successful read of the change sequence, which
// Follow keeps trying. One State serves every config of a Caddy instance in
// turn, so a reload keeps what is cached.
type State struct {
	cfg StateConfig
	// tokens and users are read with Peek (a shared read lock, no move in
	// the LRU list); an entry is added again at each cache_ttl, so a full
	// cache drops the state read longest ago.
	tokens *lru.Cache[string, cached[*Token]]
	users  *lru.Cache[string, cached[*User]]
	flight singleflight.Group
	// epoch moves on every invalidation; a lookup that began in an older
	// epoch does not fill the cache, so a stale read never outlives a change.
	epoch atomic.Uint64

	seq      int64        // the last change applied; guarded by the "sync" flight
	syncedAt atomic.Int64 // unix nanos at which the last successful sync began; 0 before the first
	down     atomic.Bool  // the last store query failed: requests do not wait on the store

	stats struct{ hits, lookups, syncs atomic.Uint64 }
}

type cached[T any] struct {
	v  T // nil: known not to exist
	at time.Time
}

// ChangeRetention is how long a store keeps a change in its sequence. A
// State that has not read the sequence for half of it drops everything it
// has cached instead of catching up.
const ChangeRetention = time.Hour

// NewState builds a State, applying defaults to cfg.
func NewState(cfg StateConfig) (*State, error) {
	if cfg.Store == nil {
		return nil, errors.New("state needs a store")
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = 500 * time.Millisecond
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 2 * time.Second
	}
	if cfg.PollInterval+cfg.SyncTimeout >= cfg.MaxLag {
		return nil, fmt.Errorf("state: poll interval %v plus sync timeout %v must be under the max lag %v", cfg.PollInterval, cfg.SyncTimeout, cfg.MaxLag)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &State{cfg: cfg}
	var err error
	if s.tokens, err = lru.New[string, cached[*Token]](cfg.CacheSize); err != nil {
		return nil, err
	}
	if s.users, err = lru.New[string, cached[*User]](cfg.CacheSize); err != nil {
		return nil, err
	}
	return s, nil
}

// StateStats are a State's counters since it was built.
type StateStats struct {
	Hits    uint64 // token and user state served from the cache
	Lookups uint64 // token and user state read from the store
	Syncs   uint64 // reads of the change sequence
	Down    bool   // the store failed its last query
}

// Stats reads the counters.
func (s *State) Stats() StateStats {
	return StateStats{Hits: s.stats.hits.Load(), Lookups: s.stats.lookups.Load(), Syncs: s.stats.syncs.Load(), Down: s.down.Load()}
}

// InvalidateToken drops the cached state of a token.
func (s *State) InvalidateToken(id string) {
	s.epoch.Add(1)
	s.tokens.Remove(id)
}

// InvalidateUser drops the cached state of a user.
func (s *State) InvalidateUser(id string) {
	s.epoch.Add(1)
	s.users.Remove(id)
}

// InvalidateAll drops every cached state.
func (s *State) InvalidateAll() {
	s.epoch.Add(1)
	s.tokens.Purge()
	s.users.Purge()
}

// Follow reads the change sequence every PollInterval, and at once when
// wake receives (a Waker's prompt; nil for none), until ctx ends. report is
// told when the store stops answering (err) and when it answers again (nil),
// once per transition.
func (s *State) Follow(ctx context.Context, wake <-chan struct{}, report func(err error)) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	var failing bool
	for {
		err := s.Sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if (err != nil) != failing {
			failing = err != nil
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// Sync reads the changes committed since the last read and drops their
// cached state. Concurrent calls share one read. On success the cache is
// trusted for MaxLag from the moment the read began and the store is up;
// on failure the store is down.
func (s *State) Sync(ctx context.Context) error {
	_, err, _ := s.flight.Do("sync", func() (any, error) {
		s.stats.syncs.Add(1)
		start := s.cfg.Now()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SyncTimeout)
		defer cancel()
		if err := s.catchUp(sctx, start); err != nil {
			s.down.Store(true)
			return nil, fmt.Errorf("reading the token store's changes: %w", err)
		}
		s.syncedAt.Store(start.UnixNano())
		s.down.Store(false)
		return nil, nil
	})
	return err
}

// changesPage is how many changes one query of the sequence reads.
const changesPage = 1000

// catchUp applies the changes after s.seq. The first time, and after a gap
// longer than the store keeps changes for, it cannot know what changed:
// it starts from the newest change and drops everything cached (the epoch
// keeps lookups that began before from filling the cache with older state).
func (s *State) catchUp(ctx context.Context, start time.Time) error {
	last := s.syncedAt.Load()
	if last == 0 || start.Sub(time.Unix(0, last)) > ChangeRetention/2 {
		seq, err := s.cfg.Store.LastChange(ctx)
		if err != nil {
			return err
		}
		s.InvalidateAll()
		s.seq = seq
		return nil
	}
	for {
		changes, err := s.cfg.Store.Changes(ctx, s.seq, changesPage)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.TokenID != "" {
				s.InvalidateToken(c.TokenID)
			}
			if c.UserID != "" {
				s.InvalidateUser(c.UserID)
			}
			s.seq = c.Seq
		}
		if len(changes) < changesPage {
			return nil
		}
	}
}

// trusted reports whether cached state may be served at now: the change
// sequence was read within MaxLag.
func (s *State) trusted(now time.Time) bool {
	at := s.syncedAt.Load()
	return at != 0 && now.UnixNano()-at < int64(s.cfg.MaxLag)
}

// freshness is how a config may serve cached state: fresh for ttl, and up
// to stale past it while the store is down.
type freshness struct{ ttl, stale time.Duration }

// token and user take the State's clock reading (s.cfg.Now) from the
// caller, so that one authentication reads the clock once for both.
func (s *State) token(ctx context.Context, id string, f freshness, now time.Time) (*Token, error) {
	return lookup(s, s.tokens, ctx, "t", id, f, now, func(ctx context.Context) (*Token, error) {
		t, err := s.cfg.Store.GetToken(ctx, id)
		return &t, err
	})
}

func (s *State) user(ctx context.Context, id string, f freshness, now time.Time) (*User, error) {
	return lookup(s, s.users, ctx, "u", id, f, now, func(ctx context.Context) (*User, error) {
		u, err := s.cfg.Store.GetUser(ctx, id)
		return &u, err
	})
}

// errStoreDown is the detail of a request refused without asking the store.
var errStoreDown = errors.New("the token store failed its last query; waiting for it to answer again")

// lookup serves id from c while fresh and trusted, else asks the store once
// for all concurrent callers of the same epoch. A missing object is cached
// as nil. While the store is down nothing waits on it: an entry within
// f.stale past its TTL is served, else the request fails at once.
func lookup[T any](s *State, c *lru.Cache[string, cached[*T]], ctx context.Context, kind, id string, f freshness, now time.Time, get func(context.Context) (*T, error)) (*T, error) {
	e, hit := c.Peek(id)
	fresh := func() bool { return hit && now.Sub(e.at) < f.ttl }
	if fresh() && !s.trusted(now) && !s.down.Load() && s.Sync(ctx) == nil {
		// The change sequence had not been read for a while; it is now,
		// which may have dropped this entry.
		e, hit = c.Peek(id)
	}
	if fresh() && s.trusted(now) {
		s.stats.hits.Add(1)
		return e.v, nil
	}
	if s.down.Load() {
		return staleOr(e, hit, now, f, errStoreDown)
	}
	epoch := s.epoch.Load()
	key := kind + strconv.FormatUint(epoch, 36) + ":" + id
	res, err, _ := s.flight.Do(key, func() (any, error) {
		s.stats.lookups.Add(1)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LookupTimeout)
		defer cancel()
		v, err := get(lctx)
		if errors.Is(err, ErrNotFound) {
			v, err = nil, nil
		}
		if err != nil {
			s.down.Store(true)
			return nil, err
		}
		if s.epoch.Load() == epoch {
			c.Add(id, cached[*T]{v: v, at: now})
		}
		return v, nil
	})
	if err != nil {
		return staleOr(e, hit, now, f, err)
	}
	return res.(*T), nil
}

// staleOr serves e when it is within f.stale past its TTL, else fails with
// ErrUnavailable and err.
func staleOr[T any](e cached[*T], hit bool, now time.Time, f freshness, err error) (*T, error) {
	if hit && f.stale > 0 && now.Sub(e.at) < f.ttl+f.stale {
		return e.v, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}
