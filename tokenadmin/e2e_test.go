package tokenadmin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

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

// Ports of this package's test Caddy (caddytesting's).
var testAdminPort, testHTTPPort = caddytesting.AdminPort, caddytesting.HTTPPort

func TestMain(m *testing.M) {
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
		scopes {
			meta   "List reports and their parameters"
			report "Read report data"
			sales  "Read the sales report only"
		}
	}
}
http://localhost:%[2]d {
	handle_path /reports/* {
		api_token_auth {
			app   "Reports API"
			scope meta   /meta /meta/*
			scope report sales /data/sales /data/sales/*
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

// env is the test Caddy with e2eConfig (or another config with basic_auth
// in front of api_token_admin) and the users set up.
type env struct{ *caddytesting.Env }

type answer = caddytesting.Answer

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{caddytesting.New(t)}
	e.Load(fmt.Sprintf(e2eConfig, testAdminPort, testHTTPPort, e.Dir+"/t.db", apitoken.GenerateKeySecret(), caddytesting.Accounts(t, "\t\t\t", users...)))
	// Every management answer is checked against docs/openapi.json.
	site, operator := apispec.Site([]string{"/via-token", "/noauth"}, "/reports/"), apispec.Operator(tokenadmin.BasePath)
	e.Tester.Client.Transport = apispec.Transport(t, e.Tester.Client.Transport, func(r *http.Request) (string, bool) {
		if r.URL.Port() == strconv.Itoa(testAdminPort) {
			return operator(r)
		}
		return site(r)
	})
	e.setUpUsers()
	return e
}

// setUpUsers sets up the users as a system admin would, through the routes.
func (e *env) setUpUsers() {
	e.T.Helper()
	e.call("root", "PUT", "/admin/users/alice/roles/api_tokens", "").Want(200, "")
	e.call("root", "PUT", "/admin/users/bob/roles/api_tokens", "").Want(200, "")
	e.call("root", "PUT", "/admin/users/carol", `{"view_only": true}`).Want(200, "")
	e.call("root", "PUT", "/admin/users/dave", `{"email": "dave@example.com"}`).Want(200, "")
	e.call("root", "PUT", "/admin/users/erin/roles/api_tokens", "").Want(200, "")
	e.call("root", "PUT", "/admin/users/erin", `{"disabled": true}`).Want(200, "")
	e.call("root", "PUT", "/admin/users/gina/roles/admin", "").Want(200, "")
}

// call is a request with optional header pairs (name, value; an empty
// value removes the header).
type call struct {
	user, method, path, body string
	header                   []string
	chunked                  bool
	// operator sends the call to the admin API on Caddy's admin endpoint,
	// path under /api-tokens, with user (if any) as the acting user.
	operator bool
}

func (e *env) call(user, method, path, body string, header ...string) answer {
	e.T.Helper()
	return e.send(call{user: user, method: method, path: path, body: body, header: header})
}

func (e *env) send(c call) answer {
	e.T.Helper()
	sc := caddytesting.Call{User: c.user, Method: c.method, Path: c.path, Body: c.body, Header: c.header, Chunked: c.chunked}
	if c.operator {
		sc.Base, sc.User = e.Admin, ""
		if c.user != "" {
			sc.Header = append([]string{tokenadmin.ActingUserHeader, c.user}, sc.Header...)
		}
	}
	return e.Send(sc)
}

// create makes a token through the routes and returns its id.
func (e *env) create(user, name string, scopes ...string) string {
	e.T.Helper()
	if len(scopes) == 0 {
		scopes = []string{"meta", "report"}
	}
	sc, _ := json.Marshal(scopes)
	a := e.call(user, "POST", "/tokens", fmt.Sprintf(`{"name": %q, "expires": "30d", "scopes": %s}`, name, sc)).Want(201, "")
	return a.Str("id")
}

func (e *env) report(path, jwt string) (int, string) {
	e.T.Helper()
	return e.Get("/reports"+path, jwt)
}

func TestE2E_ATokenFromCreationToRevocation(t *testing.T) {
	e := newEnv(t)

	a := e.call("alice", "POST", "/tokens", `{"name": "nightly export", "expires": "30d", "scopes": ["report"]}`).Want(201, "")
	id := a.Str("id")
	if a.Str("owner") != "alice" || a.Str("status") != "not_generated" || a.Str("status_label") != "Not Generated" {
		t.Fatalf("created: %s", a.Raw)
	}
	a = e.call("alice", "GET", "/tokens/"+id, "").Want(200, "")
	if a.Str("name") != "nightly export" || a.JSON["expires_at"] != nil {
		t.Fatalf("get: %s", a.Raw)
	}
	a = e.call("alice", "PATCH", "/tokens/"+id, `{"scopes": ["meta", "report"], "expires": "7d"}`).Want(200, "")
	if fmt.Sprint(a.JSON["scopes"]) != "[meta report]" || a.Str("expires") != "7d" {
		t.Fatalf("patched: %s", a.Raw)
	}

	a = e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "")
	jwt := a.Str("token")
	details, _ := a.JSON["details"].(map[string]any)
	if jwt == "" || a.Str("expires_at") == "" || details["expires_at"] != a.Str("expires_at") || details["status"] != "generated_inactive" {
		t.Fatalf("generated: %s", a.Raw)
	}
	exp, err := time.Parse(time.RFC3339, a.Str("expires_at"))
	if err != nil || exp.Sub(time.Now()) < 7*24*time.Hour-time.Minute || exp.Sub(time.Now()) > 7*24*time.Hour {
		t.Fatalf("expires_at %s is not 7 days from now", a.Str("expires_at"))
	}
	// The JWT opens the report API, as alice.
	if status, body := e.report("/data/sales", jwt); status != 200 || body != "report for alice" {
		t.Fatalf("report with the new JWT: %d %s", status, body)
	}
	// Its use shows in its status and, within two seconds, in its logs.
	deadline := time.Now().Add(3 * time.Second)
	for {
		a = e.call("alice", "GET", "/tokens/"+id+"/logs", "").Want(200, "")
		if strings.Contains(a.Raw, `"AUTHENTICATE"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no AUTHENTICATE log after 3s: %s", a.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a = e.call("alice", "GET", "/tokens/"+id, "").Want(200, ""); a.Str("status") != "generated_active" || a.Str("last_used_at") == "" {
		t.Fatalf("after use: %s", a.Raw)
	}

	// Generating again invalidates the previous JWT.
	a = e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "")
	if status, _ := e.report("/data/sales", jwt); status != 401 {
		t.Fatalf("superseded JWT: %d", status)
	}
	jwt = a.Str("token")
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("regenerated JWT: %d", status)
	}

	a = e.call("alice", "POST", "/tokens/"+id+"/revoke", "").Want(200, "")
	if a.Str("status") != "revoked" || a.Str("revoked_at") == "" {
		t.Fatalf("revoked: %s", a.Raw)
	}
	if status, _ := e.report("/meta", jwt); status != 401 {
		t.Fatalf("revoked JWT: %d", status)
	}
	e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(409, "conflict")
	e.call("alice", "POST", "/tokens/"+id+"/revoke", "").Want(409, "conflict")

	// Its logs, newest first (AUTHENTICATE rows are written by the guard in
	// the background, so they are left out here).
	var acts []string
	for _, l := range e.call("alice", "GET", "/tokens/"+id+"/logs", "").Want(200, "").JSON["logs"].([]any) {
		if act := l.(map[string]any)["activity"].(string); act != "AUTHENTICATE" {
			acts = append(acts, act)
		}
	}
	if got := strings.Join(acts, " "); got != "REVOKE GENERATE GENERATE UPDATE CREATE" {
		t.Fatalf("logs, newest first: %s", got)
	}
	if a = e.call("alice", "GET", "/tokens", "").Want(200, ""); fmt.Sprint(a.IDs("tokens")) != "["+id+"]" || a.JSON["next_cursor"] != nil {
		t.Fatalf("list: %s", a.Raw)
	}
}

func TestE2E_WhoMayDoWhat(t *testing.T) {
	e := newEnv(t)
	bobs := e.create("bob", "bob's")

	t.Run("a request that reaches the handler without a user is unauthenticated", func(t *testing.T) {
		e.call("", "GET", "/noauth/tokens", "").Want(401, "unauthenticated")
		e.call("", "POST", "/noauth/admin/users/x/roles/admin", "").Want(401, "unauthenticated")
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
			e.send(c).Want(404, "not_found")
			c.user = "root" // a system admin's self-service routes are for its own tokens
			e.send(c).Want(404, "not_found")
		}
		a := e.call("bob", "GET", "/tokens/"+bobs, "").Want(200, "")
		if a.Str("name") != "bob's" || a.Str("status") != "not_generated" {
			t.Fatalf("bob's token changed: %s", a.Raw)
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
				e.send(c).Want(403, "forbidden")
			}
		}
		// gina holds the admin role: she may.
		e.call("gina", "GET", "/admin/users", "").Want(200, "")
		e.call("gina", "GET", "/admin/tokens", "").Want(200, "")
	})

	t.Run("a view-only user cannot get the token role nor use self-service", func(t *testing.T) {
		a := e.call("root", "PUT", "/admin/users/carol/roles/api_tokens", "").Want(409, "conflict")
		if !strings.Contains(a.Str("message"), "view-only") {
			t.Errorf("message %q", a.Str("message"))
		}
		a = e.call("carol", "GET", "/tokens", "").Want(403, "forbidden")
		if !strings.Contains(a.Str("message"), "view-only") {
			t.Errorf("message %q", a.Str("message"))
		}
		e.call("carol", "POST", "/tokens", `{"name":"x","expires":"1d","scopes":["meta"]}`).Want(403, "forbidden")
	})

	t.Run("a user without the token role cannot use self-service", func(t *testing.T) {
		for _, u := range []string{"dave", "gina", "root"} {
			a := e.call(u, "GET", "/tokens", "").Want(403, "forbidden")
			if !strings.Contains(a.Str("message"), "api_tokens") {
				t.Errorf("message %q", a.Str("message"))
			}
			e.call(u, "POST", "/tokens", `{"name":"x","expires":"1d","scopes":["meta"]}`).Want(403, "forbidden")
		}
	})

	t.Run("a disabled user is refused everywhere", func(t *testing.T) {
		for _, c := range []call{
			{method: "GET", path: "/tokens"},
			{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}`},
			{method: "GET", path: "/nowhere"},
		} {
			c.user = "erin"
			if a := e.send(c).Want(403, "forbidden"); !strings.Contains(a.Str("message"), "disabled") {
				t.Errorf("message %q", a.Str("message"))
			}
		}
		e.call("root", "PUT", "/admin/users/gina", `{"disabled": true}`).Want(200, "")
		e.call("gina", "GET", "/admin/users", "").Want(403, "forbidden")
		e.call("root", "PUT", "/admin/users/gina", `{"disabled": false}`).Want(200, "")
		e.call("gina", "GET", "/admin/users", "").Want(200, "")
	})

	t.Run("an identity from a JWT cannot manage tokens", func(t *testing.T) {
		id := e.create("alice", "scripts")
		jwt := e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "").Str("token")
		if status, _ := e.report("/meta", jwt); status != 200 {
			t.Fatalf("the JWT does not work on the report API: %d", status)
		}
		for _, c := range []call{
			{method: "GET", path: "/via-token/tokens"},
			{method: "POST", path: "/via-token/tokens/" + id + "/generate"},
			{method: "POST", path: "/via-token/tokens", body: `{"name":"y","expires":"1d","scopes":["meta"]}`},
		} {
			c.header = []string{"Authorization", "Bearer " + jwt}
			a := e.send(c).Want(403, "forbidden")
			if !strings.Contains(a.Str("message"), "API tokens cannot manage tokens") {
				t.Errorf("message %q", a.Str("message"))
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
	own := e.Base
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
			a := e.send(tc.c).Want(tc.status, tc.code)
			if tc.status == 405 && a.Header.Get("Allow") != "GET, HEAD, PATCH" {
				t.Errorf("Allow %q", a.Header.Get("Allow"))
			}
		})
	}
	// What was refused changed nothing.
	a := e.call("alice", "GET", "/tokens/"+id, "").Want(200, "")
	if a.Str("name") != "four" || a.Str("status") == "revoked" {
		t.Fatalf("token after the refused requests: %s", a.Raw)
	}
	a = e.call("root", "GET", "/admin/users?limit=1000", "").Want(200, "")
	for _, u := range a.JSON["users"].([]any) {
		m := u.(map[string]any)
		if m["id"] == "alice" && fmt.Sprint(m["roles"]) != "[api_tokens]" {
			t.Fatalf("alice's roles changed: %v", m["roles"])
		}
	}
	if n := len(e.call("bob", "GET", "/tokens", "").Want(200, "").IDs("tokens")); n != 0 {
		t.Fatalf("bob got %d tokens through the owner field", n)
	}
}

func TestE2E_AdminRoutes(t *testing.T) {
	e := newEnv(t)
	a1 := e.create("alice", "a1")
	b1 := e.create("bob", "b1")
	e.call("bob", "POST", "/tokens/"+b1+"/generate", "").Want(200, "")

	if got := e.call("root", "GET", "/admin/tokens", "").Want(200, "").IDs("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{b1, a1}) {
		t.Fatalf("every token, newest first: %v", got)
	}
	if got := e.call("root", "GET", "/admin/tokens?owner=alice", "").Want(200, "").IDs("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{a1}) {
		t.Fatalf("alice's tokens: %v", got)
	}
	if got := e.call("root", "GET", "/admin/tokens?status=not_generated", "").Want(200, "").IDs("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{a1}) {
		t.Fatalf("tokens not generated: %v", got)
	}

	since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	a := e.call("gina", "POST", "/admin/tokens/"+b1+"/revoke", "").Want(200, "")
	if a.Str("status") != "revoked" || a.Str("owner") != "bob" {
		t.Fatalf("admin revoke: %s", a.Raw)
	}
	e.call("root", "POST", "/admin/tokens/tok_missing/revoke", "").Want(404, "not_found")
	// Several statuses, separated by commas: every token not revoked, for
	// the admin and for bob; a bad one among them is refused.
	const notRevoked = "status=not_generated,generated_inactive,generated_active,expired"
	if got := e.call("root", "GET", "/admin/tokens?"+notRevoked, "").Want(200, "").IDs("tokens"); fmt.Sprint(got) != fmt.Sprint([]string{a1}) {
		t.Fatalf("tokens not revoked: %v", got)
	}
	if got := e.call("bob", "GET", "/tokens?"+notRevoked, "").Want(200, "").IDs("tokens"); len(got) != 0 {
		t.Fatalf("bob's tokens not revoked: %v", got)
	}
	if got := e.call("root", "GET", "/admin/tokens?status=revoked,not_generated&limit=1", "").Want(200, ""); fmt.Sprint(got.IDs("tokens")) != fmt.Sprint([]string{b1}) || got.Str("next_cursor") == "" {
		t.Fatalf("the first page of tokens revoked or not generated: %s", got.Raw)
	}
	e.call("bob", "GET", "/tokens?status=revoked,dormant", "").Want(400, "bad_request")
	a = e.call("root", "GET", "/admin/logs?activity=REVOKE&token="+b1+"&since="+since, "").Want(200, "")
	logs := a.JSON["logs"].([]any)
	if len(logs) != 1 || logs[0].(map[string]any)["activity_by"] != "gina" || logs[0].(map[string]any)["token_name"] != "b1" {
		t.Fatalf("revoke logs: %s", a.Raw)
	}
	a = e.call("root", "GET", "/admin/logs?activity=ROLE_GRANT", "").Want(200, "")
	if n := len(a.JSON["logs"].([]any)); n != 4 { // alice, bob, erin: api_tokens; gina: admin
		t.Fatalf("%d ROLE_GRANT logs: %s", n, a.Raw)
	}

	a = e.call("root", "PUT", "/admin/users/hank", `{"email": "hank@example.com", "view_only": true}`).Want(200, "")
	if a.Str("id") != "hank" || a.Str("email") != "hank@example.com" || a.JSON["view_only"] != true || a.JSON["disabled"] != false {
		t.Fatalf("put user: %s", a.Raw)
	}
	e.call("root", "PUT", "/admin/users/hank", `{"view_only": false}`).Want(200, "")
	a = e.call("root", "PUT", "/admin/users/hank/roles/api_tokens", "").Want(200, "")
	if fmt.Sprint(a.JSON["roles"]) != "[api_tokens]" || a.Str("email") != "hank@example.com" {
		t.Fatalf("grant: %s", a.Raw)
	}
	for range 2 { // removing is idempotent
		if a = e.call("root", "DELETE", "/admin/users/hank/roles/api_tokens", "").Want(200, ""); fmt.Sprint(a.JSON["roles"]) != "[]" {
			t.Fatalf("remove: %s", a.Raw)
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
			a := e.call(user, "GET", path, "").Want(200, "")
			page := a.IDs("tokens")
			if len(page) > 3 || pages > 3 {
				t.Fatalf("%s: page %d has %d tokens", list, pages, len(page))
			}
			got = append(got, page...)
			if a.JSON["next_cursor"] == nil {
				break
			}
			cursor = a.Str("next_cursor")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: pages gave %v, want %v", list, got, want)
		}
	}
	// The default page holds them all.
	if got := e.call("alice", "GET", "/tokens", "").Want(200, "").IDs("tokens"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("default page: %v", got)
	}
	// Users and logs page the same way.
	a := e.call("root", "GET", "/admin/users?limit=2", "").Want(200, "")
	if len(a.IDs("users")) != 2 || a.Str("next_cursor") == "" {
		t.Fatalf("users page: %s", a.Raw)
	}
	a2 := e.call("root", "GET", "/admin/users?limit=2&cursor="+a.Str("next_cursor"), "").Want(200, "")
	if len(a2.IDs("users")) != 2 || a2.IDs("users")[0] == a.IDs("users")[0] {
		t.Fatalf("second users page: %s", a2.Raw)
	}
	// A cursor of one list is no cursor of another.
	e.call("alice", "GET", "/tokens?cursor="+a.Str("next_cursor"), "").Want(400, "bad_request")
	a = e.call("root", "GET", "/admin/logs?activity=CREATE&limit=5", "").Want(200, "")
	if n := len(a.JSON["logs"].([]any)); n != 5 || a.Str("next_cursor") == "" {
		t.Fatalf("logs page: %s", a.Raw)
	}
}

func TestE2E_OneTokenPastMaxTokensPerUserIsAConflictNamingTheLimit(t *testing.T) {
	e := newEnv(t) // max_tokens_per_user 8
	var ids []string
	for i := range 8 {
		ids = append(ids, e.create("alice", fmt.Sprintf("t%d", i)))
	}
	const body = `{"name": "one too many", "expires": "30d", "scopes": ["meta"]}`
	a := e.call("alice", "POST", "/tokens", body).Want(409, "conflict")
	if want := "you have reached the limit of 8 tokens that are not revoked (max_tokens_per_user); revoke one first"; a.Str("message") != want {
		t.Errorf("message %q, want %q", a.Str("message"), want)
	}
	e.create("bob", "bob's own") // the limit is per user
	e.call("alice", "POST", "/tokens/"+ids[0]+"/revoke", "").Want(200, "")
	e.call("alice", "POST", "/tokens", body).Want(201, "")
}

// allowed_ips set through the routes (answers checked against the OpenAPI
// document) decide at the guard at once, for the live JWT.
func TestE2E_AllowedIPsSetThroughTheRoutesApplyAtTheGuardAtOnce(t *testing.T) {
	e := newEnv(t)
	a := e.call("alice", "POST", "/tokens", `{"name": "office", "expires": "30d", "scopes": ["meta", "report"], "allowed_ips": ["198.51.100.0/24"]}`).Want(201, "")
	id := a.Str("id")
	if fmt.Sprint(a.JSON["allowed_ips"]) != "[198.51.100.0/24]" {
		t.Fatalf("created: %s", a.Raw)
	}
	jwt := e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "").Str("token")
	e.Secret(jwt)
	if status, _ := e.report("/data/sales", jwt); status != 401 {
		t.Fatalf("the loopback client, outside allowed_ips, got %d", status)
	}
	e.call("alice", "PATCH", "/tokens/"+id, `{"allowed_ips": ["198.51.100.0/24", "127.0.0.0/8", "::1"]}`).Want(200, "")
	if status, body := e.report("/data/sales", jwt); status != 200 || body != "report for alice" {
		t.Fatalf("after adding the loopback networks: %d %s", status, body)
	}
	e.call("alice", "PATCH", "/tokens/"+id, `{"allowed_ips": ["198.51.100.0/24"]}`).Want(200, "")
	if status, _ := e.report("/data/sales", jwt); status != 401 {
		t.Fatalf("after removing them again: %d", status)
	}
	a = e.call("alice", "PATCH", "/tokens/"+id, `{"allowed_ips": []}`).Want(200, "")
	if fmt.Sprint(a.JSON["allowed_ips"]) != "[]" {
		t.Fatalf("cleared: %s", a.Raw)
	}
	if status, _ := e.report("/data/sales", jwt); status != 200 {
		t.Fatalf("after clearing allowed_ips: %d", status)
	}
	e.call("alice", "PATCH", "/tokens/"+id, `{"allowed_ips": ["10.0.0.1/8"]}`).Want(400, "bad_request")
}
