package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/storetest"
)

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return s
}

func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		return openStore(t, filepath.Join(t.TempDir(), "tokens.db"))
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

func TestOpen_CreatesAPrivateFileInAPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "caddy")
	path := filepath.Join(dir, "apitokens.db")
	s := openStore(t, path)
	putUser(t, s, "alice") // so that the WAL exists
	for p, want := range map[string]os.FileMode{filepath.Dir(dir): 0o700 | os.ModeDir, dir: 0o700 | os.ModeDir,
		path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestOpen_ReopeningKeepsDataAndAppliesNoMigrationTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s := openStore(t, path)
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "kept")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	versions := func() (n int, max int64) {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow(`SELECT count(*), max(version_id) FROM goose_db_version`).Scan(&n, &max); err != nil {
			t.Fatalf("reading the migration table: %v", err)
		}
		return n, max
	}
	n1, v1 := versions()
	if v1 < 1 {
		t.Fatalf("migration version %d after the first open, want at least 1", v1)
	}

	s = openStore(t, path)
	defer s.Close()
	if got, err := s.GetToken(context.Background(), tok.ID); err != nil || got.Name != "kept" {
		t.Errorf("after reopening: GetToken = %+v, %v", got, err)
	}
	if u, err := s.GetUser(context.Background(), "alice"); err != nil || !u.HasRole(apitoken.RoleAPITokens) {
		t.Errorf("after reopening: GetUser = %+v, %v", u, err)
	}
	if n2, v2 := versions(); n2 != n1 || v2 != v1 {
		t.Errorf("reopening changed the migration table: %d rows (version %d), was %d (version %d)", n2, v2, n1, v1)
	}
}

// Caddy's data directory may hold spaces ("Application Support") and a path
// may hold any character that means something in a URI.
func TestOpen_PathWithURICharactersIsUsedAsIs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Application Support", "odd?#%20&name=x")
	path := filepath.Join(dir, "tokens 100%.db")
	s := openStore(t, path)
	putUser(t, s, "alice")
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "tokens 100%.db" && e.Name() != "tokens 100%.db-wal" && e.Name() != "tokens 100%.db-shm" {
			t.Errorf("unexpected file %q beside the database", e.Name())
		}
	}
	s = openStore(t, path)
	defer s.Close()
	if _, err := s.GetUser(context.Background(), "alice"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

func TestOpen_RefusesAPathThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("this is not an SQLite database, it is a plain text file of some length"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(context.Background(), path); err == nil {
		s.Close()
		t.Fatalf("Open of a text file succeeded")
	}
}

// Two stores on one file stand for two processes (or the old and new config
// of a reload): their writes wait for each other instead of failing with
// SQLITE_BUSY.
func TestStore_ConcurrentWritersDoNotFailWithBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	a := openStore(t, path)
	defer a.Close()
	b := openStore(t, path)
	defer b.Close()
	putUser(t, a, "alice")
	tok := putToken(t, a, "alice", "shared")

	const workers, rounds = 6, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	ctx := context.Background()
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				at := t0.Add(time.Duration(w*rounds+i) * time.Millisecond)
				_, err := s.UpdateToken(ctx, tok.ID, func(t *apitoken.Token) (apitoken.Log, error) {
					t.GeneratedAt, t.JTIHash = &at, []byte(fmt.Sprint(w, i))
					return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at, ActivityBy: "alice"}, nil
				})
				errs <- err
				errs <- s.RecordAuth(ctx, "", []apitoken.AuthRecord{{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK,
					ClientIP: "192.0.2.1", Window: t0, First: at, Last: at, Count: 1}})
				_, err = s.UpdateUser(ctx, fmt.Sprint("user", w), func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
					u.Email = fmt.Sprintf("u%d@example.com", i)
					return nil, nil
				})
				errs <- err
				if _, err := s.GetToken(ctx, tok.ID); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent write failed: %v", err)
		}
	}
	logs, _, err := a.ListLogs(ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	if err != nil || len(logs) != 1 || logs[0].Count != workers*rounds {
		t.Errorf("AUTHENTICATE rows = %+v (%v), want one counting %d", logs, err, workers*rounds)
	}
	gens, _, err := b.ListLogs(ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityGenerate, Page: apitoken.Page{Limit: 1000}})
	if err != nil || len(gens) != workers*rounds {
		t.Errorf("%d GENERATE logs (%v), want %d", len(gens), err, workers*rounds)
	}
}

// A write that cannot get the lock before its context ends is
// ErrUnavailable, not an internal error (the middleware answers 503).
func TestStore_LockedDatabaseIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s := openStore(t, path)
	defer s.Close()
	putUser(t, s, "alice")

	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.UpdateUser(ctx, "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Email = "a@example.com"
		return nil, nil
	})
	if !errors.Is(err, apitoken.ErrUnavailable) {
		t.Fatalf("a write behind another process's lock returned %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the write gave up after %v, want about the context's 300ms", d)
	}
	// Reads go on beside the lock (WAL).
	if _, err := s.GetUser(context.Background(), "alice"); err != nil {
		t.Errorf("a read while another process writes: %v", err)
	}
}

func TestStore_ClosedStoreIsUnavailable(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "tokens.db"))
	s.Close()
	if _, err := s.GetToken(context.Background(), "tok_x"); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("GetToken on a closed store = %v, want ErrUnavailable", err)
	}
	if err := s.RecordAuth(context.Background(), "", []apitoken.AuthRecord{{TokenID: "tok_x", Count: 1}}); !errors.Is(err, apitoken.ErrUnavailable) {
		t.Errorf("RecordAuth on a closed store = %v, want ErrUnavailable", err)
	}
}

// Processes that open a new file at the same moment (the old and the new
// Caddy of an upgrade) all start: the migrations are applied once.
func TestOpen_StoresOpeningANewFileTogetherAllStart(t *testing.T) {
	for round := range 3 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("together%d.db", round))
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := sqlite.Open(context.Background(), path)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// A token whose stored allowed_ips no longer read back must not be served
// as a token without a limit: reading it fails, and the guard refuses.
func TestStore_UnreadableAllowedIPsFailTheRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s := openStore(t, path)
	defer s.Close()
	putUser(t, s, "alice")
	tok := putToken(t, s, "alice", "limited")

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE tokens SET allowed_ips = '10.0.0.0/8 not-a-network' WHERE id = ?`, tok.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetToken(context.Background(), tok.ID); err == nil {
		t.Fatalf("GetToken of a token with unreadable allowed_ips = %+v, want an error", got)
	}
}
