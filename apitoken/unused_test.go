package apitoken_test

import (
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// sweeper is an UnusedSweeper of e's service with 30 days and email.
func (e *env) sweeper() *apitoken.UnusedSweeper {
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.Notify = []string{apitoken.DestinationEmail} })
	return &apitoken.UnusedSweeper{Service: e.svc, After: 30 * 24 * time.Hour}
}

func (e *env) sweep(w *apitoken.UnusedSweeper) (revoked, reminded int) {
	e.tb.Helper()
	revoked, reminded, err := w.Sweep(e.ctx)
	if err != nil {
		e.tb.Fatalf("Sweep: %v", err)
	}
	return revoked, reminded
}

// The sweep reminds once 7 days before, revokes at the end with the
// reason and the idle period, and leaves alone tokens that are used,
// expired, revoked or never generated.
func TestUnusedSweeper_RemindsOnceThenRevokes(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	w := e.sweeper()
	_, idle, jwt := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry1y)
	_, short, _ := e.live("bob", apitoken.DefaultScopes, apitoken.Expiry7d) // expires before it is idle long enough
	_, gone, _ := e.live("carol", apitoken.DefaultScopes, apitoken.Expiry1y)
	if _, err := e.svc.RevokeFor(e.ctx, e.admin, gone.ID); err != nil {
		t.Fatal(err)
	}
	e.create(e.holder("dave"), "never generated", apitoken.DefaultScopes, apitoken.Expiry1y)

	e.clock.Advance(23*24*time.Hour - time.Minute)
	if r, m := e.sweep(w); r != 0 || m != 0 {
		t.Errorf("at 23 days less a minute: %d revoked, %d reminders; want none", r, m)
	}
	e.clock.Advance(2 * time.Minute)
	if r, m := e.sweep(w); r != 0 || m != 1 {
		t.Errorf("at 23 days: %d revoked, %d reminders; want 1 reminder", r, m)
	}
	if r, m := e.sweep(w); r != 0 || m != 0 {
		t.Errorf("again: %d revoked, %d reminders; want none", r, m)
	}
	// Another sweeper (another instance) adds nothing either.
	other := &apitoken.UnusedSweeper{Service: e.svc, After: w.After}
	if r, m := e.sweep(other); r != 0 || m != 0 {
		t.Errorf("another sweeper: %d revoked, %d reminders; want none", r, m)
	}
	ns, _, _ := e.store.ListNotifications(e.ctx, apitoken.NotificationFilter{TokenID: idle.ID, Page: apitoken.Page{Limit: 100}})
	var rem apitoken.Notification
	for _, n := range ns {
		if n.Event == apitoken.EventUnused {
			rem = n
		}
	}
	if rem.UnusedSince == nil || !rem.UnusedSince.Equal(*idle.GeneratedAt) || rem.RevokeAt == nil ||
		!rem.RevokeAt.Equal(idle.GeneratedAt.Add(30*24*time.Hour)) {
		t.Errorf("reminder %+v, want unused since the generation, revoked 30 days after", rem)
	}

	e.clock.Advance(7 * 24 * time.Hour)
	if r, m := e.sweep(w); r != 1 || m != 0 {
		t.Errorf("at 30 days: %d revoked, %d reminders; want 1 revoked", r, m)
	}
	e.refused(jwt, apitoken.ReasonRevoked)
	n := e.revokedNote(idle.ID)
	if n.Actor != apitoken.ByUnused || n.Reason != apitoken.RevokeUnused || n.UnusedSince == nil || !n.UnusedSince.Equal(*idle.GeneratedAt) {
		t.Errorf("revocation notification %+v", n)
	}
	logs, _, err := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: idle.ID, Activity: apitoken.ActivityRevoke, Page: apitoken.Page{Limit: 10}})
	if want := "not used since " + idle.GeneratedAt.UTC().Format(time.RFC3339); err != nil || len(logs) != 1 ||
		logs[0].ActivityBy != apitoken.ByUnused || logs[0].Reason != want {
		t.Errorf("REVOKE logs %+v (%v), want one by unused saying %q", logs, err, want)
	}
	for _, id := range []string{short.ID, gone.ID} {
		if tok, _ := e.store.GetToken(e.ctx, id); tok.RevokedBy == apitoken.ByUnused {
			t.Errorf("%s revoked by unused", id)
		}
	}
	if r, m := e.sweep(w); r != 0 || m != 0 {
		t.Errorf("after: %d revoked, %d reminders; want none", r, m)
	}
}
