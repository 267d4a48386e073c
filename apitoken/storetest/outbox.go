package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// outboxTests are the conformance tests of the notification outbox
// (apitoken.Outbox), run by Run with the others.
var outboxTests = []struct {
	name string
	fn   func(t *testing.T, s apitoken.Store)
}{
	{"UpdateTokenWritesTheLogsNotificationsWithTheChange", testUpdateTokenWritesNotifications},
	{"UpdateTokenWritesNoNotificationWhenFnFails", testUpdateTokenFnErrorWritesNoNotification},
	{"AFailedNotificationWriteUndoesTheChange", testNotificationWriteFailureUndoesChange},
	{"NotificationsRoundTripEveryField", testNotificationRoundTrip},
	{"EnqueueAddsEachKeyAndDestinationOnce", testEnqueueOnce},
	{"ConcurrentEnqueuesOfOneEventAddItOnce", testEnqueueConcurrent},
	{"ClaimReturnsOnlyDueNotificationsOfItsDestinations", testClaimDue},
	{"AClaimedNotificationIsNotClaimedAgainWhileItsLeaseHolds", testClaimLease},
	{"ConcurrentClaimsNeverReturnOneNotificationTwice", testClaimConcurrent},
	{"FinishRecordsSentFailedSkippedAndRetries", testFinishOutcomes},
	{"FinishWithALostClaimIsConflict", testFinishLostClaim},
	{"ReleasingAClaimUntriedCountsNoAttempt", testFinishRelease},
	{"ListNotificationsFiltersAndPaginatesNewestFirst", testListNotifications},
	{"PruneDeletesOnlyNotificationsDoneBefore", testPruneNotifications},
	{"ListExpiringTokensIsTheLiveTokensExpiringInTheWindow", testListExpiringTokens},
	{"OutboxCursorsOfAnotherListAreInvalid", testOutboxCursors},
}

// note is a pending notification of an event of tok to dest, at at.
func note(tok apitoken.Token, ev apitoken.Event, dest string, at time.Time) apitoken.Notification {
	ns := apitoken.NewNotifications(ev, "", &tok, tok.Owner, at, []string{dest})
	return ns[0]
}

func enqueue(t *testing.T, s apitoken.Store, ns ...apitoken.Notification) int {
	t.Helper()
	n, err := s.EnqueueNotifications(t.Context(), ns)
	if err != nil {
		t.Fatalf("EnqueueNotifications: %v", err)
	}
	return n
}

func allNotifications(t *testing.T, s apitoken.Store, f apitoken.NotificationFilter) []apitoken.Notification {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = apitoken.MaxPageLimit
	}
	var out []apitoken.Notification
	for i := 0; ; i++ {
		ns, next, err := s.ListNotifications(t.Context(), f)
		if err != nil {
			t.Fatalf("ListNotifications(%+v): %v", f, err)
		}
		if len(ns) > f.Limit || (next != "" && len(ns) != f.Limit) {
			t.Fatalf("ListNotifications returned %d rows for limit %d (next %q)", len(ns), f.Limit, next)
		}
		out = append(out, ns...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatalf("ListNotifications never ends")
		}
		f.Cursor = next
	}
}

func claim(t *testing.T, s apitoken.Store, now time.Time, limit int, dests ...string) []apitoken.Notification {
	t.Helper()
	ns, err := s.ClaimNotifications(t.Context(), apitoken.Claim{Destinations: dests, Now: now, Lease: time.Minute, Limit: limit})
	if err != nil {
		t.Fatalf("ClaimNotifications: %v", err)
	}
	return ns
}

func finish(t *testing.T, s apitoken.Store, n apitoken.Notification, r apitoken.NotificationResult) {
	t.Helper()
	if err := s.FinishNotification(t.Context(), n.ID, n.Lease, r); err != nil {
		t.Fatalf("FinishNotification(%d): %v", n.ID, err)
	}
}

func oneNotification(t *testing.T, s apitoken.Store, id int64) apitoken.Notification {
	t.Helper()
	for _, n := range allNotifications(t, s, apitoken.NotificationFilter{}) {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no notification %d", id)
	return apitoken.Notification{}
}

func keysOf(ns []apitoken.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Key + " " + n.Destination
	}
	return out
}

