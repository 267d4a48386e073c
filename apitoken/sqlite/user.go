package sqlite

import (
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

// userColumns reads a user and its roles (space-separated, sorted) in one
// query. Group roles are space-separated, groups one per line.
const userColumns = `id, name, email, kind, source, view_only, disabled, created_at, last_seen_at, group_roles, groups,
	(SELECT group_concat(role, ' ' ORDER BY role) FROM user_roles WHERE user_id = users.id)`

func scanUser(row interface{ Scan(...any) error }) (apitoken.User, error) {
	var u apitoken.User
	var created int64
	var lastSeen sql.NullInt64
	var groupRoles, groups string
	var roles sql.NullString
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Kind, &u.Source, &u.ViewOnly, &u.Disabled, &created, &lastSeen,
		&groupRoles, &groups, &roles); err != nil {
		return apitoken.User{}, err
	}
	u.CreatedAt = fromMicros(created)
	u.LastSeenAt = timePtr(lastSeen)
	u.Roles = splitRoles(roles.String)
	u.GroupRoles = splitRoles(groupRoles)
	if groups != "" {
		u.Groups = strings.Split(groups, "\n")
	}
	return u, nil
}

func splitRoles(s string) []apitoken.Role {
	var out []apitoken.Role
	for _, r := range strings.Fields(s) {
		out = append(out, apitoken.Role(r))
	}
	return out
}

func joinRoles(roles []apitoken.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " ")
}

// GetUser returns the user with that id.
func (s *Store) GetUser(ctx context.Context, id string) (apitoken.User, error) {
	u, err := scanUser(s.getUser.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return apitoken.User{}, apitoken.Errorf(apitoken.ErrNotFound, "no user %q", id)
	}
	if err != nil {
		return apitoken.User{}, fmt.Errorf("reading user: %w", dbErr(err))
	}
	return u, nil
}

// ListUsers lists users matching f, newest first.
func (s *Store) ListUsers(ctx context.Context, f apitoken.UserFilter) ([]apitoken.User, string, error) {
	page := f.Page
	n := cursor.Limit(page)
	q := `SELECT ` + userColumns + ` FROM users WHERE 1`
	args := []any{}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, string(f.Kind))
	}
	if f.Q != "" {
		q += ` AND (instr(lower(id), lower(?)) > 0 OR instr(lower(name), lower(?)) > 0 OR instr(lower(email), lower(?)) > 0)`
		args = append(args, f.Q, f.Q, f.Q)
	}
	if page.Cursor != "" {
		created, id, err := cursor.ParseTime("u", page.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (?, ?)`
		args = append(args, created, id)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, n+1)
	users, err := queryRows(ctx, s.r, "listing users", q, args, scanUser)
	if err != nil {
		return nil, "", err
	}
	users, next := cursor.Page(users, n, func(last apitoken.User) string { return cursor.Time("u", micros(last.CreatedAt), last.ID) })
	return users, next, nil
}

// UpdateUser runs fn on the stored user inside one write transaction and, if
// fn returns no error, writes the user (its roles sorted and without
// duplicates) and the logs fn returns. A missing user is handed to fn as a
// zero User with only ID set and created true; a new user whose CreatedAt fn
// leaves zero gets the current time. fn cannot change the ID. A log without
// Subject is about this user.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *apitoken.User, created bool) ([]apitoken.Log, error)) (apitoken.User, error) {
	var out apitoken.User
	err := s.write(ctx, "updating user", func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
		created := errors.Is(err, sql.ErrNoRows)
		switch {
		case created:
			u = apitoken.User{ID: id}
		case err != nil:
			return fmt.Errorf("updating user: reading it: %w", dbErr(err))
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

		if created {
			_, err = tx.ExecContext(ctx, `INSERT INTO users (id, name, email, kind, source, view_only, disabled, created_at,
				last_seen_at, group_roles, groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				u.ID, u.Name, u.Email, string(u.Kind), string(u.Source), u.ViewOnly, u.Disabled, micros(u.CreatedAt),
				nullMicros(u.LastSeenAt), joinRoles(u.GroupRoles), strings.Join(u.Groups, "\n"))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE users SET name = ?, email = ?, kind = ?, source = ?, view_only = ?, disabled = ?,
				created_at = ?, last_seen_at = ?, group_roles = ?, groups = ? WHERE id = ?`,
				u.Name, u.Email, string(u.Kind), string(u.Source), u.ViewOnly, u.Disabled, micros(u.CreatedAt),
				nullMicros(u.LastSeenAt), joinRoles(u.GroupRoles), strings.Join(u.Groups, "\n"), u.ID)
		}
		if err != nil {
			return fmt.Errorf("updating user: %w", dbErr(err))
		}
		if !created {
			if _, err := tx.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = ?`, u.ID); err != nil {
				return fmt.Errorf("updating user roles: %w", dbErr(err))
			}
		}
		for _, r := range u.Roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, u.ID, string(r)); err != nil {
				return fmt.Errorf("updating user roles: %w", dbErr(err))
			}
		}
		for _, l := range logs {
			if l.Subject == "" {
				l.Subject = id
			}
			if err := insertLog(ctx, tx, l); err != nil {
				return err
			}
		}
		if err := addChange(ctx, tx, "", u.ID); err != nil {
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
