package storetest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func testListTokens(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	var all []apitoken.Token
	for i := range 5 {
		all = append(all, createToken(t, s, newToken("alice", fmt.Sprint("a", i), t0.Add(time.Duration(i)*time.Minute))))
	}
	for i := range 3 {
		all = append(all, createToken(t, s, newToken("bob", fmt.Sprint("b", i), t0.Add(time.Duration(2*i)*time.Minute+time.Second))))
	}
	// Created in the same microsecond: ordered by id.
	all = append(all, createToken(t, s, newToken("alice", "tie1", t0.Add(time.Hour))))
	all = append(all, createToken(t, s, newToken("alice", "tie2", t0.Add(time.Hour))))
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	ofAlice := slices.DeleteFunc(slices.Clone(all), func(tk apitoken.Token) bool { return tk.Owner != "alice" })

	for _, limit := range []int{1, 2, 3, 100} {
		got := allTokens(t, s, apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(tokenNames(got), tokenNames(all)) {
			t.Errorf("every token, pages of %d = %q, want %q", limit, tokenNames(got), tokenNames(all))
		}
		got = allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Now: t0, Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(tokenNames(got), tokenNames(ofAlice)) {
			t.Errorf("alice's tokens, pages of %d = %q, want %q", limit, tokenNames(got), tokenNames(ofAlice))
		}
	}
	got, next, err := s.ListTokens(t.Context(), apitoken.TokenFilter{Owner: "carol", Now: t0})
	if err != nil || len(got) != 0 || next != "" {
		t.Errorf("tokens of an owner with none = %v, %q, %v; want none", tokenNames(got), next, err)
	}
	// The listed tokens are whole.
	got = allTokens(t, s, apitoken.TokenFilter{Owner: "bob", Now: t0})
	for _, tk := range got {
		for _, w := range all {
			if w.ID == tk.ID {
				sameToken(t, "a listed token", tk, stored(w))
			}
		}
	}
}

func testListTokensByStatus(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0)
	now := t0.Add(10 * day)
	ids := map[string]string{} // name -> id
	n := 0
	mk := func(owner, name string, expires apitoken.Expiry) string {
		n++
		tok := newToken(owner, name, t0.Add(time.Duration(n)*time.Second))
		tok.Expires = expires
		createToken(t, s, tok)
		ids[name] = tok.ID
		return tok.ID
	}
	use := func(id string, at time.Time) { recordAuth(t, s, okAt(id, at, "192.0.2.7")) }

	mk("alice", "fresh", apitoken.Expiry30d)
	mk("bob", "bob-fresh", apitoken.Expiry30d)

	generate(t, s, mk("alice", "unused", apitoken.Expiry30d), t0)

	id := mk("alice", "used", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	id = mk("alice", "failed-only", apitoken.Expiry30d)
	generate(t, s, id, t0)
	recordAuth(t, s, apitoken.AuthRecord{TokenID: id, ActivityBy: "app", Result: apitoken.ResultFail,
		Reason: apitoken.ReasonInsufficientScope, Window: t0, First: t0.Add(time.Hour), Last: t0.Add(time.Hour), Count: 1})

	id = mk("alice", "used-then-regenerated", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))
	generate(t, s, id, t0.Add(2*time.Hour))

	id = mk("alice", "used-at-generation", apitoken.Expiry30d)
	generate(t, s, id, t0.Add(3*time.Hour))
	use(id, t0.Add(3*time.Hour))

	id = mk("alice", "never-expires", apitoken.ExpiryNever)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	generate(t, s, mk("alice", "short", apitoken.Expiry1d), t0)

	id = mk("alice", "short-used", apitoken.Expiry1d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))

	// The JWT's exp is earlier than generated_at + expires: it wins.
	generate(t, s, mk("alice", "exp-claim-earlier", apitoken.Expiry30d), t0, t0.Add(2*day))

	// Expiring exactly now is expired; a microsecond later is not.
	generate(t, s, mk("alice", "ends-now", apitoken.Expiry1d), now.Add(-day))
	generate(t, s, mk("alice", "ends-after-now", apitoken.Expiry1d), now.Add(-day+time.Microsecond))

	// Narrowing the expiry after generation applies at once.
	id = mk("alice", "narrowed", apitoken.Expiry30d)
	generate(t, s, id, t0)
	if _, err := s.UpdateToken(t.Context(), id, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.Expires = apitoken.Expiry7d
		return apitoken.Log{}, nil
	}); err != nil {
		t.Fatalf("narrowing: %v", err)
	}

	revoke(t, s, mk("alice", "revoked-fresh", apitoken.Expiry30d), t0.Add(time.Hour))
	id = mk("alice", "revoked-used", apitoken.Expiry30d)
	generate(t, s, id, t0)
	use(id, t0.Add(time.Hour))
	revoke(t, s, id, t0.Add(2*time.Hour))
	id = mk("alice", "revoked-expired", apitoken.Expiry1d)
	generate(t, s, id, t0)
	revoke(t, s, id, t0.Add(2*time.Hour))

	want := map[apitoken.Status][]string{
		apitoken.StatusNotGenerated:      {"fresh", "bob-fresh"},
		apitoken.StatusGeneratedInactive: {"unused", "failed-only", "used-then-regenerated", "ends-after-now"},
		apitoken.StatusGeneratedActive:   {"used", "used-at-generation", "never-expires"},
		apitoken.StatusExpired:           {"short", "short-used", "exp-claim-earlier", "ends-now", "narrowed"},
		apitoken.StatusRevoked:           {"revoked-fresh", "revoked-used", "revoked-expired"},
	}
	// The expectations agree with the domain's own rule.
	for st, names := range want {
		for _, name := range names {
			tok := mustGetToken(t, s, ids[name])
			if got := tok.StatusAt(now); got != st {
				t.Errorf("token %q: StatusAt(now) = %s, the suite expects %s (%s)", name, got, st, fmtToken(tok))
			}
		}
	}
	for st, names := range want {
		got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Statuses: []apitoken.Status{st}, Now: now}))
		if !sameSet(got, names) {
			t.Errorf("tokens with status %s at now = %q, want %q", st, got, names)
		}
		// Filters combine with the owner and with pagination.
		got = tokenNames(allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Statuses: []apitoken.Status{st}, Now: now, Page: apitoken.Page{Limit: 1}}))
		wantAlice := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "bob-fresh" })
		if !sameSet(got, wantAlice) {
			t.Errorf("alice's tokens with status %s, pages of 1 = %q, want %q", st, got, wantAlice)
		}
	}
	// Several statuses select the tokens in any of them, also page by page:
	// every token that is not revoked, as the web pages list them.
	var live []string
	for st, names := range want {
		if st != apitoken.StatusRevoked {
			live = append(live, names...)
		}
	}
	notRevoked := []apitoken.Status{apitoken.StatusNotGenerated, apitoken.StatusGeneratedInactive, apitoken.StatusGeneratedActive, apitoken.StatusExpired}
	if got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Statuses: notRevoked, Now: now, Page: apitoken.Page{Limit: 2}})); !sameSet(got, live) {
		t.Errorf("tokens not revoked, pages of 2 = %q, want %q", got, live)
	}
	// Two statuses that both read now, after the owner's condition.
	two := []apitoken.Status{apitoken.StatusExpired, apitoken.StatusGeneratedActive}
	wantTwo := append(slices.Clone(want[apitoken.StatusExpired]), want[apitoken.StatusGeneratedActive]...)
	if got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Owner: "alice", Statuses: two, Now: now, Page: apitoken.Page{Limit: 3}})); !sameSet(got, wantTwo) {
		t.Errorf("alice's tokens expired or active, pages of 3 = %q, want %q", got, wantTwo)
	}
	// Status is taken at the filter's Now, not at the wall clock.
	early := t0.Add(12 * time.Hour)
	got := tokenNames(allTokens(t, s, apitoken.TokenFilter{Statuses: []apitoken.Status{apitoken.StatusExpired}, Now: early}))
	if len(got) != 0 {
		t.Errorf("tokens expired 12h after t0 = %q, want none", got)
	}
	got = tokenNames(allTokens(t, s, apitoken.TokenFilter{Statuses: []apitoken.Status{apitoken.StatusGeneratedActive}, Now: early}))
	if !sameSet(got, []string{"used", "used-at-generation", "never-expires", "short-used"}) {
		t.Errorf("tokens active 12h after t0 = %q", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func testListTokensUnknownStatus(t *testing.T, s apitoken.Store) {
	_, _, err := s.ListTokens(t.Context(), apitoken.TokenFilter{Statuses: []apitoken.Status{apitoken.StatusRevoked, "dormant"}, Now: t0})
	wantErr(t, "ListTokens with an unknown status", err, apitoken.ErrInvalid)
}

// ---- logs ----

func testListLogs(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	a := createToken(t, s, newToken("alice", "A", t0))
	b := createToken(t, s, newToken("alice", "B", t0.Add(30*time.Minute)))
	if _, err := rename(s, t.Context(), a.ID, "A2", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	generate(t, s, a.ID, t0.Add(2*time.Hour))
	if _, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.Email = "alice@example.com"
		return []apitoken.Log{{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: t0.Add(3 * time.Hour), ActivityBy: "root"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// An attempt row started at 4h and last seen at 5h.
	recordAuth(t, s, apitoken.AuthRecord{TokenID: a.ID, ActivityBy: "Reports API", Result: apitoken.ResultOK, ClientIP: "192.0.2.1",
		Window: t0.Add(4 * time.Hour), First: t0.Add(4 * time.Hour), Last: t0.Add(5 * time.Hour), Count: 3})

	all := allLogs(t, s, apitoken.LogFilter{})
	acts := func(logs []apitoken.Log) []string {
		out := make([]string, len(logs))
		for i, l := range logs {
			out[i] = string(l.Activity) + ":" + l.TokenName + l.Subject
		}
		return out
	}
	wantAll := []string{"AUTHENTICATE:A2", "USER_UPDATE:alice", "GENERATE:A2", "UPDATE:A2", "CREATE:B", "CREATE:A"}
	if !slices.Equal(acts(all), wantAll) {
		t.Fatalf("every log, newest first = %q, want %q", acts(all), wantAll)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("log ids are not newest first: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	for _, limit := range []int{1, 2, 4} {
		got := allLogs(t, s, apitoken.LogFilter{Page: apitoken.Page{Limit: limit}})
		if !slices.Equal(acts(got), wantAll) {
			t.Errorf("every log, pages of %d = %q, want %q", limit, acts(got), wantAll)
		}
	}
	auth := all[0]
	if auth.Count != 3 || !auth.ActivityOn.Equal(t0.Add(4*time.Hour)) || !auth.LastOn.Equal(t0.Add(5*time.Hour)) ||
		auth.Result != apitoken.ResultOK || auth.ClientIP != "192.0.2.1" || auth.ActivityBy != "Reports API" || auth.TokenID != a.ID {
		t.Errorf("AUTHENTICATE log = %+v", auth)
	}

	cases := []struct {
		f    apitoken.LogFilter
		want []string
	}{
		{apitoken.LogFilter{TokenID: a.ID}, []string{"AUTHENTICATE:A2", "GENERATE:A2", "UPDATE:A2", "CREATE:A"}},
		{apitoken.LogFilter{TokenID: b.ID}, []string{"CREATE:B"}},
		{apitoken.LogFilter{TokenID: "tok_none"}, nil},
		{apitoken.LogFilter{Activity: apitoken.ActivityCreate}, []string{"CREATE:B", "CREATE:A"}},
		{apitoken.LogFilter{TokenID: a.ID, Activity: apitoken.ActivityUpdate}, []string{"UPDATE:A2"}},
		{apitoken.LogFilter{Activity: apitoken.ActivityUserUpdate}, []string{"USER_UPDATE:alice"}},
		// Since compares with LastOn, inclusive.
		{apitoken.LogFilter{Since: t0.Add(4*time.Hour + 30*time.Minute)}, []string{"AUTHENTICATE:A2"}},
		{apitoken.LogFilter{Since: t0.Add(3 * time.Hour)}, []string{"AUTHENTICATE:A2", "USER_UPDATE:alice"}},
		{apitoken.LogFilter{Since: t0.Add(5*time.Hour + time.Microsecond)}, nil},
		{apitoken.LogFilter{TokenID: a.ID, Since: t0.Add(time.Hour)}, []string{"AUTHENTICATE:A2", "GENERATE:A2", "UPDATE:A2"}},
	}
	for _, c := range cases {
		for _, limit := range []int{1, 0} {
			f := c.f
			f.Limit = limit
			if got := acts(allLogs(t, s, f)); !slices.Equal(got, c.want) {
				t.Errorf("ListLogs(%+v) = %q, want %q", f, got, c.want)
			}
		}
	}
}

func testPageLimits(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "many", t0))
	// 1,170 attempt rows (more than MaxPageLimit): 13 windows of 90
	// distinct clients, under the per-window row bound.
	var recs []apitoken.AuthRecord
	for w := range 13 {
		for i := range 90 {
			at := t0.Add(time.Duration(w) * time.Minute)
			recs = append(recs, apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultFail,
				Reason: apitoken.ReasonExpired, ClientIP: fmt.Sprintf("198.51.100.%d", i), Window: at, First: at, Last: at, Count: 1})
		}
	}
	recordAuth(t, s, recs...)
	total := len(recs) + 1 // and the CREATE log
	logs, next, err := s.ListLogs(t.Context(), apitoken.LogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != apitoken.DefaultPageLimit || next == "" {
		t.Errorf("limit 0 gave %d logs (next %q), want %d and a next cursor", len(logs), next, apitoken.DefaultPageLimit)
	}
	logs, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: -5}})
	if err != nil || len(logs) != apitoken.DefaultPageLimit {
		t.Errorf("a negative limit gave %d logs (%v), want %d", len(logs), err, apitoken.DefaultPageLimit)
	}
	logs, next, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 50_000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != apitoken.MaxPageLimit || next == "" {
		t.Errorf("limit 50000 gave %d logs (next %q), want %d and a next cursor", len(logs), next, apitoken.MaxPageLimit)
	}
	rest, next2, err := s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 50_000, Cursor: next}})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs)+len(rest) != total || next2 != "" {
		t.Errorf("two clamped pages hold %d logs (next %q), want all %d and no next", len(logs)+len(rest), next2, total)
	}
	// A page that ends exactly at the last row has no next cursor.
	exact, next, err := s.ListLogs(t.Context(), apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityCreate, Page: apitoken.Page{Limit: 1}})
	if err != nil || len(exact) != 1 || next != "" {
		t.Errorf("a page holding the last row: %d logs, next %q, %v; want 1 and no next", len(exact), next, err)
	}
}

