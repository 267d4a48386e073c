package apitoken

import (
	"context"
	"strconv"
	"time"
)

// Event is what a notification tells a token's owner.
type Event string

// The events. A notification never carries the JWT: only what the owner
// needs to recognise the token.
const (
	// EventGenerated: a new JWT was generated for the token (so a session
	// that should not have done it is noticed).
	EventGenerated Event = "token.generated"
	// EventRevoked: the token was revoked (Reason says why).
	EventRevoked Event = "token.revoked"
	// EventExpiring: the token expires soon (Reminder says which reminder).
	EventExpiring Event = "token.expiring"
	// EventUnused: the token has not been used for a while and will be
	// revoked at RevokeAt unless it is used before (revoke_unused_after).
	EventUnused Event = "token.unused"
)

// The reminders of EventExpiring, and how long before the expiry each is due.
const (
	Reminder7d = "7d"
	Reminder1d = "1d"

	Reminder7dBefore = 7 * day
	Reminder1dBefore = day
)

// NotificationState is where a notification is in the outbox.
type NotificationState string

// The states. Only pending notifications are claimed; the others are final.
const (
	// NotificationPending: waiting for its (next) attempt.
	NotificationPending NotificationState = "pending"
	// NotificationSent: delivered.
	NotificationSent NotificationState = "sent"
	// NotificationFailed: given up, after the last retry or a refusal that
	// no retry can change; LastError says why.
	NotificationFailed NotificationState = "failed"
	// NotificationSkipped: nothing to send, e.g. an email to an owner who
	// has no email address; LastError says why.
	NotificationSkipped NotificationState = "skipped"
)

// ParseNotificationState checks a state filter value.
func ParseNotificationState(s string) (NotificationState, error) {
	switch st := NotificationState(s); st {
	case NotificationPending, NotificationSent, NotificationFailed, NotificationSkipped:
		return st, nil
	}
	return "", Errorf(ErrInvalid, "unknown notification state %q: use pending, sent, failed or skipped", s)
}

// Notification is one message about one token event to one destination,
// kept in the store's outbox from the transaction that made the event until
// it is delivered (or given up).
type Notification struct {
	ID int64
	// Key names the event: the same for each destination of one event, and
	// unique with Destination, so that enqueueing an event twice (two
	// instances scanning for the same reminder) adds it once.
	Key string
	// Destination is "email", or "webhook:" and the webhook's
	// WebhookDestination.
	Destination string
	Event       Event
	Reminder    string // Reminder7d or Reminder1d for EventExpiring
	TokenID     string
	TokenName   string
	Owner       string
	Scopes      Scopes
	ExpiresAt   *time.Time
	// Actor is who acted (the owner, a system admin) or, for a revocation
	// nobody asked for, what did it (the REVOKE log's activity_by: ByScim,
	// RevokedExposedInURL, ...); "" for a reminder.
	Actor string
	// Reason is why an EventRevoked token was revoked; "" for other events.
	Reason RevokeReason
	// UnusedSince (EventUnused, and EventRevoked by RevokeUnused) is when
	// the token was last used or generated, whichever is later; RevokeAt
	// (EventUnused) is when it will be revoked unless it is used before.
	UnusedSince *time.Time
	RevokeAt    *time.Time
	// At is when the event happened.
	At time.Time

	State         NotificationState
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	DoneAt        *time.Time // when it left pending

	// Lease identifies the claim that returned it (ClaimNotifications).
	Lease string
}

// Destination names.
const DestinationEmail = "email"

// NotificationResult is the outcome of one claimed notification.
type NotificationResult struct {
	// State: NotificationPending to try again at NextAttemptAt, or a final
	// state.
	State         NotificationState
	NextAttemptAt time.Time
	// Error is the reason of a failure or a skip ("" when sent).
	Error string
	// Attempted counts the outcome as an attempt; false releases a claimed
	// notification untried (a deliverer stopping).
	Attempted bool
	// At is when the outcome was known.
	At time.Time
}

// NotificationFilter selects notifications.
type NotificationFilter struct {
	State   NotificationState // "" for every state
	TokenID string            // "" for every token
	Page
}

// Claim asks for pending notifications to deliver.
type Claim struct {
	// Destinations the claimer can deliver to; others are left alone.
	Destinations []string
	// Now is the claimer's clock: notifications due at or before it are
	// claimed, and leases that ended at or before it are free.
	Now time.Time
	// Lease is how long the claim holds them.
	Lease time.Duration
	// Limit is the most to claim.
	Limit int
}

