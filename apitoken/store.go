package apitoken

import (
	"context"
	"time"
)

// Store keeps users, tokens, logs and the notification outbox.
// Implementations must be safe for concurrent use and must pass
// storetest.Run.
//
// Errors: ErrNotFound for a missing object, ErrConflict for a clash with
// stored state (a duplicate token name; ErrTokenLimit, a kind of it, for one
// token too many), ErrInvalid for a malformed cursor,
// ErrUnavailable (wrapped) when the database cannot be reached. Every other
// error is internal.
type Store interface {
	// What the Service calls: users, tokens, and their logs.
	ServiceStore

	// RecordAuth adds coalesced AUTHENTICATE attempts. Each record is added
	// to the row of the same token, window, result, reason, client IP and
	// user agent (Count summed, ActivityOn the earliest, LastOn the latest),
	// or starts that row. A token has at most MaxAuthRowsPerWindow rows per
	// window: past that, a record is added to the window's folded row for its
	// result (Reason "folded", no client IP or user agent): a store applies
	// this rule with AddAuthRecord (authrows.go), counting the rows the
	// window already holds in its transaction. An OK record moves
	// the token's LastUsedAt (to the latest Last, never backwards) and
	// LastUsedIP, unless its Reason is ReasonPreviousJWT (a use of the
	// previous JWT is not one of the live JWT). Records of tokens that do not exist are skipped. The batch
	// is applied in one transaction: all of it or none.
	//
	// batchID (NewBatchID) names the batch: the store records it in the
	// batch's transaction and keeps it for AuditBatchRetention, and a batch
	// whose id is already recorded is not applied again (nil is returned).
	// A caller that saw an error it cannot read as "not applied" (a lost
	// COMMIT answer) writes the batch again under the same id.
	RecordAuth(ctx context.Context, batchID string, records []AuthRecord) error

	// Changes returns at most limit changes numbered after after, in
	// order. Every UpdateToken and UpdateUser of any process on the same
	// database adds one in its transaction, numbered in commit order, so a
	// reader that saw change n has seen every change before it. Changes
	// older than ChangeRetention may be gone.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the number of the newest change, 0 when none.
	LastChange(ctx context.Context) (int64, error)

	// The notification outbox (notification.go).
	Outbox

	// Close releases the store.
	Close() error
}

// ServiceStore is the part of a Store that the Service calls.
type ServiceStore interface {
	// GetUser returns the user with that id.
	GetUser(ctx context.Context, id string) (User, error)
	// ListUsers lists users matching f, newest first.
	ListUsers(ctx context.Context, f UserFilter) ([]User, string, error)
	// UpdateUser runs fn on the stored user inside one transaction and, if fn
	// returns no error, writes the user and the logs fn returns. A missing
	// user is handed to fn as a zero User with only ID set and created true;
	// if fn returns ErrNotFound for it nothing is written.
	UpdateUser(ctx context.Context, id string, fn func(u *User, created bool) ([]Log, error)) (User, error)

	// CreateToken stores a new token and its CREATE log. Its owner must
	// exist. ErrConflict if the owner has a token of the same NameKey that is
	// not revoked. With limit > 0, ErrTokenLimit (TokenLimitError) if the
	// owner already has limit tokens or more that are not revoked: counted
	// in the transaction of the insert, so that creates racing each other,
	// from this process or another, never leave the owner with more than
	// limit.
	CreateToken(ctx context.Context, t Token, log Log, limit int) error
	// GetToken returns the token with that id.
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens lists tokens matching f, newest first.
	ListTokens(ctx context.Context, f TokenFilter) ([]Token, string, error)
	// UpdateToken runs fn on the stored token inside one transaction that no
	// other write of the token can interleave with, and, if fn returns no
	// error, writes the token and the log fn returns (none when its Activity
	// is empty) with the log's Notify in the outbox. ErrConflict if the new
	// name clashes as in CreateToken. Only
	// Name, Scopes, Expires, GeneratedAt, GeneratedExp, GeneratedScopes,
	// JTIHash, PrevJTIHash, PrevUntil, RevokedAt, RevokedBy and AllowedIPs
	// may be changed by fn.
	UpdateToken(ctx context.Context, id string, fn func(t *Token) (Log, error)) (Token, error)

	// ListLogs lists log rows matching f, newest first.
	ListLogs(ctx context.Context, f LogFilter) ([]Log, string, error)

	// ListNotifications and EnqueueNotifications are Outbox's
	// (notification.go).
	ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, string, error)
	EnqueueNotifications(ctx context.Context, ns []Notification) (int, error)

	// ListUnusedTokens lists the generated tokens that are not revoked and
	// not expired at f.Now and whose UnusedSince is after f.After (any, when
	// zero) and at or before f.Until, by UnusedSince then id. It reads an
	// index of the live tokens by UnusedSince, never the whole table.
	ListUnusedTokens(ctx context.Context, f UnusedFilter) ([]Token, string, error)
}

// UnusedFilter selects the tokens of ListUnusedTokens.
type UnusedFilter struct {
	After, Until time.Time
	Now          time.Time
	Page
}

// Waker is implemented by a Store that can tell at once that a change may
// have been committed by another process (PostgreSQL's LISTEN/NOTIFY), so
// that State.Follow reads the change sequence sooner than its next poll.
type Waker interface {
	// Wake calls fn after each commit of a change through any Store on
	// the same database (and after each (re)connection), until ctx ends;
	// it blocks until then. A call carries nothing: it only prompts a read
	// of the change sequence, so one that this deployment did not send
	// costs one read and drops nothing.
	Wake(ctx context.Context, fn func())
}

// Change is one committed change in a store's change sequence.
type Change struct {
	Seq     int64  // its number in the sequence: increasing in commit order
	TokenID string // a token changed (update, generation, revocation)
	UserID  string // a user changed (fields or roles)
}

// MaxAuthRowsPerWindow bounds the AUTHENTICATE rows of one token in one audit
// window, the folded rows included.
const MaxAuthRowsPerWindow = 100

// Page asks for one page of a list.
type Page struct {
	// Limit is the most items to return (1 to MaxPageLimit).
	Limit int
	// Cursor is the next_cursor of the previous page, or "".
	Cursor string
}

// Page limits.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// TokenFilter selects tokens.
type TokenFilter struct {
	Owner    string   // "" for every owner
	Statuses []Status // nil for every status; else the tokens in any of them
	Now      time.Time
	Page
}

// LogFilter selects log rows.
type LogFilter struct {
	TokenID  string   // "" for every token (and user and role changes)
	Activity Activity // "" for every activity
	Owner    string   // "" for every owner: the logs of that user's tokens
	Result   string   // "" for every result: ResultOK or ResultFail (AUTHENTICATE rows)
	Since    time.Time
	Page
}

// AuthRecord is a run of identical authentication attempts, coalesced in
// memory before they are written.
type AuthRecord struct {
	TokenID    string
	ActivityBy string // the guarded app
	Result     string
	Reason     string
	ClientIP   string
	UserAgent  string
	Window     time.Time // start of the audit window the attempts fall in
	First      time.Time
	Last       time.Time
	Count      int64
}
