package apitoken

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Expiry is the lifetime chosen for a token: one of 1d 7d 30d 60d 90d 1y never.
type Expiry string

// The expiry choices, shortest first.
const (
	Expiry1d    Expiry = "1d"
	Expiry7d    Expiry = "7d"
	Expiry30d   Expiry = "30d"
	Expiry60d   Expiry = "60d"
	Expiry90d   Expiry = "90d"
	Expiry1y    Expiry = "1y"
	ExpiryNever Expiry = "never"
)

const day = 24 * time.Hour

var expiries = []struct {
	e Expiry
	d time.Duration
}{
	{Expiry1d, day}, {Expiry7d, 7 * day}, {Expiry30d, 30 * day}, {Expiry60d, 60 * day},
	{Expiry90d, 90 * day}, {Expiry1y, 365 * day}, {ExpiryNever, 0},
}

// Expiries lists every choice, shortest first.
func Expiries() []Expiry {
	out := make([]Expiry, len(expiries))
	for i, x := range expiries {
		out[i] = x.e
	}
	return out
}

func (e Expiry) rank() int {
	for i, x := range expiries {
		if x.e == e {
			return i
		}
	}
	return -1
}

// Valid reports whether e is one of the seven choices.
func (e Expiry) Valid() bool { return e.rank() >= 0 }

// ParseExpiry checks that s is one of the seven choices.
func ParseExpiry(s string) (Expiry, error) {
	e := Expiry(s)
	if !e.Valid() {
		return "", Errorf(ErrInvalid, "unknown expiry %q: choose one of 1d, 7d, 30d, 60d, 90d, 1y, never", s)
	}
	return e, nil
}

// Duration is the lifetime; ok is false for never.
func (e Expiry) Duration() (d time.Duration, ok bool) {
	r := e.rank()
	if r < 0 || e == ExpiryNever {
		return 0, false
	}
	return expiries[r].d, true
}

// Longer reports whether e is a longer lifetime than o (never is the longest).
func (e Expiry) Longer(o Expiry) bool { return e.rank() > o.rank() }

// ExpiresAt is the end of a lifetime of e that starts at from; nil for never.
func (e Expiry) ExpiresAt(from time.Time) *time.Time {
	d, ok := e.Duration()
	if !ok {
		return nil
	}
	t := from.Add(d)
	return &t
}

// Status is where a token is in its lifecycle.
type Status string

// The statuses, as they appear in JSON.
const (
	StatusNotGenerated      Status = "not_generated"
	StatusGeneratedInactive Status = "generated_inactive"
	StatusGeneratedActive   Status = "generated_active"
	StatusExpired           Status = "expired"
	StatusRevoked           Status = "revoked"
)

// Label is the status as shown to people.
func (s Status) Label() string {
	switch s {
	case StatusNotGenerated:
		return "Not Generated"
	case StatusGeneratedInactive:
		return "Generated - Inactive"
	case StatusGeneratedActive:
		return "Generated - Active"
	case StatusExpired:
		return "Expired"
	case StatusRevoked:
		return "Revoked"
	}
	return string(s)
}

// ParseStatus checks a status filter value.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	switch st {
	case StatusNotGenerated, StatusGeneratedInactive, StatusGeneratedActive, StatusExpired, StatusRevoked:
		return st, nil
	}
	return "", Errorf(ErrInvalid, "unknown status %q: use not_generated, generated_inactive, generated_active, expired or revoked (or several, separated by commas)", s)
}

// ParseStatuses checks a status filter: one status, or several separated by
// commas, meaning any of them (not_generated,generated_inactive,
// generated_active,expired: every token that is not revoked).
func ParseStatuses(s string) ([]Status, error) {
	var sts []Status
	for part := range strings.SplitSeq(s, ",") {
		st, err := ParseStatus(part)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(sts, st) {
			sts = append(sts, st)
		}
	}
	return sts, nil
}