// Outbox is the part of a Store that keeps notifications until they are
// delivered. Notifications of a token change are written by UpdateToken
// with the change (Log.Notify); reminders are enqueued by a periodic scan.
type Outbox interface {
	// EnqueueNotifications adds pending notifications (State, Attempts,
	// LastError, DoneAt and Lease are ignored; a zero NextAttemptAt is
	// At), skipping any whose Key and Destination are already in the outbox
	// in whatever state. It returns how many it added. Log.Notify is
	// written by the same rule.
	EnqueueNotifications(ctx context.Context, ns []Notification) (int, error)
	// ClaimNotifications leases up to c.Limit pending notifications to one
	// of c.Destinations whose NextAttemptAt is at or before c.Now and that
	// no lease holds at c.Now, the earliest due first: each gets a new
	// random Lease, held until c.Now + c.Lease. While it holds, no other
	// claim, from this process or another sharing the database, returns it.
	ClaimNotifications(ctx context.Context, c Claim) ([]Notification, error)
	// FinishNotification records the outcome of the claimed notification
	// id, if lease still holds it (no later claim took it over), and
	// releases it. ErrConflict when the claim was lost, ErrNotFound for an
	// unknown id.
	FinishNotification(ctx context.Context, id int64, lease string, r NotificationResult) error
	// ListNotifications lists notifications matching f, newest first.
	ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, string, error)
	// PruneNotifications deletes the notifications that left pending before
	// before, and returns how many it deleted.
	PruneNotifications(ctx context.Context, before time.Time) (int, error)
	// ListExpiringTokens lists the generated, unrevoked tokens whose
	// ExpiresAt is after from and at or before until, by ExpiresAt then id.
	ListExpiringTokens(ctx context.Context, from, until time.Time, page Page) ([]Token, string, error)
}

// NotificationKey is the Key of an event of token t: a generation's
// GENERATE and reminders are told apart from those of other generations.
func NotificationKey(ev Event, reminder string, t *Token) string {
	switch ev {
	case EventRevoked:
		return string(ev) + "/" + t.ID
	case EventExpiring:
		return string(ev) + "/" + reminder + "/" + t.ID + "/" + generation(t)
	case EventUnused:
		// Once per idle period: a use starts a new one.
		return string(ev) + "/" + t.ID + "/" + generation(t) + "/" + strconv.FormatInt(t.UnusedSince().UnixMicro(), 10)
	}
	return string(ev) + "/" + t.ID + "/" + generation(t)
}

// UnusedSince is when generated token t was last used or generated,
// whichever is later; the zero time before its first generation.
func (t *Token) UnusedSince() time.Time {
	if t.GeneratedAt == nil {
		return time.Time{}
	}
	if t.LastUsedAt != nil && t.LastUsedAt.After(*t.GeneratedAt) {
		return *t.LastUsedAt
	}
	return *t.GeneratedAt
}

func generation(t *Token) string {
	if t.GeneratedAt == nil {
		return "0"
	}
	return strconv.FormatInt(t.GeneratedAt.UnixMicro(), 10)
}

// NewNotifications is the notification of an event of token t, as it is
// after the event, for each destination.
func NewNotifications(ev Event, reminder string, t *Token, actor string, at time.Time, destinations []string) []Notification {
	if len(destinations) == 0 {
		return nil
	}
	key := NotificationKey(ev, reminder, t)
	var exp *time.Time
	if e := t.ExpiresAt(); e != nil {
		v := *e
		exp = &v
	}
	out := make([]Notification, len(destinations))
	for i, d := range destinations {
		out[i] = Notification{Key: key, Destination: d, Event: ev, Reminder: reminder, TokenID: t.ID,
			TokenName: t.Name, Owner: t.Owner, Scopes: t.Scopes, ExpiresAt: exp, Actor: actor, At: at,
			State: NotificationPending, NextAttemptAt: at}
	}
	return out
}

// DueReminder says which expiry reminder of token t is due at now, if any:
// Reminder1d once the token expires within a day, else Reminder7d once it
// expires within 7 days. A reminder whose time came before the token was
// generated is never due (a 7d token gets no 7-day reminder, a 1d token
// none), nor is one of a token that is revoked, expired or has no expiry.
func DueReminder(t *Token, now time.Time) (reminder string, ok bool) {
	end := t.ExpiresAt()
	if t.RevokedAt != nil || t.GeneratedAt == nil || end == nil || !now.Before(*end) {
		return "", false
	}
	left := end.Sub(now)
	switch {
	case left <= Reminder1dBefore:
		return Reminder1d, end.Add(-Reminder1dBefore).After(*t.GeneratedAt)
	case left <= Reminder7dBefore:
		return Reminder7d, end.Add(-Reminder7dBefore).After(*t.GeneratedAt)
	}
	return "", false
}
