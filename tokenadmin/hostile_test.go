package tokenadmin_test

// Hostile requests to the management routes through a real Caddy, grouped
// by attack: one user on another's objects, mass assignment, the expiry
// and scope policy, escalation, request smuggling into other routes, and
// cross-site requests. Each asserts the status and error code, that
// nothing changed, and at the end that no JWT or key is in Caddy's log.
// (TestE2E_WhoMayDoWhat and TestE2E_RequestRules cover the basic rules;
// these are the attacks around them.)

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

const hostileAdminConfig = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	log {
		output file %[6]s
		level  DEBUG
	}
	api_tokens {
		storage      sqlite %[3]s
		signing_key  %[4]s
		admins       root
		max_lifetime 90d
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
	handle {
		basic_auth {
%[5]s		}
		api_token_admin
	}
}
`

// hostileAdminEnv is env with hostileAdminConfig: Caddy's log in a file,
// max_lifetime 90d.
type hostileAdminEnv struct {
	*env
}

func newHostileAdminEnv(t *testing.T) *hostileAdminEnv {
	t.Helper()
	e := &hostileAdminEnv{&env{caddytesting.New(t)}}
	key := apitoken.GenerateKeySecret()
	e.Secret(key)
	e.Load(fmt.Sprintf(hostileAdminConfig, testAdminPort, testHTTPPort, e.Dir+"/t.db", key, caddytesting.Accounts(t, "\t\t\t", users...), e.Log))
	e.call("root", "PUT", "/admin/users/alice/roles/api_tokens", "").Want(200, "")
	e.call("root", "PUT", "/admin/users/bob/roles/api_tokens", "").Want(200, "")
	e.call("root", "PUT", "/admin/users/gina/roles/admin", "").Want(200, "")
	return e
}

// generate makes user's token id a JWT and remembers it as a secret.
func (e *hostileAdminEnv) generate(user, id string) string {
	e.T.Helper()
	jwt := e.call(user, "POST", "/tokens/"+id+"/generate", "").Want(200, "").Str("token")
	if jwt == "" {
		e.T.Fatal("no JWT")
	}
	e.Secret(jwt)
	return jwt
}

func (e *hostileAdminEnv) noSecretsInLog(t *testing.T) {
	t.Helper()
	e.NoSecretsIn(t, e.Log)
}

// snapshot is what a refused request must not change: a token as its owner
// sees it, but for the fields reading it may change.
func (e *hostileAdminEnv) snapshot(user, id string) string {
	e.T.Helper()
	a := e.call(user, "GET", "/tokens/"+id, "").Want(200, "")
	delete(a.JSON, "last_used_at")
	delete(a.JSON, "last_used_ip")
	delete(a.JSON, "status")
	delete(a.JSON, "status_label")
	b, _ := json.Marshal(a.JSON)
	return string(b)
}

func TestHostileAdmin_OneUserOnAnothersTokens(t *testing.T) {
	e := newHostileAdminEnv(t)
	bobs := e.create("bob", "bob's")
	bobJWT := e.generate("bob", bobs)
	before := e.snapshot("bob", bobs)

	// Every route on bob's token answers alice exactly as for a token that
	// does not exist: the answer tells nothing of its existence.
	missing := "tok_" + strings.Repeat("a", 26)
	for _, c := range []call{
		{method: "GET", path: "/tokens/%s"},
		{method: "GET", path: "/tokens/%s/logs"},
		{method: "GET", path: "/tokens/%s/logs?limit=1000&activity=GENERATE"},
		{method: "PATCH", path: "/tokens/%s", body: `{"name": "taken over"}`},
		{method: "PATCH", path: "/tokens/%s", body: `{"scopes": ["meta"], "expires": "1d"}`},
		{method: "POST", path: "/tokens/%s/generate"},
		{method: "POST", path: "/tokens/%s/revoke"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			c.user = "alice"
			real, fake := c, c
			real.path, fake.path = fmt.Sprintf(c.path, bobs), fmt.Sprintf(c.path, missing)
			ra, fa := e.send(real), e.send(fake)
			if ra.Status != 404 || fa.Status != 404 {
				t.Fatalf("bob's token: %d, a missing one: %d; want 404 for both", ra.Status, fa.Status)
			}
			ra.Want(404, "not_found")
			if strings.ReplaceAll(ra.Str("message"), bobs, "ID") != strings.ReplaceAll(fa.Str("message"), missing, "ID") {
				t.Errorf("messages differ: %q and %q", ra.Str("message"), fa.Str("message"))
			}
		})
	}
	// Through the admin routes, a non-admin is refused before the token is
	// looked up: the same 403 for bob's token and for none.
	for _, id := range []string{bobs, missing} {
		e.call("alice", "POST", "/admin/tokens/"+id+"/revoke", "").Want(403, "forbidden")
	}
	e.call("alice", "GET", "/admin/tokens?owner=bob", "").Want(403, "forbidden")
	e.call("alice", "GET", "/admin/logs?token="+bobs, "").Want(403, "forbidden")
	// A list filter cannot reach another owner's tokens either: owner is
	// no filter of /tokens, so it is refused, naming it.
	for _, q := range []string{"?owner=bob", "?owner=bob&status=generated_inactive"} {
		if a := e.call("alice", "GET", "/tokens"+q, "").Want(400, "bad_request"); !strings.Contains(a.Str("message"), `"owner"`) {
			t.Errorf("GET /tokens%s as alice: %q, want a message naming owner", q, a.Str("message"))
		}
	}
	if ids := e.call("alice", "GET", "/tokens?limit=1000&status=generated_inactive", "").Want(200, "").IDs("tokens"); len(ids) != 0 {
		t.Errorf("GET /tokens as alice listed %v", ids)
	}

	if after := e.snapshot("bob", bobs); after != before {
		t.Fatalf("bob's token changed:\n%s\n%s", before, after)
	}
	if status, _ := e.report("/meta", bobJWT); status != 200 {
		t.Fatalf("bob's JWT got %d after alice's attempts", status)
	}
	e.noSecretsInLog(t)
}

func TestHostileAdmin_MassAssignmentIsRefused(t *testing.T) {
	e := newHostileAdminEnv(t)
	id := e.create("alice", "mine")
	before := e.snapshot("alice", id)
	for _, c := range []struct {
		name string
		c    call
	}{
		{"create for another owner", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"owner":"bob"}`}},
		{"create with an id", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"id":"tok_chosen"}`}},
		{"create already generated", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"status":"generated_active"}`}},
		{"create with an expiry date", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"expires_at":"2999-01-01T00:00:00Z"}`}},
		{"create with a JTI hash", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"jti_hash":"AAAA"}`}},
		{"an owner field spelled with a JSON escape", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"\u006fwner":"bob"}`}},
		{"an owner field in another case", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"],"Owner":"bob"}`}},
		{"a second object after the first", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}{"owner":"bob"}`}},
		{"patch the owner", call{method: "PATCH", path: "/tokens/" + id, body: `{"owner":"bob"}`}},
		{"patch the status", call{method: "PATCH", path: "/tokens/" + id, body: `{"status":"revoked"}`}},
		{"patch revoked_at away", call{method: "PATCH", path: "/tokens/" + id, body: `{"revoked_at":null}`}},
		{"patch generated_at", call{method: "PATCH", path: "/tokens/" + id, body: `{"generated_at":"2000-01-01T00:00:00Z"}`}},
		{"patch expires_at", call{method: "PATCH", path: "/tokens/" + id, body: `{"expires_at":null}`}},
		{"patch with an operator object", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":{"$ne":""}}`}},
		{"patch with the name as a list", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":["a","b"]}`}},
		{"an admin setting roles through the user body", call{user: "root", method: "PUT", path: "/admin/users/bob", body: `{"roles":["admin"]}`}},
		{"an admin setting a user id through the body", call{user: "root", method: "PUT", path: "/admin/users/bob", body: `{"id":"root"}`}},
		{"an admin setting created_at", call{user: "root", method: "PUT", path: "/admin/users/bob", body: `{"created_at":"2000-01-01T00:00:00Z"}`}},
		{"a JSON array instead of an object", call{method: "POST", path: "/tokens", body: `[{"name":"x","expires":"1d","scopes":["meta"]}]`}},
		{"deeply nested JSON", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.c.user == "" {
				c.c.user = "alice"
			}
			e.send(c.c).Want(400, "bad_request")
		})
	}
	if after := e.snapshot("alice", id); after != before {
		t.Fatalf("the token changed:\n%s\n%s", before, after)
	}
	if ids := e.call("alice", "GET", "/tokens", "").Want(200, "").IDs("tokens"); len(ids) != 1 {
		t.Fatalf("alice has %d tokens, want the one", len(ids))
	}
	if ids := e.call("bob", "GET", "/tokens", "").Want(200, "").IDs("tokens"); len(ids) != 0 {
		t.Fatalf("bob got tokens: %v", ids)
	}
	users := e.call("root", "GET", "/admin/users?limit=1000", "").Want(200, "")
	for _, u := range users.JSON["users"].([]any) {
		m := u.(map[string]any)
		if m["id"] == "bob" && fmt.Sprint(m["roles"]) != "[api_tokens]" {
			t.Fatalf("bob's roles: %v", m["roles"])
		}
	}
}

