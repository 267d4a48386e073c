// Package cursor encodes the opaque cursors of the stores' lists, the same
// way in every backend: the sort key of the last row of a page,
// base64url-encoded behind a letter naming the list, so that a cursor of one
// list is refused by another.
//
//	by creation time (users "u", tokens "t", expiring tokens "x"): <kind>:<micros>:<id>
//	by id (logs "l", notifications "n"):                          <kind>:<id>
package cursor

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Limit is the page's limit with the default applied and the maximum
// enforced.
func Limit(p apitoken.Page) int {
	switch {
	case p.Limit <= 0:
		return apitoken.DefaultPageLimit
	case p.Limit > apitoken.MaxPageLimit:
		return apitoken.MaxPageLimit
	}
	return p.Limit
}

func encode(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ":")))
}

// decode returns what follows kind in c.
func decode(kind, c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", bad()
	}
	k, rest, ok := strings.Cut(string(b), ":")
	if !ok || k != kind {
		return "", bad()
	}
	return rest, nil
}

func bad() error {
	return apitoken.Errorf(apitoken.ErrInvalid,
		"cursor is not valid for this list: pass the next_cursor of the previous page unchanged, or no cursor for the first page")
}

// Time is the cursor of a list of kind sorted by a time (unix micros) and id.
func Time(kind string, micros int64, id string) string {
	return encode(kind, strconv.FormatInt(micros, 10), id)
}

// ParseTime decodes a Time cursor of kind.
func ParseTime(kind, c string) (micros int64, id string, err error) {
	rest, err := decode(kind, c)
	if err != nil {
		return 0, "", err
	}
	ts, id, ok := strings.Cut(rest, ":")
	// Every id is text a store can hold (PostgreSQL refuses invalid UTF-8 and NUL).
	if !ok || id == "" || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return 0, "", bad()
	}
	if micros, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return 0, "", bad()
	}
	return micros, id, nil
}

// ID is the cursor of a list of kind sorted by a numeric id.
func ID(kind string, id int64) string { return encode(kind, strconv.FormatInt(id, 10)) }

// ParseID decodes an ID cursor of kind.
func ParseID(kind, c string) (int64, error) {
	rest, err := decode(kind, c)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, bad()
	}
	return id, nil
}

// Page cuts rows, read with a limit of n+1, to a page of n and names the
// cursor of the next page: key of the page's last row, or "" when rows held
// no more than n.
func Page[T any](rows []T, n int, key func(last T) string) ([]T, string) {
	if len(rows) <= n {
		return rows, ""
	}
	return rows[:n], key(rows[n-1])
}
