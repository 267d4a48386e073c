package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// scaleSize is how much TestScale loads.
type scaleSize struct {
	users, tokensPerUser, logsPerToken int
}

// scaleSizeFromEnv: APITOKENS_SCALE=1 is the size of the SQLite scale test;
// APITOKENS_SCALE_SMALL=1 is a small one that proves the test in seconds.
func scaleSizeFromEnv(t *testing.T) scaleSize {
	switch {
	case os.Getenv("APITOKENS_SCALE") != "":
		return scaleSize{users: 10_000, tokensPerUser: 100, logsPerToken: 10}
	case os.Getenv("APITOKENS_SCALE_SMALL") != "":
		return scaleSize{users: 200, tokensPerUser: 100, logsPerToken: 10}
	}
	t.Skip("neither APITOKENS_SCALE (10,000 users, 1,000,000 tokens, 10,000,000 log rows; minutes) " +
		"nor APITOKENS_SCALE_SMALL (200 users, 20,000 tokens, 200,000 log rows; seconds) is set")
	return scaleSize{}
}

// TestScale_ManagementStaysFastWithAMillionTokens is the SQLite scale test
// on PostgreSQL: it fills the store's own schema with 10,000 users,
// 1,000,000 tokens and 10,000,000 log rows, times what the management
// routes and the audit writer do (worst of 5, each under 50 ms), and logs
// EXPLAIN (ANALYZE, BUFFERS) of every statement each operation sent: the
// store's own SQL and arguments, recorded by a pgx tracer on its pool.
//
//	APITOKENS_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  APITOKENS_SCALE=1 go test -run TestScale -v -timeout 60m ./apitoken/postgres/
//
// APITOKENS_SCALE_SMALL=1 instead of APITOKENS_SCALE=1 loads 200 users.
func TestScale_ManagementStaysFastWithAMillionTokens(t *testing.T) {
	size := scaleSizeFromEnv(t)
	const maxLatency = 50 * time.Millisecond
	// The audit writer's flushes run off the request path, one every flush
	// interval (500 ms): that is their bound. One token used from 100
	// addresses in one window reaches the window's row bound: each record
	// is then placed by the bound's rule, one round trip each.
	const flushOp, flushLimit = "record a flush", 500 * time.Millisecond
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	dsn, _ := pgtest.Schema(t)
	st, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := traceQueries(t, st)

	tokens, logs := size.users*size.tokensPerUser, size.users*size.tokensPerUser*size.logsPerToken
	began := time.Now()
	bulkLoad(t, dsn, size, start)
	t.Logf("loaded %d users, %d tokens, %d log rows in %v", size.users, tokens, logs, time.Since(began).Round(time.Second))

	userID := "user" + strconv.Itoa(size.users*42/100)
	tokenID := fmt.Sprintf("tok_%026d", tokens*42/100)
	svc := apitoken.NewService(apitoken.ServiceConfig{Store: st, MaxTokensPerUser: size.tokensPerUser + 10}) // the loaded tokens and the timed creates
	caller, err := svc.Caller(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}

	type op struct {
		name string
		run  func(i int) error
	}
	ops := []op{
		{"create a token", func(i int) error {
			_, err := svc.CreateToken(ctx, caller, apitoken.TokenInput{Name: "scale " + strconv.Itoa(i), Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
			return err
		}},
		{"list a user's tokens (100)", func(int) error {
			ts, _, err := svc.ListTokens(ctx, caller, apitoken.TokenFilter{Page: apitoken.Page{Limit: 100}})
			if err == nil && len(ts) != 100 {
				t.Errorf("listed %d tokens", len(ts))
			}
			return err
		}},
		{"read a token's newest logs (100)", func(int) error {
			ls, _, err := st.ListLogs(ctx, apitoken.LogFilter{TokenID: tokenID, Page: apitoken.Page{Limit: 100}})
			if err == nil && len(ls) != size.logsPerToken {
				t.Errorf("read %d logs of %s, want %d", len(ls), tokenID, size.logsPerToken)
			}
			return err
		}},
		{"admin: every token, first page", func(int) error {
			_, _, err := st.ListTokens(ctx, apitoken.TokenFilter{Page: apitoken.Page{Limit: 100}})
			return err
		}},
		{"admin: every log, first page", func(int) error {
			_, _, err := st.ListLogs(ctx, apitoken.LogFilter{Page: apitoken.Page{Limit: 100}})
			return err
		}},
		{"admin: one activity's logs (CREATE)", func(int) error {
			_, _, err := st.ListLogs(ctx, apitoken.LogFilter{Activity: apitoken.ActivityCreate, Page: apitoken.Page{Limit: 100}})
			return err
		}},
		{"admin: one owner's expired tokens", func(int) error {
			_, _, err := st.ListTokens(ctx, apitoken.TokenFilter{Owner: "user7", Statuses: []apitoken.Status{apitoken.StatusExpired}, Now: time.Now(), Page: apitoken.Page{Limit: 100}})
			return err
		}},
		{"admin: users, first page", func(int) error {
			_, _, err := st.ListUsers(ctx, apitoken.UserFilter{Page: apitoken.Page{Limit: 100}})
			return err
		}},
		{"reminders: tokens expiring in 30 days", func(int) error {
			from := start.AddDate(1, 0, 0)
			_, _, err := st.ListExpiringTokens(ctx, from, from.AddDate(0, 0, 30), apitoken.Page{Limit: 100})
			return err
		}},
		{"guard: a token's state (cache miss)", func(int) error {
			_, err := st.GetToken(ctx, tokenID)
			return err
		}},
		{"guard: a user's state (cache miss)", func(int) error {
			_, err := st.GetUser(ctx, userID)
			return err
		}},
		{"record a flush of 100 tokens' attempts", func(i int) error {
			recs := make([]apitoken.AuthRecord, 100)
			now := time.Now()
			for j := range recs {
				recs[j] = apitoken.AuthRecord{TokenID: fmt.Sprintf("tok_%026d", tokens*42/100+j), ActivityBy: "Reports API",
					Result: apitoken.ResultOK, ClientIP: "198.51.100.7", Window: now.Truncate(time.Minute), First: now, Last: now, Count: 1}
			}
			return st.RecordAuth(ctx, "", recs)
		}},
		{"record a flush of one token from 100 addresses", func(i int) error {
			recs := make([]apitoken.AuthRecord, 100)
			now := time.Now()
			for j := range recs {
				recs[j] = apitoken.AuthRecord{TokenID: tokenID, ActivityBy: "Reports API", Result: apitoken.ResultOK,
					ClientIP: "198.51.100." + strconv.Itoa(j), Window: now.Truncate(time.Minute), First: now, Last: now, Count: 1}
			}
			return st.RecordAuth(ctx, "", recs)
		}},
		{"revoke a token (change sequence)", func(i int) error {
			_, err := st.UpdateToken(ctx, fmt.Sprintf("tok_%026d", tokens*42/100+1+i), func(tk *apitoken.Token) (apitoken.Log, error) {
				now := time.Now()
				tk.RevokedAt, tk.RevokedBy = &now, "scale"
				return apitoken.Log{Activity: apitoken.ActivityRevoke, ActivityOn: now, ActivityBy: "scale"}, nil
			})
			return err
		}},
		{"guard: read the change sequence", func(int) error {
			_, err := st.Changes(ctx, 0, 1000)
			return err
		}},
	}
	for _, o := range ops {
		var worst time.Duration
		var each []string
		for i := range 5 {
			rec.record(i == 0) // the statements of the first call
			began := time.Now()
			err := o.run(i)
			took := time.Since(began)
			rec.record(false)
			if err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			worst = max(worst, took)
			each = append(each, took.Round(10*time.Microsecond).String())
		}
		t.Logf("%-48s worst of 5: %v (each: %s)", o.name, worst, strings.Join(each, ", "))
		limit := maxLatency
		if strings.HasPrefix(o.name, flushOp) {
			limit = flushLimit
		}
		if worst > limit {
			t.Errorf("%s took %v, over %v", o.name, worst, limit)
		}
		// Explained now, on the data the operation saw.
		for _, s := range rec.take() {
			t.Logf("%s:\n%s", o.name, explain(ctx, t, st.pool, s))
		}
	}
}

// bulkLoad fills the schema of dsn with plain SQL on the store's own tables
// (the store API would take hours for ten million rows): the secondary
// indexes and foreign keys of tokens and logs are dropped for the load and
// made again from their definitions as read from the catalog, so the test
// measures the schema the migrations made.
func bulkLoad(t *testing.T, dsn string, size scaleSize, start time.Time) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	var restore []string
	rows, _ := conn.Query(ctx, `SELECT 'ALTER TABLE ' || conrelid::regclass || ' ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid),
			'ALTER TABLE ' || conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(conname)
		FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
			AND conrelid IN ('tokens'::regclass, 'logs'::regclass)
		UNION ALL
		SELECT indexdef, 'DROP INDEX ' || quote_ident(indexname) FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('tokens', 'logs')
			AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)`)
	drops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var create, drop string
		err := r.Scan(&create, &drop)
		restore = append(restore, create)
		return drop, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drops {
		exec(d)
	}
	exec(`SET maintenance_work_mem = '256MB'`)
	exec(`INSERT INTO users (id, roles, created_at)
		SELECT 'user' || i, '{api_tokens}', $2::timestamptz + i * interval '1 microsecond' FROM generate_series(0, $1 - 1) i`,
		size.users, start)
	tokens := size.users * size.tokensPerUser
	exec(`INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at, generated_at, jti_hash, expires_at)
		SELECT 'tok_' || lpad(i::text, 26, '0'), 'user' || (i % $2), 'token ' || i, 'token ' || i, 3, '1y',
			$3::timestamptz + i * interval '1 microsecond', $3::timestamptz + i * interval '1 microsecond',
			sha256(i::text::bytea), $3::timestamptz + i * interval '1 microsecond' + interval '365 days'
		FROM generate_series(0, $1 - 1) i`, tokens, size.users, start)
	logs := tokens * size.logsPerToken
	const chunk = 1_000_000
	for from := 0; from < logs; from += chunk {
		exec(`INSERT INTO logs (token_id, token_name, activity, activity_on, activity_by, result, client_ip, user_agent,
				count, last_on, window_start)
			SELECT 'tok_' || lpad((i / $3)::text, 26, '0'), 'token ' || (i / $3), 'AUTHENTICATE',
				$4::timestamptz + i * interval '1 microsecond', 'Reports API', 'OK', '192.0.2.' || (i % 250),
				'Microsoft.Data.Mashup', 1 + i % 7, $4::timestamptz + i * interval '1 microsecond',
				$4::timestamptz + (i % $3) * interval '1 minute'
			FROM generate_series($1, $2 - 1) i`, from, min(from+chunk, logs), size.logsPerToken, start)
	}
	for _, r := range restore {
		exec(r)
	}
	exec(`VACUUM ANALYZE users`)
	exec(`VACUUM ANALYZE tokens`)
	exec(`VACUUM ANALYZE logs`)
}

// statement is one SQL statement a store sent, with its arguments.
type statement struct {
	sql  string
	args []any
}

// queryRecorder is a pgx tracer that keeps, while on, the statements sent
// through the pool (one of each text), leaving out transaction control,
// locks and notifications.
type queryRecorder struct {
	mu    sync.Mutex
	on    bool
	seen  map[string]bool
	stmts []statement
}

func (r *queryRecorder) record(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = on
}

func (r *queryRecorder) take() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmts
	r.stmts, r.seen = nil, nil
	return s
}