// ---- outbox ----

func testUpdateTokenWritesNotifications(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "excel", t0))
	at := t0.Add(time.Hour)
	got, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.GeneratedAt, tk.GeneratedExp, tk.JTIHash = &at, tk.Expires.ExpiresAt(at), hash("g1")
		return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at, ActivityBy: "alice",
			Notify: apitoken.NewNotifications(apitoken.EventGenerated, "", tk, "alice", at, []string{"email", "webhook:a"})}, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	ns := allNotifications(t, s, apitoken.NotificationFilter{TokenID: tok.ID})
	if len(ns) != 2 {
		t.Fatalf("%d notifications after a generation with two destinations, want 2: %v", len(ns), keysOf(ns))
	}
	for _, n := range ns {
		if n.Event != apitoken.EventGenerated || n.State != apitoken.NotificationPending || n.TokenName != "excel" ||
			n.ExpiresAt == nil || !n.ExpiresAt.Equal(*got.ExpiresAt()) || n.Key != apitoken.NotificationKey(apitoken.EventGenerated, "", &got) {
			t.Errorf("notification %+v does not tell of the generation", n)
		}
	}
	// Offering the same event again (a retried request) adds nothing.
	if _, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		return apitoken.Log{Notify: apitoken.NewNotifications(apitoken.EventGenerated, "", tk, "alice", at, []string{"email"})}, nil
	}); err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	if n := len(allNotifications(t, s, apitoken.NotificationFilter{})); n != 2 {
		t.Errorf("%d notifications after the same event was offered again, want 2", n)
	}
}

func testUpdateTokenFnErrorWritesNoNotification(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "excel", t0))
	_, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		return apitoken.Log{Activity: apitoken.ActivityRevoke, ActivityOn: t0, ActivityBy: "alice",
			Notify: apitoken.NewNotifications(apitoken.EventRevoked, "", tk, "alice", t0, []string{"email"})}, errBoom
	})
	wantErr(t, "UpdateToken with a failing fn", err, errBoom)
	if ns := allNotifications(t, s, apitoken.NotificationFilter{}); len(ns) != 0 {
		t.Errorf("a failed change left notifications: %v", keysOf(ns))
	}
}

func testNotificationWriteFailureUndoesChange(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "excel", t0))
	at := t0.Add(time.Hour)
	_, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.RevokedAt, tk.RevokedBy = &at, "alice"
		ns := apitoken.NewNotifications(apitoken.EventRevoked, "", tk, "alice", at, []string{"email", "webhook:a"})
		ns[1].Key = "" // a notification that cannot be written
		return apitoken.Log{Activity: apitoken.ActivityRevoke, ActivityOn: at, ActivityBy: "alice", Notify: ns}, nil
	})
	if err == nil {
		t.Fatal("UpdateToken wrote a notification without a key")
	}
	if got := mustGetToken(t, s, tok.ID); got.RevokedAt != nil {
		t.Error("the token was revoked although its notification could not be written")
	}
	if logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityRevoke}); len(logs) != 0 {
		t.Errorf("a REVOKE log was written although the notification could not be: %+v", logs)
	}
	if ns := allNotifications(t, s, apitoken.NotificationFilter{}); len(ns) != 0 {
		t.Errorf("notifications of an undone change: %v", keysOf(ns))
	}
}

