package postgres

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// A cursor is the sort key of the last row of a page, base64url-encoded
// behind a letter naming the list ("u" users, "t" tokens, "l" logs), so that
// a cursor of one list is refused by another. The layout is the SQLite
// store's.
//
//	users, tokens: <kind>:<created_at micros>:<id>
//	logs:          l:<id>

func limit(p apitoken.Page) int {
	switch {
	case p.Limit <= 0:
		return apitoken.DefaultPageLimit
	case p.Limit > apitoken.MaxPageLimit:
		return apitoken.MaxPageLimit
	}
	return p.Limit
}

func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ":")))
}

func badCursor() error {
	return apitoken.Errorf(apitoken.ErrInvalid,
		"cursor is not valid for this list: pass the next_cursor of the previous page unchanged, or no cursor for the first page")
}

// decodeTimeCursor decodes a users or tokens cursor of that kind.
func decodeTimeCursor(kind, c string) (created int64, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", badCursor()
	}
	k, rest, ok := strings.Cut(string(b), ":")
	if !ok || k != kind {
		return 0, "", badCursor()
	}
	ts, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return 0, "", badCursor()
	}
	if created, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return 0, "", badCursor()
	}
	return created, id, nil
}

func timeCursor(kind string, created int64, id string) string {
	return encodeCursor(kind, strconv.FormatInt(created, 10), id)
}

func decodeLogCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, badCursor()
	}
	k, rest, ok := strings.Cut(string(b), ":")
	if !ok || k != "l" {
		return 0, badCursor()
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, badCursor()
	}
	return id, nil
}

func logCursor(id int64) string { return encodeCursor("l", strconv.FormatInt(id, 10)) }
