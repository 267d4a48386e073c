package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// changeLockID is the advisory lock that a transaction holds from the moment
// it numbers its change until it commits, so that changes are numbered in
// commit order: a reader that saw change n can never later find a change
// numbered below n committing. (An identity column alone hands out numbers
// in the order transactions ask, not the order they commit.) Only
// UpdateToken and UpdateUser take it, at their very end.
func changeLockID(schema string) int64 { return hash64("caddy-apitokens change order " + schema) }

// addChange adds a change of a token or user to the change sequence in tx,
// prunes the changes older than apitoken.ChangeRetention, and prompts the
// listeners (Wake) with an empty notification: the payload says nothing to
// a database user who may LISTEN, and one that this deployment did not send
// only costs a read of the sequence.
func (s *Store) addChange(ctx context.Context, tx pgx.Tx, tokenID, userID string) error {
	var b pgx.Batch
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, changeLockID(s.schema))
	b.Queue(`INSERT INTO changes (token_id, user_id) VALUES ($1, $2)`, tokenID, userID)
	b.Queue(`DELETE FROM changes WHERE at < now() - make_interval(secs => $1)`, apitoken.ChangeRetention.Seconds())
	b.Queue(`SELECT pg_notify($1, '')`, s.channel)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("recording the change: %w", dbErr(err))
	}
	return nil
}

// Changes returns at most limit changes numbered after after, in order.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]apitoken.Change, error) {
	rows, _ := s.pool.Query(ctx, `SELECT seq, token_id, user_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (apitoken.Change, error) {
		var c apitoken.Change
		err := row.Scan(&c.Seq, &c.TokenID, &c.UserID)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", dbErr(err))
	}
	return changes, nil
}

// LastChange returns the number of the newest change, 0 when none.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("reading the last change: %w", dbErr(err))
	}
	return seq, nil
}
