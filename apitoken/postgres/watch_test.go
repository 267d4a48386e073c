package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// wakes runs s.Wake until the test ends and counts its calls on a channel.
type wakes struct {
	t      *testing.T
	calls  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func wake(t *testing.T, s *postgres.Store) *wakes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &wakes{t: t, calls: make(chan struct{}, 1000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s.Wake(ctx, func() { w.calls <- struct{}{} })
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *wakes) stop() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		w.t.Errorf("Wake did not return within 5s of its context ending")
	}
}

// want asserts a call within d.
func (w *wakes) want(what string, d time.Duration) {
	w.t.Helper()
	select {
	case <-w.calls:
	case <-time.After(d):
		w.t.Fatalf("%s: no wake-up within %v", what, d)
	}
}

// quiet asserts no call for d.
func (w *wakes) quiet(what string, d time.Duration) {
	w.t.Helper()
	select {
	case <-w.calls:
		w.t.Fatalf("%s: woken, want no wake-up", what)
	case <-time.After(d):
	}
}

func revoke(t *testing.T, s apitoken.Store, id string) {
	t.Helper()
	now := time.Now()
	if _, err := s.UpdateToken(context.Background(), id, func(t *apitoken.Token) (apitoken.Log, error) {
		t.RevokedAt = &now
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestWake_EveryCommittedChangeOfAnyInstanceWakesTheListener(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	w := wake(t, b)
	w.want("the connection established", 5*time.Second)

	putUser(t, a, "alice")
	w.want("a user created on the other instance", time.Second)
	tok := putToken(t, a, "alice", "t")
	revoke(t, a, tok.ID)
	w.want("a token revoked on the other instance", time.Second)

	boom := errors.New("refused")
	if _, err := a.UpdateUser(context.Background(), "alice", func(*apitoken.User, bool) ([]apitoken.Log, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := a.RecordAuth(context.Background(), "", []apitoken.AuthRecord{{TokenID: tok.ID, Result: apitoken.ResultOK, Window: t0, First: t0, Last: t0, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	w.quiet("a rolled-back change and an audit write", 300*time.Millisecond)
}

// What another database user may see of the feed: LISTEN works for any
// role that may connect, so the notifications carry nothing; the change
// sequence itself is a table, readable only by roles granted it.
func TestWake_NotificationsCarryNothingAndTheSequenceIsNotReadableByOtherRoles(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s := openStore(t, dsn)
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "payroll")

	listener := connect(t, dsn)
	if _, err := listener.Exec(context.Background(), "LISTEN "+pgx.Identifier{s.Channel()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	revoke(t, s, tok.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != "" {
		t.Errorf("notification payload = %q, want empty (a listener must learn no token or user id)", n.Payload)
	}

	admin := connect(t, dsn)
	role := "i_" + schema
	for _, q := range []string{`CREATE ROLE ` + pgx.Identifier{role}.Sanitize() + ` LOGIN`,
		// Even allowed into the schema, it may not read the table.
		`GRANT USAGE ON SCHEMA ` + pgx.Identifier{schema}.Sanitize() + ` TO ` + pgx.Identifier{role}.Sanitize()} {
		if _, err := admin.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), `REVOKE ALL ON SCHEMA `+pgx.Identifier{schema}.Sanitize()+` FROM `+pgx.Identifier{role}.Sanitize())
		admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+pgx.Identifier{role}.Sanitize())
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	intruder, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close(context.Background())
	var id string
	err = intruder.QueryRow(context.Background(), `SELECT token_id FROM `+pgx.Identifier{schema, "changes"}.Sanitize()+` LIMIT 1`).Scan(&id)
	if err == nil || !strings.Contains(err.Error(), "permission denied for table changes") {
		t.Fatalf("a role with only CONNECT and USAGE read the change sequence: token %q, error %v", id, err)
	}
	t.Logf("the other role is refused: %v", err)
}

// A notification that this deployment did not send adds nothing to the
// change sequence, so it drops no cached state: it only costs a read.
func TestWake_ForeignNotificationAddsNoChange(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	putUser(t, s, "alice")
	last, err := s.LastChange(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := wake(t, s)
	w.want("start", 5*time.Second)
	if _, err := connect(t, dsn).Exec(context.Background(), `SELECT pg_notify($1, 'u:alice')`, s.Channel()); err != nil {
		t.Fatal(err)
	}
	w.want("a foreign notification", time.Second)
	changes, err := s.Changes(context.Background(), last, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("after a foreign notification the sequence has %+v, want nothing new", changes)
	}
}

// Stores in other schemas of the same database are other deployments: their
// changes wake no one here.
func TestWake_IgnoresOtherSchemas(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	otherDSN, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	other := openStore(t, otherDSN)
	w := wake(t, s)
	w.want("start", 5*time.Second)
	putUser(t, other, "alice")
	w.quiet("a change in another schema", 300*time.Millisecond)
	putUser(t, s, "alice")
	w.want("a change in this schema", time.Second)
}

// The server ends the feed's connection (a restart, a failover,
// pg_terminate_backend): the listener reconnects, wakes once it listens
// again (the sequence tells what it missed), and goes on.
func TestWake_ServerClosedConnectionIsReopened(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	w := wake(t, s)
	w.want("start", 5*time.Second)

	var n int
	if err := connect(t, dsn).QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"caddy-apitokens feed "+s.Channel()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d feed connections, want 1", n)
	}
	w.want("after the connection was terminated", 2*time.Second)
	putUser(t, s, "alice")
	w.want("a change after reconnecting", time.Second)
}

// The database is away for a while: the listener retries with a growing
// delay, not in a tight loop, and wakes once it is back.
func TestWake_DatabaseAwayIsRetriedWithBackoff(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	p := newProxy(t, dsn)
	watched := openStore(t, p.dsn(dsn))
	w := wake(t, watched)
	w.want("start", 5*time.Second)

	p.down.Store(true)
	before := p.accepted.Load()
	p.cut()
	time.Sleep(2 * time.Second)
	attempts := p.accepted.Load() - before
	// Retries after 100, 200, 400, 800 ms: 5 attempts in 2 s, of up to two
	// connections each (pgx tries again a connection closed in its
	// startup). A tight loop would make thousands.
	if attempts < 2 || attempts > 12 {
		t.Errorf("%d connection attempts in 2s with the database away, want a few (backoff from 100ms, doubling)", attempts)
	}
	p.down.Store(false)
	w.want("after the database came back", 5*time.Second)
}

// A connection that goes silent without closing (a dead network path) is
// found by the idle ping and replaced.
func TestWake_SilentDeadConnectionIsFoundAndReplaced(t *testing.T) {
	restore := postgres.SetWatchTimings(300*time.Millisecond, 300*time.Millisecond)
	defer restore()
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	p := newProxy(t, dsn)
	watched := openStore(t, p.dsn(dsn))
	w := wake(t, watched)
	w.want("start", 5*time.Second)

	p.stall()
	w.want("a new connection after the old one went silent", 3*time.Second)
	putUser(t, s, "bob")
	w.want("a change on the new connection", time.Second)
	w.stop() // before restore: Wake reads the timings
}

// A healthy connection that is only quiet survives its pings: no
// reconnection.
func TestWake_QuietHealthyConnectionIsKept(t *testing.T) {
	restore := postgres.SetWatchTimings(100*time.Millisecond, time.Second)
	defer restore()
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	w := wake(t, s)
	w.want("start", 5*time.Second)
	w.quiet("a quiet second (about ten pings)", time.Second)
	putUser(t, s, "alice")
	w.want("a change after the pings", time.Second)
	w.stop() // before restore: Wake reads the timings
}
