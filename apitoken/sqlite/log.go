package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/internal/cursor"
)

// insertLog writes one log row. A row that is not a coalesced one counts one
// event: Count 1 and LastOn its ActivityOn, unless the log says otherwise.
func insertLog(ctx context.Context, tx *sql.Tx, l apitoken.Log) error {
	if l.Count <= 0 {
		l.Count = 1
	}
	if l.LastOn.IsZero() {
		l.LastOn = l.ActivityOn
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO logs (token_id, token_name, subject, activity, activity_on, activity_by,
		result, reason, client_ip, user_agent, count, last_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nullString(l.TokenID), l.TokenName, l.Subject, string(l.Activity), micros(l.ActivityOn), l.ActivityBy,
		l.Result, l.Reason, l.ClientIP, l.UserAgent, l.Count, micros(l.LastOn))
	if err != nil {
		return fmt.Errorf("writing %s log: %w", l.Activity, dbErr(err))
	}
	return nil
}

const logColumns = `id, token_id, token_name, subject, activity, activity_on, activity_by, result, reason,
	client_ip, user_agent, count, last_on`

func scanLog(row interface{ Scan(...any) error }) (apitoken.Log, error) {
	var l apitoken.Log
	var tokenID sql.NullString
	var on, last int64
	if err := row.Scan(&l.ID, &tokenID, &l.TokenName, &l.Subject, &l.Activity, &on, &l.ActivityBy, &l.Result,
		&l.Reason, &l.ClientIP, &l.UserAgent, &l.Count, &last); err != nil {
		return apitoken.Log{}, err
	}
	l.TokenID = tokenID.String
	l.ActivityOn, l.LastOn = fromMicros(on), fromMicros(last)
	return l, nil
}

// ListLogs lists log rows matching f, newest first (by id: the order rows
// were started in). f.Since keeps the rows whose LastOn is at or after it.
func (s *Store) ListLogs(ctx context.Context, f apitoken.LogFilter) ([]apitoken.Log, string, error) {
	n := cursor.Limit(f.Page)
	var where []string
	var args []any
	if f.TokenID != "" {
		where = append(where, `token_id = ?`)
		args = append(args, f.TokenID)
	}
	if f.Activity != "" {
		// With a token, walk the token's index: most of a token's rows are
		// of one activity (AUTHENTICATE), so the activity index is the
		// worse choice, and the unary + keeps SQLite from taking it.
		cond := `activity = ?`
		if f.TokenID != "" {
			cond = `+activity = ?`
		}
		where = append(where, cond)
		args = append(args, string(f.Activity))
	}
	if f.Owner != "" {
		where = append(where, `token_id IN (SELECT id FROM tokens WHERE owner = ?)`)
		args = append(args, f.Owner)
	}
	if f.Result != "" {
		where = append(where, `result = ?`)
		args = append(args, f.Result)
	}
	if !f.Since.IsZero() {
		where = append(where, `last_on >= ?`)
		args = append(args, micros(f.Since))
	}
	if f.Cursor != "" {
		id, err := cursor.ParseID("l", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < ?`)
		args = append(args, id)
	}
	q := `SELECT ` + logColumns + ` FROM logs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)

	logs, err := queryRows(ctx, s.r, "listing logs", q, args, scanLog)
	if err != nil {
		return nil, "", err
	}
	logs, next := cursor.Page(logs, n, func(last apitoken.Log) string { return cursor.ID("l", last.ID) })
	return logs, next, nil
}

// RecordAuth statements. The coalescing key is the logs_auth_key index.
const (
	// authUpsertSQL adds a record to its row or starts the row. It returns
	// the row's count: equal to the record's when the row is new (a stored
	// count is at least 1).
	authUpsertSQL = `INSERT INTO logs (token_id, token_name, activity, activity_on, activity_by, result, reason,
		client_ip, user_agent, count, last_on, window_start) VALUES (?, ?, 'AUTHENTICATE', ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_id, window_start, activity_by, result, reason, client_ip, user_agent)
			WHERE activity = 'AUTHENTICATE'
		DO UPDATE SET count = count + excluded.count, activity_on = min(activity_on, excluded.activity_on),
			last_on = max(last_on, excluded.last_on)
		RETURNING count`
	// authAddSQL adds a record to its row, if the row exists.
	authAddSQL = `UPDATE logs SET count = count + ?, activity_on = min(activity_on, ?), last_on = max(last_on, ?)
		WHERE activity = 'AUTHENTICATE' AND token_id = ? AND window_start = ? AND activity_by = ? AND result = ?
			AND reason = ? AND client_ip = ? AND user_agent = ?`
	// authFoldAddSQL adds a record to the folded row of its token, window and
	// result, if there is one.
	authFoldAddSQL = `UPDATE logs SET count = count + ?, activity_on = min(activity_on, ?), last_on = max(last_on, ?)
		WHERE id = (SELECT id FROM logs WHERE activity = 'AUTHENTICATE' AND token_id = ? AND window_start = ?
			AND result = ? AND reason = '` + apitoken.ReasonFolded + `' ORDER BY id LIMIT 1)`
	authRowCountSQL = `SELECT count(*) FROM logs WHERE activity = 'AUTHENTICATE' AND token_id = ? AND window_start = ?`
	// tokenUsedSQL moves last_used_at forward, never back.
	tokenUsedSQL = `UPDATE tokens SET last_used_at = ?, last_used_ip = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
)

type tokenWindow struct {
	tokenID string
	window  int64
}

type lastUse struct {
	at int64
	ip string
}

// RecordAuth adds coalesced AUTHENTICATE attempts in one write transaction.
// Records of tokens that do not exist, and records with no attempt (Count
// below 1), are skipped. A record that is already folded (Reason "folded")
// is added to its window's folded row for its result, so that there is at
// most one folded row per token, window and result. The log row takes the
// token's name from the tokens table.
//
// The transaction first records batchID in audit_batches; a batch whose id
// is there already was applied, and is not applied again. An empty batchID
// is given a fresh one.
func (s *Store) RecordAuth(ctx context.Context, batchID string, records []apitoken.AuthRecord) error {
	if len(records) == 0 {
		return nil
	}
	if batchID == "" {
		batchID = apitoken.NewBatchID()
	}
	err := s.write(ctx, "recording authentications", func(tx *sql.Tx) error {
		now := time.Now()
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_batches (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
			batchID, micros(now))
		if err != nil {
			return fmt.Errorf("recording authentications: %w", dbErr(err))
		}
		if affected(res) == 0 {
			return errBatchApplied
		}
		if last := s.lastPrune.Load(); now.Sub(time.Unix(last, 0)) > pruneEvery && s.lastPrune.CompareAndSwap(last, now.Unix()) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM audit_batches WHERE created_at < ?`,
				micros(now.Add(-apitoken.AuditBatchRetention))); err != nil {
				return fmt.Errorf("recording authentications: %w", dbErr(err))
			}
		}

		w := &authWriter{
			upsert:  tx.StmtContext(ctx, s.authUpsert),
			add:     tx.StmtContext(ctx, s.authAdd),
			foldAdd: tx.StmtContext(ctx, s.authFoldAdd),
		}
		var (
			rowCount = tx.StmtContext(ctx, s.authRowCount)
			getName  = tx.StmtContext(ctx, s.tokenName)
			used     = tx.StmtContext(ctx, s.tokenUsed)
		)
		names := make(map[string]*string) // nil: no such token
		windows := make(map[tokenWindow]*apitoken.AuthWindow)
		uses := make(map[string]lastUse)
		fail := func(err error) error { return fmt.Errorf("recording authentications: %w", dbErr(err)) }

		for i := range records {
			r := records[i]
			if r.Count < 1 {
				continue
			}
			name, ok := names[r.TokenID]
			if !ok {
				var n string
				switch err := getName.QueryRowContext(ctx, r.TokenID).Scan(&n); {
				case err == nil:
					name = &n
				case !errors.Is(err, sql.ErrNoRows):
					return fail(err)
				}
				names[r.TokenID] = name
			}
			if name == nil {
				continue
			}
			if r.First.IsZero() {
				r.First = r.Last
			}
			if r.Last.IsZero() {
				r.Last = r.First
			}
			key := tokenWindow{r.TokenID, micros(r.Window)}
			win := windows[key]
			if win == nil {
				win = &apitoken.AuthWindow{}
				if err := rowCount.QueryRowContext(ctx, r.TokenID, key.window).Scan(&win.Rows); err != nil {
					return fail(err)
				}
				windows[key] = win
			}
			w.name = *name
			if err := apitoken.AddAuthRecord(ctx, w, win, &r); err != nil {
				return fail(err)
			}

			if r.Result == apitoken.ResultOK && r.Reason != apitoken.ReasonPreviousJWT {
				if u, ok := uses[r.TokenID]; !ok || micros(r.Last) > u.at {
					uses[r.TokenID] = lastUse{at: micros(r.Last), ip: r.ClientIP}
				}
			}
		}
		for id, u := range uses {
			if _, err := used.ExecContext(ctx, u.at, u.ip, id, u.at); err != nil {
				return fail(err)
			}
		}
		return nil
	})
	if errors.Is(err, errBatchApplied) {
		return nil
	}
	return err
}

