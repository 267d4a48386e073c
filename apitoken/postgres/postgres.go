// Package postgres is the apitoken.Store on PostgreSQL (pgx v5), for several
// Caddy instances that share one database and so make one deployment.
//
// The tables live in the first schema of the connection's search_path (set
// it in the DSN: search_path=apitokens). Migrations are embedded and applied
// by goose at Open under a session advisory lock, so instances that start
// together migrate once, one after the other.
//
// Writes that read before they write lock what they read: UpdateToken and
// RecordAuth lock the token's row (SELECT ... FOR NO KEY UPDATE), UpdateUser
// the user's, so a write from another instance waits instead of
// interleaving. Audit counts are added with INSERT ... ON CONFLICT DO UPDATE
// (count = count + excluded.count), so batches from several instances sum
// exactly, and each batch records its id in its own transaction, so a batch
// whose COMMIT was sent but not acknowledged is found committed or not and
// never counted twice.
//
// Every change to a token or user adds a row to the change sequence in its
// own transaction (change.go) and prompts the listeners with an empty
// pg_notify; Wake listens on a dedicated connection (see watch.go).
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

//go:embed migrations/*.sql
var migrations embed.FS

// connectTimeout bounds the opening of one connection when the DSN sets no
// connect_timeout, so that an unreachable server is reported (as
// apitoken.ErrUnavailable) instead of hanging a request.
const connectTimeout = 5 * time.Second

// Store is an apitoken.Store on one PostgreSQL schema.
type Store struct {
	pool    *pgxpool.Pool
	schema  string // where the tables are: current_schema() of the pool
	channel string // the NOTIFY channel of this schema
	logger  *slog.Logger

	lastPrune atomic.Int64 // unix seconds of the last audit_batches pruning

	closeOnce sync.Once
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets where Wake reports a lost and a re-established change
// feed. Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.logger = l
		}
	}
}

// Open connects to the database named by dsn (a postgres:// URL or key=value
// string, pgx syntax) and applies the pending migrations. The pool is
// configured by the DSN's pool_* parameters (pool_max_conns,
// pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time,
// pool_health_check_period), with pgx's defaults otherwise; a DSN without
// connect_timeout gets 5 s.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("opening token store: empty PostgreSQL DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors hide the password.
		return nil, fmt.Errorf("opening token store: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	s := &Store{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("opening token store: %w", dbErr(err))
	}
	var schema *string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening token store on %s: %w", where(cfg), dbErr(err))
	}
	if schema == nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening token store on %s: no schema of the search_path exists; create it, or set search_path in the DSN to one that does", where(cfg))
	}
	s.schema = *schema
	s.channel = channelName(s.schema)
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("migrating token store on %s (schema %q): %w", where(cfg), s.schema, dbErr(err))
	}
	return s, nil
}

// where names the server and database of cfg for errors, without secrets.
func where(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Schema is the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Channel is the NOTIFY channel on which the stores of this schema prompt
// the listeners to read the change sequence. The connection that listens on it has the application_name
// "caddy-apitokens feed <channel>".
func (s *Store) Channel() string { return s.channel }

// hash64 is a stable 64-bit digest of a name.
func hash64(name string) int64 {
	h := sha256.Sum256([]byte(name))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// versionTable records the applied migrations. It is not goose's default
// (goose_db_version), so that a schema shared with an application that also
// uses goose never mixes the two histories.
const versionTable = "apitokens_db_version"

// migrationLockID is the advisory lock taken while migrating schema: one per
// schema, so that deployments in other schemas of the database do not wait.
func migrationLockID(schema string) int64 { return hash64("caddy-apitokens migrations " + schema) }

// channelName is the NOTIFY channel of the store in schema. Channels are
// database-wide, so it is named after the schema (by digest: a channel name
// is at most 63 bytes).
func channelName(schema string) string {
	h := sha256.Sum256([]byte("caddy-apitokens changes " + schema))
	return "apitokens_" + hex.EncodeToString(h[:8])
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Instances starting together wait for each other: the first applies
	// the migrations, the others find nothing left to do. goose probes the
	// lock every second for up to two minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID(s.schema)), lock.WithLockTimeout(1, 120))
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool) // closing it leaves the pool open
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithTableName(versionTable),
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close releases the store. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.pool.Close() })
	return nil
}

// errCommitUnknown marks a COMMIT that was sent but not acknowledged: the
// transaction may or may not have been applied.
var errCommitUnknown = errors.New("the database did not acknowledge the commit; it may or may not have been applied")

// write runs fn in a READ COMMITTED transaction (whatever the database's
// default: the locking of this package relies on each statement seeing what
// committed before it). An error fn returns is passed on unchanged, so that
// the errors of callbacks reach the caller as they were.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("%s: %w", op, dbErr(err))
	}
	if err := fn(tx); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx) // a failed rollback closes the connection
		cancel()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		// Only the server's own refusal says for sure that nothing was
		// applied. (pgconn.SafeToRetry cannot tell: a connection lost
		// while the answer to a COMMIT that reached the server was awaited
		// reads as "conn closed", safe to retry.)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("%s: %w", op, dbErr(err))
		}
		return fmt.Errorf("%s: %w: %w", op, errCommitUnknown, unavailableErr(err))
	}
	return nil
}

// dbErr marks the errors that mean the database cannot be used now
// (unreachable, refused, restarting, out of connections, out of time, lock
// or statement timeouts, deadlocks, the store closed) with
// apitoken.ErrUnavailable.
func dbErr(err error) error {
	if err == nil || !unavailable(err) {
		return err
	}
	return unavailableErr(err)
}

func unavailableErr(err error) error {
	if errors.Is(err, apitoken.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", apitoken.ErrUnavailable, err)
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources: too many connections, disk full
			strings.HasPrefix(pgErr.Code, "57P"), // admin or crash shutdown, cannot connect now
			pgErr.Code == "57014",                // query canceled: statement_timeout
			pgErr.Code == "55P03",                // lock_not_available: lock_timeout
			pgErr.Code == "40001",                // serialization failure
			pgErr.Code == "40P01":                // deadlock detected
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	}
	// pgx reports a closed pool (puddle.ErrClosedPool) and a connection
	// broken mid-use only in words.
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "conn busy") || strings.Contains(msg, "unexpected EOF")
}

// constraint reports whether err violates the named constraint (or unique
// index) with the SQLSTATE code.
func constraint(err error, code, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code && (name == "" || pgErr.ConstraintName == name)
}

// SQLSTATE codes.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// Times are stored as timestamptz, which keeps microseconds; they read back
// in UTC.

func stored(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

func storedPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := stored(*t)
	return &v
}

// fromDB is a nullable time as the domain holds it: in UTC, nil for NULL.
func fromDB(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Interface guards
var (
	_ apitoken.Store = (*Store)(nil)
	_ apitoken.Waker = (*Store)(nil)
)
