// Package sqlite is the apitoken.Store on SQLite (modernc.org/sqlite, no cgo).
//
// One file holds users, tokens and logs. Writes go through a single
// connection, so that one write transaction runs at a time in this process
// and a read-modify-write (UpdateToken, UpdateUser, RecordAuth) is never
// interleaved with another; every transaction begins IMMEDIATE, so a second
// process on the same file waits for the lock (busy_timeout) instead of
// failing at commit. Reads use a pool of query-only connections, which WAL
// lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process on the file) before it fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is an apitoken.Store on one SQLite file.
type Store struct {
	w *sql.DB // the writer: one connection
	r *sql.DB // the readers: query-only connections

	getToken *sql.Stmt // on r
	getUser  *sql.Stmt // on r

	// RecordAuth statements, on w.
	authUpsert   *sql.Stmt
	authAdd      *sql.Stmt
	authFoldAdd  *sql.Stmt
	authRowCount *sql.Stmt
	tokenName    *sql.Stmt
	tokenUsed    *sql.Stmt

	lastPrune atomic.Int64 // unix seconds of the last audit_batches pruning

	closeOnce sync.Once
	closeErr  error
}

// Open opens the store at path, creating the file (mode 0600) and its
// directory (mode 0700) when missing, and applies the pending migrations.
// It refuses a database that users other than its owner may change (perm.go):
// a directory that group or others may write, unless it has the sticky bit,
// and a database, -wal or -shm file that group or others may write.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening token store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	if err := checkFolder(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	// Create the file ourselves so that it never exists with looser
	// permissions; SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	if err := checkFiles(abs); err != nil {
		return nil, fmt.Errorf("opening token store: %w", err)
	}

	s := &Store{}
	if s.w, err = sql.Open("sqlite", dsn(abs, false)); err != nil {
		return nil, fmt.Errorf("opening token store %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("migrating token store %s: %w", abs, dbErr(err))
	}

	if s.r, err = sql.Open("sqlite", dsn(abs, true)); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("opening token store %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxIdleTime(5 * time.Minute)
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening token store %s: %w", abs, dbErr(err))
	}
	return s, nil
}

// dsn is the connection string of the file at abs. Readers are query-only.
func dsn(abs string, reader bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	// Two processes that start together on a new file (an old and a new
	// Caddy) may both find a migration pending; the second one's fails
	// (the table exists, or the file is locked) and rolls back whole, as
	// each runs in its transaction. goose has no lock for SQLite, so try
	// again: the versions the other process applied are then read as
	// applied.
	for attempt := 1; ; attempt++ {
		_, err = p.Up(ctx)
		if err == nil || attempt == migrateAttempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// migrateAttempts bounds the retries of migrate.
const migrateAttempts = 5

func (s *Store) prepare(ctx context.Context) error {
	stmts := []struct {
		db  *sql.DB
		dst **sql.Stmt
		sql string
	}{
		{s.r, &s.getToken, `SELECT ` + tokenColumns + ` FROM tokens WHERE id = ?`},
		{s.r, &s.getUser, `SELECT ` + userColumns + ` FROM users WHERE id = ?`},
		{s.w, &s.authUpsert, authUpsertSQL},
		{s.w, &s.authAdd, authAddSQL},
		{s.w, &s.authFoldAdd, authFoldAddSQL},
		{s.w, &s.authRowCount, authRowCountSQL},
		{s.w, &s.tokenName, `SELECT name FROM tokens WHERE id = ?`},
		{s.w, &s.tokenUsed, tokenUsedSQL},
	}
	for _, st := range stmts {
		var err error
		if *st.dst, err = st.db.PrepareContext(ctx, st.sql); err != nil {
			return fmt.Errorf("preparing %q: %w", st.sql, err)
		}
	}
	return nil
}

// Close releases the store. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		for _, st := range []*sql.Stmt{s.getToken, s.getUser, s.authUpsert, s.authAdd, s.authFoldAdd,
			s.authRowCount, s.tokenName, s.tokenUsed} {
			if st != nil {
				st.Close()
			}
		}
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// write runs fn in a write transaction. An error fn returns is passed on
// unchanged, so that the errors of callbacks reach the caller as they were.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, dbErr(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", op, dbErr(err))
	}
	return nil
}

// queryRows runs a query and scans every row it returns, closing the rows:
// database/sql's counterpart of pgx.CollectRows. Errors are marked by dbErr
// and prefixed with what.
func queryRows[T any](ctx context.Context, q queryer, what, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, dbErr(err))
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, dbErr(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, dbErr(err))
	}
	return out, nil
}

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// dbErr marks the errors that mean the database cannot be used now (locked
// past the busy timeout, unreachable file, I/O failure, out of time, closed)
// with apitoken.ErrUnavailable.
func dbErr(err error) error {
	if err == nil || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", apitoken.ErrUnavailable, err)
}

func unavailable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_INTERRUPT:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "sql: database is closed") || strings.Contains(err.Error(), "sql: statement is closed")
}

// constraint reports whether err is the SQLite constraint violation code
// (an extended code such as SQLITE_CONSTRAINT_UNIQUE).
func constraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

// Times are stored as unix microseconds, UTC.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros is a nullable time column value.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// stored is t as it reads back from the database.
func stored(t time.Time) time.Time { return fromMicros(micros(t)) }

func storedPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := stored(*t)
	return &v
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Interface guards
var _ apitoken.Store = (*Store)(nil)
