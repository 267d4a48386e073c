package tokenadmin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/apispec"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"

	// api_token_admin and the admin API; the api_tokens app,
	// api_token_auth, their Caddyfile syntax, and Caddy's standard modules
	// (basic_auth, respond, handle_path).
	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"

	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// Ports of this package's test Caddy, free ports picked in TestMain, so
// that test binaries of this and other packages can run at the same time.
var testAdminPort, testHTTPPort int

func TestMain(m *testing.M) {
	testAdminPort, testHTTPPort = caddytesting.FreePort(), caddytesting.FreePort()
	os.Exit(caddytesting.Main(m))
}

// users who can sign in with basic_auth; each one's password is "pw-" and
// the name. root is a system admin by configuration.
var users = []string{"root", "alice", "bob", "carol", "dave", "erin", "gina"}

// e2eConfig puts basic_auth in front of api_token_admin, and also mounts the
// handler behind api_token_auth (/via-token/*: an identity from a JWT) and
// behind nothing (/noauth/*). /reports/* is a report API guarded by
// api_token_auth, to prove generated JWTs work.
const e2eConfig = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	api_tokens {
		storage     sqlite %[3]s
		signing_key %[4]s
		admins      root
		max_tokens_per_user 8
	}
}
http://localhost:%[2]d {
	handle_path /reports/* {
		api_token_auth {
			app   "Reports API"
			scope meta   /meta /meta/*
			scope report /data/*
		}
		respond "report for {http.auth.user.id}" 200
	}
	handle_path /via-token/* {
		api_token_auth {
			app           "Reports API"
			default_scope meta
		}
		api_token_admin
	}
	handle_path /noauth/* {
		api_token_admin
	}
	handle {
		basic_auth {
%[5]s		}
		api_token_admin
	}
}
`

type env struct {
	t      *testing.T
	tester *caddytest.Tester
	base   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	accounts := caddytesting.Accounts(t, "\t\t\t", users...)
	db := t.TempDir() + "/t.db"
	tester := caddytesting.NewTester(t, testAdminPort)
	tester.InitServer(fmt.Sprintf(e2eConfig, testAdminPort, testHTTPPort, db, apitoken.GenerateKeySecret(), accounts), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	e := &env{t: t, tester: tester, base: fmt.Sprintf("http://localhost:%d", testHTTPPort)}
	// Every management answer is checked against docs/openapi.json.
	site, operator := apispec.Site([]string{"/via-token", "/noauth"}, "/reports/"), apispec.Operator(tokenadmin.BasePath)
	tester.Client.Transport = apispec.Transport(t, tester.Client.Transport, func(r *http.Request) (string, bool) {
		if r.URL.Port() == strconv.Itoa(testAdminPort) {
			return operator(r)
		}
		return site(r)
	})

	// Set up the users as a system admin would, through the routes.
	e.call("root", "PUT", "/admin/users/alice/roles/api_tokens", "").want(200, "")
	e.call("root", "PUT", "/admin/users/bob/roles/api_tokens", "").want(200, "")
	e.call("root", "PUT", "/admin/users/carol", `{"view_only": true}`).want(200, "")
	e.call("root", "PUT", "/admin/users/dave", `{"email": "dave@example.com"}`).want(200, "")
	e.call("root", "PUT", "/admin/users/erin/roles/api_tokens", "").want(200, "")
	e.call("root", "PUT", "/admin/users/erin", `{"disabled": true}`).want(200, "")
	e.call("root", "PUT", "/admin/users/gina/roles/admin", "").want(200, "")
	return e
}

// call is a request with optional header pairs (name, value).
type call struct {
	user, method, path, body string
	header                   []string
	chunked                  bool
	// operator sends the call to the admin API on Caddy's admin endpoint,
	// path under /api-tokens, with user (if any) as the acting user.
	operator bool
}

type answer struct {
	t      *testing.T
	desc   string
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (e *env) call(user, method, path, body string, header ...string) answer {
	e.t.Helper()
	return e.send(call{user: user, method: method, path: path, body: body, header: header})
}

func (e *env) send(c call) answer {
	e.t.Helper()
	var body io.Reader
	if c.body != "" {
		body = bytes.NewBufferString(c.body)
		if c.chunked {
			body = io.NopCloser(strings.NewReader(c.body)) // no known length: chunked
		}
	}
	base := e.base
	if c.operator {
		base = fmt.Sprintf("http://localhost:%d", testAdminPort)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.user == "":
	case c.operator:
		req.Header.Set(tokenadmin.ActingUserHeader, c.user)
	default:
		req.SetBasicAuth(c.user, "pw-"+c.user)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		if c.header[i+1] == "" {
			req.Header.Del(c.header[i])
		} else {
			req.Header.Set(c.header[i], c.header[i+1])
		}
	}
	res, err := e.tester.Client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{t: e.t, desc: c.user + " " + c.method + " " + req.URL.Host + c.path, status: res.StatusCode, header: res.Header, raw: string(raw)}
	if res.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &a.json); err != nil {
			e.t.Fatalf("%s: invalid JSON: %v: %s", a.desc, err, raw)
		}
	}
	return a
}

// want checks the status, and for an error the code and the shape of the
// JSON error body, and the headers every answer carries.
func (a answer) want(status int, code string) answer {
	a.t.Helper()
	if a.status != status {
		a.t.Fatalf("%s: status %d, want %d: %s", a.desc, a.status, status, a.raw)
	}
	for _, h := range [][2]string{{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}} {
		if got := a.header.Get(h[0]); got != h[1] {
			a.t.Fatalf("%s: %s %q, want %q", a.desc, h[0], got, h[1])
		}
	}
	if code != "" {
		msg, _ := a.json["message"].(string)
		if a.json["error"] != code || msg == "" || len(a.json) != 2 {
			a.t.Fatalf("%s: want error %q with a message, got %s", a.desc, code, a.raw)
		}
	}
	return a
}

func (a answer) str(key string) string { s, _ := a.json[key].(string); return s }

func (a answer) ids(key string) []string {
	var out []string
	items, _ := a.json[key].([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

func (a answer) message() string { return a.str("message") }

// create makes a token through the routes and returns its id.
func (e *env) create(user, name string, scopes ...string) string {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"meta", "report"}
	}
	sc, _ := json.Marshal(scopes)
	a := e.call(user, "POST", "/tokens", fmt.Sprintf(`{"name": %q, "expires": "30d", "scopes": %s}`, name, sc)).want(201, "")
	return a.str("id")
}

func (e *env) report(path, jwt string) (int, string) {
	e.t.Helper()
	return caddytesting.GetWithToken(e.t, e.tester.Client, e.base+"/reports"+path, jwt)
}

func TestE2E_ATokenFromCreationToRevocation(t *testing.T) {
	e := newEnv(t)

	a := e.call("alice", "POST", "/tokens", `{"name": "nightly export", "expires": "30d", "scopes": ["report"]}`).want(201, "")
	id := a.str("id")
	if a.str("owner") != "alice" || a.str("status") != "not_generated" || a.str("status_label") != "Not Generated" {
		t.Fatalf("created: %s", a.raw)
	}
	a = e.call("alice", "GET", "/tokens/"+id, "").want(200, "")
	if a.str("name") != "nightly export" || a.json["expires_at"] != nil {
		t.Fatalf("get: %s", a.raw)
	}
	a = e.call("alice", "PATCH", "/tokens/"+id, `{"scopes": ["meta", "report"], "expires": "7d"}`).want(200, "")
	if fmt.Sprint(a.json["scopes"]) != "[meta report]" || a.str("expires") != "7d" {
		t.Fatalf("patched: %s", a.raw)
	}

	a = e.call("alice", "POST", "/tokens/"+id+"/generate", "").want(200, "")
	jwt := a.str("token")
	details, _ := a.json["details"].(map[string]any)
	if jwt == "" || a.str("expires_at") == "" || details["expires_at"] != a.str("expires_at") || details["status"] != "generated_inactive" {
		t.Fatalf("generated: %s", a.raw)
	}
	exp, err := time.Parse(time.RFC3339, a.str("expires_at"))
	if err != nil || exp.Sub(time.Now()) < 7*24*time.Hour-time.Minute || exp.Sub(time.Now()) > 7*24*time.Hour {
		t.Fatalf("expires_at %s is not 7 days from now", a.str("expires_at"))
	}
	// The JWT opens the report API, as alice.
	if status, body := e.report("/data/sales", jwt); status != 200 || body != "report for alice" {
		t.Fatalf("report with the new JWT: %d %s", status, body)
	}
	// Its use shows in its status and, within two seconds, in its logs.
	deadline := time.Now().Add(3 * time.Second)
	for {
		a = e.call("alice", "GET", "/tokens/"+id+"/logs", "").want(200, "")
		if strings.Contains(a.raw, `"AUTHENTICATE"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no AUTHENTICATE log after 3s: %s", a.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a = e.call("alice", "GET", "/tokens/"+id, "").want(200, ""); a.str("status") != "generated_active" || a.str("last_used_at") == "" {
		t.Fatalf("after use: %s", a.raw)
	}

	// Generating again invalidates the previous JWT.
	a = e.call("alice", "POST", "/tokens/"+id+"/generate", "").want(200, "")
	if status, _ := e.report("/data/sales", jwt); status != 401 {
		t.Fatalf("superseded JWT: %d", status)
	}
	jwt = a.str("token")
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("regenerated JWT: %d", status)
	}

	a = e.call("alice", "POST", "/tokens/"+id+"/revoke", "").want(200, "")
	if a.str("status") != "revoked" || a.str("revoked_at") == "" {
		t.Fatalf("revoked: %s", a.raw)
	}
	if status, _ := e.report("/meta", jwt); status != 401 {
		t.Fatalf("revoked JWT: %d", status)
	}
	e.call("alice", "POST", "/tokens/"+id+"/generate", "").want(409, "conflict")
	e.call("alice", "POST", "/tokens/"+id+"/revoke", "").want(409, "conflict")

	// Its logs, newest first (AUTHENTICATE rows are written by the guard in
	// the background, so they are left out here).
	var acts []string
	for _, l := range e.call("alice", "GET", "/tokens/"+id+"/logs", "").want(200, "").json["logs"].([]any) {
		if act := l.(map[string]any)["activity"].(string); act != "AUTHENTICATE" {
			acts = append(acts, act)
		}
	}
	if got := strings.Join(acts, " "); got != "REVOKE GENERATE GENERATE UPDATE CREATE" {
		t.Fatalf("logs, newest first: %s", got)
	}
	if a = e.call("alice", "GET", "/tokens", "").want(200, ""); fmt.Sprint(a.ids("tokens")) != "["+id+"]" || a.json["next_cursor"] != nil {
		t.Fatalf("list: %s", a.raw)
	}
}

func TestE2E_WhoMayDoWhat(t *testing.T) {
	e := newEnv(t)
	bobs := e.create("bob", "bob's")

	t.Run("a request that reaches the handler without a user is unauthenticated", func(t *testing.T) {
		e.call("", "GET", "/noauth/tokens", "").want(401, "unauthenticated")
		e.call("", "POST", "/noauth/admin/users/x/roles/admin", "").want(401, "unauthenticated")
	})

	t.Run("another user's token is not found, whatever the request", func(t *testing.T) {
		for _, c := range []call{
			{method: "GET", path: "/tokens/" + bobs},
			{method: "GET", path: "/tokens/" + bobs + "/logs?limit=5000"},
			{method: "PATCH", path: "/tokens/" + bobs, body: `{"name": "mine"}`},
			{method: "PATCH", path: "/tokens/" + bobs, body: `{"owner": "alice"`},
			{method: "PATCH", path: "/tokens/" + bobs, body: `{}`, header: []string{"Content-Type", "text/plain"}},
			{method: "PATCH", path: "/tokens/" + bobs},
			{method: "POST", path: "/tokens/" + bobs + "/generate"},
			{method: "POST", path: "/tokens/" + bobs + "/generate", body: strings.Repeat(" ", 70<<10)},
			{method: "POST", path: "/tokens/" + bobs + "/revoke", header: []string{"Origin", "https://evil.example"}},
			{method: "POST", path: "/tokens/" + bobs + "/revoke", body: `{"x": 1}`},
		} {
			c.user = "alice"
			e.send(c).want(404, "not_found")
			c.user = "root" // a system admin's self-service routes are for its own tokens
			e.send(c).want(404, "not_found")
		}
		a := e.call("bob", "GET", "/tokens/"+bobs, "").want(200, "")
		if a.str("name") != "bob's" || a.str("status") != "not_generated" {
			t.Fatalf("bob's token changed: %s", a.raw)
		}
	})

	t.Run("admin routes refuse those who are not system admins", func(t *testing.T) {
		for _, c := range []call{
			{method: "GET", path: "/admin/tokens"},
			{method: "POST", path: "/admin/tokens/" + bobs + "/revoke"},
			{method: "GET", path: "/admin/logs"},
			{method: "GET", path: "/admin/users"},
			{method: "PUT", path: "/admin/users/alice", body: `{"view_only": false}`},
			{method: "PUT", path: "/admin/users/alice/roles/admin"},
			{method: "DELETE", path: "/admin/users/bob/roles/api_tokens"},
		} {
			for _, u := range []string{"alice", "dave", "carol"} {
				c.user = u
				e.send(c).want(403, "forbidden")
			}
		}
		// gina holds the admin role: she may.
		e.call("gina", "GET", "/admin/users", "").want(200, "")
		e.call("gina", "GET", "/admin/tokens", "").want(200, "")
	})

	t.Run("a view-only user cannot get the token role nor use self-service", func(t *testing.T) {
		a := e.call("root", "PUT", "/admin/users/carol/roles/api_tokens", "").want(409, "conflict")
		if !strings.Contains(a.message(), "view-only") {
			t.Errorf("message %q", a.message())
		}
		a = e.call("carol", "GET", "/tokens", "").want(403, "forbidden")
		if !strings.Contains(a.message(), "view-only") {
			t.Errorf("message %q", a.message())
		}
		e.call("carol", "POST", "/tokens", `{"name":"x","expires":"1d","scopes":["meta"]}`).want(403, "forbidden")
	})

	t.Run("a user without the token role cannot use self-service", func(t *testing.T) {
		for _, u := range []string{"dave", "gina", "root"} {
			a := e.call(u, "GET", "/tokens", "").want(403, "forbidden")
			if !strings.Contains(a.message(), "api_tokens") {
				t.Errorf("message %q", a.message())
			}
			e.call(u, "POST", "/tokens", `{"name":"x","expires":"1d","scopes":["meta"]}`).want(403, "forbidden")
		}
	})

	t.Run("a disabled user is refused everywhere", func(t *testing.T) {
		for _, c := range []call{
			{method: "GET", path: "/tokens"},
			{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}`},
			{method: "GET", path: "/nowhere"},
		} {
			c.user = "erin"
			if a := e.send(c).want(403, "forbidden"); !strings.Contains(a.message(), "disabled") {
				t.Errorf("message %q", a.message())
			}
		}
		e.call("root", "PUT", "/admin/users/gina", `{"disabled": true}`).want(200, "")
		e.call("gina", "GET", "/admin/users", "").want(403, "forbidden")
		e.call("root", "PUT", "/admin/users/gina", `{"disabled": false}`).want(200, "")
		e.call("gina", "GET", "/admin/users", "").want(200, "")
	})

	t.Run("an identity from a JWT cannot manage tokens", func(t *testing.T) {
		id := e.create("alice", "scripts")
		jwt := e.call("alice", "POST", "/tokens/"+id+"/generate", "").want(200, "").str("token")
		if status, _ := e.report("/meta", jwt); status != 200 {
			t.Fatalf("the JWT does not work on the report API: %d", status)
		}
		for _, c := range []call{
			{method: "GET", path: "/via-token/tokens"},
			{method: "POST", path: "/via-token/tokens/" + id + "/generate"},
			{method: "POST", path: "/via-token/tokens", body: `{"name":"y","expires":"1d","scopes":["meta"]}`},
		} {
			c.header = []string{"Authorization", "Bearer " + jwt}
			a := e.send(c).want(403, "forbidden")
			if !strings.Contains(a.message(), "API tokens cannot manage tokens") {
				t.Errorf("message %q", a.message())
			}
		}
		// Still the same live JWT: the refused generate did nothing.
		if status, _ := e.report("/meta", jwt); status != 200 {
			t.Fatalf("a refused request changed the token: %d", status)
		}
	})
}

func TestE2E_RequestRules(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", "one")
	own := e.base
	for _, tc := range []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"a form is not JSON", call{method: "POST", path: "/tokens", body: `name=x`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"},
		{"plain text is not JSON", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"x"}`, header: []string{"Content-Type", "text/plain"}}, 415, "unsupported_media_type"},
		{"a body needs a content type", call{method: "PUT", path: "/admin/users/alice", user: "root", body: `{}`, header: []string{"Content-Type", ""}}, 415, "unsupported_media_type"},
		{"JSON with its charset is fine", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"two"}`, header: []string{"Content-Type", "application/json; charset=utf-8"}}, 200, ""},
		{"chunked JSON is fine", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"three"}`, chunked: true}, 200, ""},
		{"an unknown field", call{method: "PATCH", path: "/tokens/" + id, body: `{"nam":"x"}`}, 400, "bad_request"},
		{"the owner cannot be set", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"owner":"bob"}`}, 400, "bad_request"},
		{"malformed JSON", call{method: "POST", path: "/tokens", body: `{"name":`}, 400, "bad_request"},
		{"a body over 64 KiB", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"x"` + strings.Repeat(" ", 64<<10) + `}`}, 400, "bad_request"},
		{"a chunked body over 64 KiB", call{method: "PATCH", path: "/tokens/" + id, chunked: true, body: `{"name":"x"` + strings.Repeat(" ", 64<<10) + `}`}, 400, "bad_request"},
		{"PATCH needs a body", call{method: "PATCH", path: "/tokens/" + id}, 400, "bad_request"},
		{"bodiless POST is fine", call{method: "POST", path: "/tokens/" + id + "/generate"}, 200, ""},
		{"bodiless PUT is fine", call{user: "root", method: "PUT", path: "/admin/users/newbie"}, 200, ""},
		{"bodiless DELETE is fine", call{user: "root", method: "DELETE", path: "/admin/users/newbie/roles/admin"}, 200, ""},
		{"a foreign origin cannot change anything", call{method: "POST", path: "/tokens/" + id + "/revoke", header: []string{"Origin", "https://evil.example"}}, 403, "forbidden"},
		{"nor an opaque origin", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"x"}`, header: []string{"Origin", "null"}}, 403, "forbidden"},
		{"nor a cross-site fetch", call{user: "root", method: "PUT", path: "/admin/users/alice/roles/admin", header: []string{"Sec-Fetch-Site", "cross-site"}}, 403, "forbidden"},
		{"nor a foreign origin on DELETE", call{user: "root", method: "DELETE", path: "/admin/users/alice/roles/api_tokens", header: []string{"Origin", "http://localhost:1"}}, 403, "forbidden"},
		{"this site's own origin may", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"four"}`, header: []string{"Origin", own, "Sec-Fetch-Site", "same-origin"}}, 200, ""},
		{"an unknown route", call{method: "GET", path: "/tokens/" + id + "/secrets"}, 404, "not_found"},
		{"a wrong method", call{method: "DELETE", path: "/tokens/" + id}, 405, "method_not_allowed"},
		{"an unknown role", call{user: "root", method: "PUT", path: "/admin/users/alice/roles/owner"}, 400, "bad_request"},
		{"a bad limit", call{method: "GET", path: "/tokens?limit=1001"}, 400, "bad_request"},
		{"a bad cursor", call{method: "GET", path: "/tokens?cursor=AAAA"}, 400, "bad_request"},
		{"a bad status filter", call{user: "root", method: "GET", path: "/admin/tokens?status=active"}, 400, "bad_request"},
		{"a bad since", call{user: "root", method: "GET", path: "/admin/logs?since=2025-01-01"}, 400, "bad_request"},
		{"a bad activity filter", call{user: "root", method: "GET", path: "/admin/logs?activity=LOGIN"}, 400, "bad_request"},
		{"a duplicate name", call{method: "POST", path: "/tokens", body: `{"name":"FOUR","expires":"1d","scopes":["meta"]}`}, 409, "conflict"},
		{"an expiry over the policy", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"never","scopes":["meta"]}`}, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.user == "" {
				tc.c.user = "alice"
			}
			a := e.send(tc.c).want(tc.status, tc.code)
			if tc.status == 405 && a.header.Get("Allow") != "GET, HEAD, PATCH" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
		})
	}
	// What was refused changed nothing.
	a := e.call("alice", "GET", "/tokens/"+id, "").want(200, "")
	if a.str("name") != "four" || a.str("status") == "revoked" {
		t.Fatalf("token after the refused requests: %s", a.raw)
	}
	a = e.call("root", "GET", "/admin/users?limit=1000", "").want(200, "")
	for _, u := range a.json["users"].([]any) {
		m := u.(map[string]any)
		if m["id"] == "alice" && fmt.Sprint(m["roles"]) != "[api_tokens]" {
			t.Fatalf("alice's roles changed: %v", m["roles"])
		}
	}
	if n := len(e.call("bob", "GET", "/tokens", "").want(200, "").ids("tokens")); n != 0 {
		t.Fatalf("bob got %d tokens through the owner field", n)
	}
}

func TestE2E_AdminRoutes(t *testing.T) {
	e := newEnv(t)
	a1 := e.create("alice", "a1")
	b1 := e.create("bob", "b1")
	e.call("bob", "POST", "/tokens/"+b1+"/generate", "").want(200, "")

	if got := e.call("root", "GET", "/admin/tokens", "").want(200, "").ids("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{b1, a1}) {
		t.Fatalf("every token, newest first: %v", got)
	}
	if got := e.call("root", "GET", "/admin/tokens?owner=alice", "").want(200, "").ids("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{a1}) {
		t.Fatalf("alice's tokens: %v", got)
	}
	if got := e.call("root", "GET", "/admin/tokens?status=not_generated", "").want(200, "").ids("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{a1}) {
		t.Fatalf("tokens not generated: %v", got)
	}

	since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	a := e.call("gina", "POST", "/admin/tokens/"+b1+"/revoke", "").want(200, "")
	if a.str("status") != "revoked" || a.str("owner") != "bob" {
		t.Fatalf("admin revoke: %s", a.raw)
	}
	e.call("root", "POST", "/admin/tokens/tok_missing/revoke", "").want(404, "not_found")
	a = e.call("root", "GET", "/admin/logs?activity=REVOKE&token="+b1+"&since="+since, "").want(200, "")
	logs := a.json["logs"].([]any)
	if len(logs) != 1 || logs[0].(map[string]any)["activity_by"] != "gina" || logs[0].(map[string]any)["token_name"] != "b1" {
		t.Fatalf("revoke logs: %s", a.raw)
	}
	a = e.call("root", "GET", "/admin/logs?activity=ROLE_GRANT", "").want(200, "")
	if n := len(a.json["logs"].([]any)); n != 4 { // alice, bob, erin: api_tokens; gina: admin
		t.Fatalf("%d ROLE_GRANT logs: %s", n, a.raw)
	}

	a = e.call("root", "PUT", "/admin/users/hank", `{"email": "hank@example.com", "view_only": true}`).want(200, "")
	if a.str("id") != "hank" || a.str("email") != "hank@example.com" || a.json["view_only"] != true || a.json["disabled"] != false {
		t.Fatalf("put user: %s", a.raw)
	}
	e.call("root", "PUT", "/admin/users/hank", `{"view_only": false}`).want(200, "")
	a = e.call("root", "PUT", "/admin/users/hank/roles/api_tokens", "").want(200, "")
	if fmt.Sprint(a.json["roles"]) != "[api_tokens]" || a.str("email") != "hank@example.com" {
		t.Fatalf("grant: %s", a.raw)
	}
	for range 2 { // removing is idempotent
		if a = e.call("root", "DELETE", "/admin/users/hank/roles/api_tokens", "").want(200, ""); fmt.Sprint(a.json["roles"]) != "[]" {
			t.Fatalf("remove: %s", a.raw)
		}
	}
}

func TestE2E_ListsArePagedNewestFirst(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 7 {
		want = append([]string{e.create("alice", fmt.Sprintf("t%d", i))}, want...)
	}
	e.create("bob", "not alice's")
	for _, list := range []string{"/tokens", "/admin/tokens?owner=alice"} {
		user := "alice"
		if strings.HasPrefix(list, "/admin") {
			user = "root"
		}
		var got []string
		cursor := ""
		for pages := 1; ; pages++ {
			sep := "?"
			if strings.Contains(list, "?") {
				sep = "&"
			}
			path := list + sep + "limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			a := e.call(user, "GET", path, "").want(200, "")
			page := a.ids("tokens")
			if len(page) > 3 || pages > 3 {
				t.Fatalf("%s: page %d has %d tokens", list, pages, len(page))
			}
			got = append(got, page...)
			if a.json["next_cursor"] == nil {
				break
			}
			cursor = a.str("next_cursor")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: pages gave %v, want %v", list, got, want)
		}
	}
	// The default page holds them all.
	if got := e.call("alice", "GET", "/tokens", "").want(200, "").ids("tokens"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("default page: %v", got)
	}
	// Users and logs page the same way.
	a := e.call("root", "GET", "/admin/users?limit=2", "").want(200, "")
	if len(a.ids("users")) != 2 || a.str("next_cursor") == "" {
		t.Fatalf("users page: %s", a.raw)
	}
	a2 := e.call("root", "GET", "/admin/users?limit=2&cursor="+a.str("next_cursor"), "").want(200, "")
	if len(a2.ids("users")) != 2 || a2.ids("users")[0] == a.ids("users")[0] {
		t.Fatalf("second users page: %s", a2.raw)
	}
	// A cursor of one list is no cursor of another.
	e.call("alice", "GET", "/tokens?cursor="+a.str("next_cursor"), "").want(400, "bad_request")
	a = e.call("root", "GET", "/admin/logs?activity=CREATE&limit=5", "").want(200, "")
	if n := len(a.json["logs"].([]any)); n != 5 || a.str("next_cursor") == "" {
		t.Fatalf("logs page: %s", a.raw)
	}
}

func TestE2E_OneTokenPastMaxTokensPerUserIsAConflictNamingTheLimit(t *testing.T) {
	e := newEnv(t) // max_tokens_per_user 8
	var ids []string
	for i := range 8 {
		ids = append(ids, e.create("alice", fmt.Sprintf("t%d", i)))
	}
	const body = `{"name": "one too many", "expires": "30d", "scopes": ["meta"]}`
	a := e.call("alice", "POST", "/tokens", body).want(409, "conflict")
	if want := "you have reached the limit of 8 tokens that are not revoked (max_tokens_per_user); revoke one first"; a.message() != want {
		t.Errorf("message %q, want %q", a.message(), want)
	}
	e.create("bob", "bob's own") // the limit is per user
	e.call("alice", "POST", "/tokens/"+ids[0]+"/revoke", "").want(200, "")
	e.call("alice", "POST", "/tokens", body).want(201, "")
}
