package tokenadmin_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// Both mounts serve one route table: the same request by the same system
// admin gets the same answer from api_token_admin (the caller from
// basic_auth, paths under /admin) and from the admin API on Caddy's admin
// endpoint (the caller named with Api-Tokens-Acting-User, paths under
// /api-tokens).
func TestMounts_TheSameRequestGetsTheSameAnswerFromBothMounts(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", "a1")
	over := `{"email":"hank@example.com"` + strings.Repeat(" ", 64<<10) + `}`
	for _, tc := range []struct {
		name   string
		c      call // path after /admin or /api-tokens; user root if none
		status int
		code   string
		allow  string
	}{
		{"a user created or changed", call{method: "PUT", path: "/users/hank", body: `{"email":"hank@example.com"}`}, 200, "", ""},
		{"JSON with its charset", call{method: "PUT", path: "/users/hank", body: `{}`, header: []string{"Content-Type", "application/json; charset=UTF-8"}}, 200, "", ""},
		{"JSON in another charset", call{method: "PUT", path: "/users/hank", body: `{}`, header: []string{"Content-Type", "application/json; charset=latin1"}}, 415, "unsupported_media_type", ""},
		{"plain text", call{method: "PUT", path: "/users/hank", body: `{}`, header: []string{"Content-Type", "text/plain"}}, 415, "unsupported_media_type", ""},
		{"a body without a content type", call{method: "PUT", path: "/users/hank", body: `{}`, header: []string{"Content-Type", ""}}, 415, "unsupported_media_type", ""},
		{"an unknown field", call{method: "PUT", path: "/users/hank", body: `{"name":"Hank"}`}, 400, "bad_request", ""},
		{"a value of the wrong type", call{method: "PUT", path: "/users/hank", body: `{"email":5}`}, 400, "bad_request", ""},
		{"more after the object", call{method: "PUT", path: "/users/hank", body: `{} {}`}, 400, "bad_request", ""},
		{"only spaces", call{method: "PUT", path: "/users/hank", body: `   `}, 400, "bad_request", ""},
		{"a body over 64 KiB", call{method: "PUT", path: "/users/hank", body: over}, 400, "bad_request", ""},
		{"a chunked body over 64 KiB", call{method: "PUT", path: "/users/hank", body: over, chunked: true}, 400, "bad_request", ""},
		{"bodiless PUT", call{method: "PUT", path: "/users/hank"}, 200, "", ""},
		{"a role granted", call{method: "PUT", path: "/users/hank/roles/api_tokens"}, 200, "", ""},
		{"a body on a route without one", call{method: "PUT", path: "/users/hank/roles/api_tokens", body: `{"role":"admin"}`}, 400, "bad_request", ""},
		{"an unknown role", call{method: "PUT", path: "/users/hank/roles/owner"}, 400, "bad_request", ""},
		{"a role removed", call{method: "DELETE", path: "/users/hank/roles/admin"}, 200, "", ""},
		{"every token", call{method: "GET", path: "/tokens?owner=alice"}, 200, "", ""},
		{"a bad status filter", call{method: "GET", path: "/tokens?status=bogus"}, 400, "bad_request", ""},
		{"a misspelt filter, never the unfiltered list", call{method: "GET", path: "/tokens?statuz=revoked"}, 400, "bad_request", ""},
		{"a filter of another route", call{method: "GET", path: "/users?owner=alice"}, 400, "bad_request", ""},
		{"a query on a route that takes none", call{method: "PUT", path: "/users/hank?view_only=true"}, 400, "bad_request", ""},
		{"a bad limit", call{method: "GET", path: "/tokens?limit=0"}, 400, "bad_request", ""},
		{"a bad cursor", call{method: "GET", path: "/users?cursor=AAAA"}, 400, "bad_request", ""},
		{"a page of users", call{method: "GET", path: "/users?limit=1"}, 200, "", ""},
		{"the logs", call{method: "GET", path: "/logs?token=" + id}, 200, "", ""},
		{"an activity as logs spell it", call{method: "GET", path: "/logs?activity=CREATE"}, 200, "", ""},
		{"an activity in another case", call{method: "GET", path: "/logs?activity=create"}, 400, "bad_request", ""},
		{"a bad since", call{method: "GET", path: "/logs?since=yesterday"}, 400, "bad_request", ""},
		{"one owner's failed attempts", call{method: "GET", path: "/logs?owner=alice&result=Fail"}, 200, "", ""},
		{"a bad result", call{method: "GET", path: "/logs?result=failed"}, 400, "bad_request", ""},
		{"the notifications", call{method: "GET", path: "/notifications"}, 200, "", ""},
		{"a missing token", call{method: "POST", path: "/tokens/tok_missing/revoke"}, 404, "not_found", ""},
		{"an unknown route", call{method: "GET", path: "/secrets"}, 404, "not_found", ""},
		{"another method on a user", call{method: "GET", path: "/users/alice"}, 405, "method_not_allowed", "PUT"},
		{"another method on a role", call{method: "POST", path: "/users/alice/roles/admin"}, 405, "method_not_allowed", "PUT, DELETE"},
		{"a cross-site fetch", call{method: "PUT", path: "/users/alice/roles/admin", header: []string{"Sec-Fetch-Site", "cross-site"}}, 403, "forbidden", ""},
		{"a caller who is not a system admin", call{user: "alice", method: "GET", path: "/users"}, 403, "forbidden", ""},
		{"a disabled system admin", call{user: "erin", method: "GET", path: "/tokens"}, 403, "forbidden", ""},
		{"a system admin by role", call{user: "gina", method: "GET", path: "/tokens"}, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.user == "" {
				tc.c.user = "root"
			}
			if tc.c.user == "erin" { // disabled: make her an admin first, through the admin API
				e.send(call{operator: true, method: "PUT", path: "/api-tokens/users/erin/roles/admin"}).Want(200, "")
			}
			site, op := tc.c, tc.c
			site.path = "/admin" + tc.c.path
			op.path, op.operator = "/api-tokens"+tc.c.path, true
			var shapes []string
			for _, c := range []call{site, op} {
				a := e.send(c).Want(tc.status, tc.code)
				if got := a.Header.Get("Allow"); got != tc.allow {
					t.Errorf("%s: Allow %q, want %q", a.Desc, got, tc.allow)
				}
				shapes = append(shapes, shape(a.JSON))
			}
			if shapes[0] != shapes[1] {
				t.Errorf("api_token_admin answered %s, the admin API %s", shapes[0], shapes[1])
			}
		})
	}
}

