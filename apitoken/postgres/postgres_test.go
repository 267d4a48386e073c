package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/storetest"
)

func openStore(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		dsn, _ := pgtest.Schema(t)
		return openStore(t, dsn)
	})
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func putUser(t testing.TB, s apitoken.Store, id string) {
	t.Helper()
	if _, err := s.UpdateUser(context.Background(), id, func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.CreatedAt = t0
		u.Roles = []apitoken.Role{apitoken.RoleAPITokens}
		return nil, nil
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
}

func putToken(t testing.TB, s apitoken.Store, owner, name string) apitoken.Token {
	t.Helper()
	tok := apitoken.Token{ID: apitoken.NewTokenID(), Name: name, Owner: owner, Scopes: apitoken.DefaultScopes,
		Expires: apitoken.Expiry30d, CreatedAt: t0}
	if err := s.CreateToken(context.Background(), tok, apitoken.Log{Activity: apitoken.ActivityCreate, ActivityOn: t0, ActivityBy: owner}, 0); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return tok
}

// connect is a plain connection to the schema of dsn, for what the test
// does behind the store's back.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// authCounts sums a token's AUTHENTICATE counts by client IP, and counts
// its rows per window.
func authCounts(t testing.TB, s apitoken.Store, tokenID string) (byIP map[string]int64, rowsByWindow map[time.Time]int) {
	t.Helper()
	byIP, rowsByWindow = map[string]int64{}, map[time.Time]int{}
	f := apitoken.LogFilter{TokenID: tokenID, Activity: apitoken.ActivityAuthenticate, Page: apitoken.Page{Limit: apitoken.MaxPageLimit}}
	for {
		logs, next, err := s.ListLogs(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range logs {
			byIP[l.ClientIP] += l.Count
			rowsByWindow[l.ActivityOn.Truncate(time.Minute)]++
		}
		if next == "" {
			return byIP, rowsByWindow
		}
		f.Cursor = next
	}
}

// Instances that start together on a new schema must not both create the
// tables: the advisory lock makes the others wait and find nothing to do.
// (Without it, one round in a few fails on a duplicate table; three rounds
// make that near certain to show.)
func TestOpen_InstancesStartingTogetherMigrateOnce(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			dsn, _ := pgtest.Schema(t)
			const n = 5
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					s, err := postgres.Open(context.Background(), dsn)
					if err == nil {
						s.Close()
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d failed to open: %v", i, err)
				}
			}
			var applied, versions int
			if err := connect(t, dsn).QueryRow(context.Background(),
				`SELECT count(*) FILTER (WHERE version_id > 0), count(DISTINCT version_id) FILTER (WHERE version_id > 0) FROM apitokens_db_version`).
				Scan(&applied, &versions); err != nil {
				t.Fatal(err)
			}
			if applied != versions || applied == 0 {
				t.Errorf("%d migrations recorded for %d versions: each must be applied exactly once", applied, versions)
			}
		})
	}
}

