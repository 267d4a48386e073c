package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/internal/cursor"
)

const notificationColumns = `id, event_key, destination, event, reminder, token_id, token_name, owner, scopes,
	expires_at, actor, event_at, state, attempts, last_error, next_attempt_at, lease, done_at, reason, unused_since, revoke_at`

func scanNotification(row interface{ Scan(...any) error }) (apitoken.Notification, error) {
	var n apitoken.Notification
	var scopes string
	var at, next int64
	var exp, done, unused, revokeAt sql.NullInt64
	if err := row.Scan(&n.ID, &n.Key, &n.Destination, &n.Event, &n.Reminder, &n.TokenID, &n.TokenName, &n.Owner,
		&scopes, &exp, &n.Actor, &at, &n.State, &n.Attempts, &n.LastError, &next, &n.Lease, &done,
		&n.Reason, &unused, &revokeAt); err != nil {
		return apitoken.Notification{}, err
	}
	var err error
	if n.Scopes, err = apitoken.ScopesOf(scopes); err != nil {
		return apitoken.Notification{}, err
	}
	n.ExpiresAt, n.DoneAt = timePtr(exp), timePtr(done)
	n.UnusedSince, n.RevokeAt = timePtr(unused), timePtr(revokeAt)
	n.At, n.NextAttemptAt = fromMicros(at), fromMicros(next)
	return n, nil
}

// insertNotifications adds ns to the outbox in tx, skipping those whose
// key and destination are there already, and returns how many it added.
func insertNotifications(ctx context.Context, tx *sql.Tx, ns []apitoken.Notification) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO notifications (event_key, destination, event, reminder, token_id,
		token_name, owner, scopes, expires_at, actor, event_at, next_attempt_at, reason, unused_since, revoke_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_key, destination) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("writing notifications: %w", dbErr(err))
	}
	defer st.Close()
	added := 0
	for _, n := range ns {
		if n.Key == "" || n.Destination == "" {
			return 0, fmt.Errorf("writing notifications: a notification needs a key and a destination")
		}
		next := n.NextAttemptAt
		if next.IsZero() {
			next = n.At
		}
		res, err := st.ExecContext(ctx, n.Key, n.Destination, string(n.Event), n.Reminder, n.TokenID, n.TokenName,
			n.Owner, n.Scopes.String(), nullMicros(n.ExpiresAt), n.Actor, micros(n.At), micros(next),
			string(n.Reason), nullMicros(n.UnusedSince), nullMicros(n.RevokeAt))
		if err != nil {
			return 0, fmt.Errorf("writing notifications: %w", dbErr(err))
		}
		k, _ := res.RowsAffected()
		added += int(k)
	}
	return added, nil
}

// EnqueueNotifications adds pending notifications, skipping those whose
// key and destination are in the outbox already.
func (s *Store) EnqueueNotifications(ctx context.Context, ns []apitoken.Notification) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	var added int
	err := s.write(ctx, "enqueueing notifications", func(tx *sql.Tx) error {
		var err error
		added, err = insertNotifications(ctx, tx, ns)
		return err
	})
	return added, err
}

// ClaimNotifications leases the due pending notifications of c's
// destinations. The store's single writer makes the claim atomic.
func (s *Store) ClaimNotifications(ctx context.Context, c apitoken.Claim) ([]apitoken.Notification, error) {
	if len(c.Destinations) == 0 || c.Limit <= 0 {
		return nil, nil
	}
	lease := apitoken.NewJTI()
	now := micros(c.Now)
	args := []any{lease, micros(c.Now.Add(c.Lease)), now, now}
	marks := make([]string, len(c.Destinations))
	for i, d := range c.Destinations {
		marks[i] = "?"
		args = append(args, d)
	}
	args = append(args, c.Limit)
	// Most polls find nothing due: ask a reader first, so that an idle
	// deliverer never takes the write lock.
	var due bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM notifications
		WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
			AND destination IN (`+strings.Join(marks, ", ")+`))`, args[2:len(args)-1]...).Scan(&due); err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", dbErr(err))
	}
	if !due {
		return nil, nil
	}
	q := `UPDATE notifications SET lease = ?, lease_until = ?
		WHERE id IN (SELECT id FROM notifications
			WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
				AND destination IN (` + strings.Join(marks, ", ") + `)
			ORDER BY next_attempt_at, id LIMIT ?)
		RETURNING ` + notificationColumns
	var out []apitoken.Notification
	err := s.write(ctx, "claiming notifications", func(tx *sql.Tx) error {
		var err error
		out, err = queryRows(ctx, tx, "claiming notifications", q, args, scanNotification)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b apitoken.Notification) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// FinishNotification records the outcome of a claimed notification.
func (s *Store) FinishNotification(ctx context.Context, id int64, lease string, r apitoken.NotificationResult) error {
	if lease == "" {
		return apitoken.Errorf(apitoken.ErrConflict, "notification %d: no claim to finish", id)
	}
	var done any
	next := micros(r.NextAttemptAt)
	if r.State != apitoken.NotificationPending {
		done = micros(r.At)
		next = micros(r.At)
	}
	attempted := 0
	if r.Attempted {
		attempted = 1
	}
	return s.write(ctx, "finishing notification", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET state = ?, attempts = attempts + ?,
			last_error = CASE WHEN ? THEN ? ELSE last_error END, next_attempt_at = ?, done_at = ?, lease = '', lease_until = NULL
			WHERE id = ? AND lease = ? AND state = 'pending'`,
			string(r.State), attempted, r.Attempted || r.State != apitoken.NotificationPending, r.Error, next, done, id, lease)
		if err != nil {
			return fmt.Errorf("finishing notification: %w", dbErr(err))
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM notifications WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return apitoken.Errorf(apitoken.ErrNotFound, "no notification %d", id)
		}
		if err != nil {
			return fmt.Errorf("finishing notification: %w", dbErr(err))
		}
		return apitoken.Errorf(apitoken.ErrConflict, "notification %d: the claim was lost (its lease ended and it was claimed again, or it is done)", id)
	})
}

