package storetest

import (
	"reflect"
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
	{"ListUnusedTokensIsTheLiveTokensUnusedSinceTheWindow", testListUnusedTokens},
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
	idle, revokeAt := at.Add(-83*day), at.Add(7*day)
	n := apitoken.Notification{Key: "token.expiring/7d/tok_x/1", Destination: "webhook:https://h.example/x", Event: apitoken.EventExpiring,
		Reminder: apitoken.Reminder7d, TokenID: "tok_x", TokenName: "Excel – sales ✓", Owner: "alice",
		Scopes: metaOnly, ExpiresAt: &exp, Actor: "bob", At: at, NextAttemptAt: at.Add(time.Minute),
		Reason: apitoken.RevokeUnused, UnusedSince: &idle, RevokeAt: &revokeAt,
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
	wantExp, wantIdle, wantRevokeAt := utc(exp), utc(idle), utc(revokeAt)
	want := apitoken.Notification{ID: got.ID, Key: n.Key, Destination: n.Destination, Event: n.Event, Reminder: n.Reminder,
		TokenID: n.TokenID, TokenName: n.TokenName, Owner: n.Owner, Scopes: n.Scopes, ExpiresAt: &wantExp, Actor: n.Actor,
		Reason: n.Reason, UnusedSince: &wantIdle, RevokeAt: &wantRevokeAt,
		At: utc(at), State: apitoken.NotificationPending, NextAttemptAt: utc(at.Add(time.Minute))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if !isUTC(got.At) || !isUTC(got.NextAttemptAt) || !isUTC(*got.ExpiresAt) || !isUTC(*got.UnusedSince) || !isUTC(*got.RevokeAt) {
		t.Errorf("times not in UTC: %+v", got)
	}
	// A zero NextAttemptAt is At; a nil ExpiresAt (never) stays nil.
	n2 := n
	n2.Key, n2.NextAttemptAt, n2.ExpiresAt, n2.Reminder, n2.Actor = "k2", time.Time{}, nil, "", ""
	n2.Reason, n2.UnusedSince, n2.RevokeAt = "", nil, nil
	enqueue(t, s, n2)
	ns = allNotifications(t, s, apitoken.NotificationFilter{})
	if len(ns) != 2 || !ns[0].NextAttemptAt.Equal(utc(at)) || ns[0].ExpiresAt != nil || ns[0].Actor != "" ||
		ns[0].Reason != "" || ns[0].UnusedSince != nil || ns[0].RevokeAt != nil {
		t.Errorf("newest %+v: want NextAttemptAt = At, no ExpiresAt, Actor, Reason, UnusedSince or RevokeAt", ns[0])
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