// authWriter writes AUTHENTICATE rows in a RecordAuth transaction, for
// apitoken.AddAuthRecord, which decides where each record goes.
type authWriter struct {
	upsert, add, foldAdd *sql.Stmt
	name                 string // the token's name, for a row it starts
}

func (w *authWriter) UpsertAuthRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	var count int64
	err := w.upsert.QueryRowContext(ctx, r.TokenID, w.name, micros(r.First), r.ActivityBy, r.Result, r.Reason,
		r.ClientIP, r.UserAgent, r.Count, micros(r.Last), micros(r.Window)).Scan(&count)
	return err == nil && count == r.Count, err
}

func (w *authWriter) AddToAuthRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	res, err := w.add.ExecContext(ctx, r.Count, micros(r.First), micros(r.Last), r.TokenID, micros(r.Window), r.ActivityBy,
		r.Result, r.Reason, r.ClientIP, r.UserAgent)
	if err != nil {
		return false, err
	}
	return affected(res) > 0, nil
}

func (w *authWriter) AddToFoldedRow(ctx context.Context, r *apitoken.AuthRecord) (bool, error) {
	res, err := w.foldAdd.ExecContext(ctx, r.Count, micros(r.First), micros(r.Last), r.TokenID, micros(r.Window), r.Result)
	if err != nil {
		return false, err
	}
	return affected(res) > 0, nil
}

// errBatchApplied ends the transaction of a batch whose id is already in
// audit_batches.
var errBatchApplied = errors.New("audit batch already applied")

// pruneEvery is how often a store deletes old audit_batches rows.
const pruneEvery = 5 * time.Minute

func affected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}
