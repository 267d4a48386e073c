package apitoken

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the domain and the stores return that a caller
// may act on wraps exactly one of these; the HTTP layer maps them to status
// codes in one place.
var (
	// ErrInvalid: the request is malformed or breaks a rule (HTTP 400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such object, or one the caller may not see (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with stored state (HTTP 409).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller is known but lacks the right (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the store could not be reached or timed out (HTTP 503).
	ErrUnavailable = errors.New("token store unavailable")

	// ErrTokenLimit: the owner already has the most tokens that are not
	// revoked that Store.CreateToken was told to allow. It is a kind of
	// ErrConflict (HTTP 409), told apart so that the message can name the
	// limit instead of a name clash.
	ErrTokenLimit = fmt.Errorf("%w: token limit reached", ErrConflict)
)

// TokenLimitError is the error of a store that refuses to create a token
// because owner already has limit tokens that are not revoked.
func TokenLimitError(owner string, limit int) error {
	return Errorf(ErrTokenLimit, "user %q has reached the limit of %d tokens that are not revoked (max_tokens_per_user); revoke one first", owner, limit)
}

// Error is a domain error with a message meant for a person: it says what is
// wrong and, where it can, what to do instead. Kind is one of the sentinels.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf builds an *Error of the given kind.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Message returns the person-facing message of err: the Msg of an *Error, or
// a generic sentence for anything else, so internal details never leak.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return "no such object"
	case errors.Is(err, ErrConflict):
		return "the request conflicts with the current state"
	case errors.Is(err, ErrUnavailable):
		return "the token store is unavailable; try again shortly"
	}
	return "internal error"
}
