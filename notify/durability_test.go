package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"
)

// received counts the deliveries of each event: email subjects + token, and
// webhook payload ids.
func received(t *testing.T, srv *notifytest.SMTPServer, hook *notifytest.Receiver) (emails, hooks map[string]int) {
	t.Helper()
	emails, hooks = map[string]int{}, map[string]int{}
	for _, m := range srv.Messages() {
		emails[m.Header.Get("Message-Id")]++
	}
	for _, r := range hook.Delivered() {
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		hooks[p.ID]++
	}
	return emails, hooks
}

func exactlyOnce(t *testing.T, what string, got map[string]int, want int) {
	t.Helper()
	if len(got) != want {
		t.Errorf("%d distinct %s delivered, want %d", len(got), what, want)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s %s delivered %d times", what, k, n)
		}
	}
}

func TestRestart_ClosingAndReopeningTheStoreLosesAndDuplicatesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		srv := notifytest.NewSMTPServer(t, "starttls", notifytest.WithAuth("mailer", "mail-secret"))
		hook := notifytest.NewReceiver(t, 0)
		c := &clock{now: t0}
		e := newEnv(t, envOptions{backend: b, smtp: srv, hook: hook, clock: c})
		ctx := context.Background()

		// Six generations and two revocations: 8 events, 16 notifications.
		var toks []apitoken.Token
		for i := range 6 {
			tok, _ := e.token(fmt.Sprint("token ", i), apitoken.Expiry30d)
			toks = append(toks, tok)
		}
		for _, tok := range toks[:2] {
			if _, err := e.svc.Revoke(ctx, e.alice, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
		// Before the stop: a few are delivered, one attempt fails and
		// waits for its retry, and one is claimed by a deliverer that then
		// dies without a word (its lease holds it).
		first, err := e.store.ClaimNotifications(ctx, apitoken.Claim{Destinations: e.d.Destinations(), Now: c.Now(), Lease: time.Minute, Limit: 5})
		if err != nil || len(first) != 5 {
			t.Fatalf("claimed %d (%v), want 5", len(first), err)
		}
		hook.FailNext(1)
		for _, n := range first[:4] {
			if err := e.store.FinishNotification(ctx, n.ID, n.Lease, apitoken.NotificationResult{State: apitoken.NotificationPending, NextAttemptAt: c.Now(), At: c.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		// (first[4] stays claimed: the dead deliverer's.)
		sent, err := e.d.DeliverDue(ctx)
		if err != nil || sent == 0 {
			t.Fatalf("delivered %d before the stop: %v", sent, err)
		}
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}

		// Restart: a new store on the same data, a new deliverer.
		store := b.open(t)
		d, _ := newDeliverer(t, store, c, srv, hook, e.secret)
		if pending := listOutbox(t, store, apitoken.NotificationFilter{State: apitoken.NotificationPending}); len(pending) == 0 {
			t.Fatal("nothing left to deliver after the restart: the test proves nothing")
		}
		c.Advance(time.Minute) // the dead claim's lease and the retry's backoff end
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		emails, hooks := received(t, srv, hook)
		exactlyOnce(t, "emails", emails, 8)
		exactlyOnce(t, "webhook events", hooks, 8)
		if left := listOutbox(t, store, apitoken.NotificationFilter{State: apitoken.NotificationPending}); len(left) != 0 {
			t.Errorf("%d notifications still pending", len(left))
		}
		if len(hook.Requests()) != 9 {
			t.Errorf("the receiver got %d requests, want 9 (8 events and the one failed attempt)", len(hook.Requests()))
		}
	})
}

func TestRestart_EventsCommittedWhileNoDelivererRanAreSentAfterwards(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		srv := notifytest.NewSMTPServer(t, "starttls", notifytest.WithAuth("mailer", "mail-secret"))
		hook := notifytest.NewReceiver(t, 0)
		c := &clock{now: t0}
		e := newEnv(t, envOptions{backend: b, smtp: srv, hook: hook, clock: c})
		tok, _ := e.token("Excel", apitoken.Expiry30d) // committed; the process then stops
		e.store.Close()

		store := b.open(t)
		d, _ := newDeliverer(t, store, c, srv, hook, e.secret)
		if _, err := d.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(srv.Messages()) != 1 || len(hook.Delivered()) != 1 {
			t.Fatalf("after the restart: %d emails and %d webhooks, want 1 and 1", len(srv.Messages()), len(hook.Delivered()))
		}
		if srv.Messages()[0].Subject != `A new JWT was generated for your API token "Excel"` {
			t.Errorf("subject %q", srv.Messages()[0].Subject)
		}
		_ = tok
	})
}

// stepper is one instance's deliverer, driven step by step.
type stepper interface {
	DeliverDue(context.Context) (int, error)
	ScanReminders(context.Context) (int, error)
}