// shape is the sorted member names of a JSON object, and of the first item
// of each list in it.
func shape(m map[string]any) string {
	var names []string
	for k, v := range m {
		if l, ok := v.([]any); ok && len(l) > 0 {
			if item, ok := l[0].(map[string]any); ok {
				k += shape(item)
			}
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return "{" + strings.Join(names, " ") + "}"
}

// The operator's routes (signing keys, tokens created and generated for
// another user) are served on the admin API only; the admin API acts as the
// operator when the request names no one.
func TestMounts_OperatorRoutesAreOnTheAdminAPIOnly(t *testing.T) {
	e := newEnv(t)
	create := `{"owner":"alice","name":"svc","expires":"1d","scopes":["meta"]}`

	a := e.call("root", "POST", "/admin/tokens", create).Want(405, "method_not_allowed")
	if a.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", a.Header.Get("Allow"))
	}
	e.call("root", "GET", "/admin/keys", "").Want(404, "not_found")
	e.call("root", "POST", "/admin/keys/rotate", "").Want(404, "not_found")

	op := func(method, path, body string) answer {
		return e.send(call{operator: true, method: method, path: path, body: body})
	}
	tok := op("POST", "/api-tokens/tokens", create).Want(201, "")
	if tok.Str("owner") != "alice" || tok.Str("status") != "not_generated" {
		t.Fatalf("created for alice: %s", tok.Raw)
	}
	e.call("root", "POST", "/admin/tokens/"+tok.Str("id")+"/generate", "").Want(404, "not_found")
	g := op("POST", "/api-tokens/tokens/"+tok.Str("id")+"/generate", "").Want(200, "")
	if shape(g.JSON) != "{details expires_at token}" || g.Str("token") == "" {
		t.Fatalf("generated: %s", shape(g.JSON))
	}
	if status, _ := e.report("/meta", g.Str("token")); status != 200 {
		t.Fatalf("the JWT the admin API generated: %d", status)
	}
	if a := op("GET", "/api-tokens/keys", "").Want(200, ""); len(a.JSON["keys"].([]any)) != 1 || a.Str("signing") == "" {
		t.Fatalf("keys: %s", a.Raw)
	}
	op("POST", "/api-tokens/keys/rotate", "").Want(409, "conflict") // signing_key is in the config
	op("POST", "/api-tokens/tokens", `{"name":"x","expires":"1d","scopes":["meta"]}`).Want(400, "bad_request")

	// The logs name the operator; on api_token_admin alice sees them too.
	a = e.call("alice", "GET", "/tokens/"+tok.Str("id")+"/logs", "").Want(200, "")
	var made []string
	for _, l := range a.JSON["logs"].([]any) {
		m := l.(map[string]any)
		made = append(made, fmt.Sprint(m["activity"], " by ", m["activity_by"]))
	}
	if got := strings.Join(made, ", "); got != "GENERATE by "+tokenadmin.Operator+", CREATE by "+tokenadmin.Operator {
		t.Fatalf("alice's token logs: %s", got)
	}
}