// Token is a named record owned by one user. It has at most one live JWT,
// identified by the SHA-256 of that JWT's jti.
type Token struct {
	ID        string
	Name      string
	Owner     string
	Scopes    Scopes
	Expires   Expiry
	CreatedAt time.Time
	// AllowedIPs are the client networks the token may be used from; nil
	// for any.
	AllowedIPs Networks

	// Set by generation; nil (empty) before the first.
	GeneratedAt *time.Time
	// GeneratedExp is the exp claim of the live JWT; nil for never.
	GeneratedExp *time.Time
	// GeneratedScopes are the scopes of the live JWT's claim.
	GeneratedScopes Scopes
	JTIHash         []byte

	// PrevJTIHash is the SHA-256 of the previous JWT's jti, which keeps
	// working until PrevUntil: the overlap asked for at the last
	// generation. Both are nil when there is none.
	PrevJTIHash []byte
	PrevUntil   *time.Time

	LastUsedAt *time.Time
	LastUsedIP string
	RevokedAt  *time.Time
	RevokedBy  string
}

// SetStored sets Scopes, GeneratedScopes and AllowedIPs from the forms the
// store keeps them in (ScopesOf, NetworksOf).
func (t *Token) SetStored(scopes, generated, allowed string) (err error) {
	if t.Scopes, err = ScopesOf(scopes); err != nil {
		return err
	}
	if t.GeneratedScopes, err = ScopesOf(generated); err != nil {
		return err
	}
	t.AllowedIPs, err = NetworksOf(allowed)
	return err
}

// ExpiresAt is the effective end of the live JWT: the earlier of its exp and
// generated_at + the record's expiry. Nil before generation and for never.
func (t *Token) ExpiresAt() *time.Time {
	// Small enough to inline: a caller that keeps the pointer to itself
	// (the guard, on every request) allocates nothing.
	if end, ok := t.expiry(); ok {
		return &end
	}
	return nil
}

// expiry is ExpiresAt as a value; ok is false when it is nil.
func (t *Token) expiry() (end time.Time, ok bool) {
	if t.GeneratedAt == nil {
		return time.Time{}, false
	}
	if d, has := t.Expires.Duration(); has {
		end, ok = t.GeneratedAt.Add(d), true
	}
	if t.GeneratedExp != nil && (!ok || t.GeneratedExp.Before(end)) {
		end, ok = *t.GeneratedExp, true
	}
	return end, ok
}

// live reports whether t has a JWT that a use may present: generated and
// not revoked (it may have expired).
func (t *Token) live() bool { return t.GeneratedAt != nil && t.RevokedAt == nil }

// EffectiveScopes is what the live JWT can do now: its claims cut by the
// record and by the declared scopes. None without a live JWT.
func (t *Token) EffectiveScopes(declared Scopes) Scopes {
	if !t.live() {
		return 0
	}
	return t.GeneratedScopes & t.Scopes & declared
}

// RegenerateToApply reports whether the record allows more than the live JWT
// can do, which only the next generation applies: a declared scope the JWT
// does not claim, or an expiry later than the JWT's exp.
func (t *Token) RegenerateToApply(declared Scopes) bool {
	if !t.live() {
		return false
	}
	if t.Scopes&declared&^t.GeneratedScopes != 0 {
		return true
	}
	if t.GeneratedExp == nil {
		return false // never expires: nothing is later
	}
	// The exp claim counts from the generation's whole second.
	end := t.Expires.ExpiresAt(t.GeneratedAt.Truncate(time.Second))
	return end == nil || end.After(*t.GeneratedExp)
}

// PreviousValidUntil is the end of a running overlap at now: when the
// previous JWT stops working. Nil when there is none (never asked, over, or
// ended by a revocation).
func (t *Token) PreviousValidUntil(now time.Time) *time.Time {
	if t.RevokedAt != nil || t.PrevUntil == nil || len(t.PrevJTIHash) == 0 || !now.Before(*t.PrevUntil) {
		return nil
	}
	return t.PrevUntil
}

// StatusAt derives the status at now.
func (t *Token) StatusAt(now time.Time) Status {
	switch {
	case t.RevokedAt != nil:
		return StatusRevoked
	case t.GeneratedAt == nil:
		return StatusNotGenerated
	}
	if end := t.ExpiresAt(); end != nil && !now.Before(*end) {
		return StatusExpired
	}
	// Active once an OK authentication of this generation was recorded: the
	// recorded time is the request's, so a late-flushed use of the previous
	// JWT never marks a new generation active.
	if t.LastUsedAt != nil && !t.LastUsedAt.Before(*t.GeneratedAt) {
		return StatusGeneratedActive
	}
	return StatusGeneratedInactive
}

