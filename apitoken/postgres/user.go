package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/internal/cursor"
)

const userColumns = `id, email, view_only, disabled, roles, created_at`

func scanUser(row pgx.Row) (apitoken.User, error) {
	var u apitoken.User
	var roles []string
	if err := row.Scan(&u.ID, &u.Email, &u.ViewOnly, &u.Disabled, &roles, &u.CreatedAt); err != nil {
		return apitoken.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	for _, r := range roles {
		u.Roles = append(u.Roles, apitoken.Role(r))
	}
	return u, nil
}

// GetUser returns the user with that id.
func (s *Store) GetUser(ctx context.Context, id string) (apitoken.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return apitoken.User{}, apitoken.Errorf(apitoken.ErrNotFound, "no user %q", id)
	}
	if err != nil {
		return apitoken.User{}, fmt.Errorf("reading user: %w", dbErr(err))
	}
	return u, nil
}

// ListUsers lists users, newest first (by CreatedAt, then id).
func (s *Store) ListUsers(ctx context.Context, page apitoken.Page) ([]apitoken.User, string, error) {
	n := cursor.Limit(page)
	q := `SELECT ` + userColumns + ` FROM users`
	args := []any{}
	if page.Cursor != "" {
		created, id, err := cursor.ParseTime("u", page.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` WHERE (created_at, id) < ($1, $2)`
		args = append(args, time.UnixMicro(created).UTC(), id)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args)+1)
	args = append(args, n+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing users: %w", dbErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (apitoken.User, error) { return scanUser(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing users: %w", dbErr(err))
	}
	next := ""
	if len(users) > n {
		users = users[:n]
		last := users[n-1]
		next = cursor.Time("u", last.CreatedAt.UnixMicro(), last.ID)
	}
	return users, next, nil
}

// UpdateUser runs fn on the stored user inside one transaction that holds
// the user's row lock (so an update from another instance waits) and, if fn
// returns no error, writes the user (its roles sorted and without
// duplicates) and the logs fn returns, and adds the change to the change
// sequence. A missing user is handed to fn as a zero User with only ID set and
// created true; a new user whose CreatedAt fn leaves zero gets the current
// time. fn cannot change the ID. A log without Subject is about this user.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *apitoken.User, created bool) ([]apitoken.Log, error)) (apitoken.User, error) {
	var out apitoken.User
	err := s.write(ctx, "updating user", func(tx pgx.Tx) error {
		// Insert a bare row unless there is one: a concurrent creation of
		// the same user waits here for the first to end, instead of
		// failing on the primary key at the end. The row is written over
		// below, or rolled back with everything else.
		var created bool
		err := tx.QueryRow(ctx, `INSERT INTO users (id, created_at) VALUES ($1, now())
			ON CONFLICT (id) DO NOTHING RETURNING true`, id).Scan(&created)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("updating user: %w", dbErr(err))
		}
		u := apitoken.User{ID: id}
		if !created {
			if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR NO KEY UPDATE`, id)); err != nil {
				return fmt.Errorf("updating user: reading it: %w", dbErr(err))
			}
		}
		logs, err := fn(&u, created)
		if err != nil {
			return err
		}
		u.ID = id
		if created && u.CreatedAt.IsZero() {
			u.CreatedAt = time.Now()
		}
		u.CreatedAt = stored(u.CreatedAt)
		u.Roles = normalizeRoles(u.Roles)
		roles := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = string(r)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email = $1, view_only = $2, disabled = $3, roles = $4, created_at = $5
			WHERE id = $6`, u.Email, u.ViewOnly, u.Disabled, roles, u.CreatedAt, u.ID); err != nil {
			return fmt.Errorf("updating user: %w", dbErr(err))
		}
		for _, l := range logs {
			if l.Subject == "" {
				l.Subject = id
			}
			if err := insertLog(ctx, tx, l); err != nil {
				return err
			}
		}
		if err := s.addChange(ctx, tx, "", id); err != nil {
			return fmt.Errorf("updating user: %w", err)
		}
		out = u
		return nil
	})
	if err != nil {
		return apitoken.User{}, err
	}
	return out, nil
}

func normalizeRoles(roles []apitoken.Role) []apitoken.Role {
	if len(roles) == 0 {
		return nil
	}
	out := slices.DeleteFunc(slices.Clone(roles), func(r apitoken.Role) bool { return r == "" })
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}
