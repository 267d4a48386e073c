package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// addChange adds a change of a token or user to the change sequence in tx,
// and prunes the changes older than apitoken.ChangeRetention (an index
// probe when there are none). One write transaction runs at a time on the
// file (BEGIN IMMEDIATE), so numbers follow commit order.
func addChange(ctx context.Context, tx *sql.Tx, tokenID, userID string) error {
	now := time.Now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes (token_id, user_id, at) VALUES (?, ?, ?)`,
		tokenID, userID, micros(now)); err != nil {
		return fmt.Errorf("recording the change: %w", dbErr(err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE at < ?`, micros(now.Add(-apitoken.ChangeRetention))); err != nil {
		return fmt.Errorf("pruning old changes: %w", dbErr(err))
	}
	return nil
}

// Changes returns at most limit changes numbered after after, in order.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]apitoken.Change, error) {
	return queryRows(ctx, s.r, "reading changes",
		`SELECT seq, token_id, user_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, []any{after, limit},
		func(row interface{ Scan(...any) error }) (apitoken.Change, error) {
			var c apitoken.Change
			err := row.Scan(&c.Seq, &c.TokenID, &c.UserID)
			return c, err
		})
}

// LastChange returns the number of the newest change, 0 when none.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("reading the last change: %w", dbErr(err))
	}
	return seq, nil
}
