package notifye2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"

	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	_ "github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestMain(m *testing.M) {
	// The secrets reach the config through placeholders, as in production.
	os.Setenv("NOTIFYE2E_SMTP_PASSWORD", "mail-secret")
	os.Setenv("NOTIFYE2E_WEBHOOK_SECRET", "whsec-e2e-0123456789")
	os.Exit(caddytesting.Main(m))
}

const webhookSecret = "whsec-e2e-0123456789"

const config = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	log {
		output file %[8]s
		level  DEBUG
	}
	api_tokens {
		storage     sqlite %[3]s
		signing_key %[4]s
		admins      root
		manage_url  https://manage.example.com/tokens
		notify email {
			smtp     %[5]s
			from     "API Tokens <tokens@example.com>"
			username mailer
			password {env.NOTIFYE2E_SMTP_PASSWORD}
			tls      none
		}
%[6]s	}
}
http://localhost:%[2]d {
	basic_auth {
%[7]s	}
	api_token_admin
}
http://127.0.0.1:%[2]d {
	api_token_revoke /oauth/revoke
	api_token_auth {
		scope report /data/*
	}
	respond "report rows"
}
`

type env struct {
	*caddytesting.Env
	smtp  *notifytest.SMTPServer
	key   string
	users string
}

func webhooks(urls ...string) string {
	var b strings.Builder
	for _, u := range urls {
		fmt.Fprintf(&b, "\t\tnotify webhook %s {\n\t\t\tsecret {env.NOTIFYE2E_WEBHOOK_SECRET}\n\t\t}\n", u)
	}
	return b.String()
}

func newEnv(t *testing.T, hooks ...string) *env {
	t.Helper()
	e := &env{Env: caddytesting.New(t), smtp: notifytest.NewSMTPServer(t, "none", notifytest.WithAuth("mailer", "mail-secret")),
		key: apitoken.GenerateKeySecret(), users: caddytesting.Accounts(t, "\t\t", "root", "alice")}
	e.load(hooks...)
	e.call("root", "PUT", "/admin/users/alice", `{"email": "alice@example.com"}`, 200)
	e.call("root", "PUT", "/admin/users/alice/roles/api_tokens", "", 200)
	return e
}

// load (re)loads the config with these webhooks.
func (e *env) load(hooks ...string) {
	e.T.Helper()
	e.Load(fmt.Sprintf(config, caddytesting.AdminPort, caddytesting.HTTPPort, e.Dir+"/t.db", e.key, e.smtp.Addr, webhooks(hooks...), e.users, e.Log))
}

// call sends a request as user and checks its status; the answer is the
// JSON object.
func (e *env) call(user, method, path, body string, status int) map[string]any {
	e.T.Helper()
	return e.Call(user, method, path, body).Want(status, "").JSON
}

// generate creates a token of alice and generates it: its id and JWT.
func (e *env) generate(name string) (string, string) {
	e.T.Helper()
	tok := e.call("alice", "POST", "/tokens", fmt.Sprintf(`{"name": %q, "expires": "30d", "scopes": ["report"]}`, name), 201)
	id := tok["id"].(string)
	gen := e.call("alice", "POST", "/tokens/"+id+"/generate", "", 200)
	return id, gen["token"].(string)
}

func noJWT(t *testing.T, what, s, jwt string) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	for _, p := range []string{jwt, parts[1], parts[2]} {
		if strings.Contains(s, p) {
			t.Errorf("%s contains the JWT", what)
		}
	}
}

// outbox is GET /admin/notifications as root.
func (e *env) outbox(query string) []map[string]any {
	e.T.Helper()
	var out []map[string]any
	for _, n := range e.call("root", "GET", "/admin/notifications"+query, "", 200)["notifications"].([]any) {
		out = append(out, n.(map[string]any))
	}
	return out
}

func TestE2E_GenerationAndRevocationReachTheOwnerAndTheWebhooks(t *testing.T) {
	hook := notifytest.NewReceiver(t, 0)
	e := newEnv(t, hook.URL+"/tokens")
	id, jwt := e.generate("Excel sales")

	// Delivered off the request path, at once.
	msgs := e.smtp.WaitFor(t, 1, 10*time.Second)
	reqs := hook.WaitFor(t, 1, 10*time.Second)
	m := msgs[0]
	if m.To[0] != "alice@example.com" || m.User != "mailer" || !strings.Contains(m.Header.Get("From"), "tokens@example.com") {
		t.Errorf("email to %v as %q from %q", m.To, m.User, m.Header.Get("From"))
	}
	if m.Subject != `A new JWT was generated for your API token "Excel sales"` || !strings.Contains(m.Body, "Scopes:   report") ||
		!strings.Contains(m.Body, "("+id+")") {
		t.Errorf("email %q:\n%s", m.Subject, m.Body)
	}
	if !strings.Contains(m.Body, "Manage your API tokens: https://manage.example.com/tokens") {
		t.Errorf("the email does not link to manage_url:\n%s", m.Body)
	}
	noJWT(t, "the email", string(m.Raw), jwt)
	r := reqs[0]
	if err := notify.Verify([]byte(webhookSecret), r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature),
		r.Body, time.Now(), time.Minute); err != nil {
		t.Errorf("the webhook's signature: %v", err)
	}
	var p wire.Webhook
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Type != apitoken.EventGenerated || p.TokenID != id || p.Actor == nil || *p.Actor != "alice" {
		t.Errorf("webhook payload %s (%v)", r.Body, err)
	}
	noJWT(t, "the webhook", string(r.Body)+fmt.Sprint(r.Header), jwt)

	// Revoked by an admin: the owner is told who.
	e.call("root", "POST", "/admin/tokens/"+id+"/revoke", "", 200)
	msgs = e.smtp.WaitFor(t, 2, 10*time.Second)
	if msgs[1].Subject != `Your API token "Excel sales" was revoked` || !strings.Contains(msgs[1].Body, "system admin root") {
		t.Errorf("revocation email %q:\n%s", msgs[1].Subject, msgs[1].Body)
	}
	reqs = hook.WaitFor(t, 2, 10*time.Second)
	if err := json.Unmarshal(reqs[1].Body, &p); err != nil || p.Type != apitoken.EventRevoked || p.Reason == nil || *p.Reason != "admin" ||
		p.Actor == nil || *p.Actor != "root" {
		t.Errorf("revocation webhook payload %s (%v), want reason admin by root", reqs[1].Body, err)
	}

	// Admins see what was sent; others may not look.
	caddytesting.Eventually(t, 10*time.Second, "4 notifications marked sent", func() bool { return len(e.outbox("?state=sent")) == 4 })
	for _, n := range e.outbox("") {
		if n["token_id"] != id || n["attempts"] != 1.0 || n["last_error"] != nil {
			t.Errorf("notification %v", n)
		}
	}
	e.call("alice", "GET", "/admin/notifications", "", 403)
	e.call("root", "GET", "/admin/notifications?state=lost", "", 400)

	// A reload adds a webhook: the deliverer, kept across the reload, sends
	// the next event to both.
	hook2 := notifytest.NewReceiver(t, 0)
	e.load(hook.URL+"/tokens", hook2.URL+"/other")
	e.generate("Power BI")
	hook.WaitFor(t, 3, 10*time.Second)
	got := hook2.WaitFor(t, 1, 10*time.Second)
	if !strings.Contains(string(got[0].Body), `"token_name":"Power BI"`) {
		t.Errorf("the new webhook got %s", got[0].Body)
	}
	e.smtp.WaitFor(t, 3, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 3 {
		t.Errorf("%d emails after three events, want 3", n)
	}
}

func TestE2E_AFailingWebhookIsVisibleToAdminsAndNeverBreaksGeneration(t *testing.T) {
	hook := notifytest.NewReceiver(t, 1000)
	e := newEnv(t, hook.URL+"/tokens")
	id, jwt := e.generate("Excel")
	if jwt == "" {
		t.Fatal("no JWT")
	}
	e.smtp.WaitFor(t, 1, 10*time.Second)
	var n map[string]any
	caddytesting.Eventually(t, 10*time.Second, "the webhook's failed attempt shown", func() bool {
		ns := e.outbox("?state=pending&token=" + id)
		if len(ns) == 1 && ns[0]["attempts"] == 1.0 {
			n = ns[0]
			return true
		}
		return false
	})
	if !strings.HasPrefix(n["destination"].(string), "webhook:"+hook.URL+"/…#") || !strings.Contains(fmt.Sprint(n["last_error"]), "500") ||
		n["next_attempt_at"] == nil || n["event"] != "token.generated" {
		t.Errorf("pending notification %v", n)
	}
}

// Slack, Teams and Discord webhooks carry their secret in the URL's path:
// neither the admin route nor Caddy's log may show it, also when delivery
// fails with a connection refused (net/http's errors repeat the URL).
func TestE2E_AWebhookURLIsShownAndLoggedWithoutItsPath(t *testing.T) {
	hook := notifytest.NewReceiver(t, 1000) // answers 500
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close() // nothing listens there
	failing, unreachable := hook.URL+"/services/T0/B0/s3cr3t-slack", "http://"+refused+"/api/webhooks/1/s3cr3t-discord"
	e := newEnv(t, failing, unreachable)
	id, _ := e.generate("Excel")

	var raw []byte
	caddytesting.Eventually(t, 10*time.Second, "both webhooks' failed attempts shown", func() bool {
		out := e.call("root", "GET", "/admin/notifications?state=pending&token="+id, "", 200)
		raw, _ = json.Marshal(out)
		ns := out["notifications"].([]any)
		for _, n := range ns {
			if n.(map[string]any)["attempts"] != 1.0 {
				return false
			}
		}
		return len(ns) == 2
	})
	for _, want := range []string{"webhook:" + hook.URL + "/…#", "webhook:http://" + refused + "/…#", "answered 500", "connection refused"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("GET /admin/notifications lacks %q: %s", want, raw)
		}
	}
	logs, err := os.ReadFile(e.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "notification failed; will retry") {
		t.Fatalf("Caddy's log has no failed delivery:\n%s", logs)
	}
	for what, text := range map[string]string{"GET /admin/notifications": string(raw), "Caddy's log": string(logs)} {
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "/services/") || strings.Contains(text, "/api/webhooks/") {
			t.Errorf("%s shows a webhook URL's path:\n%s", what, text)
		}
	}
}

// A leaked JWT, reported to the revocation endpoint or sent in a URL to the
// guard, revokes its token, and the owner is told why by email and the
// webhooks by the actor, never with the JWT.
func TestE2E_ALeakedJWTsRevocationTellsTheOwnerWhy(t *testing.T) {
	hook := notifytest.NewReceiver(t, 0)
	e := newEnv(t, hook.URL+"/tokens")
	reportedID, reported := e.generate("reported")
	inURLID, inURL := e.generate("in a URL")
	e.smtp.WaitFor(t, 2, 10*time.Second)
	guarded := fmt.Sprintf("http://127.0.0.1:%d", caddytesting.HTTPPort)
	get := func(path, jwt string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", guarded+path, nil)
		if jwt != "" {
			req.Header.Set("Authorization", "Bearer "+jwt)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := get("/data/sales", reported); s != 200 {
		t.Fatalf("control: the JWT got %d", s)
	}
	res, err := http.PostForm(guarded+"/oauth/revoke", url.Values{"token": {reported}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("the report got %d, want 200", res.StatusCode)
	}
	if s := get("/data/sales?access_token="+inURL, ""); s != 400 {
		t.Fatalf("a JWT in the URL got %d, want 400", s)
	}
	if get("/data/sales", reported) != 401 || get("/data/sales", inURL) != 401 {
		t.Fatal("a leaked JWT still opens the API")
	}

	msgs := e.smtp.WaitFor(t, 4, 10*time.Second)
	bySubject := map[string]notifytest.Message{}
	for _, m := range msgs {
		bySubject[m.Subject] = m
		noJWT(t, "an email", string(m.Raw), reported)
		noJWT(t, "an email", string(m.Raw), inURL)
	}
	for name, want := range map[string][]string{
		"reported": {"By:       the system (revocation endpoint)", "reported it as leaked"},
		"in a URL": {"By:       the system (exposed in a URL)", "its JWT was sent in a URL"},
	} {
		m, ok := bySubject[`Your API token "`+name+`" was revoked`]
		if !ok || m.To[0] != "alice@example.com" {
			t.Errorf("no revocation email to alice for %q", name)
			continue
		}
		for _, w := range want {
			if !strings.Contains(m.Body, w) {
				t.Errorf("the revocation email of %q lacks %q:\n%s", name, w, m.Body)
			}
		}
	}
	actors := map[string]string{}
	for _, r := range hook.WaitFor(t, 4, 10*time.Second) {
		var p wire.Webhook
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type == apitoken.EventRevoked && p.Actor != nil {
			actors[p.TokenID] = *p.Actor
		}
		noJWT(t, "a webhook", string(r.Body), reported)
	}
	if actors[reportedID] != apitoken.RevokedByEndpoint || actors[inURLID] != apitoken.RevokedExposedInURL {
		t.Errorf("the webhooks' revocation actors %v", actors)
	}
	for id, by := range map[string]string{reportedID: apitoken.RevokedByEndpoint, inURLID: apitoken.RevokedExposedInURL} {
		logs := e.call("root", "GET", "/admin/logs?activity=REVOKE&token="+id, "", 200)["logs"].([]any)
		if len(logs) != 1 || logs[0].(map[string]any)["activity_by"] != by || logs[0].(map[string]any)["client_ip"] != "127.0.0.1" {
			t.Errorf("REVOKE logs of %s: %v, want one by %q from 127.0.0.1", id, logs, by)
		}
	}
	caddyLog, err := os.ReadFile(e.Log)
	if err != nil {
		t.Fatal(err)
	}
	noJWT(t, "Caddy's log", string(caddyLog), reported)
	noJWT(t, "Caddy's log", string(caddyLog), inURL)
}