func testMalformedCursor(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	putUser(t, s, "bob", t0.Add(time.Second))
	createToken(t, s, newToken("alice", "one", t0))
	createToken(t, s, newToken("alice", "two", t0.Add(time.Second)))
	_, userNext, err := s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{Limit: 1}})
	if err != nil || userNext == "" {
		t.Fatalf("ListUsers: next %q, %v", userNext, err)
	}
	_, logNext, err := s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 1}})
	if err != nil || logNext == "" {
		t.Fatalf("ListLogs: next %q, %v", logNext, err)
	}
	check := func(what string, err error) {
		t.Helper()
		wantErr(t, what, err, apitoken.ErrInvalid)
		if msg := apitoken.Message(err); !strings.Contains(msg, "cursor") {
			t.Errorf("%s: message %q does not say the cursor is wrong", what, msg)
		}
	}
	for _, c := range []string{"!!not base64!!", "bm90LWEtY3Vyc29y", "%%%", "AAAA", strings.Repeat("x", 40)} {
		_, _, err := s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListUsers with cursor %q", c), err)
		_, _, err = s.ListTokens(t.Context(), apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListTokens with cursor %q", c), err)
		_, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListLogs with cursor %q", c), err)
	}
	// So is a cursor whose id is not text a store can hold.
	for _, id := range []string{"\xff", "tok_\x00"} {
		c := base64.RawURLEncoding.EncodeToString([]byte("u:0:" + id))
		_, _, err := s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListUsers with cursor %q", c), err)
		c = base64.RawURLEncoding.EncodeToString([]byte("t:0:" + id))
		_, _, err = s.ListTokens(t.Context(), apitoken.TokenFilter{Now: t0, Page: apitoken.Page{Cursor: c}})
		check(fmt.Sprintf("ListTokens with cursor %q", c), err)
	}
	// A truncated cursor is malformed too.
	_, _, err = s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{Cursor: userNext[:len(userNext)/2]}})
	check("ListUsers with a truncated cursor", err)
	_, _, err = s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Cursor: logNext[:1]}})
	check("ListLogs with a truncated cursor", err)
}

