package postgres

import (
	"cmp"
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

const notificationColumns = `id, event_key, destination, event, reminder, token_id, token_name, owner, scopes,
	expires_at, actor, event_at, state, attempts, last_error, next_attempt_at, lease, done_at, reason, unused_since, revoke_at`

func scanNotification(row pgx.Row) (apitoken.Notification, error) {
	var n apitoken.Notification
	var scopes string
	var attempts int32
	var exp, done, unused, revokeAt *time.Time
	if err := row.Scan(&n.ID, &n.Key, &n.Destination, &n.Event, &n.Reminder, &n.TokenID, &n.TokenName, &n.Owner,
		&scopes, &exp, &n.Actor, &n.At, &n.State, &attempts, &n.LastError, &n.NextAttemptAt, &n.Lease, &done,
		&n.Reason, &unused, &revokeAt); err != nil {
		return apitoken.Notification{}, err
	}
	var err error
	if n.Scopes, err = apitoken.ScopesOf(scopes); err != nil {
		return apitoken.Notification{}, err
	}
	n.Attempts = int(attempts)
	n.ExpiresAt, n.DoneAt = fromDB(exp), fromDB(done)
	n.UnusedSince, n.RevokeAt = fromDB(unused), fromDB(revokeAt)
	n.At, n.NextAttemptAt = n.At.UTC(), n.NextAttemptAt.UTC()
	return n, nil
}

// insertNotifications adds ns to the outbox in tx, skipping those whose
// key and destination are there already (whoever wrote them: the unique
// index decides between instances), and returns how many it added.
func insertNotifications(ctx context.Context, tx pgx.Tx, ns []apitoken.Notification) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, n := range ns {
		if n.Key == "" || n.Destination == "" {
			return 0, errors.New("writing notifications: a notification needs a key and a destination")
		}
		next := n.NextAttemptAt
		if next.IsZero() {
			next = n.At
		}
		b.Queue(`INSERT INTO notifications (event_key, destination, event, reminder, token_id,
			token_name, owner, scopes, expires_at, actor, event_at, next_attempt_at, reason, unused_since, revoke_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (event_key, destination) DO NOTHING`,
			n.Key, n.Destination, string(n.Event), n.Reminder, n.TokenID, n.TokenName, n.Owner, n.Scopes.String(),
			storedPtr(n.ExpiresAt), n.Actor, stored(n.At), stored(next), string(n.Reason), storedPtr(n.UnusedSince), storedPtr(n.RevokeAt))
	}
	br := tx.SendBatch(ctx, b)
	added := 0
	for range ns {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return 0, fmt.Errorf("writing notifications: %w", dbErr(err))
		}
		added += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("writing notifications: %w", dbErr(err))
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
	err := s.write(ctx, "enqueueing notifications", func(tx pgx.Tx) error {
		var err error
		added, err = insertNotifications(ctx, tx, ns)
		return err
	})
	return added, err
}

