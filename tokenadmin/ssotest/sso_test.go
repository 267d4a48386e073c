package ssotest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"

	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	_ "github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestMain(m *testing.M) {
	os.Exit(caddytesting.Main(m))
}

// oauth2ProxyBinary finds the oauth2-proxy binary: on PATH, else where go
// install puts it. Without it the test is skipped, except in CI, whose
// .ci/run installs it.
func oauth2ProxyBinary(t *testing.T) string {
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "oauth2-proxy")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	msg := "oauth2-proxy is not installed: go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6 (.ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// deployment is examples/sso as written: Caddy with its Caddyfile, the
// oauth2-proxy binary with its config, an OpenID Connect provider, an SMTP
// server and a report server.
type deployment struct {
	*caddytesting.Env
	oidc    *mockoidc.MockOIDC
	smtp    *notifytest.SMTPServer
	manage  string // the management site
	reports string // the guarded report API
}

func newDeployment(t *testing.T) *deployment {
	bin := oauth2ProxyBinary(t)
	oidc, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = oidc.Shutdown() })
	e := caddytesting.New(t)
	d := &deployment{Env: e, oidc: oidc, smtp: notifytest.NewSMTPServer(t, "none"),
		manage: e.Base, reports: fmt.Sprintf("http://127.0.0.1:%d", caddytesting.HTTPPort)}
	upstream := caddytesting.NewUpstream(t)
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", caddytesting.FreePort())

	// oauth2-proxy, with the example's config and this test's addresses.
	cookie := make([]byte, 32)
	rand.Read(cookie)
	cmd := exec.Command(bin, "--config", "../../examples/sso/oauth2-proxy.cfg",
		"--http-address", proxyAddr, "--oidc-issuer-url", oidc.Issuer(), "--client-id", oidc.ClientID,
		"--redirect-url", d.manage+"/oauth2/callback", "--cookie-secure=false")
	cmd.Env = append(os.Environ(), "OAUTH2_PROXY_CLIENT_SECRET="+oidc.ClientSecret,
		"OAUTH2_PROXY_COOKIE_SECRET="+base64.RawURLEncoding.EncodeToString(cookie))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy's log:\n%s", logs.String())
		}
	})
	caddytesting.Eventually(t, 20*time.Second, "oauth2-proxy answering /ping", func() bool {
		res, err := http.Get("http://" + proxyAddr + "/ping")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	// Caddy, with the example's Caddyfile and this test's addresses.
	for k, v := range map[string]string{
		"CADDY_ADMIN": strings.TrimPrefix(e.Admin, "http://"), "HTTP_PORT": fmt.Sprint(caddytesting.HTTPPort),
		"APITOKENS_DB": e.Dir + "/t.db", "APITOKENS_SIGNING_KEY": apitoken.GenerateKeySecret(),
		"APITOKENS_ADMINS": "root", "SMTP_ADDR": d.smtp.Addr, "SMTP_TLS": "none",
		"MANAGE_SITE": d.manage, "REPORTS_SITE": d.reports, "OAUTH2_PROXY": proxyAddr,
		"REPORTS_UPSTREAM": strings.TrimPrefix(upstream.URL, "http://"),
	} {
		t.Setenv(k, v)
	}
	caddyfile, err := os.ReadFile("../../examples/sso/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	e.Load(string(caddyfile))
	return d
}

// browser is a client with a cookie jar that follows redirects, as a
// browser does, without running any page's code.
func (d *deployment) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// signIn signs the browser in as u at the provider: the cookie flow of
// oauth2-proxy, from the management site to the provider and back.
func (d *deployment) signIn(b *http.Client, u *mockoidc.MockUser) {
	d.T.Helper()
	d.oidc.QueueUser(u)
	res, err := b.Get(d.manage + "/oauth2/start?rd=/")
	if err != nil {
		d.T.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/" {
		d.T.Fatalf("sign-in of %s ended at %s with %d: %s", u.Email, res.Request.URL, res.StatusCode, body)
	}
}

// call sends a management request as the browser and returns its status and
// JSON body.
func (d *deployment) call(b *http.Client, method, path, body string, header ...string) (int, map[string]any) {
	d.T.Helper()
	a := caddytesting.Send(d.T, b, caddytesting.Call{Method: method, Path: path, Body: body, Header: header, Base: d.manage})
	return a.Status, a.JSON
}

// user reads a user through the admin API on Caddy's admin endpoint.
func (d *deployment) user(id string) map[string]any {
	d.T.Helper()
	var l struct{ Users []map[string]any }
	caddytesting.Send(d.T, http.DefaultClient, caddytesting.Call{Method: "GET", Base: d.Admin, Path: "/api-tokens/users?q=" + url.QueryEscape(id)}).Decode(&l)
	if len(l.Users) != 1 {
		d.T.Fatalf("users matching %q: %v", id, l.Users)
	}
	return l.Users[0]
}

func (d *deployment) report(jwt string) int {
	d.T.Helper()
	return caddytesting.Send(d.T, http.DefaultClient, caddytesting.Call{Method: "GET", Base: d.reports, Path: "/meta", Header: []string{"Authorization", "Bearer " + jwt}}).Status
}

func TestSSO_SignInMakesTheUserAndGroupsGiveAndTakeTheTokenRole(t *testing.T) {
	d := newDeployment(t)
	alice := &mockoidc.MockUser{Subject: "7f3c1e", Email: "alice@example.com", EmailVerified: true,
		PreferredUsername: "alice", Groups: []string{"report-users", "staff"}}

	// Not signed in: the management routes send the browser to sign in, and
	// never answer; a client-sent identity header changes nothing.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _ := d.call(noRedirect, "GET", "/admin/users", "", "X-Auth-Request-User", "root"); status != http.StatusFound {
		t.Fatalf("GET /admin/users without a session, naming root: %d, want 302 to the sign-in", status)
	}

	// A browser-less sign-in (the cookie flow) makes the user, with the
	// provider's email, name and groups; report-users gives the token role.
	b := d.browser()
	d.signIn(b, alice)
	status, _ := d.call(b, "GET", "/tokens", "")
	if status != 200 {
		t.Fatalf("alice's GET /tokens after sign-in: %d", status)
	}
	// oauth2-proxy names the user by the provider's subject.
	u := d.user("alice@example.com")
	id := u["id"].(string)
	if id != alice.Subject || u["email"] != "alice@example.com" || u["name"] != "alice" || u["source"] != "sign_in" || u["kind"] != "person" ||
		fmt.Sprint(u["roles"]) != "[api_tokens]" || fmt.Sprint(u["group_roles"]) != "[api_tokens]" ||
		fmt.Sprint(u["groups"]) != "[report-users staff]" || u["last_seen_at"] == nil {
		t.Fatalf("the user made at sign-in: %v", u)
	}

	// Her own headers cannot make her someone else, or an admin.
	if status, _ := d.call(b, "GET", "/admin/users", "", "X-Auth-Request-User", "root", "X-Auth-Request-Groups", "report-admins"); status != 403 {
		t.Fatalf("alice naming root and report-admins in her headers: %d, want 403", status)
	}

	// She makes a token; its generation email reaches the provider's address.
	status, tok := d.call(b, "POST", "/tokens", `{"name":"Excel","expires":"30d","scopes":["meta"]}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, tok)
	}
	status, gen := d.call(b, "POST", "/tokens/"+tok["id"].(string)+"/generate", "")
	if status != 200 {
		t.Fatalf("generate: %d %v", status, gen)
	}
	jwt := gen["token"].(string)
	msgs := d.smtp.WaitFor(t, 1, 10*time.Second)
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "alice@example.com" || !strings.Contains(msgs[0].Body, "Excel") ||
		strings.Contains(string(msgs[0].Raw), jwt) {
		t.Fatalf("the generation email: to %v, body %q", msgs[0].To, msgs[0].Body)
	}
	if status := d.report(jwt); status != 200 {
		t.Fatalf("the report API with alice's JWT: %d", status)
	}

	// She leaves report-users at the provider and signs in again: the role
	// goes at her next request, and her JWT gets 401 at the guard.
	alice.Groups = []string{"staff"}
	d.signIn(b, alice)
	if status, _ := d.call(b, "GET", "/tokens", ""); status != 403 {
		t.Fatalf("GET /tokens after leaving report-users: %d, want 403", status)
	}
	if u := d.user(id); fmt.Sprint(u["roles"]) != "[]" || fmt.Sprint(u["groups"]) != "[staff]" {
		t.Fatalf("after leaving report-users: %v", u)
	}
	if status := d.report(jwt); status != 401 {
		t.Fatalf("the report API with alice's JWT after she left the group: %d, want 401", status)
	}
	// Rejoining brings it back; nothing was revoked.
	alice.Groups = []string{"report-users"}
	d.signIn(b, alice)
	if status := d.report(jwt); status != 200 {
		t.Fatalf("the report API with alice's JWT after she rejoined: %d, want 200", status)
	}
}

// authentikSite is a management site behind forward_auth with Authentik's
// headers: groups separated by "|".
const authentikSite = `{
	admin localhost:%[1]d
	http_port %[2]d
	persist_config off
	api_tokens {
		storage     sqlite %[3]s
		signing_key %[4]s
		groups {
			report-users api_tokens
		}
	}
}
http://localhost:%[2]d {
	forward_auth %[5]s {
		uri /outpost.goauthentik.io/auth/caddy
		copy_headers X-Authentik-Username X-Authentik-Groups X-Authentik-Email X-Authentik-Name
	}
	api_token_admin {
		user   {http.request.header.X-Authentik-Username}
		name   {http.request.header.X-Authentik-Name}
		email  {http.request.header.X-Authentik-Email}
		groups {http.request.header.X-Authentik-Groups}
		groups_separator |
	}
}
`

// The Authentik variant: groups separated by "|" give roles, and the
// outpost's headers replace the client's.
func TestSSO_AuthentikGroupsSeparatedByAPipeGiveRoles(t *testing.T) {
	// The outpost's answer as Authentik documents it, for the session
	// cookie it knows; 401 for anyone else.
	outpost := caddytesting.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("authentik_proxy"); err != nil || c.Value != "bob-session" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Authentik-Username", "bob")
		w.Header().Set("X-Authentik-Name", "Bob Builder")
		w.Header().Set("X-Authentik-Email", "bob@example.com")
		w.Header().Set("X-Authentik-Groups", "staff|report-users")
		w.WriteHeader(http.StatusOK)
	})
	e := caddytesting.New(t)
	e.Load(fmt.Sprintf(authentikSite, caddytesting.AdminPort, caddytesting.HTTPPort, e.Dir+"/t.db", apitoken.GenerateKeySecret(),
		strings.TrimPrefix(outpost.URL, "http://")))
	d := &deployment{Env: e, manage: e.Base}
	bob := d.browser()
	u, _ := url.Parse(d.manage)
	bob.Jar.SetCookies(u, []*http.Cookie{{Name: "authentik_proxy", Value: "bob-session"}})

	if status, _ := d.call(bob, "GET", "/tokens", "", "X-Authentik-Groups", "report-admins|report-users"); status != 200 {
		t.Fatalf("bob's GET /tokens: %d, want 200 (report-users gives the token role)", status)
	}
	got := d.user("bob")
	if fmt.Sprint(got["groups"]) != "[report-users staff]" || fmt.Sprint(got["group_roles"]) != "[api_tokens]" ||
		got["name"] != "Bob Builder" || got["email"] != "bob@example.com" {
		t.Fatalf("bob after sign-in: %v", got)
	}
	// Without the session, naming bob in the headers gets nothing.
	if status, _ := d.call(&http.Client{}, "GET", "/tokens", "", "X-Authentik-Username", "bob"); status != 401 {
		t.Fatalf("GET /tokens naming bob without a session: %d, want the outpost's 401", status)
	}
}