func TestOpen_ReopeningKeepsDataAndAppliesNoMigrationTwice(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "kept")
	s.Close()
	count := func() (n int) {
		t.Helper()
		if err := connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM apitokens_db_version`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	s = openStore(t, dsn)
	if got, err := s.GetToken(context.Background(), tok.ID); err != nil || got.Name != "kept" {
		t.Errorf("after reopening: GetToken = %+v, %v", got, err)
	}
	if after := count(); after != before {
		t.Errorf("reopening changed the migration table: %d rows, was %d", after, before)
	}
}

// The tables go to the first schema of the search_path, and nowhere else.
func TestOpen_TablesLiveInTheSearchPathSchema(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s := openStore(t, dsn)
	if s.Schema() != schema {
		t.Errorf("Schema() = %q, want %q", s.Schema(), schema)
	}
	var where string
	if err := connect(t, dsn).QueryRow(context.Background(),
		`SELECT string_agg(DISTINCT schemaname, ',') FROM pg_tables WHERE tablename IN ('tokens', 'users', 'logs', 'apitokens_db_version') AND schemaname = $1`,
		schema).Scan(&where); err != nil {
		t.Fatal(err)
	}
	if where != schema {
		t.Errorf("tables are in %q, want %q", where, schema)
	}
}

// Another application in the same schema that also migrates with goose
// keeps its history in goose_db_version: the store keeps its own, and
// neither takes the other's versions for its own.
func TestOpen_AnotherGooseApplicationInTheSchemaIsNotConfusedWithUs(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	if _, err := connect(t, dsn).Exec(context.Background(), `CREATE TABLE goose_db_version (
		id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
		INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true)`); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dsn)
	putUser(t, s, "alice") // the tables exist
	var n int
	if err := connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil || n != 4 {
		t.Errorf("the other application's history has %d rows (%v), want its 4 untouched", n, err)
	}
}

// Pool settings come from the DSN's pool_* parameters; even a pool of one
// connection migrates (goose runs the migrations on the connection that
// holds the lock) and serves every kind of call.
func TestOpen_PoolSettingsFromTheDSN(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn+"&pool_max_conns=1&pool_max_conn_idle_time=1m&pool_health_check_period=30s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "one connection")
	if err := s.RecordAuth(ctx, "", []apitoken.AuthRecord{{TokenID: tok.ID, Result: apitoken.ResultOK, Window: t0, First: t0, Last: t0, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ListLogs(ctx, apitoken.LogFilter{TokenID: tok.ID}); err != nil {
		t.Fatal(err)
	}

	// The one connection is taken by a transaction: a read waits for it.
	inFn, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := s.UpdateToken(ctx, tok.ID, func(*apitoken.Token) (apitoken.Log, error) {
			close(inFn)
			<-release
			return apitoken.Log{}, nil
		})
		done <- err
	}()
	<-inFn
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := s.GetToken(short, tok.ID)
	cancelShort()
	close(release)
	if !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("a read while the only connection is busy = %v, want ErrUnavailable after waiting: pool_max_conns=1 not applied", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, tok.ID); err != nil {
		t.Errorf("a read once the connection is free: %v", err)
	}
}

func TestOpen_SearchPathWithoutASchemaIsAClearError(t *testing.T) {
	server := pgtest.ServerDSN(t)
	dsn := pgtest.WithSearchPath(t, server, "no_such_schema_for_apitokens")
	s, err := postgres.Open(context.Background(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with a search_path naming no schema")
	}
	if !strings.Contains(err.Error(), "search_path") {
		t.Errorf("error %q does not point at the search_path", err)
	}
}

func TestOpen_ErrorsNeverShowThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://apitokens:s3cret-pw@127.0.0.1:1/x?sslmode=disable&pool_max_conns=zero",
		"postgres://apitokens:s3cret-pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
	} {
		s, err := postgres.Open(context.Background(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestOpen_UnreachableServerIsUnavailableAndFailsFast(t *testing.T) {
	start := time.Now()
	s, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable")
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("Open of a closed port = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to give up", d)
	}
}

func TestStore_ClosedStoreIsUnavailable(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if _, err := s.GetToken(context.Background(), "tok_x"); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("GetToken on a closed store = %v, want ErrUnavailable", err)
	}
	if err := s.RecordAuth(context.Background(), "", []apitoken.AuthRecord{{TokenID: "tok_x", Count: 1}}); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("RecordAuth on a closed store = %v, want ErrUnavailable", err)
	}
}

// A write of a token that another instance holds locked waits; one that
// cannot get the lock before its context ends is ErrUnavailable (the guard
// answers 503), and reads go on beside the lock.
func TestStore_WriteBehindAnotherInstancesLockIsUnavailable(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := openStore(t, dsn)
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "held")

	other := connect(t, dsn)
	tx, err := other.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE`, tok.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.UpdateToken(ctx, tok.ID, func(t *apitoken.Token) (apitoken.Log, error) {
		now := time.Now()
		t.RevokedAt = &now
		return apitoken.Log{}, nil
	})
	if !errors.Is(err, apitoken.ErrUnavailable) {
		t.Fatalf("UpdateToken behind a lock = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the write gave up after %v, want about the context's 300ms", d)
	}
	if got, err := s.GetToken(context.Background(), tok.ID); err != nil || got.RevokedAt != nil {
		t.Errorf("a read beside the lock = %+v, %v; want the unrevoked token", got, err)
	}
}

