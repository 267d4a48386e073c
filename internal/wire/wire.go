// Package wire holds the JSON forms of the domain's objects as clients see
// them: the management API's tokens, users, logs and notifications, and the
// body of a webhook request. The HTTP side (tokenadmin, the CLI's admin
// routes) and the notifier encode them; the CLI decodes them. apitoken
// knows nothing of them.
package wire

import (
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
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

// Token is the JSON form of a token.
type Token struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Owner       string          `json:"owner"`
	Scopes      []string        `json:"scopes"`
	Expires     apitoken.Expiry `json:"expires"`
	Status      apitoken.Status `json:"status"`
	StatusLabel string          `json:"status_label"`
	CreatedAt   *Time           `json:"created_at"`
	GeneratedAt *Time           `json:"generated_at"`
	ExpiresAt   *Time           `json:"expires_at"`
	LastUsedAt  *Time           `json:"last_used_at"`
	LastUsedIP  *string         `json:"last_used_ip"`
	RevokedAt   *Time           `json:"revoked_at"`
	// AllowedIPs are the client networks the token may be used from, as
	// CIDRs; empty for any.
	AllowedIPs []string `json:"allowed_ips"`
	// EffectiveScopes is what the live JWT can do now (apitoken.Token.EffectiveScopes).
	EffectiveScopes []string `json:"effective_scopes"`
	// RegenerateToApply tells that a widening waits for the next generation.
	RegenerateToApply bool `json:"regenerate_to_apply"`
	// PreviousValidUntil is the end of a running overlap: until then the
	// previous JWT works too.
	PreviousValidUntil *Time `json:"previous_valid_until"`
}

// FromToken is t as clients see it at now, under the declared scopes.
func FromToken(t *apitoken.Token, now time.Time, declared apitoken.Scopes) Token {
	st := t.StatusAt(now)
	j := Token{ID: t.ID, Name: t.Name, Owner: t.Owner, Scopes: t.Scopes.Names(), Expires: t.Expires,
		EffectiveScopes: t.EffectiveScopes(declared).Names(), RegenerateToApply: t.RegenerateToApply(declared),
		Status: st, StatusLabel: st.Label(), CreatedAt: jsonTime(&t.CreatedAt), GeneratedAt: jsonTime(t.GeneratedAt),
		ExpiresAt: jsonTime(t.ExpiresAt()), LastUsedAt: jsonTime(t.LastUsedAt), RevokedAt: jsonTime(t.RevokedAt),
		AllowedIPs: t.AllowedIPs.Names(), PreviousValidUntil: jsonTime(t.PreviousValidUntil(now))}
	if t.LastUsedIP != "" {
		ip := t.LastUsedIP
		j.LastUsedIP = &ip
	}
	return j
}

// User is the JSON form of a user.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Kind     string `json:"kind"`
	Source   string `json:"source"`
	ViewOnly bool   `json:"view_only"`
	Disabled bool   `json:"disabled"`
	// Roles is every role in effect; GroupRoles those of them that come
	// from identity-provider groups.
	Roles      []apitoken.Role `json:"roles"`
	GroupRoles []apitoken.Role `json:"group_roles"`
	Groups     []string        `json:"groups"`
	CreatedAt  *Time           `json:"created_at"`
	LastSeenAt *Time           `json:"last_seen_at"`
}

// FromUser is u as clients see it.
func FromUser(u *apitoken.User) User {
	j := User{ID: u.ID, Name: u.Name, Email: u.Email, Kind: string(u.Kind), Source: string(u.Source),
		ViewOnly: u.ViewOnly, Disabled: u.Disabled, Roles: nonNil(u.EffectiveRoles()), GroupRoles: nonNil(u.GroupRoles),
		Groups: nonNil(u.Groups), CreatedAt: jsonTime(&u.CreatedAt), LastSeenAt: jsonTime(u.LastSeenAt)}
	if j.Kind == "" {
		j.Kind = string(apitoken.KindPerson)
	}
	if j.Source == "" {
		j.Source = string(apitoken.SourceManual)
	}
	return j
}