func (r *queryRecorder) add(sql string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := strings.ToLower(strings.TrimSpace(sql))
	if !r.on || r.seen[sql] || strings.Contains(q, "pg_advisory") || strings.Contains(q, "pg_notify") ||
		!(strings.HasPrefix(q, "select") || strings.HasPrefix(q, "insert") || strings.HasPrefix(q, "update") ||
			strings.HasPrefix(q, "delete") || strings.HasPrefix(q, "with")) {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[sql] = true
	r.stmts = append(r.stmts, statement{sql, args})
}

func (r *queryRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL, d.Args)
	return ctx
}

func (r *queryRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *queryRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *queryRecorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL, d.Args)
}

func (r *queryRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// traceQueries gives st a pool like its own whose connections report every
// statement to the returned recorder.
func traceQueries(t *testing.T, st *Store) *queryRecorder {
	rec := &queryRecorder{}
	cfg := st.pool.Config()
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.pool.Close()
	st.pool = pool
	return rec
}

// explain is EXPLAIN (ANALYZE, BUFFERS) of s, run in a transaction that is
// rolled back, so that a write is planned and run but leaves nothing. A
// statement that cannot run again (an insert of a taken id) is explained
// without ANALYZE.
func explain(ctx context.Context, t *testing.T, pool *pgxpool.Pool, s statement) string {
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	plan := func(opts string) (string, error) {
		if _, err := tx.Exec(ctx, `SAVEPOINT explain`); err != nil {
			return "", err
		}
		rows, _ := tx.Query(ctx, `EXPLAIN `+opts+` `+s.sql, s.args...)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			_, _ = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT explain`)
			return "", err
		}
		return strings.Join(lines, "\n"), nil
	}
	sql := strings.Join(strings.Fields(s.sql), " ")
	out, err := plan(`(ANALYZE, BUFFERS)`)
	if err != nil {
		var err2 error
		if out, err2 = plan(``); err2 != nil {
			t.Errorf("EXPLAIN %s: %v", sql, err2)
			return ""
		}
		out = "(not run again: " + err.Error() + ")\n" + out
	}
	return sql + "\n" + out
}
