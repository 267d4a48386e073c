package tokenadmin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
)

// fixture is an api over a real SQLite store, with a clock the test moves,
// and these users: root (admin by config), alice and bob (token role),
// carol (view-only), dave (no role), erin (token role, then disabled).
type fixture struct {
	t     *testing.T
	api   *api
	svc   *apitoken.Service
	store apitoken.Store
	logs  *observer.ObservedLogs

	mu  sync.Mutex
	now time.Time
}

// reconfigure builds the service anew with change applied to its config,
// and the api over it, as a config reload does.
func (f *fixture) reconfigure(change func(c *apitoken.ServiceConfig)) {
	cfg := f.svc.Config()
	change(&cfg)
	f.svc = apitoken.NewService(cfg)
	f.api = newAPI(f.svc, nil, f.api.logger, siteMount)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, store: store, now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	secret := make([]byte, 64)
	rand.Read(secret)
	key, err := apitoken.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := apitoken.NewSigner("test-issuer", []apitoken.Key{key}, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = apitoken.NewService(apitoken.ServiceConfig{Store: store, Signer: signer, Admins: map[string]bool{"root": true}, Now: f.clock})
	core, logs := observer.New(zapcore.InfoLevel)
	f.logs = logs
	f.api = newAPI(f.svc, nil, zap.New(core), siteMount)

	root := f.caller("root")
	for _, id := range []string{"alice", "bob", "erin"} {
		if _, err := f.svc.GrantRole(ctx, root, id, apitoken.RoleAPITokens); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	if _, err := f.svc.PutUser(ctx, root, "carol", apitoken.UserPatch{ViewOnly: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PutUser(ctx, root, "dave", apitoken.UserPatch{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PutUser(ctx, root, "erin", apitoken.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fixture) caller(id string) apitoken.Caller {
	f.t.Helper()
	c, err := f.svc.Caller(context.Background(), id)
	if err != nil {
		f.t.Fatalf("caller %s: %v", id, err)
	}
	return c
}

// req describes one request to the api.
type req struct {
	caller   string
	viaToken bool
	method   string
	path     string
	body     string
	header   map[string]string
	chunked  bool // send the body with no known length
	tls      bool
}

type resp struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (f *fixture) do(q req) resp {
	f.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	target := "http://manage.example.com" + q.path
	if q.tls {
		target = "https://manage.example.com" + q.path
	}
	r := httptest.NewRequest(q.method, target, body)
	if q.body != "" && q.header["Content-Type"] == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		if v == "-" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	if q.chunked {
		r.ContentLength = -1
		r.Body = io.NopCloser(r.Body)
	}
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	f.api.serve(w, r, apitoken.Identity{ID: q.caller}, q.viaToken)
	out := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		f.t.Fatalf("%s %s: Content-Type %q, body %s", q.method, q.path, ct, out.raw)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out.json); err != nil {
		f.t.Fatalf("%s %s: body is not a JSON object: %v: %s", q.method, q.path, err, out.raw)
	}
	return out
}

// want checks the status and, for errors, the error code.
func (r resp) want(t *testing.T, status int, code string) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code != "" {
		if got := r.json["error"]; got != code {
			t.Fatalf("error %v, want %q: %s", got, code, r.raw)
		}
		if msg, _ := r.json["message"].(string); msg == "" {
			t.Fatalf("error without a message: %s", r.raw)
		}
		if len(r.json) != 2 {
			t.Fatalf("error body has other members than error and message: %s", r.raw)
		}
	}
	return r
}

func (r resp) str(key string) string { s, _ := r.json[key].(string); return s }

func (r resp) list(key string) []any { l, _ := r.json[key].([]any); return l }

// create makes a token for owner through the api and returns its id.
func (f *fixture) create(owner, name string) string {
	f.t.Helper()
	r := f.do(req{caller: owner, method: "POST", path: "/tokens",
		body: fmt.Sprintf(`{"name": %q, "expires": "30d", "scopes": ["meta", "report"]}`, name)})
	r.want(f.t, http.StatusCreated, "")
	return r.str("id")
}

// A request without a user means nothing authenticates in front of the
// handler: the operator is warned once in Caddy's log, and the page tells
// the person what is wrong.
func TestAPI_CallerWithoutIdentityIsUnauthenticated(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/tokens", "/admin/users", "/nowhere"} {
		f.do(req{method: "GET", path: path}).want(t, http.StatusUnauthorized, "unauthenticated")
	}
	p := f.page("", "GET", "/").wantPage(t, http.StatusUnauthorized)
	if !strings.Contains(p.body, "no authentication in front of these pages") {
		t.Errorf("the page does not say that nothing authenticates in front of it:\n%s", p.body)
	}
	warned := f.logs.FilterMessageSnippet("without a signed-in user").All()
	if len(warned) != 1 || warned[0].Level != zapcore.WarnLevel || !strings.Contains(warned[0].Message, "basic_auth") {
		t.Fatalf("warnings %v, want one naming what to put in front", warned)
	}
	f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusOK, "")
	if n := f.logs.FilterMessageSnippet("without a signed-in user").Len(); n != 1 {
		t.Errorf("%d warnings after more requests, want the one", n)
	}
}

func TestAPI_IdentityFromAnAPITokenCannotManageTokens(t *testing.T) {
	f := newFixture(t)
	for _, q := range []req{
		{method: "GET", path: "/tokens"},
		{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}`},
		{method: "GET", path: "/admin/users"},
	} {
		for _, who := range []string{"alice", "root"} {
			q.caller, q.viaToken = who, true
			r := f.do(q).want(t, http.StatusForbidden, "forbidden")
			if !strings.Contains(r.str("message"), "API tokens cannot manage tokens") {
				t.Errorf("message %q does not say why", r.str("message"))
			}
		}
	}
	if ts, _, _ := f.store.ListTokens(context.Background(), apitoken.TokenFilter{Page: apitoken.Page{Limit: 10}}); len(ts) != 0 {
		t.Fatalf("a token was created through a JWT identity: %+v", ts)
	}
}

func TestAPI_DisabledUserIsForbiddenEverywhere(t *testing.T) {
	f := newFixture(t)
	for _, q := range []req{
		{method: "GET", path: "/tokens"},
		{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}`},
		{method: "GET", path: "/nowhere"},
	} {
		q.caller = "erin"
		r := f.do(q).want(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(r.str("message"), "disabled") {
			t.Errorf("message %q does not say the account is disabled", r.str("message"))
		}
	}
	// A disabled admin is refused too.
	yes := true
	if _, err := f.svc.PutUser(context.Background(), f.caller("root"), "root", apitoken.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	f.do(req{caller: "root", method: "GET", path: "/admin/users"}).want(t, http.StatusForbidden, "forbidden")
}

func TestAPI_TokenLifecycle(t *testing.T) {
	f := newFixture(t)

	// Create.
	r := f.do(req{caller: "alice", method: "POST", path: "/tokens",
		body: `{"name": "  nightly export ", "expires": "30d", "scopes": ["report", "meta"]}`}).want(t, http.StatusCreated, "")
	id := r.str("id")
	if !strings.HasPrefix(id, "tok_") || r.str("name") != "nightly export" || r.str("owner") != "alice" ||
		r.str("status") != "not_generated" || r.str("status_label") != "Not Generated" || r.str("expires") != "30d" {
		t.Fatalf("created token: %s", r.raw)
	}
	for _, k := range []string{"generated_at", "expires_at", "last_used_at", "last_used_ip", "revoked_at"} {
		if v, ok := r.json[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %t), want null", k, v, ok)
		}
	}
	if r.str("created_at") != "2025-03-01T09:00:00Z" {
		t.Errorf("created_at %q", r.str("created_at"))
	}
	if got := fmt.Sprint(r.json["scopes"]); got != "[meta report]" {
		t.Errorf("scopes %s", got)
	}
	for _, h := range []string{"Cache-Control: no-store", "X-Content-Type-Options: nosniff"} {
		k, v, _ := strings.Cut(h, ": ")
		if r.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.header.Get(k), v)
		}
	}

	// A duplicate name, compared case-insensitively, conflicts.
	f.do(req{caller: "alice", method: "POST", path: "/tokens",
		body: `{"name": "NIGHTLY EXPORT", "expires": "1d", "scopes": ["meta"]}`}).want(t, http.StatusConflict, "conflict")

	// Get.
	f.advance(time.Minute)
	r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id}).want(t, http.StatusOK, "")
	if r.str("id") != id || r.str("status") != "not_generated" {
		t.Fatalf("get: %s", r.raw)
	}

	// Update.
	r = f.do(req{caller: "alice", method: "PATCH", path: "/tokens/" + id,
		body: `{"name": "export", "scopes": ["report"]}`}).want(t, http.StatusOK, "")
	if r.str("name") != "export" || fmt.Sprint(r.json["scopes"]) != "[report]" || r.str("expires") != "30d" {
		t.Fatalf("updated: %s", r.raw)
	}

	// Generate.
	f.advance(time.Minute)
	r = f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/generate"}).want(t, http.StatusOK, "")
	jwt := r.str("token")
	if strings.Count(jwt, ".") != 2 {
		t.Fatalf("token %q is not a JWT", jwt)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the answer carrying a JWT may be stored: Cache-Control %q", r.header.Get("Cache-Control"))
	}
	details, _ := r.json["details"].(map[string]any)
	if r.str("expires_at") != "2025-03-31T09:02:00Z" || details["expires_at"] != r.str("expires_at") ||
		details["status"] != "generated_inactive" || details["generated_at"] != "2025-03-01T09:02:00Z" {
		t.Fatalf("generated: %s", r.raw)
	}
	if strings.Contains(f.logText(), jwt) {
		t.Fatal("the JWT reached a log")
	}

	// Revoke; then nothing more can happen to it.
	r = f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/revoke"}).want(t, http.StatusOK, "")
	if r.str("status") != "revoked" || r.str("revoked_at") != "2025-03-01T09:02:00Z" {
		t.Fatalf("revoked: %s", r.raw)
	}
	f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/generate"}).want(t, http.StatusConflict, "conflict")
	f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/revoke"}).want(t, http.StatusConflict, "conflict")
	f.do(req{caller: "alice", method: "PATCH", path: "/tokens/" + id, body: `{"name":"again"}`}).want(t, http.StatusConflict, "conflict")

	// Its logs, newest first.
	r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id + "/logs"}).want(t, http.StatusOK, "")
	var acts []string
	for _, l := range r.list("logs") {
		m := l.(map[string]any)
		acts = append(acts, m["activity"].(string))
		if m["token_id"] != id || m["activity_by"] != "alice" {
			t.Errorf("log row %v", m)
		}
	}
	if got := strings.Join(acts, " "); got != "REVOKE GENERATE UPDATE CREATE" {
		t.Fatalf("logs %s, want REVOKE GENERATE UPDATE CREATE: %s", got, r.raw)
	}
	if v, ok := r.json["next_cursor"]; !ok || v != nil {
		t.Fatalf("next_cursor %v (present %t), want null", v, ok)
	}

	// The list shows it.
	r = f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusOK, "")
	if l := r.list("tokens"); len(l) != 1 || l[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %s", r.raw)
	}
}