func TestStore_UnreachableDatabaseIsUnavailableThenRecovers(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	direct := openStore(t, dsn)
	putUser(t, direct, "alice")
	tok := putToken(t, direct, "alice", "t")

	p := newProxy(t, dsn)
	s := openStore(t, p.dsn(dsn))
	if _, err := s.GetToken(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	p.down.Store(true)
	p.cut()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.GetToken(ctx, tok.ID); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("GetToken with the database away = %v, want ErrUnavailable", err)
	}
	if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("GetUser with the database away = %v, want ErrUnavailable", err)
	}
	if err := s.RecordAuth(ctx, "", []apitoken.AuthRecord{{TokenID: tok.ID, Result: apitoken.ResultOK, Window: t0, Count: 1}}); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("RecordAuth with the database away = %v, want ErrUnavailable", err)
	}
	p.down.Store(false)
	if _, err := s.GetToken(context.Background(), tok.ID); err != nil {
		t.Errorf("GetToken once the database is back: %v", err)
	}
}

// Two instances on one database record the same token's attempts at once:
// every count adds up exactly, and the per-window row bound holds across
// them (a window with more distinct clients than the bound folds the rest).
func TestStore_TwoInstancesRecordingConcurrentlySumExactly(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	putUser(t, a, "alice")
	tok := putToken(t, a, "alice", "shared")

	const workers, batches = 6, 30
	w1, w2 := t0, t0.Add(time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for g := range workers {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range batches {
				at := w1.Add(time.Duration(g*batches+i) * time.Millisecond)
				rec := func(ip string, count int64, win time.Time) apitoken.AuthRecord {
					at := at.Add(win.Sub(w1))
					return apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "Reports API", Result: apitoken.ResultOK,
						ClientIP: ip, UserAgent: "curl/8", Window: win, First: at, Last: at, Count: count}
				}
				errs <- s.RecordAuth(context.Background(), "", []apitoken.AuthRecord{
					rec("192.0.2.1", 1, w1),
					rec("192.0.2.2", 3, w1),
					rec(fmt.Sprintf("198.51.100.%d", g), 1, w1),
					// A new client in w2 each time: 180 in all, past the bound.
					rec(fmt.Sprintf("203.0.%d.%d", g, i), 2, w2),
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent RecordAuth failed: %v", err)
		}
	}
	byIP, rows := authCounts(t, a, tok.ID)
	if byIP["192.0.2.1"] != workers*batches || byIP["192.0.2.2"] != 3*workers*batches {
		t.Errorf("shared rows count %d and %d, want %d and %d", byIP["192.0.2.1"], byIP["192.0.2.2"], workers*batches, 3*workers*batches)
	}
	for g := range workers {
		if c := byIP[fmt.Sprintf("198.51.100.%d", g)]; c != batches {
			t.Errorf("worker %d's row counts %d, want %d", g, c, batches)
		}
	}
	var inW2 int64
	for ip, c := range byIP {
		if strings.HasPrefix(ip, "203.0.") || ip == "" {
			inW2 += c
		}
	}
	if inW2 != 2*workers*batches {
		t.Errorf("the second window counts %d attempts, want %d: none lost, none twice", inW2, 2*workers*batches)
	}
	if rows[w2] > apitoken.MaxAuthRowsPerWindow {
		t.Errorf("the second window has %d rows, want at most %d", rows[w2], apitoken.MaxAuthRowsPerWindow)
	}
	if rows[w2] < apitoken.MaxAuthRowsPerWindow-2 {
		t.Errorf("the second window has %d rows, want its clients kept up to the bound (%d)", rows[w2], apitoken.MaxAuthRowsPerWindow-2)
	}
	last := w2.Add(time.Duration(workers*batches-1) * time.Millisecond)
	if got, _ := b.GetToken(context.Background(), tok.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(last) {
		t.Errorf("last used = %v, want the latest attempt %v", got.LastUsedAt, last)
	}
}

// behindProxy is a schema with alice's token "t": direct is a store on the
// database, s a store through the proxy p.
func behindProxy(t *testing.T) (direct, s *postgres.Store, p *proxy, tok apitoken.Token) {
	t.Helper()
	dsn, _ := pgtest.Schema(t)
	direct = openStore(t, dsn)
	putUser(t, direct, "alice")
	tok = putToken(t, direct, "alice", "t")
	p = newProxy(t, dsn)
	return direct, openStore(t, p.dsn(dsn)), p, tok
}

// losses are the two ways a COMMIT goes wrong on the network: its answer is
// lost (the database applied it) or the COMMIT itself is (it did not).
var losses = []struct {
	name string
	lose func(p *proxy)
}{
	{"answer lost, applied", func(p *proxy) { p.loseCommitAck.Store(true) }},
	{"commit lost, not applied", func(p *proxy) { p.loseCommit.Store(true) }},
}

// A COMMIT of an audit batch or its answer is lost with the connection:
// RecordAuth writes the batch again at once under the same id, which finds
// it applied or applies it, and succeeds; another call (another id) counts
// again.
func TestRecordAuth_LostCommitOrItsAnswerIsCountedOnce(t *testing.T) {
	for _, tc := range losses {
		t.Run(tc.name, func(t *testing.T) {
			direct, s, p, tok := behindProxy(t)
			rec := apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1",
				Window: t0, First: t0, Last: t0, Count: 5}
			tc.lose(p)
			for want := int64(5); want <= 10; want += 5 {
				if err := s.RecordAuth(context.Background(), "", []apitoken.AuthRecord{rec}); err != nil {
					t.Fatalf("RecordAuth = %v, want success", err)
				}
				if p.loseCommit.Load() || p.loseCommitAck.Load() {
					t.Fatal("the proxy saw no COMMIT")
				}
				if byIP, _ := authCounts(t, direct, tok.ID); byIP["192.0.2.1"] != want {
					t.Fatalf("count = %d, want %d", byIP["192.0.2.1"], want)
				}
			}
		})
	}
}

// The database becomes unreachable right after a COMMIT, and stays so
// across many flushes (no timer to outlast: the batch id settles it
// whenever it comes back). With its answer lost (applied) or the COMMIT
// itself lost (not applied), the Auditor writes the same batch under the
// same id until the database answers: each attempt is counted once. (The
// review saw +344 and +398 here when the store gave up its own check after
// 10 s and the next flush wrote the batch under a new id.)
func TestAuditor_OutageAfterALostCommitNeitherLosesNorDoubles(t *testing.T) {
	for _, tc := range losses {
		t.Run(tc.name, func(t *testing.T) {
			direct, s, p, tok := behindProxy(t)
			aud := apitoken.NewAuditor(apitoken.AuditConfig{Store: s, FlushInterval: time.Hour})
			defer aud.Close(context.Background())

			for range 344 {
				aud.Record(apitoken.AuthEvent{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1", At: t0})
			}
			p.downAfterCommit.Store(true)
			tc.lose(p)
			for i := range 5 {
				if err := aud.Flush(context.Background()); !errors.Is(err, apitoken.ErrUnavailable) {
					t.Fatalf("flush %d during the outage = %v, want ErrUnavailable", i, err)
				}
				aud.Record(apitoken.AuthEvent{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1", At: t0})
			}
			if st := aud.Stats(); st.Pending != 2 || st.InFlight != 1 {
				t.Errorf("stats during the outage: %+v, want the kept batch in flight and the new attempts queued", st)
			}
			p.down.Store(false)
			if err := aud.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if byIP, _ := authCounts(t, direct, tok.ID); byIP["192.0.2.1"] != 349 {
				t.Errorf("count = %d, want 349: each attempt once", byIP["192.0.2.1"])
			}
		})
	}
}

// The whole audit path: an Auditor whose flush loses its commit answer
// neither loses nor doubles an attempt.
func TestAuditor_LostCommitAnswerNeitherLosesNorDoubles(t *testing.T) {
	direct, s, p, tok := behindProxy(t)
	aud := apitoken.NewAuditor(apitoken.AuditConfig{Store: s, FlushInterval: time.Hour})
	defer aud.Close(context.Background())

	for _, lose := range []*bool{nil, new(bool)} {
		for range 7 {
			aud.Record(apitoken.AuthEvent{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1", At: t0})
		}
		if lose != nil {
			p.loseCommit.Store(true)
		} else {
			p.loseCommitAck.Store(true)
		}
		_ = aud.Flush(context.Background()) // a lost commit fails and keeps its batch
	}
	if err := aud.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if byIP, _ := authCounts(t, direct, tok.ID); byIP["192.0.2.1"] != 14 {
		t.Errorf("count = %d, want 14: each attempt once", byIP["192.0.2.1"])
	}
}