// nonNil is s, or an empty list for nil, so that JSON shows [] and not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Log is the JSON form of a log row.
type Log struct {
	ID         int64             `json:"id"`
	TokenID    *string           `json:"token_id"`
	TokenName  *string           `json:"token_name"`
	User       *string           `json:"user,omitempty"`
	Activity   apitoken.Activity `json:"activity"`
	ActivityOn *Time             `json:"activity_on"`
	ActivityBy string            `json:"activity_by"`
	Result     *string           `json:"result"`
	Reason     *string           `json:"reason"`
	ClientIP   *string           `json:"client_ip"`
	UserAgent  *string           `json:"user_agent"`
	Count      int64             `json:"count"`
	LastOn     *Time             `json:"last_on"`
}

// FromLog is l as clients see it.
func FromLog(l *apitoken.Log) Log {
	return Log{ID: l.ID, TokenID: optional(l.TokenID), TokenName: optional(l.TokenName), User: optional(l.Subject),
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

// Notification is the JSON form of a notification, for admins.
type Notification struct {
	ID            int64                      `json:"id"`
	Event         apitoken.Event             `json:"event"`
	Reminder      *string                    `json:"reminder"`
	Destination   string                     `json:"destination"`
	TokenID       string                     `json:"token_id"`
	TokenName     string                     `json:"token_name"`
	Owner         string                     `json:"owner"`
	Actor         *string                    `json:"actor"`
	Reason        *string                    `json:"reason"`
	At            *Time                      `json:"at"`
	State         apitoken.NotificationState `json:"state"`
	Attempts      int                        `json:"attempts"`
	LastError     *string                    `json:"last_error"`
	NextAttemptAt *Time                      `json:"next_attempt_at"`
	DoneAt        *Time                      `json:"done_at"`
}

// FromNotification is n as admins see it.
func FromNotification(n *apitoken.Notification) Notification {
	j := Notification{ID: n.ID, Event: n.Event, Reminder: optional(n.Reminder), Destination: n.Destination,
		TokenID: n.TokenID, TokenName: n.TokenName, Owner: n.Owner, Actor: optional(n.Actor), Reason: optional(string(n.Reason)), At: jsonTime(&n.At),
		State: n.State, Attempts: n.Attempts, LastError: optional(n.LastError), DoneAt: jsonTime(n.DoneAt)}
	if n.State == apitoken.NotificationPending {
		j.NextAttemptAt = jsonTime(&n.NextAttemptAt)
	}
	return j
}

// Webhook is the JSON body of a webhook request. It never holds the JWT.
type Webhook struct {
	// ID names the event; a retried or repeated delivery has the same id.
	ID   string         `json:"id"`
	Type apitoken.Event `json:"type"`
	// Time is when the event happened (RFC 3339, UTC).
	Time      string   `json:"time"`
	TokenID   string   `json:"token_id"`
	TokenName string   `json:"token_name"`
	Owner     string   `json:"owner"`
	Scopes    []string `json:"scopes"`
	// ExpiresAt is the token's effective expiry; null for never.
	ExpiresAt *string `json:"expires_at"`
	// Actor is who acted (the owner or a system admin); null for a
	// reminder.
	Actor *string `json:"actor"`
	// Reminder is "7d" or "1d" for token.expiring; null otherwise.
	Reminder *string `json:"reminder"`
	// Reason is why a token.revoked token was revoked (owner, admin, scim,
	// exposed_in_url, revocation_endpoint, unused); null otherwise.
	Reason *string `json:"reason"`
	// UnusedSince is when the token was last used or generated
	// (token.unused, token.revoked for unused); RevokeAt is when a
	// token.unused token will be revoked unless it is used. Null otherwise.
	UnusedSince *string `json:"unused_since"`
	RevokeAt    *string `json:"revoke_at"`
}

// rfc3339 is t in RFC 3339, UTC, to the second; nil for nil.
func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// FromWebhook is the webhook body of n.
func FromWebhook(n apitoken.Notification) Webhook {
	p := Webhook{ID: n.Key, Type: n.Event, Time: n.At.UTC().Format(time.RFC3339), TokenID: n.TokenID,
		TokenName: n.TokenName, Owner: n.Owner, Scopes: n.Scopes.Names()}
	p.ExpiresAt, p.UnusedSince, p.RevokeAt = rfc3339(n.ExpiresAt), rfc3339(n.UnusedSince), rfc3339(n.RevokeAt)
	p.Actor, p.Reminder, p.Reason = optional(n.Actor), optional(n.Reminder), optional(string(n.Reason))
	return p
}