func testNotificationRoundTrip(t *testing.T, s apitoken.Store) {
	metaOnly, _ := apitoken.ScopeBit(apitoken.ScopeMeta)
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	exp := at.Add(30 * day)
	n := apitoken.Notification{Key: "token.expiring/7d/tok_x/1", Destination: "webhook:https://h.example/x", Event: apitoken.EventExpiring,
		Reminder: apitoken.Reminder7d, TokenID: "tok_x", TokenName: "Excel – sales ✓", Owner: "alice",
		Scopes: metaOnly, ExpiresAt: &exp, Actor: "bob", At: at, NextAttemptAt: at.Add(time.Minute),
		// Ignored by Enqueue:
		State: apitoken.NotificationSent, Attempts: 7, LastError: "x", DoneAt: &at, Lease: "l"}
	if added := enqueue(t, s, n); added != 1 {
		t.Fatalf("Enqueue added %d, want 1", added)
	}
	ns := allNotifications(t, s, apitoken.NotificationFilter{})
	if len(ns) != 1 {
		t.Fatalf("%d notifications, want 1", len(ns))
	}
	got := ns[0]
	if got.ID <= 0 {
		t.Errorf("ID %d, want a positive id", got.ID)
	}
	wantExp := utc(exp)
	want := apitoken.Notification{ID: got.ID, Key: n.Key, Destination: n.Destination, Event: n.Event, Reminder: n.Reminder,
		TokenID: n.TokenID, TokenName: n.TokenName, Owner: n.Owner, Scopes: n.Scopes, ExpiresAt: &wantExp, Actor: n.Actor,
		At: utc(at), State: apitoken.NotificationPending, NextAttemptAt: utc(at.Add(time.Minute))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if !isUTC(got.At) || !isUTC(got.NextAttemptAt) || !isUTC(*got.ExpiresAt) {
		t.Errorf("times not in UTC: %+v", got)
	}
	// A zero NextAttemptAt is At; a nil ExpiresAt (never) stays nil.
	n2 := n
	n2.Key, n2.NextAttemptAt, n2.ExpiresAt, n2.Reminder, n2.Actor = "k2", time.Time{}, nil, "", ""
	enqueue(t, s, n2)
	ns = allNotifications(t, s, apitoken.NotificationFilter{})
	if len(ns) != 2 || !ns[0].NextAttemptAt.Equal(utc(at)) || ns[0].ExpiresAt != nil || ns[0].Actor != "" {
		t.Errorf("newest %+v: want NextAttemptAt = At, no ExpiresAt, no Actor", ns[0])
	}
}

func testEnqueueOnce(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	a := note(tok, apitoken.EventRevoked, "email", t0)
	b := note(tok, apitoken.EventRevoked, "webhook:a", t0)
	if added := enqueue(t, s, a, b); added != 2 {
		t.Fatalf("first Enqueue added %d, want 2", added)
	}
	// Even once it is done, the same event is not enqueued again.
	ns := claim(t, s, t0, 10, "email")
	finish(t, s, ns[0], apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: t0})
	c := note(tok, apitoken.EventGenerated, "email", t0)
	if added := enqueue(t, s, a, b, c); added != 1 {
		t.Fatalf("second Enqueue added %d, want 1 (only the new event)", added)
	}
	if got := keysOf(allNotifications(t, s, apitoken.NotificationFilter{})); len(got) != 3 {
		t.Errorf("outbox holds %v, want 3 rows", got)
	}
}

func testEnqueueConcurrent(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	const n = 8
	var wg sync.WaitGroup
	added := make(chan int, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns := apitoken.NewNotifications(apitoken.EventExpiring, apitoken.Reminder7d, &tok, "", t0.Add(time.Duration(i)), []string{"email", "webhook:a"})
			k, err := s.EnqueueNotifications(t.Context(), ns)
			added <- k
			errs <- err
		}()
	}
	wg.Wait()
	close(added)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent Enqueue failed: %v", err)
		}
	}
	sum := 0
	for k := range added {
		sum += k
	}
	if sum != 2 {
		t.Errorf("concurrent Enqueues of one event added %d in all, want 2 (one per destination)", sum)
	}
	if got := allNotifications(t, s, apitoken.NotificationFilter{}); len(got) != 2 {
		t.Errorf("outbox holds %v, want 2 rows", keysOf(got))
	}
}

