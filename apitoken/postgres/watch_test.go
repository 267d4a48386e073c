package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// feed runs s.Watch until the test ends, and hands out what it reports.
type feed struct {
	t       *testing.T
	changes chan apitoken.Change
	cancel  context.CancelFunc
	done    chan struct{}
}

func watch(t *testing.T, s *postgres.Store) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{t: t, changes: make(chan apitoken.Change, 1000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		s.Watch(ctx, func(c apitoken.Change) { f.changes <- c })
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *feed) stop() {
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		f.t.Errorf("Watch did not return within 5s of its context ending")
	}
}

// next is the next change, within d.
func (f *feed) next(d time.Duration) (apitoken.Change, bool) {
	f.t.Helper()
	select {
	case c := <-f.changes:
		return c, true
	case <-time.After(d):
		return apitoken.Change{}, false
	}
}

// want asserts that the next change is c, within 1 s (the contract), and
// returns how long it took.
func (f *feed) want(what string, c apitoken.Change) time.Duration {
	f.t.Helper()
	start := time.Now()
	got, ok := f.next(time.Second)
	if !ok {
		f.t.Fatalf("%s: no change reported within 1s, want %+v", what, c)
	}
	if got != c {
		f.t.Fatalf("%s: reported %+v, want %+v", what, got, c)
	}
	return time.Since(start)
}

// quiet asserts that nothing is reported for d.
func (f *feed) quiet(what string, d time.Duration) {
	f.t.Helper()
	if got, ok := f.next(d); ok {
		f.t.Fatalf("%s: reported %+v, want nothing", what, got)
	}
}

func TestWatch_ReportsEveryCommittedChangeFromAnyInstance(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	f := watch(t, b)
	if c, ok := f.next(5 * time.Second); !ok || c != (apitoken.Change{All: true}) {
		t.Fatalf("the feed's first report = %+v (%v), want All once it listens", c, ok)
	}

	putUser(t, a, "alice")
	f.want("a user created on the other instance", apitoken.Change{UserID: "alice"})
	tok := putToken(t, a, "alice", "t")
	// CreateToken announces nothing: the next report is the revocation.
	now := time.Now()
	if _, err := a.UpdateToken(context.Background(), tok.ID, func(t *apitoken.Token) (apitoken.Log, error) {
		t.RevokedAt = &now
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	d := f.want("a token revoked on the other instance", apitoken.Change{TokenID: tok.ID})
	t.Logf("a revocation reached the other instance's feed in %v", d)

	// Changes through the watching instance itself are reported too.
	if _, err := b.UpdateUser(context.Background(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Roles = nil
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.want("a role removed on this instance", apitoken.Change{UserID: "alice"})

	// A change that is rolled back is never reported, nor are audit writes.
	boom := errors.New("refused")
	if _, err := a.UpdateToken(context.Background(), tok.ID, func(*apitoken.Token) (apitoken.Log, error) { return apitoken.Log{}, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := a.UpdateUser(context.Background(), "alice", func(*apitoken.User, bool) ([]apitoken.Log, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := a.RecordAuth(context.Background(), "", []apitoken.AuthRecord{{TokenID: tok.ID, Result: apitoken.ResultOK, Window: t0, First: t0, Last: t0, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	f.quiet("rolled-back changes and audit writes", 300*time.Millisecond)

	// A notification it does not understand drops everything.
	if _, err := connect(t, dsn).Exec(context.Background(), `SELECT pg_notify($1, 'x:from-a-newer-version')`, b.Channel()); err != nil {
		t.Fatal(err)
	}
	f.want("an unknown notification", apitoken.Change{All: true})
}

// Stores in other schemas of the same database are other deployments: their
// changes are not reported.
func TestWatch_IgnoresOtherSchemas(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	otherDSN, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	other := openStore(t, otherDSN)
	f := watch(t, s)
	f.want("start", apitoken.Change{All: true})
	putUser(t, other, "alice")
	f.quiet("a change in another schema", 300*time.Millisecond)
	putUser(t, s, "alice")
	f.want("a change in this schema", apitoken.Change{UserID: "alice"})
}

// The server ends the feed's connection (a restart, a failover,
// pg_terminate_backend): the feed reconnects and reports All, since what
// changed meanwhile is unknown, then goes on reporting.
func TestWatch_ServerClosedConnectionIsReopenedAndDropsEverything(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	f := watch(t, s)
	f.want("start", apitoken.Change{All: true})

	admin := connect(t, dsn)
	var n int
	if err := admin.QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"caddy-apitokens feed "+s.Channel()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d feed connections, want 1", n)
	}
	f.want("after the connection was terminated", apitoken.Change{All: true})
	putUser(t, s, "alice")
	f.want("a change after reconnecting", apitoken.Change{UserID: "alice"})
}

// The database is away for a while: the feed retries with a growing delay,
// not in a tight loop, and reports All once it is back.
func TestWatch_DatabaseAwayIsRetriedWithBackoff(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	p := newProxy(t, dsn)
	watched := openStore(t, p.dsn(dsn))
	f := watch(t, watched)
	f.want("start", apitoken.Change{All: true})

	p.down.Store(true)
	before := p.accepted.Load()
	p.cut()
	putUser(t, s, "alice") // while no one listens: never reported as such
	time.Sleep(2 * time.Second)
	attempts := p.accepted.Load() - before
	// Retries after 100, 200, 400, 800 ms: 5 attempts in 2 s, of up to two
	// connections each (pgx tries again a connection closed in its
	// startup). A tight loop would make thousands.
	if attempts < 2 || attempts > 12 {
		t.Errorf("%d connection attempts in 2s with the database away, want a few (backoff from 100ms, doubling)", attempts)
	}
	f.quiet("the database away", 0)
	p.down.Store(false)
	if c, ok := f.next(5 * time.Second); !ok || c != (apitoken.Change{All: true}) {
		t.Fatalf("after the database came back: %+v (%v), want All", c, ok)
	}
	putUser(t, s, "bob")
	f.want("a change after reconnecting", apitoken.Change{UserID: "bob"})
}

// A connection that goes silent without closing (a dead network path) is
// found by the idle ping and replaced.
func TestWatch_SilentDeadConnectionIsFoundAndReplaced(t *testing.T) {
	restore := postgres.SetWatchTimings(300*time.Millisecond, 300*time.Millisecond)
	defer restore()
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	p := newProxy(t, dsn)
	watched := openStore(t, p.dsn(dsn))
	f := watch(t, watched)
	f.want("start", apitoken.Change{All: true})

	p.stall()
	putUser(t, s, "alice") // lost in the dead connection
	if c, ok := f.next(3 * time.Second); !ok || c != (apitoken.Change{All: true}) {
		t.Fatalf("after the connection went silent: %+v (%v), want All from a new connection", c, ok)
	}
	putUser(t, s, "bob")
	f.want("a change on the new connection", apitoken.Change{UserID: "bob"})
	f.stop() // before restore: Watch reads the timings
}

// A healthy connection that is only quiet survives its pings: no
// reconnection, no needless drop of every cache.
func TestWatch_QuietHealthyConnectionIsKept(t *testing.T) {
	restore := postgres.SetWatchTimings(100*time.Millisecond, time.Second)
	defer restore()
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	f := watch(t, s)
	f.want("start", apitoken.Change{All: true})
	f.quiet("a quiet second (about ten pings)", time.Second)
	putUser(t, s, "alice")
	f.want("a change after the pings", apitoken.Change{UserID: "alice"})
	f.stop() // before restore: Watch reads the timings
}
