package postgres

import (
	"bytes"
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

const tokenColumns = `id, owner, name, scopes, expires, created_at, generated_at, generated_exp, jti_hash,
	last_used_at, last_used_ip, revoked_at, revoked_by, generated_scopes, allowed_ips, prev_jti_hash, prev_until`

func scanToken(row pgx.Row) (apitoken.Token, error) {
	var t apitoken.Token
	var scopes, genScopes, allowed string
	var generated, exp, used, revoked, prevUntil *time.Time
	if err := row.Scan(&t.ID, &t.Owner, &t.Name, &scopes, &t.Expires, &t.CreatedAt, &generated, &exp, &t.JTIHash,
		&used, &t.LastUsedIP, &revoked, &t.RevokedBy, &genScopes, &allowed, &t.PrevJTIHash, &prevUntil); err != nil {
		return apitoken.Token{}, err
	}
	if err := t.SetStored(scopes, genScopes, allowed); err != nil {
		return apitoken.Token{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.GeneratedAt, t.GeneratedExp = fromDB(generated), fromDB(exp)
	t.LastUsedAt, t.RevokedAt = fromDB(used), fromDB(revoked)
	t.PrevUntil = fromDB(prevUntil)
	if len(t.JTIHash) == 0 {
		t.JTIHash = nil
	}
	if len(t.PrevJTIHash) == 0 {
		t.PrevJTIHash = nil
	}
	return t, nil
}

// normalizeToken is t as it reads back from the database: times to the
// microsecond in UTC, no pointer or slice shared with the caller.
func normalizeToken(t apitoken.Token) apitoken.Token {
	t.CreatedAt = stored(t.CreatedAt)
	t.GeneratedAt, t.GeneratedExp = storedPtr(t.GeneratedAt), storedPtr(t.GeneratedExp)
	t.LastUsedAt, t.RevokedAt = storedPtr(t.LastUsedAt), storedPtr(t.RevokedAt)
	t.PrevUntil = storedPtr(t.PrevUntil)
	t.JTIHash, t.PrevJTIHash = cloneHash(t.JTIHash), cloneHash(t.PrevJTIHash)
	if len(t.AllowedIPs) == 0 {
		t.AllowedIPs = nil
	} else {
		t.AllowedIPs = slices.Clone(t.AllowedIPs)
	}
	return t
}

// cloneHash is a copy of a stored hash; nil for none.
func cloneHash(h []byte) []byte {
	if len(h) == 0 {
		return nil
	}
	return bytes.Clone(h)
}

// tokenWriteErr turns a failed insert or update of t into the domain's
// errors.
func tokenWriteErr(op string, t apitoken.Token, err error) error {
	switch {
	case constraint(err, uniqueViolation, "tokens_live_name"):
		return apitoken.Errorf(apitoken.ErrConflict, "%s already has a token named %q that is not revoked", t.Owner, t.Name)
	case constraint(err, uniqueViolation, ""):
		return apitoken.Errorf(apitoken.ErrConflict, "a token with id %q already exists", t.ID)
	case constraint(err, foreignKeyViolation, ""):
		return apitoken.Errorf(apitoken.ErrNotFound, "no user %q: a token's owner must exist", t.Owner)
	}
	return fmt.Errorf("%s: %w", op, dbErr(err))
}

// CreateToken stores a new token and its CREATE log (which is given the
// token's id and name). Its owner must exist (ErrNotFound otherwise).
// ErrConflict if the owner has a token of the same NameKey that is not
// revoked, or the id is taken. It adds no change: no instance
// can have cached a token that did not exist, other than as missing, and a
// token cannot authenticate before it is generated (an UpdateToken).
//
// With limit > 0, ErrTokenLimit if the owner has limit tokens or more that
// are not revoked (checkTokenLimit: creates for one owner, from any
// instance, run one after the other).
func (s *Store) CreateToken(ctx context.Context, t apitoken.Token, log apitoken.Log, limit int) error {
	t = normalizeToken(t)
	return s.write(ctx, "creating token", func(tx pgx.Tx) error {
		if limit > 0 {
			if err := checkTokenLimit(ctx, tx, t.Owner, limit); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at,
			generated_at, generated_exp, jti_hash, expires_at, last_used_at, last_used_ip, revoked_at, revoked_by,
			generated_scopes, allowed_ips)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			t.ID, t.Owner, t.Name, apitoken.NameKey(t.Name), t.Scopes.String(), string(t.Expires), t.CreatedAt,
			t.GeneratedAt, t.GeneratedExp, nullBytes(t.JTIHash), storedPtr(t.ExpiresAt()),
			t.LastUsedAt, t.LastUsedIP, t.RevokedAt, t.RevokedBy, t.GeneratedScopes.String(),
			t.AllowedIPs.String())
		if err != nil {
			return tokenWriteErr("creating token", t, err)
		}
		log.TokenID, log.TokenName = t.ID, t.Name
		return insertLog(ctx, tx, log)
	})
}

// checkTokenLimit refuses a create for owner that would exceed limit. It
// locks the owner's row first and counts in a second statement: under READ
// COMMITTED each statement reads a new snapshot, so the count sees every
// token committed by the create that held the lock before (a count in the
// locking statement itself would read the snapshot taken before the wait).
// A missing owner is left to the insert's foreign key.
func checkTokenLimit(ctx context.Context, tx pgx.Tx, owner string, limit int) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, owner)
	if err != nil {
		return fmt.Errorf("creating token: locking its owner: %w", dbErr(err))
	}
	var live int
	err = tx.QueryRow(ctx, `SELECT count(*) FROM tokens WHERE owner = $1 AND revoked_at IS NULL`, owner).Scan(&live)
	if err != nil {
		return fmt.Errorf("creating token: counting the owner's tokens: %w", dbErr(err))
	}
	if live >= limit {
		return apitoken.TokenLimitError(owner, limit)
	}
	return nil
}