func testClaimDue(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	late := note(tok, apitoken.EventGenerated, "email", t0)
	late.NextAttemptAt = t0.Add(time.Hour)
	early := note(tok, apitoken.EventRevoked, "email", t0)
	other := note(tok, apitoken.EventRevoked, "webhook:a", t0)
	enqueue(t, s, late, early, other)

	if ns := claim(t, s, t0, 10); len(ns) != 0 {
		t.Errorf("a claim for no destination returned %v", keysOf(ns))
	}
	ns := claim(t, s, t0, 10, "email")
	if got := keysOf(ns); !slices.Equal(got, []string{early.Key + " email"}) {
		t.Fatalf("claim at t0 for email returned %v, want only the due email one", got)
	}
	if ns[0].Lease == "" {
		t.Error("a claimed notification has no lease")
	}
	finish(t, s, ns[0], apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: t0})
	ns = claim(t, s, t0.Add(time.Hour), 10, "email", "webhook:a")
	if got := keysOf(ns); !slices.Equal(got, []string{other.Key + " webhook:a", late.Key + " email"}) {
		t.Errorf("claim an hour later returned %v, want the webhook one (due earlier) then the late email", got)
	}
	// Limit.
	for i := range 5 {
		enqueue(t, s, apitoken.Notification{Key: fmt.Sprint("k", i), Destination: "webhook:b", Event: apitoken.EventRevoked,
			TokenID: tok.ID, Owner: "alice", At: t0.Add(time.Duration(i) * time.Second)})
	}
	ns = claim(t, s, t0.Add(time.Hour), 3, "webhook:b")
	if got := keysOf(ns); !slices.Equal(got, []string{"k0 webhook:b", "k1 webhook:b", "k2 webhook:b"}) {
		t.Errorf("claim of 3 returned %v, want the 3 earliest due", got)
	}
}

func testClaimLease(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	enqueue(t, s, note(tok, apitoken.EventRevoked, "email", t0))
	first := claim(t, s, t0, 10, "email")
	if len(first) != 1 {
		t.Fatalf("first claim returned %d, want 1", len(first))
	}
	if again := claim(t, s, t0.Add(59*time.Second), 10, "email"); len(again) != 0 {
		t.Fatalf("claimed again while the lease holds: %v", keysOf(again))
	}
	// The claimer died: once its lease ends the notification is claimed
	// again, under a new lease.
	second := claim(t, s, t0.Add(time.Minute), 10, "email")
	if len(second) != 1 || second[0].ID != first[0].ID {
		t.Fatalf("claim after the lease ended returned %v, want the same notification", keysOf(second))
	}
	if second[0].Lease == first[0].Lease {
		t.Error("a new claim kept the old lease")
	}
	if n := oneNotification(t, s, first[0].ID); n.Attempts != 0 {
		t.Errorf("claiming counted %d attempts; only outcomes count", n.Attempts)
	}
}

func testClaimConcurrent(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	const total = 40
	var ns []apitoken.Notification
	for i := range total {
		ns = append(ns, apitoken.Notification{Key: fmt.Sprint("k", i), Destination: "email", Event: apitoken.EventRevoked,
			TokenID: tok.ID, Owner: "alice", At: t0})
	}
	enqueue(t, s, ns...)
	var (
		mu  sync.Mutex
		got = map[int64]int{}
		wg  sync.WaitGroup
	)
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ns, err := s.ClaimNotifications(t.Context(), apitoken.Claim{Destinations: []string{"email"}, Now: t0, Lease: time.Minute, Limit: 3})
				if err != nil {
					errs <- err
					return
				}
				if len(ns) == 0 {
					return
				}
				mu.Lock()
				for _, n := range ns {
					got[n.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a concurrent claim failed: %v", err)
	}
	if len(got) != total {
		t.Errorf("concurrent claims returned %d distinct notifications, want %d", len(got), total)
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("notification %d was claimed %d times while its lease held", id, k)
		}
	}
}

