package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/internal/cursor"
)

// insertLog writes one log row. A row that is not a coalesced one counts one
// event: Count 1 and LastOn its ActivityOn, unless the log says otherwise.
func insertLog(ctx context.Context, tx pgx.Tx, l apitoken.Log) error {
	if l.Count <= 0 {
		l.Count = 1
	}
	if l.LastOn.IsZero() {
		l.LastOn = l.ActivityOn
	}
	var tokenID *string
	if l.TokenID != "" {
		tokenID = &l.TokenID
	}
	_, err := tx.Exec(ctx, `INSERT INTO logs (token_id, token_name, subject, activity, activity_on, activity_by,
		result, reason, client_ip, user_agent, count, last_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		tokenID, l.TokenName, l.Subject, string(l.Activity), stored(l.ActivityOn), l.ActivityBy,
		l.Result, l.Reason, l.ClientIP, l.UserAgent, l.Count, stored(l.LastOn))
	if err != nil {
		return fmt.Errorf("writing %s log: %w", l.Activity, dbErr(err))
	}
	return nil
}

const logColumns = `id, token_id, token_name, subject, activity, activity_on, activity_by, result, reason,
	client_ip, user_agent, count, last_on`

func scanLog(row pgx.Row) (apitoken.Log, error) {
	var l apitoken.Log
	var tokenID *string
	if err := row.Scan(&l.ID, &tokenID, &l.TokenName, &l.Subject, &l.Activity, &l.ActivityOn, &l.ActivityBy, &l.Result,
		&l.Reason, &l.ClientIP, &l.UserAgent, &l.Count, &l.LastOn); err != nil {
		return apitoken.Log{}, err
	}
	if tokenID != nil {
		l.TokenID = *tokenID
	}
	l.ActivityOn, l.LastOn = l.ActivityOn.UTC(), l.LastOn.UTC()
	return l, nil
}

// ListLogs lists log rows matching f, newest first (by id: the order rows
// were started in). f.Since keeps the rows whose LastOn is at or after it.
func (s *Store) ListLogs(ctx context.Context, f apitoken.LogFilter) ([]apitoken.Log, string, error) {
	n := cursor.Limit(f.Page)
	var where []string
	var a args
	if f.TokenID != "" {
		where = append(where, `token_id = `+a.add(f.TokenID))
	}
	if f.Activity != "" {
		where = append(where, `activity = `+a.add(string(f.Activity)))
	}
	if f.Owner != "" {
		where = append(where, `token_id IN (SELECT id FROM tokens WHERE owner = `+a.add(f.Owner)+`)`)
	}
	if f.Result != "" {
		where = append(where, `result = `+a.add(f.Result))
	}
	if !f.Since.IsZero() {
		where = append(where, `last_on >= `+a.add(stored(f.Since)))
	}
	if f.Cursor != "" {
		id, err := cursor.ParseID("l", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < `+a.add(id))
	}
	q := `SELECT ` + logColumns + ` FROM logs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ` + a.add(n+1)

	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing logs: %w", dbErr(err))
	}
	logs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Log, error) { return scanLog(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing logs: %w", dbErr(err))
	}
	logs, next := cursor.Page(logs, n, func(last apitoken.Log) string { return cursor.ID("l", last.ID) })
	return logs, next, nil
}