func TestAPI_CreateAndUpdateRefuseBadValues(t *testing.T) {
	f := newFixture(t)
	id := f.create("alice", "one")
	for _, tc := range []struct {
		name, method, path, body, mention string
	}{
		{"unknown expiry", "POST", "/tokens", `{"name":"a","expires":"2d","scopes":["meta"]}`, "2d"},
		{"expiry over the policy", "POST", "/tokens", `{"name":"a","expires":"never","scopes":["meta"]}`, "1y"},
		{"missing expiry", "POST", "/tokens", `{"name":"a","scopes":["meta"]}`, "expires"},
		{"unknown scope", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["admin"]}`, "admin"},
		{"no scopes", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":[]}`, "scopes"},
		{"missing scopes", "POST", "/tokens", `{"name":"a","expires":"1d"}`, "scopes"},
		{"empty name", "POST", "/tokens", `{"name":"  ","expires":"1d","scopes":["meta"]}`, "name"},
		{"long name", "POST", "/tokens", `{"name":"` + strings.Repeat("n", 101) + `","expires":"1d","scopes":["meta"]}`, "100"},
		{"scopes of the wrong type", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":"meta"}`, "scopes"},
		{"name of the wrong type", "POST", "/tokens", `{"name":7,"expires":"1d","scopes":["meta"]}`, "name"},
		{"owner is not the caller's to set", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"],"owner":"bob"}`, `"owner"`},
		{"no body for create", "POST", "/tokens", ``, "name"},
		{"body not an object", "POST", "/tokens", `["a"]`, "object"},
		{"malformed JSON", "POST", "/tokens", `{"name":"a",}`, "byte"},
		{"truncated JSON", "POST", "/tokens", `{"name":"a"`, "JSON"},
		{"trailing data", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"]} {}`, "more"},
		{"update to an unknown expiry", "PATCH", "/tokens/" + id, `{"expires":"forever"}`, "forever"},
		{"update to no scopes", "PATCH", "/tokens/" + id, `{"scopes":[]}`, "scopes"},
		{"update with an unknown field", "PATCH", "/tokens/" + id, `{"status":"revoked"}`, `"status"`},
		{"update without a body", "PATCH", "/tokens/" + id, ``, "body"},
		{"generate with a field", "POST", "/tokens/" + id + "/generate", `{"expires":"1d"}`, `"expires"`},
		{"allowed_ips not a list", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"],"allowed_ips":"10.0.0.0/8"}`, `["198.51.100.0/24", "203.0.113.7"]`},
		{"allowed_ips with a name", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"],"allowed_ips":["vpn.example.com"]}`, `entry 1: "vpn.example.com" is not an address or CIDR`},
		{"allowed_ips with host bits", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"],"allowed_ips":["10.1.2.3/24"]}`, "write the network 10.1.2.0/24"},
		{"allowed_ips over the limit", "POST", "/tokens", `{"name":"a","expires":"1d","scopes":["meta"],"allowed_ips":["` + strings.Repeat(`10.0.0.1","`, 20) + `10.0.0.2"]}`, "the limit is 20"},
		{"update to a duplicate network", "PATCH", "/tokens/" + id, `{"allowed_ips":["192.0.2.1","192.0.2.1/32"]}`, "twice"},
		{"update to an empty entry", "PATCH", "/tokens/" + id, `{"allowed_ips":[""]}`, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(req{caller: "alice", method: tc.method, path: tc.path, body: tc.body}).want(t, http.StatusBadRequest, "bad_request")
			if !strings.Contains(r.str("message"), tc.mention) {
				t.Errorf("message %q does not mention %s", r.str("message"), tc.mention)
			}
		})
	}
	// Nothing was created or changed.
	r := f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusOK, "")
	if l := r.list("tokens"); len(l) != 1 || l[0].(map[string]any)["name"] != "one" {
		t.Fatalf("tokens after refused requests: %s", r.raw)
	}
	if ts, _, _ := f.store.ListTokens(context.Background(), apitoken.TokenFilter{Owner: "bob", Page: apitoken.Page{Limit: 10}}); len(ts) != 0 {
		t.Fatal("a token was created for bob through the owner field")
	}
}

func TestAPI_AnotherUsersTokenIsNotFoundWhateverTheRequest(t *testing.T) {
	f := newFixture(t)
	bobs := f.create("bob", "bob's")
	for _, tc := range []struct {
		name string
		q    req
	}{
		{"get", req{method: "GET", path: "/tokens/" + bobs}},
		{"logs", req{method: "GET", path: "/tokens/" + bobs + "/logs?limit=0"}},
		{"update", req{method: "PATCH", path: "/tokens/" + bobs, body: `{"name":"mine now"}`}},
		{"update without a body", req{method: "PATCH", path: "/tokens/" + bobs}},
		{"update with a bad body", req{method: "PATCH", path: "/tokens/" + bobs, body: `{"owner":"alice"`}},
		{"update with the wrong content type", req{method: "PATCH", path: "/tokens/" + bobs, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{"update from a foreign origin", req{method: "PATCH", path: "/tokens/" + bobs, body: `{}`, header: map[string]string{"Origin": "https://evil.example"}}},
		{"generate", req{method: "POST", path: "/tokens/" + bobs + "/generate"}},
		{"generate with a body too large", req{method: "POST", path: "/tokens/" + bobs + "/generate", body: `{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`}},
		{"revoke", req{method: "POST", path: "/tokens/" + bobs + "/revoke"}},
		{"revoke with an unknown field", req{method: "POST", path: "/tokens/" + bobs + "/revoke", body: `{"why":"x"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.caller = "alice"
			r := f.do(tc.q).want(t, http.StatusNotFound, "not_found")
			missing := tc.q
			missing.path = strings.Replace(tc.q.path, bobs, "tok_doesnotexist", 1)
			if m := f.do(missing).want(t, http.StatusNotFound, "not_found"); strings.ReplaceAll(m.raw, "tok_doesnotexist", bobs) != r.raw {
				t.Errorf("another user's token answers %s, a missing one %s", r.raw, m.raw)
			}
		})
	}
	// An admin's self-service routes are for its own tokens too.
	f.do(req{caller: "root", method: "GET", path: "/tokens/" + bobs}).want(t, http.StatusNotFound, "not_found")
	// Bob's token is untouched.
	r := f.do(req{caller: "bob", method: "GET", path: "/tokens/" + bobs}).want(t, http.StatusOK, "")
	if r.str("name") != "bob's" || r.str("status") != "not_generated" {
		t.Fatalf("bob's token changed: %s", r.raw)
	}
}

func TestAPI_SelfServiceNeedsTheEffectiveTokenRole(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Frank held the role and made a token, then lost the role.
	if _, err := f.svc.GrantRole(ctx, f.caller("root"), "frank", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	franks := f.create("frank", "old")
	if _, err := f.svc.RemoveRole(ctx, f.caller("root"), "frank", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	for _, who := range []struct{ id, mention string }{
		{"carol", "view-only"}, {"dave", "api_tokens"}, {"nobody", "api_tokens"}, {"root", "api_tokens"},
	} {
		for _, q := range []req{
			{method: "GET", path: "/tokens"},
			{method: "POST", path: "/tokens", body: `{"name":"x","expires":"1d","scopes":["meta"]}`},
		} {
			q.caller = who.id
			r := f.do(q).want(t, http.StatusForbidden, "forbidden")
			if !strings.Contains(r.str("message"), who.mention) {
				t.Errorf("%s %s %s: message %q does not mention %s", who.id, q.method, q.path, r.str("message"), who.mention)
			}
		}
	}
	for _, q := range []req{
		{method: "GET", path: "/tokens/" + franks},
		{method: "PATCH", path: "/tokens/" + franks, body: `{"name":"y"}`},
		{method: "POST", path: "/tokens/" + franks + "/generate"},
		{method: "GET", path: "/tokens/" + franks + "/logs"},
	} {
		q.caller = "frank"
		f.do(q).want(t, http.StatusForbidden, "forbidden")
	}
	if tok, _ := f.store.GetToken(ctx, franks); tok.GeneratedAt != nil || tok.RevokedAt != nil || tok.Name != "old" {
		t.Fatalf("frank's token changed without the role: %+v", tok)
	}
	// Taking access away is always allowed: without the role, frank may
	// still revoke his token, so it cannot come back with the role.
	f.do(req{caller: "frank", method: "POST", path: "/tokens/" + franks + "/revoke"}).want(t, http.StatusOK, "")
	if tok, _ := f.store.GetToken(ctx, franks); tok.RevokedAt == nil {
		t.Fatal("frank's revoke did not revoke")
	}
}

func TestAPI_AdminRoutesRefuseOthers(t *testing.T) {
	f := newFixture(t)
	alices := f.create("alice", "a")
	for _, q := range []req{
		{method: "GET", path: "/admin/tokens"},
		{method: "GET", path: "/admin/tokens?status=bogus"},
		{method: "POST", path: "/admin/tokens/" + alices + "/revoke"},
		{method: "POST", path: "/admin/tokens/tok_missing/revoke", body: `{"bad":`},
		{method: "GET", path: "/admin/logs"},
		{method: "GET", path: "/admin/users"},
		{method: "PUT", path: "/admin/users/alice", body: `{"disabled":true}`},
		{method: "PUT", path: "/admin/users/alice", body: `{"disabled":true}`, header: map[string]string{"Content-Type": "text/plain"}},
		{method: "PUT", path: "/admin/users/alice/roles/admin"},
		{method: "PUT", path: "/admin/users/alice/roles/superuser"},
		{method: "DELETE", path: "/admin/users/bob/roles/api_tokens"},
	} {
		for _, who := range []string{"alice", "dave", "nobody"} {
			q.caller = who
			r := f.do(q).want(t, http.StatusForbidden, "forbidden")
			if !strings.Contains(r.str("message"), "system admin") {
				t.Errorf("message %q", r.str("message"))
			}
		}
	}
	if u, _ := f.store.GetUser(context.Background(), "alice"); u.Disabled || u.HasRole(apitoken.RoleAdmin) {
		t.Fatalf("alice changed herself: %+v", u)
	}
}

func TestAPI_AdminManagesUsersAndRoles(t *testing.T) {
	f := newFixture(t)
	// Create a user with only the fields given, then change one.
	r := f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina", body: `{"email":"gina@example.com"}`}).want(t, http.StatusOK, "")
	if r.str("id") != "gina" || r.str("email") != "gina@example.com" || r.json["view_only"] != false ||
		r.json["disabled"] != false || fmt.Sprint(r.json["roles"]) != "[]" || r.str("created_at") == "" {
		t.Fatalf("created user: %s", r.raw)
	}
	r = f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina", body: `{"view_only":true}`}).want(t, http.StatusOK, "")
	if r.str("email") != "gina@example.com" || r.json["view_only"] != true {
		t.Fatalf("changed user: %s", r.raw)
	}
	// A bodiless PUT creates a user.
	r = f.do(req{caller: "root", method: "PUT", path: "/admin/users/hank"}).want(t, http.StatusOK, "")
	if r.str("id") != "hank" {
		t.Fatalf("bodiless PUT: %s", r.raw)
	}
	// Bad values.
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina", body: `{"email":"not an address"}`}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina", body: `{"view_only":"yes"}`}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina", body: `{"roles":["admin"]}`}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/%20gina"}).want(t, http.StatusBadRequest, "bad_request")

	// The token role cannot go to a view-only user.
	r = f.do(req{caller: "root", method: "PUT", path: "/admin/users/gina/roles/api_tokens"}).want(t, http.StatusConflict, "conflict")
	if !strings.Contains(r.str("message"), "view-only") {
		t.Errorf("message %q", r.str("message"))
	}
	// Unknown role.
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/hank/roles/superuser"}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "DELETE", path: "/admin/users/hank/roles/superuser"}).want(t, http.StatusBadRequest, "bad_request")
	// Grant, twice, then remove, twice.
	for range 2 {
		r = f.do(req{caller: "root", method: "PUT", path: "/admin/users/hank/roles/api_tokens"}).want(t, http.StatusOK, "")
		if fmt.Sprint(r.json["roles"]) != "[api_tokens]" {
			t.Fatalf("granted: %s", r.raw)
		}
	}
	f.create("hank", "works now")
	// A granted admin role makes hank a system admin.
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/hank/roles/admin"}).want(t, http.StatusOK, "")
	f.do(req{caller: "hank", method: "GET", path: "/admin/users"}).want(t, http.StatusOK, "")
	for range 2 {
		r = f.do(req{caller: "root", method: "DELETE", path: "/admin/users/hank/roles/admin"}).want(t, http.StatusOK, "")
		if fmt.Sprint(r.json["roles"]) != "[api_tokens]" {
			t.Fatalf("removed: %s", r.raw)
		}
	}
	f.do(req{caller: "hank", method: "GET", path: "/admin/users"}).want(t, http.StatusForbidden, "forbidden")
	f.do(req{caller: "root", method: "DELETE", path: "/admin/users/nobody/roles/admin"}).want(t, http.StatusNotFound, "not_found")

	// The list of users, and the admin logs of these changes.
	r = f.do(req{caller: "root", method: "GET", path: "/admin/users"}).want(t, http.StatusOK, "")
	ids := map[string]bool{}
	for _, u := range r.list("users") {
		ids[u.(map[string]any)["id"].(string)] = true
	}
	for _, id := range []string{"alice", "bob", "carol", "dave", "erin", "gina", "hank"} {
		if !ids[id] {
			t.Errorf("user %s missing from %s", id, r.raw)
		}
	}
	r = f.do(req{caller: "root", method: "GET", path: "/admin/logs?activity=ROLE_REMOVE"}).want(t, http.StatusOK, "")
	if l := r.list("logs"); len(l) != 1 || l[0].(map[string]any)["activity_by"] != "root" || l[0].(map[string]any)["user"] != "hank" {
		t.Fatalf("role removal logs: %s", r.raw)
	}
}

func TestAPI_AdminSeesAndRevokesEveryToken(t *testing.T) {
	f := newFixture(t)
	a1 := f.create("alice", "a1")
	f.advance(time.Second)
	b1 := f.create("bob", "b1")
	f.advance(time.Second)
	f.do(req{caller: "bob", method: "POST", path: "/tokens/" + b1 + "/generate"}).want(t, http.StatusOK, "")
	f.advance(time.Second)

	ids := func(r resp) string {
		var out []string
		for _, tk := range r.list("tokens") {
			out = append(out, tk.(map[string]any)["id"].(string))
		}
		return strings.Join(out, " ")
	}
	r := f.do(req{caller: "root", method: "GET", path: "/admin/tokens"}).want(t, http.StatusOK, "")
	if got := ids(r); got != b1+" "+a1 {
		t.Fatalf("all tokens %s, want %s %s", got, b1, a1)
	}
	r = f.do(req{caller: "root", method: "GET", path: "/admin/tokens?owner=alice"}).want(t, http.StatusOK, "")
	if got := ids(r); got != a1 {
		t.Fatalf("alice's tokens %s", got)
	}
	r = f.do(req{caller: "root", method: "GET", path: "/admin/tokens?status=generated_inactive"}).want(t, http.StatusOK, "")
	if got := ids(r); got != b1 {
		t.Fatalf("generated tokens %s", got)
	}
	f.do(req{caller: "root", method: "GET", path: "/admin/tokens?status=bogus"}).want(t, http.StatusBadRequest, "bad_request")

	// Revoke bob's token as an admin: logged as by the admin.
	r = f.do(req{caller: "root", method: "POST", path: "/admin/tokens/" + b1 + "/revoke"}).want(t, http.StatusOK, "")
	if r.str("status") != "revoked" || r.str("owner") != "bob" {
		t.Fatalf("admin revoke: %s", r.raw)
	}
	f.do(req{caller: "root", method: "POST", path: "/admin/tokens/" + b1 + "/revoke"}).want(t, http.StatusConflict, "conflict")
	f.do(req{caller: "root", method: "POST", path: "/admin/tokens/tok_missing/revoke"}).want(t, http.StatusNotFound, "not_found")

	r = f.do(req{caller: "root", method: "GET", path: "/admin/logs?token=" + b1 + "&activity=REVOKE"}).want(t, http.StatusOK, "")
	if l := r.list("logs"); len(l) != 1 || l[0].(map[string]any)["activity_by"] != "root" {
		t.Fatalf("revoke logs: %s", r.raw)
	}
	// since filters by time.
	r = f.do(req{caller: "root", method: "GET", path: "/admin/logs?since=2025-03-01T09:00:01Z&token=" + b1}).want(t, http.StatusOK, "")
	var acts []string
	for _, l := range r.list("logs") {
		acts = append(acts, l.(map[string]any)["activity"].(string))
	}
	if got := strings.Join(acts, " "); got != "REVOKE GENERATE CREATE" {
		t.Fatalf("logs since creation of b1: %s", got)
	}
	r = f.do(req{caller: "root", method: "GET", path: "/admin/logs?since=2025-03-01T09:00:02Z&token=" + b1}).want(t, http.StatusOK, "")
	if l := r.list("logs"); len(l) != 2 {
		t.Fatalf("logs since generation of b1: %s", r.raw)
	}
	f.do(req{caller: "root", method: "GET", path: "/admin/logs?since=yesterday"}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "GET", path: "/admin/logs?activity=DELETE"}).want(t, http.StatusBadRequest, "bad_request")
}

func TestAPI_ListsArePagedNewestFirst(t *testing.T) {
	f := newFixture(t)
	var want []string
	for i := range 5 {
		want = append([]string{f.create("alice", fmt.Sprintf("t%d", i))}, want...)
		f.advance(time.Second)
	}
	f.create("bob", "not alice's")
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		path := "/tokens?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := f.do(req{caller: "alice", method: "GET", path: path}).want(t, http.StatusOK, "")
		l := r.list("tokens")
		if len(l) > 2 {
			t.Fatalf("page of %d tokens with limit 2", len(l))
		}
		for _, tk := range l {
			got = append(got, tk.(map[string]any)["id"].(string))
		}
		if r.json["next_cursor"] == nil {
			break
		}
		cursor = r.str("next_cursor")
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
	for _, bad := range []string{"0", "1001", "-1", "ten", "", "1.5"} {
		r := f.do(req{caller: "alice", method: "GET", path: "/tokens?limit=" + bad}).want(t, http.StatusBadRequest, "bad_request")
		if !strings.Contains(r.str("message"), "1 to 1000") {
			t.Errorf("limit=%s: message %q does not give the range", bad, r.str("message"))
		}
	}
	f.do(req{caller: "alice", method: "GET", path: "/tokens?limit=1000"}).want(t, http.StatusOK, "")
	f.do(req{caller: "alice", method: "GET", path: "/tokens?cursor=garbage!"}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "GET", path: "/admin/users?limit=1001"}).want(t, http.StatusBadRequest, "bad_request")
	f.do(req{caller: "root", method: "GET", path: "/admin/logs?limit=0"}).want(t, http.StatusBadRequest, "bad_request")
	r := f.do(req{caller: "root", method: "GET", path: "/admin/users?limit=2"}).want(t, http.StatusOK, "")
	if len(r.list("users")) != 2 || r.str("next_cursor") == "" {
		t.Fatalf("users page: %s", r.raw)
	}
}

func TestAPI_RequestRules(t *testing.T) {
	f := newFixture(t)
	id := f.create("alice", "one")
	create := `{"name":"%s","expires":"1d","scopes":["meta"]}`
	n := 0
	next := func() string { n++; return fmt.Sprintf(create, fmt.Sprintf("n%d", n)) }
	for _, tc := range []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"JSON with a charset", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}}, 201, ""},
		{"JSON in another charset", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Content-Type": "application/json; charset=latin1"}}, 415, "unsupported_media_type"},
		{"a form", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"},
		{"plain text", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type"},
		{"no content type", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Content-Type": "-"}}, 415, "unsupported_media_type"},
		{"chunked without a content type", req{method: "POST", path: "/tokens", body: next(), chunked: true, header: map[string]string{"Content-Type": "-"}}, 415, "unsupported_media_type"},
		{"chunked JSON", req{method: "POST", path: "/tokens", body: next(), chunked: true}, 201, ""},
		{"a body on a GET must be JSON too", req{method: "GET", path: "/tokens", body: "x", header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type"},
		{"a body of 64 KiB", req{method: "PATCH", path: "/tokens/" + id, body: `{"name":"one"` + strings.Repeat(" ", MaxBodyBytes-14) + `}`}, 200, ""},
		{"a body over 64 KiB", req{method: "PATCH", path: "/tokens/" + id, body: `{"name":"one"` + strings.Repeat(" ", MaxBodyBytes-13) + `}`}, 400, "bad_request"},
		{"a chunked body over 64 KiB", req{method: "PATCH", path: "/tokens/" + id, chunked: true, body: `{"name":"one"` + strings.Repeat(" ", MaxBodyBytes) + `}`}, 400, "bad_request"},
		{"bodiless generate", req{method: "POST", path: "/tokens/" + id + "/generate"}, 200, ""},
		{"generate with an empty object", req{method: "POST", path: "/tokens/" + id + "/generate", body: `{}`}, 200, ""},
		{"bodiless generate with a text content type", req{method: "POST", path: "/tokens/" + id + "/generate", header: map[string]string{"Content-Type": "text/plain"}}, 200, ""},
		{"own origin", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "http://manage.example.com"}}, 201, ""},
		{"own origin with the default port", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "http://MANAGE.example.com:80"}}, 201, ""},
		{"own https origin", req{method: "POST", path: "/tokens", body: next(), tls: true, header: map[string]string{"Origin": "https://manage.example.com"}}, 201, ""},
		{"same-origin fetch", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 201, ""},
		{"foreign origin", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "https://evil.example"}}, 403, "forbidden"},
		{"foreign origin on a bodiless POST", req{method: "POST", path: "/tokens/" + id + "/revoke", header: map[string]string{"Origin": "https://evil.example"}}, 403, "forbidden"},
		{"foreign origin on a PUT", req{caller: "root", method: "PUT", path: "/admin/users/alice/roles/admin", header: map[string]string{"Origin": "https://evil.example"}}, 403, "forbidden"},
		{"foreign origin on a DELETE", req{caller: "root", method: "DELETE", path: "/admin/users/alice/roles/api_tokens", header: map[string]string{"Origin": "https://evil.example"}}, 403, "forbidden"},
		{"a sibling site", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "http://other.example.com"}}, 403, "forbidden"},
		{"another port", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "http://manage.example.com:8080"}}, 403, "forbidden"},
		{"an http origin over TLS", req{method: "POST", path: "/tokens", body: next(), tls: true, header: map[string]string{"Origin": "http://manage.example.com"}}, 403, "forbidden"},
		{"an https origin through a TLS-terminating proxy", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "https://manage.example.com"}}, 201, ""},
		{"a non-web scheme", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "ftp://manage.example.com"}}, 403, "forbidden"},
		{"the null origin", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Origin": "null"}}, 403, "forbidden"},
		{"a cross-site fetch", req{method: "POST", path: "/tokens", body: next(), header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "forbidden"},
		{"a foreign origin may read", req{method: "GET", path: "/tokens", header: map[string]string{"Origin": "https://evil.example"}}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.q.caller == "" {
				tc.q.caller = "alice"
			}
			f.do(tc.q).want(t, tc.status, tc.code)
		})
	}
	// Nothing refused changed anything: alice still has the admin role
	// only if the PUT went through (it must not have), and her token role.
	if u, _ := f.store.GetUser(context.Background(), "alice"); u.HasRole(apitoken.RoleAdmin) || !u.HasRole(apitoken.RoleAPITokens) {
		t.Fatalf("a cross-origin request changed alice's roles: %v", u.Roles)
	}
	if tok, _ := f.store.GetToken(context.Background(), id); tok.RevokedAt != nil {
		t.Fatal("a cross-origin request revoked the token")
	}
}

func TestAPI_UnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/token", "/tokens/", "/tokens/x/y", "/admin", "/admin/tokens/x", "/tokens/../admin/users", "//tokens"} {
		f.do(req{caller: "alice", method: "GET", path: path}).want(t, http.StatusNotFound, "not_found")
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/tokens", "GET, HEAD, POST"},
		{"PUT", "/tokens/tok_x", "GET, HEAD, PATCH"},
		{"GET", "/tokens/tok_x/generate", "POST"},
		{"GET", "/admin/users/alice", "PUT"},
		{"POST", "/admin/users/alice/roles/admin", "PUT, DELETE"},
	} {
		r := f.do(req{caller: "alice", method: tc.method, path: tc.path}).want(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

// failingStore fails every call after the fixture is set up.
type failingStore struct {
	apitoken.Store
	err error
}

func (s failingStore) GetUser(context.Context, string) (apitoken.User, error) {
	return apitoken.User{}, s.err
}

func TestAPI_StoreFailures(t *testing.T) {
	f := newFixture(t)
	f.reconfigure(func(c *apitoken.ServiceConfig) {
		c.Store = failingStore{f.store, fmt.Errorf("querying users: %w: connection refused", apitoken.ErrUnavailable)}
	})
	r := f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusServiceUnavailable, "unavailable")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}

	f.reconfigure(func(c *apitoken.ServiceConfig) {
		c.Store = failingStore{f.store, errors.New("database disk image is malformed at /var/secret/path")}
	})
	r = f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusInternalServerError, "internal")
	if strings.Contains(r.raw, "malformed") || strings.Contains(r.raw, "/var/secret") {
		t.Fatalf("the internal error reached the client: %s", r.raw)
	}
	if !strings.Contains(f.logText(), "database disk image is malformed") {
		t.Fatalf("the internal error was not logged: %s", f.logText())
	}
}

func (f *fixture) logText() string {
	var b strings.Builder
	for _, e := range f.logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// textStore refuses, as PostgreSQL does, to look up text that is not valid
// UTF-8 or holds a NUL: such a value can never have been stored.
type textStore struct{ apitoken.Store }

func unstorable(s string) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("ERROR: invalid byte sequence for encoding \"UTF8\": %q (SQLSTATE 22021)", s)
	}
	return nil
}

func (s textStore) GetUser(ctx context.Context, id string) (apitoken.User, error) {
	if err := unstorable(id); err != nil {
		return apitoken.User{}, err
	}
	return s.Store.GetUser(ctx, id)
}

func (s textStore) UpdateUser(ctx context.Context, id string, fn func(u *apitoken.User, created bool) ([]apitoken.Log, error)) (apitoken.User, error) {
	if err := unstorable(id); err != nil {
		return apitoken.User{}, err
	}
	return s.Store.UpdateUser(ctx, id, fn)
}

func (s textStore) GetToken(ctx context.Context, id string) (apitoken.Token, error) {
	if err := unstorable(id); err != nil {
		return apitoken.Token{}, err
	}
	return s.Store.GetToken(ctx, id)
}

func (s textStore) UpdateToken(ctx context.Context, id string, fn func(t *apitoken.Token) (apitoken.Log, error)) (apitoken.Token, error) {
	if err := unstorable(id); err != nil {
		return apitoken.Token{}, err
	}
	return s.Store.UpdateToken(ctx, id, fn)
}

func (s textStore) ListTokens(ctx context.Context, f apitoken.TokenFilter) ([]apitoken.Token, string, error) {
	if err := unstorable(f.Owner); err != nil {
		return nil, "", err
	}
	return s.Store.ListTokens(ctx, f)
}

func (s textStore) ListLogs(ctx context.Context, f apitoken.LogFilter) ([]apitoken.Log, string, error) {
	if err := unstorable(f.TokenID); err != nil {
		return nil, "", err
	}
	return s.Store.ListLogs(ctx, f)
}

func (s textStore) ListNotifications(ctx context.Context, f apitoken.NotificationFilter) ([]apitoken.Notification, string, error) {
	if err := unstorable(f.TokenID); err != nil {
		return nil, "", err
	}
	return s.Store.ListNotifications(ctx, f)
}

func TestAPI_IDsThatCannotBeStoredAreNotFoundNotServerErrors(t *testing.T) {
	f := newFixture(t)
	f.reconfigure(func(c *apitoken.ServiceConfig) { c.Store = textStore{f.store} })
	for _, id := range []string{"%FF", "tok_%00", "%C3%28"} {
		for _, q := range []req{
			{caller: "alice", method: "GET", path: "/tokens/" + id},
			{caller: "alice", method: "PATCH", path: "/tokens/" + id, body: `{"name": "x"}`},
			{caller: "alice", method: "POST", path: "/tokens/" + id + "/generate"},
			{caller: "alice", method: "POST", path: "/tokens/" + id + "/revoke"},
			{caller: "alice", method: "GET", path: "/tokens/" + id + "/logs"},
			{caller: "root", method: "POST", path: "/admin/tokens/" + id + "/revoke"},
		} {
			f.do(q).want(t, http.StatusNotFound, "not_found")
		}
		for _, p := range []string{"/admin/tokens?owner=" + id, "/admin/logs?token=" + id, "/admin/notifications?token=" + id} {
			r := f.do(req{caller: "root", method: "GET", path: p}).want(t, http.StatusOK, "")
			for k, v := range r.json {
				if l, ok := v.([]any); ok && len(l) != 0 || k == "next_cursor" && v != nil {
					t.Errorf("GET %s: %s is %v, want nothing", p, k, v)
				}
			}
		}
		for _, m := range []string{"PUT", "DELETE"} {
			f.do(req{caller: "root", method: m, path: "/admin/users/" + id + "/roles/admin"}).want(t, http.StatusBadRequest, "bad_request")
		}
	}
}

func TestAPI_AllowedIPsAreSetShownChangedAndCleared(t *testing.T) {
	f := newFixture(t)
	ips := func(r resp) string { return fmt.Sprint(r.json["allowed_ips"]) }

	// Unrestricted: an empty list, never null or absent.
	id := f.create("alice", "anywhere")
	r := f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id}).want(t, http.StatusOK, "")
	if l, ok := r.json["allowed_ips"].([]any); !ok || len(l) != 0 {
		t.Errorf("allowed_ips of a token without any = %s, want []", r.raw)
	}

	r = f.do(req{caller: "alice", method: "POST", path: "/tokens",
		body: `{"name":"office","expires":"30d","scopes":["meta"],"allowed_ips":[" 198.51.100.0/24","2001:DB8::1"]}`}).want(t, http.StatusCreated, "")
	office := r.str("id")
	if got := ips(r); got != "[198.51.100.0/24 2001:db8::1/128]" {
		t.Errorf("allowed_ips as created = %s, want the normalised CIDRs", got)
	}
	// A patch without allowed_ips keeps them; one with them replaces them.
	r = f.do(req{caller: "alice", method: "PATCH", path: "/tokens/" + office, body: `{"name":"office 2"}`}).want(t, http.StatusOK, "")
	if got := ips(r); got != "[198.51.100.0/24 2001:db8::1/128]" {
		t.Errorf("allowed_ips after a rename = %s", got)
	}
	r = f.do(req{caller: "alice", method: "PATCH", path: "/tokens/" + office, body: `{"allowed_ips":["203.0.113.7"]}`}).want(t, http.StatusOK, "")
	if got := ips(r); got != "[203.0.113.7/32]" {
		t.Errorf("allowed_ips after the update = %s", got)
	}
	r = f.do(req{caller: "alice", method: "PATCH", path: "/tokens/" + office, body: `{"allowed_ips":[]}`}).want(t, http.StatusOK, "")
	if got := ips(r); got != "[]" {
		t.Errorf("allowed_ips after clearing = %s", got)
	}

	r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + office + "/logs"}).want(t, http.StatusOK, "")
	var reasons []string
	for _, l := range r.list("logs") {
		reasons = append(reasons, fmt.Sprint(l.(map[string]any)["reason"]))
	}
	want := []string{"allowed_ips 203.0.113.7/32 -> any", "allowed_ips 198.51.100.0/24, 2001:db8::1/128 -> 203.0.113.7/32",
		`name "office" -> "office 2"`, "scopes meta, expires 30d, allowed_ips 198.51.100.0/24, 2001:db8::1/128"}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("log reasons, newest first:\n%q\nwant\n%q", reasons, want)
	}

	// An admin sets them on a service account's token too.
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/svc", body: `{"kind":"service"}`}).want(t, http.StatusOK, "")
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/svc/roles/api_tokens"}).want(t, http.StatusOK, "")
	r = f.do(req{caller: "root", method: "POST", path: "/admin/users/svc/tokens",
		body: `{"name":"etl","expires":"30d","scopes":["report"],"allowed_ips":["10.20.0.0/16"]}`}).want(t, http.StatusCreated, "")
	if got := ips(r); got != "[10.20.0.0/16]" {
		t.Errorf("allowed_ips of the service account's token = %s", got)
	}
	f.do(req{caller: "root", method: "POST", path: "/admin/users/svc/tokens",
		body: `{"name":"etl2","expires":"30d","scopes":["report"],"allowed_ips":["10.20.0.0/8"]}`}).want(t, http.StatusBadRequest, "bad_request")
}