// Activity is what a log row records.
type Activity string

// The activities. Token activities carry a token id; user and role changes
// (admin logs) carry the user they changed in Subject.
const (
	ActivityCreate       Activity = "CREATE"
	ActivityGenerate     Activity = "GENERATE"
	ActivityUpdate       Activity = "UPDATE"
	ActivityRevoke       Activity = "REVOKE"
	ActivityAuthenticate Activity = "AUTHENTICATE"
	ActivityUserUpdate   Activity = "USER_UPDATE"
	ActivityRoleGrant    Activity = "ROLE_GRANT"
	ActivityRoleRemove   Activity = "ROLE_REMOVE"
)

// ParseActivity checks an activity filter value.
func ParseActivity(s string) (Activity, error) {
	switch a := Activity(s); a {
	case ActivityCreate, ActivityGenerate, ActivityUpdate, ActivityRevoke, ActivityAuthenticate,
		ActivityUserUpdate, ActivityRoleGrant, ActivityRoleRemove:
		return a, nil
	}
	return "", Errorf(ErrInvalid, "unknown activity %q: use CREATE, GENERATE, UPDATE, REVOKE, AUTHENTICATE, USER_UPDATE, ROLE_GRANT or ROLE_REMOVE", s)
}

// Results of an AUTHENTICATE log.
const (
	ResultOK   = "OK"
	ResultFail = "Fail"
)

// Reasons an authentication fails, as recorded in logs.
const (
	ReasonExpired           = "expired"
	ReasonRevoked           = "revoked"
	ReasonSuperseded        = "superseded"
	ReasonInsufficientScope = "insufficient_scope"
	ReasonRoleMissing       = "role_missing"
	ReasonViewOnly          = "view_only"
	ReasonDisabled          = "disabled"
	ReasonOwnerMismatch     = "owner_mismatch"
	ReasonUnknownToken      = "unknown_token"
	ReasonNotGenerated      = "not_generated"
	// ReasonIPNotAllowed: the client's address is outside the token's
	// allowed_ips.
	ReasonIPNotAllowed = "ip_not_allowed"
	// ReasonPreviousJWT is the reason of an OK use of the previous JWT
	// during a regeneration's overlap: it does not count as a use of the
	// live JWT (LastUsedAt, and so the status, stay as they were).
	ReasonPreviousJWT = "previous_jwt"
	// ReasonFolded marks the row that absorbs a token's attempts past the
	// per-window row bound.
	ReasonFolded = "folded"
)

// Log is one row of a token's (or the admin) log. AUTHENTICATE rows coalesce
// identical attempts: Count of them, the first at ActivityOn, the last at LastOn.
type Log struct {
	ID         int64
	TokenID    string // empty for user and role changes
	TokenName  string
	Subject    string // the user a USER_UPDATE or ROLE_* row is about
	Activity   Activity
	ActivityOn time.Time
	ActivityBy string
	Result     string // AUTHENTICATE only
	Reason     string
	ClientIP   string
	UserAgent  string
	Count      int64
	LastOn     time.Time

	// Notify is written to the outbox in the transaction that writes the
	// log (UpdateToken), by the rule of Outbox.EnqueueNotifications; it is
	// not part of the row and never read back.
	Notify []Notification
}

// MaxNameLen is the longest token name, in characters.
const MaxNameLen = 100

// NormalizeName trims a token name and checks it: 1 to 100 printable
// characters.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", Errorf(ErrInvalid, "name must be valid UTF-8 text")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Errorf(ErrInvalid, "name must not be empty")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", Errorf(ErrInvalid, "name is %d characters long; the limit is %d", n, MaxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", Errorf(ErrInvalid, "name must contain only printable characters (no control characters, tabs or line breaks)")
		}
	}
	return name, nil
}

// NameKey is the form under which names are compared for uniqueness:
// case-insensitive (Unicode simple folding).
func NameKey(name string) string {
	return strings.ToLower(strings.ToUpper(name))
}