// RecordAuth statements. The coalescing key is the logs_auth_key index.
const (
	// authUpsertSQL adds a record to its row or starts the row. It returns
	// whether the row is new (xmax is 0 only for a row this statement
	// inserted).
	authUpsertSQL = `INSERT INTO logs AS l (token_id, token_name, activity, activity_on, activity_by, result, reason,
		client_ip, user_agent, count, last_on, window_start) VALUES ($1, $2, 'AUTHENTICATE', $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (token_id, window_start, activity_by, result, reason, client_ip, user_agent)
			WHERE activity = 'AUTHENTICATE'
		DO UPDATE SET count = l.count + excluded.count, activity_on = least(l.activity_on, excluded.activity_on),
			last_on = greatest(l.last_on, excluded.last_on)
		RETURNING xmax = 0`
	// authAddSQL adds a record to its row, if the row exists.
	authAddSQL = `UPDATE logs SET count = count + $1, activity_on = least(activity_on, $2), last_on = greatest(last_on, $3)
		WHERE activity = 'AUTHENTICATE' AND token_id = $4 AND window_start = $5 AND activity_by = $6 AND result = $7
			AND reason = $8 AND client_ip = $9 AND user_agent = $10`
	// authFoldAddSQL adds a record to the folded row of its token, window and
	// result, if there is one.
	authFoldAddSQL = `UPDATE logs SET count = count + $1, activity_on = least(activity_on, $2), last_on = greatest(last_on, $3)
		WHERE id = (SELECT id FROM logs WHERE activity = 'AUTHENTICATE' AND token_id = $4 AND window_start = $5
			AND result = $6 AND reason = '` + apitoken.ReasonFolded + `' ORDER BY id LIMIT 1)`
	// authLockSQL locks the tokens of a batch, in id order so that two
	// batches never wait for each other in a cycle, and reads their names.
	// A batch holds its tokens' rows until it commits: the row count of a
	// token's window, read next, cannot change under it, so the bound holds
	// across instances.
	authLockSQL = `SELECT id, name FROM tokens WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	// authRowCountSQL counts the AUTHENTICATE rows of some tokens' windows.
	authRowCountSQL = `SELECT token_id, window_start, count(*) FROM logs
		WHERE activity = 'AUTHENTICATE' AND (token_id, window_start) IN (SELECT * FROM unnest($1::text[], $2::timestamptz[]))
		GROUP BY token_id, window_start`
	// tokenUsedSQL moves last_used_at forward, never back.
	tokenUsedSQL = `UPDATE tokens SET last_used_at = $1, last_used_ip = $2
		WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)`
	// batchSQL records a batch's id; no row is inserted if it is there.
	batchSQL = `INSERT INTO audit_batches (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`
	// pruneBatchSQL deletes the ids older than apitoken.AuditBatchRetention
	// ($1, in seconds), past which no batch is retried.
	pruneBatchSQL = `DELETE FROM audit_batches WHERE created_at < now() - make_interval(secs => $1)`
)

// pruneEvery is how often a store deletes old audit_batches rows.
const pruneEvery = 5 * time.Minute

type tokenWindow struct {
	tokenID string
	window  time.Time
}

type lastUse struct {
	at time.Time
	ip string
}

// RecordAuth adds coalesced AUTHENTICATE attempts in one transaction: all of
// them or none. Records of tokens that do not exist, and records with no
// attempt (Count below 1), are skipped. A record that is already folded
// (Reason "folded") is added to its window's folded row for its result, so
// that there is at most one folded row per token, window and result. The log
// row takes the token's name from the tokens table.
//
// The batch locks its tokens' rows first, so that batches of one token from
// several instances apply one after the other and the per-window row bound
// holds; counts are added in the database (count = count + excluded.count),
// never read and written back.
//
// The transaction first inserts batchID into audit_batches: if it is there
// already, an earlier write of this batch was applied (its COMMIT answer was
// lost) and nothing is written. A COMMIT not acknowledged is tried again at
// once under the same id, which settles it when the database is reachable;
// when it is not, the error goes to the caller, which writes the batch again
// later under the same id (the Auditor does). An empty batchID is given a
// fresh one.
func (s *Store) RecordAuth(ctx context.Context, batchID string, records []apitoken.AuthRecord) error {
	recs := slices.DeleteFunc(slices.Clone(records), func(r apitoken.AuthRecord) bool { return r.Count < 1 })
	if len(recs) == 0 {
		return nil
	}
	if batchID == "" {
		batchID = apitoken.NewBatchID()
	}
	for attempt := 1; ; attempt++ {
		err := s.recordAuth(ctx, batchID, recs)
		switch {
		case err == nil, errors.Is(err, errBatchApplied):
			return nil
		case attempt < 3 && ctx.Err() == nil &&
			(errors.Is(err, errCommitUnknown) || constraint(err, "40P01", "") || constraint(err, "40001", "")):
			// The same id makes the retry safe after a lost COMMIT answer.
			// A deadlock cannot come from two batches (they lock in one
			// order), but a batch and another writer may still meet one.
			continue
		}
		return err
	}
}

// errBatchApplied ends the transaction of a batch whose id is already in
// audit_batches: an earlier write of it committed.
var errBatchApplied = errors.New("audit batch already applied")

func (s *Store) recordAuth(ctx context.Context, batchID string, recs []apitoken.AuthRecord) error {
	return s.write(ctx, "recording authentications", func(tx pgx.Tx) error {
		fail := func(err error) error { return fmt.Errorf("recording authentications: %w", dbErr(err)) }

		// First, so that a write of a batch already applied stops here;
		// an earlier write still open on the server (its connection not
		// yet found dead) makes this insert wait for its end.
		tag, err := tx.Exec(ctx, batchSQL, batchID)
		if err != nil {
			return fail(err)
		}
		if tag.RowsAffected() == 0 {
			return errBatchApplied
		}

		ids := make([]string, 0, 8)
		for _, r := range recs {
			ids = append(ids, r.TokenID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		rows, err := tx.Query(ctx, authLockSQL, ids)
		if err != nil {
			return fail(err)
		}
		names := make(map[string]string, len(ids))
		var id, name string
		if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error { names[id] = name; return nil }); err != nil {
			return fail(err)
		}

		// The records of known tokens, grouped by token and window, and
		// the windows' row counts.
		type group struct {
			recs   []*apitoken.AuthRecord
			win    apitoken.AuthWindow
			folded bool
		}
		groups := map[tokenWindow]*group{}
		var order []tokenWindow
		for i := range recs {
			r := &recs[i]
			if _, ok := names[r.TokenID]; !ok {
				continue
			}
			if r.First.IsZero() {
				r.First = r.Last
			}
			if r.Last.IsZero() {
				r.Last = r.First
			}
			r.First, r.Last, r.Window = stored(r.First), stored(r.Last), stored(r.Window)
			k := tokenWindow{r.TokenID, r.Window}
			g := groups[k]
			if g == nil {
				g = &group{}
				groups[k] = g
				order = append(order, k)
			}
			g.recs = append(g.recs, r)
			g.folded = g.folded || r.Reason == apitoken.ReasonFolded
		}
		if len(order) == 0 {
			return nil
		}
		tokIDs := make([]string, len(order))
		wins := make([]time.Time, len(order))
		for i, k := range order {
			tokIDs[i], wins[i] = k.tokenID, k.window
		}
		rows, err = tx.Query(ctx, authRowCountSQL, tokIDs, wins)
		if err != nil {
			return fail(err)
		}
		var win time.Time
		var count int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &win, &count}, func() error {
			if g := groups[tokenWindow{id, win.UTC()}]; g != nil {
				g.win.Rows = int(count)
			}
			return nil
		}); err != nil {
			return fail(err)
		}

		// A window that stays under the bound whatever the batch adds (each
		// record starts at most one row) takes its upserts in one round
		// trip, with the rest of the batch's final statements; the others
		// go one record at a time, each placed by apitoken's rule on the
		// row count so far.
		var batch pgx.Batch
		w := &authWriter{tx: tx}
		for _, k := range order {
			g := groups[k]
			if !g.folded && g.win.Fits(len(g.recs)) {
				for _, r := range g.recs {
					batch.Queue(authUpsertSQL, upsertArgs(r, names[r.TokenID])...)
				}
				continue
			}
			for _, r := range g.recs {
				w.name = names[r.TokenID]
				if err := apitoken.AddAuthRecord(ctx, w, &g.win, r); err != nil {
					return fail(err)
				}
			}
		}

		uses := map[string]lastUse{}
		for _, k := range order {
			for _, r := range groups[k].recs {
				if r.Result != apitoken.ResultOK || r.Reason == apitoken.ReasonPreviousJWT {
					continue
				}
				if u, ok := uses[r.TokenID]; !ok || r.Last.After(u.at) {
					uses[r.TokenID] = lastUse{at: r.Last, ip: r.ClientIP}
				}
			}
		}
		for id, u := range uses {
			batch.Queue(tokenUsedSQL, u.at, u.ip, id)
		}
		if last := s.lastPrune.Load(); time.Since(time.Unix(last, 0)) > pruneEvery && s.lastPrune.CompareAndSwap(last, time.Now().Unix()) {
			batch.Queue(pruneBatchSQL, apitoken.AuditBatchRetention.Seconds())
		}
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return fail(err)
		}
		return nil
	})
}

// upsertArgs are the arguments of authUpsertSQL for r.
func upsertArgs(r *apitoken.AuthRecord, name string) []any {
	return []any{r.TokenID, name, r.First, r.ActivityBy, r.Result, r.Reason, r.ClientIP, r.UserAgent, r.Count, r.Last, r.Window}
}

// authWriter writes AUTHENTICATE rows in a RecordAuth transaction, for
// apitoken.AddAuthRecord, which decides where each record goes.
type authWriter struct {
	tx   pgx.Tx
	name string // the token's name, for a row it starts
}

func (w *authWriter) UpsertAuthRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	var isNew bool
	err := w.tx.QueryRow(ctx, authUpsertSQL, upsertArgs(r, w.name)...).Scan(&isNew)
	return isNew, err
}

func (w *authWriter) AddToAuthRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	tag, err := w.tx.Exec(ctx, authAddSQL, r.Count, r.First, r.Last, r.TokenID, r.Window, r.ActivityBy, r.Result,
		r.Reason, r.ClientIP, r.UserAgent)
	return err == nil && tag.RowsAffected() > 0, err
}

func (w *authWriter) AddToFoldedRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	tag, err := w.tx.Exec(ctx, authFoldAddSQL, r.Count, r.First, r.Last, r.TokenID, r.Window, r.Result)
	return err == nil && tag.RowsAffected() > 0, err
}