// ClaimNotifications leases the due pending notifications of c's
// destinations. Rows another instance is claiming at the same moment are
// skipped (FOR UPDATE SKIP LOCKED), and rows it has claimed carry its
// lease, so no two claims return the same row while a lease holds.
func (s *Store) ClaimNotifications(ctx context.Context, c apitoken.Claim) ([]apitoken.Notification, error) {
	if len(c.Destinations) == 0 || c.Limit <= 0 {
		return nil, nil
	}
	lease := apitoken.NewJTI()
	now := stored(c.Now)
	var out []apitoken.Notification
	err := s.write(ctx, "claiming notifications", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE notifications SET lease = $1, lease_until = $2
			WHERE id IN (SELECT id FROM notifications
				WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
					AND destination = ANY($4)
				ORDER BY next_attempt_at, id LIMIT $5
				FOR UPDATE SKIP LOCKED)
			RETURNING `+notificationColumns,
			lease, stored(c.Now.Add(c.Lease)), now, c.Destinations, c.Limit)
		if err != nil {
			return fmt.Errorf("claiming notifications: %w", dbErr(err))
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Notification, error) { return scanNotification(r) })
		if err != nil {
			return fmt.Errorf("claiming notifications: %w", dbErr(err))
		}
		return nil
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
	var done *time.Time
	next := stored(r.NextAttemptAt)
	if r.State != apitoken.NotificationPending {
		at := stored(r.At)
		done, next = &at, at
	}
	attempted := 0
	if r.Attempted {
		attempted = 1
	}
	setError := r.Attempted || r.State != apitoken.NotificationPending
	return s.write(ctx, "finishing notification", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE notifications SET state = $1, attempts = attempts + $2,
			last_error = CASE WHEN $3 THEN $4 ELSE last_error END, next_attempt_at = $5, done_at = $6,
			lease = '', lease_until = NULL
			WHERE id = $7 AND lease = $8 AND state = 'pending'`,
			string(r.State), attempted, setError, r.Error, next, done, id, lease)
		if err != nil {
			return fmt.Errorf("finishing notification: %w", dbErr(err))
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM notifications WHERE id = $1`, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
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
	var a args
	if f.TokenID != "" {
		where = append(where, `token_id = `+a.add(f.TokenID))
	}
	if f.State != "" {
		if _, err := apitoken.ParseNotificationState(string(f.State)); err != nil {
			return nil, "", err
		}
		where = append(where, `state = `+a.add(string(f.State)))
	}
	if f.Cursor != "" {
		id, err := cursor.ParseID("n", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < `+a.add(id))
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ` + a.add(n+1)
	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing notifications: %w", dbErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing notifications: %w", dbErr(err))
	}
	out, next := cursor.Page(out, n, func(last apitoken.Notification) string { return cursor.ID("n", last.ID) })
	return out, next, nil
}

// PruneNotifications deletes the notifications done before before.
func (s *Store) PruneNotifications(ctx context.Context, before time.Time) (int, error) {
	var k int64
	err := s.write(ctx, "pruning notifications", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM notifications WHERE done_at IS NOT NULL AND done_at < $1`, stored(before))
		if err != nil {
			return fmt.Errorf("pruning notifications: %w", dbErr(err))
		}
		k = tag.RowsAffected()
		return nil
	})
	return int(k), err
}

// ListExpiringTokens lists the generated, unrevoked tokens whose expiry is
// in (from, until], by expiry then id.
func (s *Store) ListExpiringTokens(ctx context.Context, from, until time.Time, page apitoken.Page) ([]apitoken.Token, string, error) {
	n := cursor.Limit(page)
	var a args
	where := `revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at > ` + a.add(stored(from)) +
		` AND expires_at <= ` + a.add(stored(until))
	if page.Cursor != "" {
		exp, id, err := cursor.ParseTime("x", page.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (expires_at, id) > (` + a.add(time.UnixMicro(exp).UTC()) + `, ` + a.add(id) + `)`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+where+
		` ORDER BY expires_at, id LIMIT `+a.add(n+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing expiring tokens: %w", dbErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing expiring tokens: %w", dbErr(err))
	}
	out, next := cursor.Page(out, n, func(last apitoken.Token) string { return cursor.Time("x", last.ExpiresAt().UnixMicro(), last.ID) })
	return out, next, nil
}

// unusedSince is Token.UnusedSince in SQL, as the index tokens_unused has it
// (GREATEST ignores a NULL last_used_at).
const unusedSince = `GREATEST(generated_at, last_used_at)`

// ListUnusedTokens lists the live tokens unused since a time in (f.After,
// f.Until], by that time then id, through the index tokens_unused.
func (s *Store) ListUnusedTokens(ctx context.Context, f apitoken.UnusedFilter) ([]apitoken.Token, string, error) {
	n := cursor.Limit(f.Page)
	var a args
	where := `revoked_at IS NULL AND generated_at IS NOT NULL AND ` + unusedSince + ` <= ` + a.add(stored(f.Until)) +
		` AND (expires_at IS NULL OR expires_at > ` + a.add(stored(f.Now)) + `)`
	if !f.After.IsZero() {
		where += ` AND ` + unusedSince + ` > ` + a.add(stored(f.After))
	}
	if f.Cursor != "" {
		since, id, err := cursor.ParseTime("u", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (` + unusedSince + `, id) > (` + a.add(time.UnixMicro(since).UTC()) + `, ` + a.add(id) + `)`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+where+
		` ORDER BY `+unusedSince+`, id LIMIT `+a.add(n+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing unused tokens: %w", dbErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing unused tokens: %w", dbErr(err))
	}
	out, next := cursor.Page(out, n, func(last apitoken.Token) string { return cursor.Time("u", last.UnusedSince().UnixMicro(), last.ID) })
	return out, next, nil
}
