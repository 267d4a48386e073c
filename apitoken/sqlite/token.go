package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/internal/cursor"
)

const tokenColumns = `id, owner, name, scopes, expires, created_at, generated_at, generated_exp, jti_hash,
	last_used_at, last_used_ip, revoked_at, revoked_by, generated_scopes, allowed_ips, prev_jti_hash, prev_until`

func scanToken(row interface{ Scan(...any) error }) (apitoken.Token, error) {
	var t apitoken.Token
	var scopes, genScopes, allowed string
	var created int64
	var generated, exp, used, revoked, prevUntil sql.NullInt64
	if err := row.Scan(&t.ID, &t.Owner, &t.Name, &scopes, &t.Expires, &created, &generated, &exp, &t.JTIHash,
		&used, &t.LastUsedIP, &revoked, &t.RevokedBy, &genScopes, &allowed, &t.PrevJTIHash, &prevUntil); err != nil {
		return apitoken.Token{}, err
	}
	if err := t.SetStored(scopes, genScopes, allowed); err != nil {
		return apitoken.Token{}, err
	}
	t.CreatedAt = fromMicros(created)
	t.GeneratedAt, t.GeneratedExp = timePtr(generated), timePtr(exp)
	t.LastUsedAt, t.RevokedAt = timePtr(used), timePtr(revoked)
	t.PrevUntil = timePtr(prevUntil)
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
	case constraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) && strings.Contains(err.Error(), "name_key"):
		return apitoken.Errorf(apitoken.ErrConflict, "%s already has a token named %q that is not revoked", t.Owner, t.Name)
	case constraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), constraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return apitoken.Errorf(apitoken.ErrConflict, "a token with id %q already exists", t.ID)
	case constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return apitoken.Errorf(apitoken.ErrNotFound, "no user %q: a token's owner must exist", t.Owner)
	}
	return fmt.Errorf("%s: %w", op, dbErr(err))
}

