package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"
)

// ---- email ----

func TestEmail_GenerationIsMailedToTheOwnerWithNameExpiryAndScopesNeverTheJWT(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, jwt := e.token("Excel sales", apitoken.Expiry30d)
	if n := e.deliver(); n != 2 {
		t.Fatalf("delivered %d notifications, want 2 (email and webhook)", n)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "alice@example.com" || m.From != "tokens@example.com" {
		t.Errorf("envelope from %q to %v, want tokens@example.com to alice@example.com", m.From, m.To)
	}
	if !m.TLS || m.User != "mailer" {
		t.Errorf("sent with TLS %v as %q; want STARTTLS and AUTH as mailer", m.TLS, m.User)
	}
	if got := m.Header.Get("To"); !strings.Contains(got, "alice@example.com") {
		t.Errorf("To header %q", got)
	}
	if want := `A new JWT was generated for your API token "Excel sales"`; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	exp := tok.ExpiresAt().UTC().Format("Mon, 02 Jan 2006 15:04:05 UTC")
	for _, want := range []string{"Hello alice", "Excel sales (" + tok.ID + ")", "Scopes:   meta, report",
		"Expires:  " + exp, "By:       you (alice)", "revoke the token now"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	noJWT(t, "the email", string(m.Raw), jwt)
	if ns := e.outbox(apitoken.NotificationFilter{State: apitoken.NotificationSent}); len(ns) != 2 {
		t.Errorf("%d notifications marked sent, want 2", len(ns))
	}
	// Sending again finds nothing.
	if n := e.deliver(); n != 0 || len(e.smtp.Messages()) != 1 {
		t.Errorf("a second delivery tried %d and the server has %d emails; want 0 and 1", n, len(e.smtp.Messages()))
	}
}

func TestEmail_RevocationSaysWhoRevoked(t *testing.T) {
	e := newEnv(t, envOptions{})
	mine, _ := e.token("mine", apitoken.Expiry30d)
	other, _ := e.token("other", apitoken.Expiry30d)
	ctx := context.Background()
	if _, err := e.svc.Revoke(ctx, e.alice, mine.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeFor(ctx, e.admin, other.ID); err != nil {
		t.Fatal(err)
	}
	e.deliver()
	by := map[string]notifytest.Message{}
	for _, m := range e.smtp.Messages() {
		by[m.Subject] = m
	}
	if m, ok := by[`Your API token "mine" was revoked`]; !ok || !strings.Contains(m.Body, "By:       you (alice)\r\n  At:") {
		t.Errorf("the owner's revocation: %q", m.Body)
	}
	if m, ok := by[`Your API token "other" was revoked`]; !ok || !strings.Contains(m.Body, "By:       system admin bob\r\n  At:") {
		t.Errorf("the admin's revocation: %q", m.Body)
	}
	if len(by) != 4 {
		t.Errorf("%d distinct emails, want 4 (two generations, two revocations): %v", len(by), keys(by))
	}
}

// A user deleted by the identity provider (SCIM) is told why each of their
// tokens stopped.
func TestEmail_RevocationBySCIMSaysTheAccountWasDeleted(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.token("Excel", apitoken.Expiry30d)
	if err := e.svc.Deprovision(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	e.deliver()
	for _, m := range e.smtp.Messages() {
		if m.Subject == `Your API token "Excel" was revoked` {
			if !strings.Contains(m.Body, "By:       your identity provider (SCIM)\r\n  Why:      your account was deleted there") {
				t.Errorf("the revocation by SCIM:\n%s", m.Body)
			}
			return
		}
	}
	t.Errorf("no revocation email among %d", len(e.smtp.Messages()))
}

// A token revoked because its JWT leaked was revoked by nobody the owner
// knows: the email says where the JWT was found and what to do.
func TestEmail_ALeakedTokensRevocationSaysWhy(t *testing.T) {
	e := newEnv(t, envOptions{})
	inURL, _ := e.token("in a URL", apitoken.Expiry30d)
	reported, _ := e.token("reported", apitoken.Expiry30d)
	ctx := context.Background()
	if _, err := e.svc.RevokeLeaked(ctx, inURL.ID, apitoken.RevokedExposedInURL, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeLeaked(ctx, reported.ID, apitoken.RevokedByEndpoint, "203.0.113.8"); err != nil {
		t.Fatal(err)
	}
	e.deliver()
	by := map[string]notifytest.Message{}
	for _, m := range e.smtp.Messages() {
		by[m.Subject] = m
	}
	for name, want := range map[string][]string{
		"in a URL": {"By:       the system (exposed in a URL)\r\n  Why:      its JWT was sent in a URL, so it must be taken as leaked", "Authorization header"},
		"reported": {"By:       the system (revocation endpoint)\r\n  Why:      someone who held its JWT reported it as leaked", "secret scanner"},
	} {
		m, ok := by[`Your API token "`+name+`" was revoked`]
		if !ok {
			t.Errorf("no revocation email for %q: %v", name, keys(by))
			continue
		}
		for _, w := range want {
			if !strings.Contains(m.Body, w) {
				t.Errorf("the revocation email of %q lacks %q:\n%s", name, w, m.Body)
			}
		}
		if strings.Contains(m.Body, "system admin") {
			t.Errorf("the revocation email of %q names a system admin:\n%s", name, m.Body)
		}
	}
}

func keys[K ~string, V any](m map[K]V) []string {
	var out []string
	for k := range m {
		out = append(out, string(k))
	}
	return out
}

func TestEmail_AnOwnerWithoutAnAddressIsSkippedVisibly(t *testing.T) {
	e := newEnv(t, envOptions{aliceMail: "-"})
	tok, _ := e.token("Excel", apitoken.Expiry30d)
	e.deliver()
	if got := len(e.smtp.Messages()); got != 0 {
		t.Fatalf("%d emails to an owner without an address", got)
	}
	ns := e.outbox(apitoken.NotificationFilter{TokenID: tok.ID})
	var email *apitoken.Notification
	for i := range ns {
		if ns[i].Destination == apitoken.DestinationEmail {
			email = &ns[i]
		}
	}
	if email == nil || email.State != apitoken.NotificationSkipped || !strings.Contains(email.LastError, `"alice" has no email address`) {
		t.Fatalf("the email notification is %+v, want skipped saying alice has no address", email)
	}
	if got := e.logs.FilterMessage("notification skipped: nothing to send").FilterField(zap.String("token_id", tok.ID)).Len(); got != 1 {
		t.Errorf("%d debug lines for the skipped email, want 1", got)
	}
	if len(e.hook.Delivered()) != 1 {
		t.Error("the webhook was not sent because the email was skipped")
	}
}

func TestEmail_ImplicitTLSAndPlainRelaysWork(t *testing.T) {
	for _, mode := range []string{notify.TLSImplicit, notify.TLSNone} {
		t.Run(mode, func(t *testing.T) {
			srv := notifytest.NewSMTPServer(t, mode, notifytest.WithAuth("relay", "relay-pw"))
			e := newEnv(t, envOptions{hook: notifytest.NewReceiver(t, 0)})
			email, err := notify.NewEmail(notify.EmailConfig{SMTP: srv.Addr, From: "tokens@example.com", TLS: mode,
				Username: "relay", Password: "relay-pw", TLSConfig: srv.ClientTLSConfig()}, e.store)
			if err != nil {
				t.Fatal(err)
			}
			e.d.SetSenders(email)
			e.token("Excel", apitoken.Expiry30d)
			e.deliver()
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].TLS != (mode == notify.TLSImplicit) || msgs[0].User != "relay" {
				t.Fatalf("%d messages (TLS %v), want 1 over TLS %v", len(msgs), len(msgs) > 0 && msgs[0].TLS, mode == notify.TLSImplicit)
			}
		})
	}
}

func TestEmail_ATemporaryFailureIsRetriedWithExponentialBackoff(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.smtp.FailData(2)
	tok, _ := e.token("Excel", apitoken.Expiry30d)
	email := func() apitoken.Notification {
		for _, n := range e.outbox(apitoken.NotificationFilter{TokenID: tok.ID}) {
			if n.Destination == apitoken.DestinationEmail {
				return n
			}
		}
		t.Fatal("no email notification")
		return apitoken.Notification{}
	}
	e.deliver()
	n := email()
	if n.State != apitoken.NotificationPending || n.Attempts != 1 || !strings.Contains(n.LastError, "451") ||
		!n.NextAttemptAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("after one failure: %s, %d attempts, %q, next %v; want pending, 1, the 451, t0+30s", n.State, n.Attempts, n.LastError, n.NextAttemptAt)
	}
	e.clock.Advance(29 * time.Second)
	if k := e.deliver(); k != 0 {
		t.Fatalf("tried %d before the retry was due", k)
	}
	e.clock.Advance(time.Second)
	e.deliver()
	if n = email(); n.Attempts != 2 || !n.NextAttemptAt.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("after the second failure: %d attempts, next %v; want 2, 60 s later", n.Attempts, n.NextAttemptAt)
	}
	e.clock.Advance(time.Minute)
	e.deliver()
	if n = email(); n.State != apitoken.NotificationSent || n.Attempts != 3 {
		t.Fatalf("after the third attempt: %s, %d attempts; want sent, 3", n.State, n.Attempts)
	}
	if got := len(e.smtp.Messages()); got != 1 {
		t.Errorf("%d emails received, want exactly 1", got)
	}
	if got := e.logs.FilterMessage("notification failed; will retry").Len(); got != 2 {
		t.Errorf("%d retry warnings logged, want 2", got)
	}
}

func TestEmail_ARefusedRecipientFailsAtOnceAndIsLogged(t *testing.T) {
	e := newEnv(t, envOptions{aliceMail: "nobody@example.com"})
	tok, jwt := e.token("Excel", apitoken.Expiry30d)
	e.deliver()
	var n apitoken.Notification
	for _, x := range e.outbox(apitoken.NotificationFilter{TokenID: tok.ID}) {
		if x.Destination == apitoken.DestinationEmail {
			n = x
		}
	}
	if n.State != apitoken.NotificationFailed || n.Attempts != 1 || !strings.Contains(n.LastError, "550") {
		t.Fatalf("email to a refused address: %s, %d attempts, %q; want failed after 1 with the 550", n.State, n.Attempts, n.LastError)
	}
	lines := e.logs.FilterMessage("notification failed; giving up").All()
	if len(lines) != 1 {
		t.Fatalf("%d error lines, want 1", len(lines))
	}
	for k, v := range lines[0].ContextMap() {
		noJWT(t, "log field "+k, fmt.Sprint(v), jwt)
	}
}

func TestEmail_ConfigIsChecked(t *testing.T) {
	for _, tc := range []struct {
		cfg  notify.EmailConfig
		want string
	}{
		{notify.EmailConfig{SMTP: "mail.example.com", From: "a@example.com"}, "host:port"},
		{notify.EmailConfig{SMTP: "mail.example.com:0", From: "a@example.com"}, "port"},
		{notify.EmailConfig{SMTP: "mail.example.com:25"}, "from is required"},
		{notify.EmailConfig{SMTP: "mail.example.com:25", From: "not an address"}, "not an email address"},
		{notify.EmailConfig{SMTP: "mail.example.com:25", From: "a@example.com", TLS: "ssl"}, "use none, starttls or tls"},
		{notify.EmailConfig{SMTP: "mail.example.com:25", From: "a@example.com", TLS: "none", Username: "u", Password: "p"}, "in clear"},
		{notify.EmailConfig{SMTP: "mail.example.com:25", From: "a@example.com", Password: "p"}, "without username"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
	if err := (notify.EmailConfig{SMTP: "127.0.0.1:25", From: "a@example.com", TLS: "none", Username: "u", Password: "p"}).Validate(); err != nil {
		t.Errorf("credentials in clear to a relay on localhost: %v", err)
	}
}

// ---- webhooks ----

func TestWebhook_EventsArriveAsSignedJSONWithoutTheJWT(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, jwt := e.token("Excel sales", apitoken.Expiry30d)
	if _, err := e.svc.RevokeFor(context.Background(), e.admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	e.deliver()
	reqs := e.hook.Delivered()
	if len(reqs) != 2 {
		t.Fatalf("%d webhook requests, want 2", len(reqs))
	}
	types := map[apitoken.Event]map[string]any{}
	for _, r := range reqs {
		// The signature, recomputed here by hand: HMAC-SHA256 over
		// timestamp "." body, keyed with the secret.
		ts := r.Header.Get("X-Api-Tokens-Timestamp")
		mac := hmac.New(sha256.New, []byte(e.secret))
		mac.Write([]byte(ts + "."))
		mac.Write(r.Body)
		if got, want := r.Header.Get("X-Api-Tokens-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || sec < before-1 || sec > time.Now().Unix()+1 {
			t.Errorf("timestamp %q is not the time of sending", ts)
		}
		if err := notify.Verify([]byte(e.secret), ts, r.Header.Get("X-Api-Tokens-Signature"), r.Body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		var p map[string]any
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if r.Header.Get("X-Api-Tokens-Event") != p["type"] || r.Header.Get("X-Api-Tokens-Delivery") != p["id"] {
			t.Errorf("event headers %q %q do not match the body %v %v", r.Header.Get("X-Api-Tokens-Event"), r.Header.Get("X-Api-Tokens-Delivery"), p["type"], p["id"])
		}
		types[apitoken.Event(p["type"].(string))] = p
		noJWT(t, "a webhook body", string(r.Body), jwt)
		noJWT(t, "webhook headers", fmt.Sprint(r.Header), jwt)
	}
	gen, rev := types[apitoken.EventGenerated], types[apitoken.EventRevoked]
	if gen == nil || rev == nil {
		t.Fatalf("got events %v, want token.generated and token.revoked", keys(types))
	}
	exp := tok.ExpiresAt().UTC().Format(time.RFC3339)
	want := map[string]any{"type": "token.generated", "token_id": tok.ID, "token_name": "Excel sales", "owner": "alice",
		"scopes": []any{"meta", "report"}, "expires_at": exp, "actor": "alice", "reminder": nil,
		"reason": nil, "unused_since": nil, "revoke_at": nil, "time": t0.Format(time.RFC3339), "id": apitoken.NotificationKey(apitoken.EventGenerated, "", &tok)}
	for k, v := range want {
		if fmt.Sprint(gen[k]) != fmt.Sprint(v) {
			t.Errorf("token.generated %s = %v, want %v", k, gen[k], v)
		}
	}
	if len(gen) != len(want) {
		t.Errorf("token.generated has fields %v, want exactly %v", keys(gen), keys(want))
	}
	if rev["actor"] != "bob" || rev["reason"] != "admin" || rev["token_id"] != tok.ID {
		t.Errorf("token.revoked actor %v reason %v token %v, want bob, admin, %s", rev["actor"], rev["reason"], rev["token_id"], tok.ID)
	}
}

func TestWebhook_RetriedWithExponentialBackoffUntilTheReceiverAnswers(t *testing.T) {
	hook := notifytest.NewReceiver(t, 3)
	e := newEnv(t, envOptions{hook: hook})
	tok, _ := e.token("Excel", apitoken.Expiry30d)
	webhook := func() apitoken.Notification {
		for _, n := range e.outbox(apitoken.NotificationFilter{TokenID: tok.ID}) {
			if strings.HasPrefix(n.Destination, "webhook:") {
				return n
			}
		}
		t.Fatal("no webhook notification")
		return apitoken.Notification{}
	}
	at := t0
	for i, wait := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		e.deliver()
		n := webhook()
		if n.State != apitoken.NotificationPending || n.Attempts != i+1 || !strings.Contains(n.LastError, "500") ||
			!n.NextAttemptAt.Equal(at.Add(wait)) {
			t.Fatalf("after failure %d: %s, %d attempts, %q, next at %v; want pending, %d, a 500, %v",
				i+1, n.State, n.Attempts, n.LastError, n.NextAttemptAt, i+1, at.Add(wait))
		}
		at = at.Add(wait)
		e.clock.Set(at)
	}
	e.deliver()
	if n := webhook(); n.State != apitoken.NotificationSent || n.Attempts != 4 {
		t.Fatalf("after the receiver recovered: %s, %d attempts; want sent, 4", n.State, n.Attempts)
	}
	reqs := hook.Requests()
	if len(reqs) != 4 || len(hook.Delivered()) != 1 {
		t.Fatalf("receiver got %d requests, %d answered 2xx; want 4 and 1", len(reqs), len(hook.Delivered()))
	}
	for _, r := range reqs[1:] {
		if string(r.Body) != string(reqs[0].Body) {
			t.Error("a retry sent another body")
		}
	}
}

func TestWebhook_GivesUpAfterTheLastAttemptAndShowsWhy(t *testing.T) {
	hook := notifytest.NewReceiver(t, 1000)
	e := newEnv(t, envOptions{hook: hook})
	e.d.MaxAttempts = 3
	e.d.Backoff = func(int) time.Duration { return time.Second }
	e.token("Excel", apitoken.Expiry30d)
	for range 5 {
		e.deliver()
		e.clock.Advance(time.Second)
	}
	failed := e.outbox(apitoken.NotificationFilter{State: apitoken.NotificationFailed})
	if len(failed) != 1 || failed[0].Attempts != 3 || !strings.Contains(failed[0].LastError, "answered 500 Internal Server Error") {
		t.Fatalf("failed notifications %+v; want the webhook's, after 3 attempts, saying the receiver answered 500", failed)
	}
	if len(hook.Requests()) != 3 {
		t.Errorf("receiver got %d requests, want 3", len(hook.Requests()))
	}
	if e.logs.FilterMessage("notification failed; giving up").Len() != 1 {
		t.Error("giving up was not logged as an error")
	}
}

func TestRedactURL_ShowsSchemeAndHostOnly(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://hooks.slack.com/services/T0/B0/s3cr3t", "https://hooks.slack.com/…#"},
		{"https://discord.com/api/webhooks/1/s3cr3t?wait=true", "https://discord.com/…#"},
		{"https://user:s3cr3t@siem.example.com:8443/in", "https://siem.example.com:8443/…#"},
		{"https://hooks.example.com", "https://hooks.example.com/…#"},
		{"hooks.example.com/s3cr3t", "…#"},
		{"ftp://files.example.com/s3cr3t", "…#"},
		{"https://h.example.com/%zz/s3cr3t", "…#"},
	} {
		got := notify.RedactURL(tc.url)
		if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+12 || strings.Contains(got, "s3cr3t") {
			t.Errorf("RedactURL(%q) = %q, want %q and 12 hex digits", tc.url, got, tc.want)
		}
	}
	a, b := notify.RedactURL("https://hooks.slack.com/services/T0/B0/one"), notify.RedactURL("https://hooks.slack.com/services/T0/B0/two")
	if a == b {
		t.Errorf("two webhooks on one host both show as %q", a)
	}
}

// A webhook's secret may be in its path (Slack, Teams, Discord), its query
// or its user info: it must reach neither the outbox (GET
// /admin/notifications) nor the log, also when delivery fails with an error
// of net/http, whose *url.Error repeats the whole URL.
func TestWebhook_ASecretInTheURLIsNeverShown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every attempt is refused
	for _, tc := range []struct {
		name   string
		url    string
		client *http.Client
	}{
		{"in the path, connection refused", "http://" + addr + "/services/T0/B0/s3cr3t-in-path", nil},
		{"in the query, connection refused", "http://" + addr + "/hook?token=s3cr3t-in-query", nil},
		{"in the user info, connection refused", "http://u:s3cr3t-in-userinfo@" + addr + "/hook", nil},
		{"in the path, quoted by a transport's error", "http://" + addr + "/api/webhooks/1/s3cr3t-quoted",
			&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return nil, fmt.Errorf("proxy refused POST %s (path %s)", r.URL, r.URL.Path)
			})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			wh, err := notify.NewWebhook(notify.WebhookConfig{URL: tc.url, Secret: "x", Client: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			if want := "webhook:http://" + addr + "/…#"; !strings.HasPrefix(wh.Destination(), want) {
				t.Errorf("destination %q, want it to start %q", wh.Destination(), want)
			}
			e.d.SetSenders(wh)
			e.reconfigure(func(c *apitoken.ServiceConfig) { c.Notify = e.d.Destinations() })
			e.token("Excel", apitoken.Expiry30d)
			e.deliver()
			ns := e.outbox(apitoken.NotificationFilter{})
			if len(ns) != 1 || ns[0].LastError == "" {
				t.Fatalf("outbox %+v, want one failed attempt", ns)
			}
			shown, _ := json.Marshal(wire.FromNotification(&ns[0]))
			if strings.Contains(string(shown), "s3cr3t") {
				t.Errorf("the outbox row shows the URL's secret: %s", shown)
			}
			if !strings.Contains(ns[0].LastError, wh.Destination()[len("webhook:"):]) {
				t.Errorf("last_error %q does not name the webhook as its destination does", ns[0].LastError)
			}
			if e.logs.Len() == 0 {
				t.Fatal("the failed attempt was not logged")
			}
			for _, l := range e.logs.All() {
				if line := fmt.Sprint(l.Message, l.ContextMap()); strings.Contains(line, "s3cr3t") {
					t.Errorf("log line shows the URL's secret: %s", line)
				}
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestVerify_RefusesATamperedBodyAWrongSecretAndAnOldTimestamp(t *testing.T) {
	secret := []byte("whsec")
	body := []byte(`{"type":"token.generated"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := notify.Sign(secret, ts, body)
	if err := notify.Verify(secret, ts, sig, body, now, 5*time.Minute); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	for name, err := range map[string]error{
		"tampered body":     notify.Verify(secret, ts, sig, []byte(`{"type":"token.revoked"}`), now, 5*time.Minute),
		"wrong secret":      notify.Verify([]byte("other"), ts, sig, body, now, 5*time.Minute),
		"old timestamp":     notify.Verify(secret, old, notify.Sign(secret, old, body), body, now, 5*time.Minute),
		"moved timestamp":   notify.Verify(secret, strconv.FormatInt(now.Unix()+1, 10), sig, body, now, 5*time.Minute),
		"no sha256= prefix": notify.Verify(secret, ts, strings.TrimPrefix(sig, "sha256="), body, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// ---- failures never break token operations ----

func TestDelivery_AnUnreachableMailServerNeverBreaksATokenOperation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := newEnv(t, envOptions{})
	email, err := notify.NewEmail(notify.EmailConfig{SMTP: addr, From: "tokens@example.com", TLS: notify.TLSNone, Timeout: 2 * time.Second}, e.store)
	if err != nil {
		t.Fatal(err)
	}
	e.d.SetSenders(email)
	e.reconfigure(func(c *apitoken.ServiceConfig) { c.Notify = e.d.Destinations() })
	ctx := context.Background()
	tok, jwt := e.token("Excel", apitoken.Expiry30d)
	if jwt == "" {
		t.Fatal("generation failed")
	}
	e.deliver()
	if _, err := e.svc.Revoke(ctx, e.alice, tok.ID); err != nil {
		t.Fatalf("revoking while mail is down: %v", err)
	}
	e.deliver()
	ns := e.outbox(apitoken.NotificationFilter{State: apitoken.NotificationPending})
	if len(ns) != 2 {
		t.Fatalf("%d pending notifications, want the generation's and the revocation's", len(ns))
	}
	for _, n := range ns {
		if n.Attempts != 1 || !strings.Contains(n.LastError, "sending email via "+addr) {
			t.Errorf("%s: %d attempts, last_error %q", n.Event, n.Attempts, n.LastError)
		}
	}
}

// Every email links to manage_url when it is set, and to nothing when not.
func TestRender_EveryEmailLinksToTheManageURL(t *testing.T) {
	exp, idle, due := t0.Add(30*24*time.Hour), t0.Add(-83*24*time.Hour), t0.Add(7*24*time.Hour)
	for _, n := range []apitoken.Notification{
		{Event: apitoken.EventGenerated, Actor: "alice"},
		{Event: apitoken.EventRevoked, Actor: "bob", Reason: apitoken.RevokeByAdmin},
		{Event: apitoken.EventExpiring, Reminder: apitoken.Reminder7d, ExpiresAt: &exp},
		{Event: apitoken.EventUnused, UnusedSince: &idle, RevokeAt: &due},
	} {
		n.TokenName, n.TokenID, n.Owner, n.At, n.Scopes = "Excel", "tok_x", "alice", t0, apitoken.DefaultScopes
		_, body := notify.Render(n, "https://manage.example.com/tokens")
		if !strings.Contains(body, "\nManage your API tokens: https://manage.example.com/tokens\n") {
			t.Errorf("%s does not link to manage_url:\n%s", n.Event, body)
		}
		if _, body := notify.Render(n, ""); strings.Contains(body, "Manage your API tokens") {
			t.Errorf("%s without manage_url links to something:\n%s", n.Event, body)
		}
	}
}
