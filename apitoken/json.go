package apitoken

import (
	"time"
)

// Time renders as RFC 3339 in UTC, to the second.
type Time struct{ time.Time }

// MarshalJSON renders t as an RFC 3339 string in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(time.RFC3339) + `"`), nil
}

func jsonTime(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{*t}
}

// TokenJSON is the JSON form of a token.
type TokenJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Owner       string   `json:"owner"`
	Scopes      []string `json:"scopes"`
	Expires     Expiry   `json:"expires"`
	Status      Status   `json:"status"`
	StatusLabel string   `json:"status_label"`
	CreatedAt   *Time    `json:"created_at"`
	GeneratedAt *Time    `json:"generated_at"`
	ExpiresAt   *Time    `json:"expires_at"`
	LastUsedAt  *Time    `json:"last_used_at"`
	LastUsedIP  *string  `json:"last_used_ip"`
	RevokedAt   *Time    `json:"revoked_at"`
}

// JSON is t as clients see it at now.
func (t *Token) JSON(now time.Time) TokenJSON {
	st := t.StatusAt(now)
	j := TokenJSON{ID: t.ID, Name: t.Name, Owner: t.Owner, Scopes: t.Scopes.Names(), Expires: t.Expires,
		Status: st, StatusLabel: st.Label(), CreatedAt: jsonTime(&t.CreatedAt), GeneratedAt: jsonTime(t.GeneratedAt),
		ExpiresAt: jsonTime(t.ExpiresAt()), LastUsedAt: jsonTime(t.LastUsedAt), RevokedAt: jsonTime(t.RevokedAt)}
	if t.LastUsedIP != "" {
		ip := t.LastUsedIP
		j.LastUsedIP = &ip
	}
	return j
}

// UserJSON is the JSON form of a user.
type UserJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	ViewOnly  bool   `json:"view_only"`
	Disabled  bool   `json:"disabled"`
	Roles     []Role `json:"roles"`
	CreatedAt *Time  `json:"created_at"`
}

// JSON is u as clients see it.
func (u *User) JSON() UserJSON {
	roles := u.Roles
	if roles == nil {
		roles = []Role{}
	}
	return UserJSON{ID: u.ID, Email: u.Email, ViewOnly: u.ViewOnly, Disabled: u.Disabled, Roles: roles, CreatedAt: jsonTime(&u.CreatedAt)}
}

// LogJSON is the JSON form of a log row.
type LogJSON struct {
	ID         int64    `json:"id"`
	TokenID    *string  `json:"token_id"`
	TokenName  *string  `json:"token_name"`
	User       *string  `json:"user,omitempty"`
	Activity   Activity `json:"activity"`
	ActivityOn *Time    `json:"activity_on"`
	ActivityBy string   `json:"activity_by"`
	Result     *string  `json:"result"`
	Reason     *string  `json:"reason"`
	ClientIP   *string  `json:"client_ip"`
	UserAgent  *string  `json:"user_agent"`
	Count      int64    `json:"count"`
	LastOn     *Time    `json:"last_on"`
}

// JSON is l as clients see it.
func (l *Log) JSON() LogJSON {
	return LogJSON{ID: l.ID, TokenID: optional(l.TokenID), TokenName: optional(l.TokenName), User: optional(l.Subject),
		Activity: l.Activity, ActivityOn: jsonTime(&l.ActivityOn), ActivityBy: l.ActivityBy, Result: optional(l.Result),
		Reason: optional(l.Reason), ClientIP: optional(l.ClientIP), UserAgent: optional(l.UserAgent), Count: l.Count,
		LastOn: jsonTime(&l.LastOn)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