// GetToken returns the token with that id.
func (s *Store) GetToken(ctx context.Context, id string) (apitoken.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return apitoken.Token{}, apitoken.Errorf(apitoken.ErrNotFound, "no token %q", id)
	}
	if err != nil {
		return apitoken.Token{}, fmt.Errorf("reading token: %w", dbErr(err))
	}
	return t, nil
}

// statusCond is the SQL condition of a status at now ($N is now, N given).
// It must agree with apitoken.Token.StatusAt; expires_at holds
// Token.ExpiresAt().
func statusCond(st apitoken.Status, now string) (string, bool, error) {
	live := `revoked_at IS NULL AND generated_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ` + now + `)`
	switch st {
	case apitoken.StatusRevoked:
		return `revoked_at IS NOT NULL`, false, nil
	case apitoken.StatusNotGenerated:
		return `revoked_at IS NULL AND generated_at IS NULL`, false, nil
	case apitoken.StatusExpired:
		return `revoked_at IS NULL AND generated_at IS NOT NULL AND expires_at <= ` + now, true, nil
	case apitoken.StatusGeneratedActive:
		return live + ` AND last_used_at >= generated_at`, true, nil
	case apitoken.StatusGeneratedInactive:
		return live + ` AND (last_used_at IS NULL OR last_used_at < generated_at)`, true, nil
	}
	_, err := apitoken.ParseStatus(string(st))
	return "", false, err
}

