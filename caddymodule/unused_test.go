package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"
)

// The apps of this package's tests sweep for unused tokens every 20 ms of
// real time, so that a test moves the clock and sees the sweep's work at
// once. Only configs with revoke_unused_after sweep.
var _ = func() bool { unusedSweepEvery = 20 * time.Millisecond; return true }()

func TestValidate_RevokeUnusedAfterTakesAPeriodOfTwoWeeksOrMore(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "30d": 30 * 24 * time.Hour, "1y": 365 * 24 * time.Hour,
		"14d": 14 * 24 * time.Hour, "2160h": 90 * 24 * time.Hour, "45d": 45 * 24 * time.Hour} {
		if got, err := unusedAfter(v); err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", v, got, err, want)
		}
	}
	for v, want := range map[string]string{
		"7d":    "shorter than 14 days",
		"13d":   "shorter than 14 days",
		"1d":    "shorter than 14 days",
		"-30d":  "shorter than 14 days",
		"never": "cannot be never",
		"soon":  "is not a period",
		"90":    "is not a period",
	} {
		err := (&App{MaxLifetime: "1y", RevokeUnusedAfter: v}).Validate()
		if err == nil || !strings.Contains(err.Error(), "revoke_unused_after") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error saying %q", v, err, want)
		}
	}
}

// unusedEnv is the guard with revoke_unused_after 30d and emails to a real
// SMTP server; alice has an address.
func unusedEnv(t *testing.T) (*guardEnv, *notifytest.SMTPServer) {
	t.Helper()
	smtp := notifytest.NewSMTPServer(t, "none")
	e := newGuardEnvWith(t, fmt.Sprintf(`revoke_unused_after 30d
		manage_url https://manage.example.com/
		notify email {
			smtp %s
			from tokens@example.com
			tls  none
		}`, smtp.Addr))
	email := "alice@example.com"
	if _, err := e.svc.PutUser(context.Background(), e.adminCtl, "alice", apitoken.UserPatch{Email: &email}); err != nil {
		t.Fatal(err)
	}
	return e, smtp
}

// subjects are the subjects of the emails received, in order.
func subjects(s *notifytest.SMTPServer) []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, m.Subject)
	}
	return out
}

