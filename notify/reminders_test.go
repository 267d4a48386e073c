package notify_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"
)

// reminders are the expiry reminders in the outbox, as "<reminder> <token
// name> <destination kind>", sorted.
func (e *env) reminders() []string {
	e.t.Helper()
	var out []string
	for _, n := range e.outbox(apitoken.NotificationFilter{}) {
		if n.Event == apitoken.EventExpiring {
			kind, _, _ := strings.Cut(n.Destination, ":")
			out = append(out, n.Reminder+" "+n.TokenName+" "+kind)
		}
	}
	slices.Sort(out)
	return out
}

func TestReminders_SevenAndOneDayBeforeExpiryEachOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, jwt := e.token("Excel", apitoken.Expiry30d)
	end := *tok.ExpiresAt()
	e.deliver() // the generation's notifications

	steps := []struct {
		at   time.Time
		want []string
	}{
		{end.Add(-7*day - time.Minute), nil},
		{end.Add(-7 * day), []string{"7d Excel email", "7d Excel webhook"}},
		{end.Add(-7*day + time.Minute), []string{"7d Excel email", "7d Excel webhook"}},
		{end.Add(-3 * day), []string{"7d Excel email", "7d Excel webhook"}},
		{end.Add(-day - time.Second), []string{"7d Excel email", "7d Excel webhook"}},
		{end.Add(-day), []string{"1d Excel email", "1d Excel webhook", "7d Excel email", "7d Excel webhook"}},
		{end.Add(-time.Minute), []string{"1d Excel email", "1d Excel webhook", "7d Excel email", "7d Excel webhook"}},
		{end.Add(time.Hour), []string{"1d Excel email", "1d Excel webhook", "7d Excel email", "7d Excel webhook"}},
	}
	for _, st := range steps {
		e.clock.Set(st.at)
		e.scan()
		e.scan() // a second scan at the same moment adds nothing
		if got := e.reminders(); !slices.Equal(got, st.want) {
			t.Fatalf("at expiry%+v: reminders %v, want %v", st.at.Sub(end), got, st.want)
		}
		e.deliver()
	}
	// Each reminder arrived exactly once, by email and by webhook.
	var subjects []string
	for _, m := range e.smtp.Messages() {
		subjects = append(subjects, m.Subject)
		noJWT(t, "a reminder email", string(m.Raw), jwt)
	}
	want := `Your API token "Excel" expires on ` + end.Format("Mon, 02 Jan 2006")
	if len(subjects) != 3 || subjects[1] != want || subjects[2] != want {
		t.Fatalf("emails %q; want the generation's, then two reminders %q", subjects, want)
	}
	msgs := e.smtp.Messages()
	if !strings.Contains(msgs[1].Body, "in 7 days") || !strings.Contains(msgs[2].Body, "in 1 day") {
		t.Errorf("reminder bodies do not say how long is left:\n%s\n---\n%s", msgs[1].Body, msgs[2].Body)
	}
	var got []string
	for _, r := range e.hook.Delivered() {
		var p struct {
			Type     string  `json:"type"`
			Reminder *string `json:"reminder"`
			Actor    *string `json:"actor"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type == string(apitoken.EventExpiring) {
			if p.Actor != nil {
				t.Errorf("a reminder has actor %q, want null", *p.Actor)
			}
			got = append(got, *p.Reminder)
		}
	}
	if !slices.Equal(got, []string{"7d", "1d"}) {
		t.Errorf("webhook reminders %v, want [7d 1d]", got)
	}
}

func TestReminders_ATokenGetsOnlyTheRemindersDueAfterItsGeneration(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.token("one day", apitoken.Expiry1d)
	e.token("one week", apitoken.Expiry7d)
	e.token("never", apitoken.ExpiryNever)
	for h := 0; h <= 8*24; h++ {
		e.clock.Set(t0.Add(time.Duration(h) * time.Hour))
		e.scan()
	}
	want := []string{"1d one week email", "1d one week webhook"}
	if got := e.reminders(); !slices.Equal(got, want) {
		t.Errorf("reminders %v, want %v (a 7d token gets no 7-day reminder, a 1d token none, never none)", got, want)
	}
}

func TestReminders_RegeneratingStartsTheRemindersAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, _ := e.token("Excel", apitoken.Expiry30d)
	e.clock.Set(tok.ExpiresAt().Add(-7 * day))
	e.scan()
	if _, _, err := e.svc.Generate(context.Background(), e.alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.scan() // the new generation expires in 30 days: nothing yet
	if got := e.reminders(); len(got) != 2 {
		t.Fatalf("reminders %v, want only the first generation's 7-day ones", got)
	}
	e.clock.Advance(23 * day)
	e.scan()
	if got := e.reminders(); len(got) != 4 {
		t.Fatalf("reminders %v, want the second generation's 7-day ones too", got)
	}
}

func TestReminders_ARevokedTokenGetsNone(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, _ := e.token("Excel", apitoken.Expiry7d)
	if _, err := e.svc.Revoke(context.Background(), e.alice, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(tok.ExpiresAt().Add(-time.Hour))
	e.scan()
	if got := e.reminders(); len(got) != 0 {
		t.Errorf("reminders of a revoked token: %v", got)
	}
}

func TestReminders_AfterDowntimeOnlyTheLatestDueReminderIsSent(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, _ := e.token("Excel", apitoken.Expiry30d)
	// No scan ran from before the 7-day mark until 12 hours before expiry.
	e.clock.Set(tok.ExpiresAt().Add(-12 * time.Hour))
	e.scan()
	if got, want := e.reminders(), []string{"1d Excel email", "1d Excel webhook"}; !slices.Equal(got, want) {
		t.Errorf("reminders %v, want only %v", got, want)
	}
	e.deliver()
	var reminder *notifytest.Message
	for _, m := range e.smtp.Messages() {
		if strings.Contains(m.Subject, "expires on") {
			reminder = &m
		}
	}
	if reminder == nil || !strings.Contains(reminder.Body, "in 12 hours") {
		t.Errorf("the late reminder does not say 12 hours are left: %+v", reminder)
	}
}

func TestReminders_ShorteningTheExpiryBringsTheReminderForward(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, _ := e.token("Excel", apitoken.Expiry90d)
	e.clock.Advance(2 * day)
	e.scan()
	if got := e.reminders(); len(got) != 0 {
		t.Fatalf("reminders %v, want none yet", got)
	}
	// Narrowed to 7 days: it now expires 5 days from here.
	exp := apitoken.Expiry7d
	if _, err := e.svc.UpdateToken(context.Background(), e.alice, tok.ID, apitoken.TokenPatch{Expires: &exp}); err != nil {
		t.Fatal(err)
	}
	e.scan()
	if got := e.reminders(); len(got) != 0 {
		t.Fatalf("reminders %v; a 7-day reminder of a token whose 7 days began at its generation is never due", got)
	}
	e.clock.Advance(4 * day)
	e.scan()
	if got, want := e.reminders(), []string{"1d Excel email", "1d Excel webhook"}; !slices.Equal(got, want) {
		t.Errorf("reminders %v, want %v", got, want)
	}
}
