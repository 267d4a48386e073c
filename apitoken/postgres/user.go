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

const userColumns = `id, name, email, kind, source, view_only, disabled, roles, group_roles, groups, created_at, last_seen_at`

func scanUser(row pgx.Row) (apitoken.User, error) {
	var u apitoken.User
	var roles, groupRoles []string
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Kind, &u.Source, &u.ViewOnly, &u.Disabled, &roles, &groupRoles,
		&u.Groups, &u.CreatedAt, &u.LastSeenAt); err != nil {
		return apitoken.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.LastSeenAt = fromDB(u.LastSeenAt)
	u.Roles = toRoles(roles)
	u.GroupRoles = toRoles(groupRoles)
	if len(u.Groups) == 0 {
		u.Groups = nil
	}
	return u, nil
}

func toRoles(s []string) []apitoken.Role {
	var out []apitoken.Role
	for _, r := range s {
		out = append(out, apitoken.Role(r))
	}
	return out
}

func fromRoles(roles []apitoken.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
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

// ListUsers lists users matching f, newest first (by CreatedAt, then id).
func (s *Store) ListUsers(ctx context.Context, f apitoken.UserFilter) ([]apitoken.User, string, error) {
	page := f.Page
	n := cursor.Limit(page)
	q := `SELECT ` + userColumns + ` FROM users WHERE true`
	args := []any{}
	if f.Kind != "" {
		args = append(args, string(f.Kind))
		q += fmt.Sprintf(` AND kind = $%d`, len(args))
	}
	if f.Q != "" {
		args = append(args, f.Q)
		q += fmt.Sprintf(` AND (strpos(lower(id), lower($%[1]d)) > 0 OR strpos(lower(name), lower($%[1]d)) > 0
			OR strpos(lower(email), lower($%[1]d)) > 0)`, len(args))
	}
	if page.Cursor != "" {
		created, id, err := cursor.ParseTime("u", page.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, time.UnixMicro(created).UTC(), id)
		q += fmt.Sprintf(` AND (created_at, id) < ($%d, $%d)`, len(args)-1, len(args))
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
	users, next := cursor.Page(users, n, func(last apitoken.User) string { return cursor.Time("u", last.CreatedAt.UnixMicro(), last.ID) })
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
		u.LastSeenAt = storedPtr(u.LastSeenAt)
		u.Roles = normalizeRoles(u.Roles)
		u.GroupRoles = normalizeRoles(u.GroupRoles)
		if len(u.Groups) == 0 {
			u.Groups = nil
		}
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET name = $1, email = $2, kind = $3, source = $4, view_only = $5,
			disabled = $6, roles = $7, group_roles = $8, groups = $9, created_at = $10, last_seen_at = $11
			WHERE id = $12`, u.Name, u.Email, string(u.Kind), string(u.Source), u.ViewOnly, u.Disabled,
			fromRoles(u.Roles), fromRoles(u.GroupRoles), groups, u.CreatedAt, u.LastSeenAt, u.ID); err != nil {
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