// testListLogsByOwnerAndResult filters the logs of one user's tokens, and the
// AUTHENTICATE rows of one result.
func testListLogsByOwnerAndResult(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0, apitoken.RoleAPITokens)
	putUser(t, s, "bob", t0, apitoken.RoleAPITokens)
	a := createToken(t, s, newToken("alice", "a", t0))
	b := createToken(t, s, newToken("bob", "b", t0))
	fail := okAt(a.ID, t0, "192.0.2.2")
	fail.Result, fail.Reason = apitoken.ResultFail, apitoken.ReasonRevoked
	recordAuth(t, s, okAt(a.ID, t0, "192.0.2.1"), fail, okAt(b.ID, t0, "192.0.2.1"))

	for _, l := range allLogs(t, s, apitoken.LogFilter{Owner: "alice"}) {
		if l.TokenID != a.ID {
			t.Errorf("owner alice: a log of token %q (%s)", l.TokenID, l.Activity)
		}
	}
	if n := len(allLogs(t, s, apitoken.LogFilter{Owner: "alice"})); n != 3 {
		t.Errorf("owner alice: %d logs, want 3 (CREATE, OK, Fail)", n)
	}
	if n := len(allLogs(t, s, apitoken.LogFilter{Owner: "nobody"})); n != 0 {
		t.Errorf("owner nobody: %d logs, want none", n)
	}
	fails := allLogs(t, s, apitoken.LogFilter{Result: apitoken.ResultFail})
	if len(fails) != 1 || fails[0].Reason != apitoken.ReasonRevoked {
		t.Errorf("result Fail: %+v, want the one failed attempt", fails)
	}
	if n := len(allLogs(t, s, apitoken.LogFilter{Owner: "bob", Result: apitoken.ResultOK})); n != 1 {
		t.Errorf("owner bob, result OK: %d logs, want 1", n)
	}
}
