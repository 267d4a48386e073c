package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// testListUnusedTokens: the generated tokens that are neither revoked nor
// expired, by the later of their generation and last use, within the
// window, paginated.
func testListUnusedTokens(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	mk := func(name string, exp apitoken.Expiry, genAt time.Time) apitoken.Token {
		tok := newToken("alice", name, t0)
		if exp != "" {
			tok.Expires = exp
		}
		tok = createToken(t, s, tok)
		if !genAt.IsZero() {
			tok = generate(t, s, tok.ID, genAt)
		}
		return tok
	}
	mk("gen day 1", apitoken.ExpiryNever, t0.Add(day))
	used := mk("gen day 0, used day 5", apitoken.ExpiryNever, t0)
	recordAuth(t, s, okAt(used.ID, t0.Add(5*day), "192.0.2.1"))
	// Used before its latest generation: the generation counts.
	regen := mk("used day 1, gen day 3", apitoken.ExpiryNever, t0)
	recordAuth(t, s, okAt(regen.ID, t0.Add(day), "192.0.2.1"))
	generate(t, s, regen.ID, t0.Add(3*day))
	a := mk("gen day 2", apitoken.Expiry1y, t0.Add(2*day))
	b := mk("gen day 2 too", apitoken.Expiry1y, t0.Add(2*day))
	mk("gen day 1.5, expires day 8.5", apitoken.Expiry7d, t0.Add(36*time.Hour))
	mk("not generated", "", time.Time{})
	rev := mk("revoked", apitoken.ExpiryNever, t0)
	revoke(t, s, rev.ID, t0.Add(time.Hour))

	list := func(after, until, now time.Time, limit int) []string {
		var out []apitoken.Token
		f := apitoken.UnusedFilter{After: after, Until: until, Now: now, Page: apitoken.Page{Limit: limit}}
		for i := 0; ; i++ {
			toks, next, err := s.ListUnusedTokens(t.Context(), f)
			if err != nil {
				t.Fatalf("ListUnusedTokens: %v", err)
			}
			out = append(out, toks...)
			if next == "" || i > 100 {
				return tokenNames(out)
			}
			f.Cursor = next
		}
	}
	two := []string{a.Name, b.Name} // the same time: by id
	if b.ID < a.ID {
		two = []string{b.Name, a.Name}
	}
	cat := func(parts ...any) []string {
		var out []string
		for _, p := range parts {
			switch v := p.(type) {
			case string:
				out = append(out, v)
			case []string:
				out = append(out, v...)
			}
		}
		return out
	}
	const early = "gen day 1.5, expires day 8.5"
	for _, tc := range []struct {
		name              string
		after, until, now time.Time
		want              []string
	}{
		{"every one, a page of one at a time", time.Time{}, t0.Add(10 * day), t0.Add(7 * day),
			cat("gen day 1", early, two, "used day 1, gen day 3", "gen day 0, used day 5")},
		{"an expired one is left out", time.Time{}, t0.Add(10 * day), t0.Add(9 * day),
			cat("gen day 1", two, "used day 1, gen day 3", "gen day 0, used day 5")},
		{"after is excluded, until included", t0.Add(day), t0.Add(3 * day), t0.Add(7 * day),
			cat(early, two, "used day 1, gen day 3")},
		{"none before the first", time.Time{}, t0.Add(day - time.Microsecond), t0.Add(7 * day), nil},
	} {
		if got := list(tc.after, tc.until, tc.now, 1); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if got := list(tc.after, tc.until, tc.now, 100); !slices.Equal(got, tc.want) {
			t.Errorf("%s, one page: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, _, err := s.ListUnusedTokens(t.Context(), apitoken.UnusedFilter{Until: t0, Now: t0, Page: apitoken.Page{Limit: 10, Cursor: "garbage"}}); err == nil {
		t.Error("a malformed cursor was accepted")
	}
}