// CreateToken stores a new token and its CREATE log (which is given the
// token's id and name). Its owner must exist (ErrNotFound otherwise).
// ErrConflict if the owner has a token of the same NameKey that is not
// revoked, or the id is taken. With limit > 0, ErrTokenLimit if the owner
// has limit tokens or more that are not revoked: counted in the write
// transaction, which is begun IMMEDIATE, so no other create (of this process
// or another on the file) can commit between the count and the insert.
func (s *Store) CreateToken(ctx context.Context, t apitoken.Token, log apitoken.Log, limit int) error {
	t = normalizeToken(t)
	return s.write(ctx, "creating token", func(tx *sql.Tx) error {
		if limit > 0 {
			var live int
			// Answered from the partial index tokens_live_name.
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE owner = ? AND revoked_at IS NULL`, t.Owner).Scan(&live)
			if err != nil {
				return fmt.Errorf("creating token: counting the owner's tokens: %w", dbErr(err))
			}
			if live >= limit {
				return apitoken.TokenLimitError(t.Owner, limit)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at,
			generated_at, generated_exp, jti_hash, expires_at, last_used_at, last_used_ip, revoked_at, revoked_by,
			generated_scopes, allowed_ips)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Owner, t.Name, apitoken.NameKey(t.Name), t.Scopes.String(), string(t.Expires), micros(t.CreatedAt),
			nullMicros(t.GeneratedAt), nullMicros(t.GeneratedExp), nullBytes(t.JTIHash), nullMicros(t.ExpiresAt()),
			nullMicros(t.LastUsedAt), t.LastUsedIP, nullMicros(t.RevokedAt), t.RevokedBy, t.GeneratedScopes.String(),
			t.AllowedIPs.String())
		if err != nil {
			return tokenWriteErr("creating token", t, err)
		}
		log.TokenID, log.TokenName = t.ID, t.Name
		return insertLog(ctx, tx, log)
	})
}

// GetToken returns the token with that id.
func (s *Store) GetToken(ctx context.Context, id string) (apitoken.Token, error) {
	t, err := scanToken(s.getToken.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return apitoken.Token{}, apitoken.Errorf(apitoken.ErrNotFound, "no token %q", id)
	}
	if err != nil {
		return apitoken.Token{}, fmt.Errorf("reading token: %w", dbErr(err))
	}
	return t, nil
}

// statusCond is the SQL condition of a status at now (the first ? of each
// is now). It must agree with apitoken.Token.StatusAt; expires_at holds
// Token.ExpiresAt(). The unary + keeps SQLite from answering a status filter
// with the partial name index and a sort: walking the list's own index in
// order and stopping at the page limit is cheaper.
func statusCond(st apitoken.Status) (cond string, usesNow bool, err error) {
	const live = `+revoked_at IS NULL AND generated_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ?)`
	switch st {
	case apitoken.StatusRevoked:
		return `+revoked_at IS NOT NULL`, false, nil
	case apitoken.StatusNotGenerated:
		return `+revoked_at IS NULL AND generated_at IS NULL`, false, nil
	case apitoken.StatusExpired:
		return `+revoked_at IS NULL AND generated_at IS NOT NULL AND expires_at <= ?`, true, nil
	case apitoken.StatusGeneratedActive:
		return live + ` AND last_used_at >= generated_at`, true, nil
	case apitoken.StatusGeneratedInactive:
		return live + ` AND (last_used_at IS NULL OR last_used_at < generated_at)`, true, nil
	}
	_, err = apitoken.ParseStatus(string(st))
	return "", false, err
}

// ListTokens lists tokens matching f, newest first (by CreatedAt, then id).
// A zero f.Now is the current time.
func (s *Store) ListTokens(ctx context.Context, f apitoken.TokenFilter) ([]apitoken.Token, string, error) {
	n := cursor.Limit(f.Page)
	var where []string
	var args []any
	if f.Owner != "" {
		where = append(where, `owner = ?`)
		args = append(args, f.Owner)
	}
	if len(f.Statuses) > 0 {
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		conds := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			cond, usesNow, err := statusCond(st)
			if err != nil {
				return nil, "", err
			}
			conds[i] = `(` + cond + `)`
			if usesNow {
				args = append(args, micros(now))
			}
		}
		where = append(where, `(`+strings.Join(conds, ` OR `)+`)`)
	}
	if f.Cursor != "" {
		created, id, err := cursor.ParseTime("t", f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `(created_at, id) < (?, ?)`)
		args = append(args, created, id)
	}
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, n+1)

	tokens, err := queryRows(ctx, s.r, "listing tokens", q, args, scanToken)
	if err != nil {
		return nil, "", err
	}
	tokens, next := cursor.Page(tokens, n, func(last apitoken.Token) string { return cursor.Time("t", micros(last.CreatedAt), last.ID) })
	return tokens, next, nil
}

// UpdateToken runs fn on the stored token inside one write transaction (the
// store's single writer, begun IMMEDIATE, so no other write can interleave)
// and, if fn returns no error, writes the token and the log fn returns (none
// when its Activity is empty; the log is given the token's id and name), and
// the log's Notify to the outbox.
// Changes fn makes to fields other than Name, Scopes, Expires, GeneratedAt,
// GeneratedExp, GeneratedScopes, JTIHash, PrevJTIHash, PrevUntil, RevokedAt,
// RevokedBy and AllowedIPs are not written. The effective expiry
// (expires_at) is recomputed.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(t *apitoken.Token) (apitoken.Log, error)) (apitoken.Token, error) {
	var out apitoken.Token
	err := s.write(ctx, "updating token", func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
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
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET name = ?, name_key = ?, scopes = ?, expires = ?,
			generated_at = ?, generated_exp = ?, jti_hash = ?, expires_at = ?, revoked_at = ?, revoked_by = ?,
			generated_scopes = ?, allowed_ips = ?, prev_jti_hash = ?, prev_until = ?
			WHERE id = ?`,
			t.Name, apitoken.NameKey(t.Name), t.Scopes.String(), string(t.Expires),
			nullMicros(t.GeneratedAt), nullMicros(t.GeneratedExp), nullBytes(t.JTIHash), nullMicros(t.ExpiresAt()),
			nullMicros(t.RevokedAt), t.RevokedBy, t.GeneratedScopes.String(), t.AllowedIPs.String(),
			nullBytes(t.PrevJTIHash), nullMicros(t.PrevUntil), t.ID)
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
		if err := addChange(ctx, tx, t.ID, ""); err != nil {
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