// ListNotifications lists notifications matching f, newest first (by id).
func (s *Store) ListNotifications(ctx context.Context, f apitoken.NotificationFilter) ([]apitoken.Notification, string, error) {
	n := cursor.Limit(f.Page)
	var where []string
	var args []any
	if f.TokenID != "" {
		where = append(where, `token_id = ?`)
		args = append(args, f.TokenID)
	}
	if f.State != "" {
		if _, err := apitoken.ParseNotificationState(string(f.State)); err != nil {
			return nil, "", err
		}
		cond := `state = ?`
		if f.TokenID != "" {
			cond = `+state = ?` // a token has few rows: walk its index
		}
		where = append(where, cond)
		args = append(args, string(f.State))
	}
	if f.Cursor != "" {
		id, err := cursor.ParseID("n", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < ?`)
		args = append(args, id)
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)
	out, err := queryRows(ctx, s.r, "listing notifications", q, args, scanNotification)
	if err != nil {
		return nil, "", err
	}
	out, next := cursor.Page(out, n, func(last apitoken.Notification) string { return cursor.ID("n", last.ID) })
	return out, next, nil
}

// PruneNotifications deletes the notifications done before before.
func (s *Store) PruneNotifications(ctx context.Context, before time.Time) (int, error) {
	var k int64
	err := s.write(ctx, "pruning notifications", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE done_at IS NOT NULL AND done_at < ?`, micros(before))
		if err != nil {
			return fmt.Errorf("pruning notifications: %w", dbErr(err))
		}
		k, _ = res.RowsAffected()
		return nil
	})
	return int(k), err
}

// ListExpiringTokens lists the generated, unrevoked tokens whose expiry is
// in (from, until], by expiry then id.
func (s *Store) ListExpiringTokens(ctx context.Context, from, until time.Time, page apitoken.Page) ([]apitoken.Token, string, error) {
	n := cursor.Limit(page)
	where := `revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ?`
	args := []any{micros(from), micros(until)}
	if page.Cursor != "" {
		exp, id, err := cursor.ParseTime("x", page.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (expires_at, id) > (?, ?)`
		args = append(args, exp, id)
	}
	args = append(args, n+1)
	out, err := queryRows(ctx, s.r, "listing expiring tokens", `SELECT `+tokenColumns+` FROM tokens INDEXED BY tokens_by_expires
		WHERE `+where+` ORDER BY expires_at, id LIMIT ?`, args, scanToken)
	if err != nil {
		return nil, "", err
	}
	out, next := cursor.Page(out, n, func(last apitoken.Token) string { return cursor.Time("x", micros(*last.ExpiresAt()), last.ID) })
	return out, next, nil
}

// unusedSince is Token.UnusedSince in SQL, as the index tokens_unused has it.
const unusedSince = `max(generated_at, coalesce(last_used_at, 0))`

// ListUnusedTokens lists the live tokens unused since a time in (f.After,
// f.Until], by that time then id, through the index tokens_unused.
func (s *Store) ListUnusedTokens(ctx context.Context, f apitoken.UnusedFilter) ([]apitoken.Token, string, error) {
	n := cursor.Limit(f.Page)
	where := `revoked_at IS NULL AND generated_at IS NOT NULL AND ` + unusedSince + ` > ? AND ` + unusedSince + ` <= ?
		AND (expires_at IS NULL OR expires_at > ?)`
	after := int64(-1 << 62)
	if !f.After.IsZero() {
		after = micros(f.After)
	}
	args := []any{after, micros(f.Until), micros(f.Now)}
	if f.Cursor != "" {
		since, id, err := cursor.ParseTime("u", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (` + unusedSince + `, id) > (?, ?)`
		args = append(args, since, id)
	}
	args = append(args, n+1)
	out, err := queryRows(ctx, s.r, "listing unused tokens", `SELECT `+tokenColumns+` FROM tokens INDEXED BY tokens_unused
		WHERE `+where+` ORDER BY `+unusedSince+`, id LIMIT ?`, args, scanToken)
	if err != nil {
		return nil, "", err
	}
	out, next := cursor.Page(out, n, func(last apitoken.Token) string { return cursor.Time("u", micros(last.UnusedSince()), last.ID) })
	return out, next, nil
}