// max_lifetime is 90d here: no request gets a longer or never-ending token,
// nor a scope that does not exist.
func TestHostileAdmin_PolicyCannotBeBypassed(t *testing.T) {
	e := newHostileAdminEnv(t)
	id := e.create("alice", "policy")
	before := e.snapshot("alice", id)
	for _, c := range []struct {
		name string
		c    call
	}{
		{"a year at creation", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1y","scopes":["meta"]}`}},
		{"never at creation", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"never","scopes":["meta"]}`}},
		{"a year by update", call{method: "PATCH", path: "/tokens/" + id, body: `{"expires":"1y"}`}},
		{"never by update", call{method: "PATCH", path: "/tokens/" + id, body: `{"expires":"never"}`}},
		{"an expiry in hours", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"2160h","scopes":["meta"]}`}},
		{"an expiry in upper case", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"30D","scopes":["meta"]}`}},
		{"an expiry with spaces", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":" 30d","scopes":["meta"]}`}},
		{"an expiry as a number", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":30,"scopes":["meta"]}`}},
		{"an empty expiry", call{method: "PATCH", path: "/tokens/" + id, body: `{"expires":""}`}},
		{"a null expiry", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":null,"scopes":["meta"]}`}},
		{"an admin scope", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta","admin"]}`}},
		{"a scope in upper case", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["META"]}`}},
		{"a wildcard scope", call{method: "PATCH", path: "/tokens/" + id, body: `{"scopes":["*"]}`}},
		{"no scope", call{method: "PATCH", path: "/tokens/" + id, body: `{"scopes":[]}`}},
		{"scopes as one string", call{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":"meta report"}`}},
		{"a name with a newline (log injection)", call{method: "POST", path: "/tokens", body: `{"name":"x\n{\"level\":\"error\"}","expires":"1d","scopes":["meta"]}`}},
		{"a name with a NUL", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"a\u0000b"}`}},
		{"a name of 101 characters", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"` + strings.Repeat("n", 101) + `"}`}},
		{"a name of spaces", call{method: "PATCH", path: "/tokens/" + id, body: `{"name":"   "}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.c.user = "alice"
			e.send(c.c).Want(400, "bad_request")
		})
	}
	if after := e.snapshot("alice", id); after != before {
		t.Fatalf("the token changed:\n%s\n%s", before, after)
	}
	// A generation gets at most 90 days, and an admin generating for the
	// owner is held to the same policy.
	jwt := e.generate("alice", id)
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("the generated JWT got %d", status)
	}
	e.noSecretsInLog(t)
}

func TestHostileAdmin_EscalationAndRouteTricks(t *testing.T) {
	e := newHostileAdminEnv(t)
	id := e.create("alice", "tricks")
	for _, c := range []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"a user granting herself admin", call{user: "alice", method: "PUT", path: "/admin/users/alice/roles/admin"}, 403, "forbidden"},
		{"a user enabling herself", call{user: "alice", method: "PUT", path: "/admin/users/alice", body: `{"disabled":false}`}, 403, "forbidden"},
		{"a user removing another's role", call{user: "alice", method: "DELETE", path: "/admin/users/bob/roles/api_tokens"}, 403, "forbidden"},
		{"a dot-dot from self-service to admin", call{user: "alice", method: "GET", path: "/tokens/../admin/users"}, 404, "not_found"},
		{"an encoded dot-dot to admin", call{user: "alice", method: "GET", path: "/tokens/%2e%2e/admin/users"}, 404, "not_found"},
		{"an encoded slash in the token id", call{user: "alice", method: "GET", path: "/tokens/" + id + "%2Flogs"}, 404, "not_found"},
		{"a double slash", call{user: "alice", method: "GET", path: "/admin//users"}, 404, "not_found"},
		{"the admin path in upper case", call{user: "alice", method: "GET", path: "/ADMIN/users"}, 404, "not_found"},
		{"a user id with an encoded slash", call{user: "root", method: "PUT", path: "/admin/users/bob%2Froot/roles/admin"}, 400, "bad_request"},
		{"a user id of dots", call{user: "root", method: "PUT", path: "/admin/users/%2e%2e/roles/admin"}, 404, "not_found"},
		{"a method override header", call{user: "alice", method: "GET", path: "/tokens/" + id, header: []string{"X-HTTP-Method-Override", "DELETE"}}, 200, ""},
		{"a foreign origin with this site as a prefix", call{user: "alice", method: "POST", path: "/tokens/" + id + "/revoke", header: []string{"Origin", e.Base + ".evil.example"}}, 403, "forbidden"},
		{"a foreign origin with this site as user info", call{user: "alice", method: "POST", path: "/tokens/" + id + "/revoke", header: []string{"Origin", "http://localhost@evil.example"}}, 403, "forbidden"},
		{"a JSON body sent as a form", call{user: "alice", method: "PATCH", path: "/tokens/" + id, body: `{"name":"x"}`, header: []string{"Content-Type", "text/plain;charset=application/json"}}, 415, "unsupported_media_type"},
		{"a look-alike JSON type", call{user: "alice", method: "PATCH", path: "/tokens/" + id, body: `{"name":"x"}`, header: []string{"Content-Type", "application/jsonp"}}, 415, "unsupported_media_type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.send(c.c).Want(c.status, c.code)
		})
	}
	// Nothing changed.
	a := e.call("alice", "GET", "/tokens/"+id, "").Want(200, "")
	if a.Str("status") != "not_generated" || a.Str("name") != "tricks" {
		t.Fatalf("the token changed: %s", a.Raw)
	}
	for _, u := range e.call("root", "GET", "/admin/users?limit=1000", "").Want(200, "").JSON["users"].([]any) {
		m := u.(map[string]any)
		switch m["id"] {
		case "alice", "bob":
			if fmt.Sprint(m["roles"]) != "[api_tokens]" {
				t.Errorf("%s's roles: %v", m["id"], m["roles"])
			}
		case "bob/root", "..":
			t.Errorf("a user %q was created", m["id"])
		}
	}
	// A JWT is shown once, at generation: never in a token, list or log.
	jwt := e.generate("alice", id)
	for _, p := range []string{"/tokens", "/tokens/" + id, "/tokens/" + id + "/logs"} {
		if a := e.call("alice", "GET", p, "").Want(200, ""); strings.Contains(a.Raw, jwt[strings.LastIndexByte(jwt, '.')+1:]) || strings.Contains(a.Raw, jwt) {
			t.Errorf("GET %s shows the JWT", p)
		}
	}
	if a := e.call("root", "GET", "/admin/logs?limit=1000", "").Want(200, ""); strings.Contains(a.Raw, jwt) {
		t.Error("the admin logs show the JWT")
	}
	e.noSecretsInLog(t)
}
