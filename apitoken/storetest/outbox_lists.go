package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func testListNotifications(t *testing.T, s apitoken.Store) {
	a := newToken("alice", "a", t0)
	b := newToken("bob", "b", t0)
	var ids []int64
	for i := range 7 {
		tok := a
		if i%2 == 1 {
			tok = b
		}
		enqueue(t, s, apitoken.Notification{Key: fmt.Sprint("k", i), Destination: "email", Event: apitoken.EventRevoked,
			TokenID: tok.ID, Owner: tok.Owner, At: t0})
	}
	all := allNotifications(t, s, apitoken.NotificationFilter{Page: apitoken.Page{Limit: 2}})
	for _, n := range all {
		ids = append(ids, n.ID)
	}
	if len(ids) != 7 || !slices.IsSortedFunc(ids, func(x, y int64) int { return int(y - x) }) {
		t.Fatalf("ids %v: want 7, newest (highest) first", ids)
	}
	if got := allNotifications(t, s, apitoken.NotificationFilter{TokenID: b.ID, Page: apitoken.Page{Limit: 2}}); len(got) != 3 {
		t.Errorf("%d notifications of b, want 3", len(got))
	}
	// Two are sent: the state filter.
	ns := claim(t, s, t0, 2, "email")
	for _, n := range ns {
		finish(t, s, n, apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: t0})
	}
	sent := allNotifications(t, s, apitoken.NotificationFilter{State: apitoken.NotificationSent})
	pending := allNotifications(t, s, apitoken.NotificationFilter{State: apitoken.NotificationPending, Page: apitoken.Page{Limit: 1}})
	if len(sent) != 2 || len(pending) != 5 {
		t.Errorf("%d sent and %d pending, want 2 and 5", len(sent), len(pending))
	}
	aSent := allNotifications(t, s, apitoken.NotificationFilter{TokenID: a.ID, State: apitoken.NotificationSent})
	for _, n := range aSent {
		if n.TokenID != a.ID || n.State != apitoken.NotificationSent {
			t.Errorf("filter by token and state returned %+v", n)
		}
	}
	_, _, err := s.ListNotifications(t.Context(), apitoken.NotificationFilter{State: "lost"})
	wantErr(t, "an unknown state", err, apitoken.ErrInvalid)
}

func testPruneNotifications(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	for _, d := range []string{"old-sent", "old-failed", "new-sent", "pending"} {
		enqueue(t, s, note(tok, apitoken.EventRevoked, d, t0))
	}
	for _, n := range claim(t, s, t0, 10, "old-sent", "old-failed", "new-sent") {
		r := apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: t0}
		switch n.Destination {
		case "old-failed":
			r.State = apitoken.NotificationFailed
		case "new-sent":
			r.At = t0.Add(day)
		}
		finish(t, s, n, r)
	}
	k, err := s.PruneNotifications(t.Context(), t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("PruneNotifications: %v", err)
	}
	if k != 2 {
		t.Errorf("pruned %d, want 2", k)
	}
	var left []string
	for _, n := range allNotifications(t, s, apitoken.NotificationFilter{}) {
		left = append(left, n.Destination)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"new-sent", "pending"}) {
		t.Errorf("left %v, want the one done later and the pending one", left)
	}
}

func testListExpiringTokens(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	mk := func(name string, exp apitoken.Expiry, gen bool) apitoken.Token {
		tok := newToken("alice", name, t0)
		tok.Expires = exp
		tok = createToken(t, s, tok)
		if gen {
			tok = generate(t, s, tok.ID, t0)
		}
		return tok
	}
	d1 := mk("1d", apitoken.Expiry1d, true)
	d7 := mk("7d", apitoken.Expiry7d, true)
	d7b := mk("7d again", apitoken.Expiry7d, true)
	mk("30d", apitoken.Expiry30d, true)
	mk("never", apitoken.ExpiryNever, true)
	mk("not generated", apitoken.Expiry1d, false)
	rev := mk("revoked", apitoken.Expiry7d, true)
	revoke(t, s, rev.ID, t0.Add(time.Hour))
	// A JWT whose exp is earlier than its record's expiry: the earlier wins.
	early := mk("early exp", apitoken.Expiry30d, false)
	generate(t, s, early.ID, t0, t0.Add(3*day))

	list := func(from, until time.Time, limit int) []apitoken.Token {
		var out []apitoken.Token
		p := apitoken.Page{Limit: limit}
		for i := 0; ; i++ {
			toks, next, err := s.ListExpiringTokens(t.Context(), from, until, p)
			if err != nil {
				t.Fatalf("ListExpiringTokens: %v", err)
			}
			out = append(out, toks...)
			if next == "" || i > 100 {
				return out
			}
			p.Cursor = next
		}
	}
	got := tokenNames(list(t0, t0.Add(7*day), 1))
	want := []string{"1d", "early exp"}
	seven := []string{"7d", "7d again"}
	if d7b.ID < d7.ID {
		seven = []string{"7d again", "7d"}
	}
	want = append(want, seven...)
	if !slices.Equal(got, want) {
		t.Errorf("expiring in (t0, t0+7d]: %v, want %v (by expiry, then id)", got, want)
	}
	if got := tokenNames(list(t0.Add(day), t0.Add(7*day), 10)); !slices.Equal(got, append([]string{"early exp"}, seven...)) {
		t.Errorf("expiring in (t0+1d, t0+7d]: %v; the window's start is excluded", got)
	}
	if got := tokenNames(list(t0.Add(7*day), t0.Add(8*day), 10)); len(got) != 0 {
		t.Errorf("expiring in (t0+7d, t0+8d]: %v, want none", got)
	}
	_ = d1
}

func testOutboxCursors(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	for i := range 3 {
		tok := createToken(t, s, newToken("alice", fmt.Sprint("t", i), t0))
		generate(t, s, tok.ID, t0)
		enqueue(t, s, note(tok, apitoken.EventRevoked, "email", t0))
	}
	_, ncur, err := s.ListNotifications(t.Context(), apitoken.NotificationFilter{Page: apitoken.Page{Limit: 1}})
	if err != nil || ncur == "" {
		t.Fatalf("ListNotifications: next %q, %v", ncur, err)
	}
	_, xcur, err := s.ListExpiringTokens(t.Context(), t0, t0.Add(60*day), apitoken.Page{Limit: 1})
	if err != nil || xcur == "" {
		t.Fatalf("ListExpiringTokens: next %q, %v", xcur, err)
	}
	_, lcur, err := s.ListLogs(t.Context(), apitoken.LogFilter{Page: apitoken.Page{Limit: 1}})
	if err != nil || lcur == "" {
		t.Fatalf("ListLogs: next %q, %v", lcur, err)
	}
	for _, c := range []string{xcur, lcur, "!!"} {
		_, _, err := s.ListNotifications(t.Context(), apitoken.NotificationFilter{Page: apitoken.Page{Cursor: c}})
		wantErr(t, fmt.Sprintf("ListNotifications with cursor %q", c), err, apitoken.ErrInvalid)
	}
	for _, c := range []string{ncur, lcur, "!!"} {
		_, _, err := s.ListExpiringTokens(t.Context(), t0, t0.Add(60*day), apitoken.Page{Cursor: c})
		wantErr(t, fmt.Sprintf("ListExpiringTokens with cursor %q", c), err, apitoken.ErrInvalid)
	}
}