func TestTwoInstances_OnOnePostgreSQLSendEachEventAndReminderOnce(t *testing.T) {
	b := postgresBackend(t)
	srv := notifytest.NewSMTPServer(t, "starttls", notifytest.WithAuth("mailer", "mail-secret"))
	hook := notifytest.NewReceiver(t, 0)
	c := &clock{now: t0}
	e := newEnv(t, envOptions{backend: b, smtp: srv, hook: hook, clock: c})
	// The second instance: its own store (pool) and deliverer.
	store2 := b.open(t)
	d2, _ := newDeliverer(t, store2, c, srv, hook, e.secret)

	const n = 12
	var toks []apitoken.Token
	for i := range n {
		tok, _ := e.token(fmt.Sprint("token ", i), apitoken.Expiry30d)
		toks = append(toks, tok)
	}
	// Both deliver the generations at once, then both scan and deliver at
	// each moment of the reminders, at once.
	both := func(fn func(d stepper) error) {
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, d := range []interface {
			DeliverDue(context.Context) (int, error)
			ScanReminders(context.Context) (int, error)
		}{e.d, d2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- fn(d)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	scanAndDeliver := func(d stepper) error {
		if _, err := d.ScanReminders(context.Background()); err != nil {
			return err
		}
		_, err := d.DeliverDue(context.Background())
		return err
	}
	both(scanAndDeliver)
	end := *toks[0].ExpiresAt()
	for _, at := range []time.Time{end.Add(-7 * day), end.Add(-5 * day), end.Add(-day), end.Add(-time.Hour)} {
		c.Set(at)
		both(scanAndDeliver)
		both(scanAndDeliver)
	}
	emails, hooks := received(t, srv, hook)
	exactlyOnce(t, "emails", emails, 3*n)
	exactlyOnce(t, "webhook events", hooks, 3*n)
	var reminders int
	for _, m := range srv.Messages() {
		if len(m.Subject) > 0 && m.Subject[:4] == "Your" {
			reminders++
		}
	}
	if reminders != 2*n {
		t.Errorf("%d reminder emails, want %d", reminders, 2*n)
	}
}

func TestRun_DeliversAtOnceWhenWokenAndStopsWithItsContext(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.d.PollInterval = time.Hour // only Wake can make it look
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.d.Run(ctx)
	}()
	e.token("Excel", apitoken.Expiry30d) // Service.Notified wakes it
	e.smtp.WaitFor(t, 1, 10*time.Second)
	e.hook.WaitFor(t, 1, 10*time.Second)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// Two instances on one PostgreSQL schema sweeping for unused tokens at
// once, at each moment: every reminder and revocation happens once, so
// each owner gets one email of each.
func TestTwoInstances_OnOnePostgreSQLRemindAndRevokeUnusedTokensOnce(t *testing.T) {
	b := postgresBackend(t)
	srv := notifytest.NewSMTPServer(t, "starttls", notifytest.WithAuth("mailer", "mail-secret"))
	hook := notifytest.NewReceiver(t, 0)
	c := &clock{now: t0}
	e := newEnv(t, envOptions{backend: b, smtp: srv, hook: hook, clock: c})
	store2 := b.open(t)
	cfg2 := e.svc.Config()
	cfg2.Store = store2
	const after = 30 * day
	sweepers := []*apitoken.UnusedSweeper{{Service: e.svc, After: after}, {Service: apitoken.NewService(cfg2), After: after}}

	const n = 12
	for i := range n {
		e.token(fmt.Sprint("token ", i), apitoken.Expiry1y)
	}
	e.deliver()
	for _, at := range []time.Time{t0.Add(23*day + time.Minute), t0.Add(25 * day), t0.Add(30*day + time.Minute), t0.Add(31 * day)} {
		c.Set(at)
		for range 2 {
			var wg sync.WaitGroup
			for _, w := range sweepers {
				wg.Go(func() {
					if _, _, err := w.Sweep(context.Background()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		e.deliver()
	}
	emails, hooks := received(t, srv, hook)
	exactlyOnce(t, "emails", emails, 3*n)
	exactlyOnce(t, "webhook events", hooks, 3*n)
	var reminders, revocations int
	for _, m := range srv.Messages() {
		switch {
		case strings.Contains(m.Subject, "will be revoked on"):
			reminders++
		case strings.HasSuffix(m.Subject, "was revoked"):
			revocations++
		}
	}
	if reminders != n || revocations != n {
		t.Errorf("%d reminders and %d revocations, want %d of each", reminders, revocations, n)
	}
	logs, _, err := e.store.ListLogs(context.Background(), apitoken.LogFilter{Activity: apitoken.ActivityRevoke, Page: apitoken.Page{Limit: 100}})
	if err != nil || len(logs) != n {
		t.Errorf("%d REVOKE logs (%v), want %d", len(logs), err, n)
	}
}