func testFinishOutcomes(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	for _, d := range []string{"d1", "d2", "d3", "d4"} {
		enqueue(t, s, note(tok, apitoken.EventRevoked, d, t0))
	}
	ns := claim(t, s, t0, 10, "d1", "d2", "d3", "d4")
	if len(ns) != 4 {
		t.Fatalf("claimed %d, want 4", len(ns))
	}
	by := map[string]apitoken.Notification{}
	for _, n := range ns {
		by[n.Destination] = n
	}
	at := t0.Add(time.Second)
	retryAt := t0.Add(30 * time.Second)
	finish(t, s, by["d1"], apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: at})
	finish(t, s, by["d2"], apitoken.NotificationResult{State: apitoken.NotificationPending, NextAttemptAt: retryAt,
		Error: "HTTP 500", Attempted: true, At: at})
	finish(t, s, by["d3"], apitoken.NotificationResult{State: apitoken.NotificationFailed, Error: "550 no such user", Attempted: true, At: at})
	finish(t, s, by["d4"], apitoken.NotificationResult{State: apitoken.NotificationSkipped, Error: "alice has no email address", At: at})

	doneAt := at
	check := func(d string, state apitoken.NotificationState, attempts int, lastErr string, done bool) apitoken.Notification {
		t.Helper()
		n := oneNotification(t, s, by[d].ID)
		if n.State != state || n.Attempts != attempts || n.LastError != lastErr || (n.DoneAt != nil) != done || n.Lease != "" {
			t.Errorf("%s: state %s, attempts %d, last_error %q, done_at %v, lease %q; want %s, %d, %q, done %v, no lease",
				d, n.State, n.Attempts, n.LastError, n.DoneAt, n.Lease, state, attempts, lastErr, done)
		}
		if done && !n.DoneAt.Equal(doneAt) {
			t.Errorf("%s: done_at %v, want %v", d, n.DoneAt, doneAt)
		}
		return n
	}
	check("d1", apitoken.NotificationSent, 1, "", true)
	if n := check("d2", apitoken.NotificationPending, 1, "HTTP 500", false); !n.NextAttemptAt.Equal(retryAt) {
		t.Errorf("d2: next attempt at %v, want %v", n.NextAttemptAt, retryAt)
	}
	check("d3", apitoken.NotificationFailed, 1, "550 no such user", true)
	check("d4", apitoken.NotificationSkipped, 0, "alice has no email address", true)

	// Only the retry is claimed again, and only once it is due.
	all := []string{"d1", "d2", "d3", "d4"}
	if ns := claim(t, s, retryAt.Add(-time.Microsecond), 10, all...); len(ns) != 0 {
		t.Errorf("claimed before the retry was due: %v", keysOf(ns))
	}
	ns = claim(t, s, retryAt, 10, all...)
	if len(ns) != 1 || ns[0].Destination != "d2" {
		t.Fatalf("claim at the retry time returned %v, want only d2", keysOf(ns))
	}
	finish(t, s, ns[0], apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: retryAt})
	doneAt = retryAt
	check("d2", apitoken.NotificationSent, 2, "", true)
}

func testFinishLostClaim(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	enqueue(t, s, note(tok, apitoken.EventRevoked, "email", t0))
	first := claim(t, s, t0, 1, "email")[0]
	second := claim(t, s, t0.Add(time.Minute), 1, "email")[0] // the first claimer's lease ended
	sent := apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: t0.Add(time.Minute)}
	wantErr(t, "finishing under a lease taken over", s.FinishNotification(t.Context(), first.ID, first.Lease, sent), apitoken.ErrConflict)
	finish(t, s, second, sent)
	wantErr(t, "finishing twice", s.FinishNotification(t.Context(), second.ID, second.Lease, sent), apitoken.ErrConflict)
	wantErr(t, "finishing without a lease", s.FinishNotification(t.Context(), second.ID, "", sent), apitoken.ErrConflict)
	wantErr(t, "finishing an unknown notification", s.FinishNotification(t.Context(), second.ID+1000, "x", sent), apitoken.ErrNotFound)
	if n := oneNotification(t, s, first.ID); n.Attempts != 1 || n.State != apitoken.NotificationSent {
		t.Errorf("after one finished claim: %d attempts, %s; want 1, sent", n.Attempts, n.State)
	}
}

func testFinishRelease(t *testing.T, s apitoken.Store) {
	tok := newToken("alice", "excel", t0)
	enqueue(t, s, note(tok, apitoken.EventRevoked, "email", t0))
	n := claim(t, s, t0, 1, "email")[0]
	finish(t, s, n, apitoken.NotificationResult{State: apitoken.NotificationPending, Error: "deliverer stopping", At: t0, NextAttemptAt: t0})
	got := oneNotification(t, s, n.ID)
	if got.Attempts != 0 || got.LastError != "" || got.Lease != "" {
		t.Errorf("after a release: %d attempts, last_error %q, lease %q; want none", got.Attempts, got.LastError, got.Lease)
	}
	if again := claim(t, s, t0, 1, "email"); len(again) != 1 {
		t.Error("a released notification is not claimed at once")
	}
}

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