// args collects the arguments of a query and names their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// ListTokens lists tokens matching f, newest first (by CreatedAt, then id).
// A zero f.Now is the current time.
func (s *Store) ListTokens(ctx context.Context, f apitoken.TokenFilter) ([]apitoken.Token, string, error) {
	n := cursor.Limit(f.Page)
	var where []string
	var a args
	if f.Owner != "" {
		where = append(where, `owner = `+a.add(f.Owner))
	}
	if len(f.Statuses) > 0 {
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		// The statuses share one placeholder for now, added if one uses it.
		nowAt := fmt.Sprintf("$%d", len(a)+1)
		conds := make([]string, len(f.Statuses))
		anyNow := false
		for i, st := range f.Statuses {
			cond, usesNow, err := statusCond(st, nowAt)
			if err != nil {
				return nil, "", err
			}
			conds[i] = `(` + cond + `)`
			anyNow = anyNow || usesNow
		}
		if anyNow {
			a.add(stored(now))
		}
		where = append(where, `(`+strings.Join(conds, ` OR `)+`)`)
	}
	if f.Cursor != "" {
		created, id, err := cursor.ParseTime("t", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `(created_at, id) < (`+a.add(time.UnixMicro(created).UTC())+`, `+a.add(id)+`)`)
	}
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + a.add(n+1)

	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing tokens: %w", dbErr(err))
	}
	tokens, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing tokens: %w", dbErr(err))
	}
	tokens, next := cursor.Page(tokens, n, func(last apitoken.Token) string { return cursor.Time("t", last.CreatedAt.UnixMicro(), last.ID) })
	return tokens, next, nil
}

// UpdateToken runs fn on the stored token inside one transaction that holds
// the token's row lock (SELECT ... FOR NO KEY UPDATE: every other write of
// the token, from this instance or another, waits for it) and, if fn returns
// no error, writes the token and the log fn returns (none when its Activity
// is empty; the log is given the token's id and name) with the log's Notify
// in the outbox, and adds the change to the change sequence. Changes fn makes
// to fields other than Name, Scopes, Expires, GeneratedAt, GeneratedExp,
// GeneratedScopes, JTIHash, PrevJTIHash, PrevUntil, RevokedAt, RevokedBy and
// AllowedIPs are not written. The effective expiry (expires_at) is
// recomputed.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(t *apitoken.Token) (apitoken.Log, error)) (apitoken.Token, error) {
	var out apitoken.Token
	err := s.write(ctx, "updating token", func(tx pgx.Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return apitoken.Errorf(apitoken.ErrNotFound, "no token %q", id)
		}
		if err != nil {
			return fmt.Errorf("updating token: reading it: %w", dbErr(err))
		}
		orig := normalizeToken(t) // a deep copy: fn cannot reach it
		log, err := fn(&t)
		if err != nil {
			return err
		}
		t.ID, t.Owner, t.CreatedAt, t.LastUsedAt, t.LastUsedIP = orig.ID, orig.Owner, orig.CreatedAt, orig.LastUsedAt, orig.LastUsedIP
		t = normalizeToken(t)
		_, err = tx.Exec(ctx, `UPDATE tokens SET name = $1, name_key = $2, scopes = $3, expires = $4,
			generated_at = $5, generated_exp = $6, jti_hash = $7, expires_at = $8, revoked_at = $9, revoked_by = $10,
			generated_scopes = $11, allowed_ips = $12, prev_jti_hash = $13, prev_until = $14
			WHERE id = $15`,
			t.Name, apitoken.NameKey(t.Name), t.Scopes.String(), string(t.Expires),
			t.GeneratedAt, t.GeneratedExp, nullBytes(t.JTIHash), storedPtr(t.ExpiresAt()),
			t.RevokedAt, t.RevokedBy, t.GeneratedScopes.String(), t.AllowedIPs.String(), nullBytes(t.PrevJTIHash), t.PrevUntil, t.ID)
		if err != nil {
			return tokenWriteErr("updating token", t, err)
		}
		if log.Activity != "" {
			log.TokenID, log.TokenName = t.ID, t.Name
			if err := insertLog(ctx, tx, log); err != nil {
				return err
			}
		}
		if _, err := insertNotifications(ctx, tx, log.Notify); err != nil {
			return err
		}
		if err := s.addChange(ctx, tx, t.ID, ""); err != nil {
			return fmt.Errorf("updating token: %w", err)
		}
		out = t
		return nil
	})
	if err != nil {
		return apitoken.Token{}, err
	}
	return out, nil
}