// A token nobody uses gets one reminder 7 days before, then is revoked by
// `unused` with the owner told why; the JWT stops at once.
func TestUnused_ReminderOnceThenRevocationWithTheReason(t *testing.T) {
	e, smtp := unusedEnv(t)
	tok, jwt := e.token("Excel", apitoken.Expiry1y, apitoken.DefaultScopes)
	generated := *tok.GeneratedAt
	smtp.WaitFor(t, 1, 10*time.Second) // the generation

	// 22 days idle: nothing yet.
	e.clock.Set(generated.Add(22 * 24 * time.Hour))
	time.Sleep(200 * time.Millisecond)
	if got := subjects(smtp); len(got) != 1 {
		t.Fatalf("emails after 22 idle days: %q, want only the generation's", got)
	}
	// 23 days idle: the reminder, once, however many sweeps run.
	e.clock.Set(generated.Add(23*24*time.Hour + time.Minute))
	msgs := smtp.WaitFor(t, 2, 10*time.Second)
	want := fmt.Sprintf("Your API token %q will be revoked on %s unless it is used", "Excel", generated.Add(30*24*time.Hour).UTC().Format("Mon, 02 Jan 2006"))
	if msgs[1].Subject != want || !strings.Contains(msgs[1].Body, "has not been used since") ||
		!strings.Contains(msgs[1].Body, "Manage your API tokens: https://manage.example.com/") {
		t.Errorf("reminder %q, want %q:\n%s", msgs[1].Subject, want, msgs[1].Body)
	}
	time.Sleep(300 * time.Millisecond)
	if got := subjects(smtp); len(got) != 2 {
		t.Errorf("emails after more sweeps: %q, want one reminder", got)
	}

	// 30 days idle: revoked by unused, the owner told why.
	e.clock.Set(generated.Add(30*24*time.Hour + time.Minute))
	msgs = smtp.WaitFor(t, 3, 10*time.Second)
	if msgs[2].Subject != `Your API token "Excel" was revoked` || !strings.Contains(msgs[2].Body, "By:       the system (unused)") ||
		!strings.Contains(msgs[2].Body, "Why:      it was not used for 30 days") {
		t.Errorf("revocation %q:\n%s", msgs[2].Subject, msgs[2].Body)
	}
	got, err := e.app.backend.store.GetToken(context.Background(), tok.ID)
	if err != nil || got.RevokedAt == nil || got.RevokedBy != apitoken.ByUnused {
		t.Fatalf("token %+v (%v), want revoked by %q", got, err, apitoken.ByUnused)
	}
	logs, _, err := e.app.backend.store.ListLogs(context.Background(), apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityRevoke, Page: apitoken.Page{Limit: 10}})
	if err != nil || len(logs) != 1 || logs[0].ActivityBy != apitoken.ByUnused {
		t.Errorf("REVOKE logs %+v (%v), want one by unused", logs, err)
	}
	e.settle()
	if resp, _ := e.do("GET", "/meta", "Authorization", "Bearer "+jwt); resp.StatusCode != 401 {
		t.Errorf("the revoked JWT got %d, want 401", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	if got := subjects(smtp); len(got) != 3 {
		t.Errorf("emails after more sweeps: %q, want one revocation", got)
	}
}

// A use after the reminder starts a new idle period: the token is not
// revoked when the first period would have ended, and the reminder and the
// revocation come again only for the new period.
func TestUnused_AUsePostponesTheReminderAndTheRevocation(t *testing.T) {
	e, smtp := unusedEnv(t)
	tok, jwt := e.token("Power BI", apitoken.Expiry1y, apitoken.DefaultScopes)
	generated := *tok.GeneratedAt
	smtp.WaitFor(t, 1, 10*time.Second)
	e.clock.Set(generated.Add(23*24*time.Hour + time.Minute))
	smtp.WaitFor(t, 2, 10*time.Second) // the first reminder

	// Used 25 days after its generation.
	used := generated.Add(25 * 24 * time.Hour)
	e.clock.Set(used)
	if resp, body := e.do("GET", "/meta", "Authorization", "Bearer "+jwt); resp.StatusCode != 200 {
		t.Fatalf("the JWT got %d %s", resp.StatusCode, body)
	}
	if e.loggedOK(tok.ID) != 1 {
		t.Fatal("the use was not logged")
	}

	// When the first period would have ended: not revoked, nothing sent.
	e.clock.Set(generated.Add(31 * 24 * time.Hour))
	time.Sleep(300 * time.Millisecond)
	if got, _ := e.app.backend.store.GetToken(context.Background(), tok.ID); got.RevokedAt != nil {
		t.Fatalf("revoked at %v though used on day 25", got.RevokedAt)
	}
	if got := subjects(smtp); len(got) != 2 {
		t.Fatalf("emails: %q, want the generation and one reminder", got)
	}
	if resp, _ := e.do("GET", "/meta", "Authorization", "Bearer "+jwt); resp.StatusCode != 200 {
		t.Fatalf("the JWT got %d after its first idle period", resp.StatusCode)
	}
	e.loggedOK(tok.ID)
	used = generated.Add(31 * 24 * time.Hour)

	// The new period: a second reminder 23 days after the last use, then
	// the revocation 30 days after it.
	e.clock.Set(used.Add(23*24*time.Hour + time.Minute))
	msgs := smtp.WaitFor(t, 3, 10*time.Second)
	if !strings.Contains(msgs[2].Subject, "will be revoked on "+used.Add(30*24*time.Hour).UTC().Format("Mon, 02 Jan 2006")) {
		t.Errorf("second reminder %q", msgs[2].Subject)
	}
	e.clock.Set(used.Add(30*24*time.Hour + time.Minute))
	msgs = smtp.WaitFor(t, 4, 10*time.Second)
	if msgs[3].Subject != `Your API token "Power BI" was revoked` || !strings.Contains(msgs[3].Body, "Why:      it was not used for 30 days") {
		t.Errorf("revocation %q:\n%s", msgs[3].Subject, msgs[3].Body)
	}
}
