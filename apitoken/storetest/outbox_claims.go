package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

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
