package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"

	// The standard modules: reverse_proxy, respond, basic_auth.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// Ports of this package's test Caddy (caddytesting's).
var testAdminPort, testHTTPPort = caddytesting.AdminPort, caddytesting.HTTPPort

func TestMain(m *testing.M) {
	os.Exit(caddytesting.Main(m))
}

// guardEnv is a real Caddy with api_token_auth in front of a real upstream,
// a file log and an access log; alice and bob hold the token role, root is
// a system admin by configuration. Its service is the app's, on the test
// clock.
type guardEnv struct {
	*caddytesting.Env
	up        *caddytesting.Upstream // the report server behind the guard
	db        string
	accessLog string
	keys      string // the key options of api_tokens; default the suite's signing_key
	options   string // more api_tokens options
	storage   string // the storage option; default: sqlite in db
	server    string // more global options (servers { trusted_proxies ... })
	guard     string // more api_token_auth options
	proxy     string // more reverse_proxy options
	appOption string // the app option of api_token_auth
	site      string // more directives of the site (api_token_revoke ...)
	app       *App
	svc       *apitoken.Service
	clock     *testClock
	owner     apitoken.Caller
	adminCtl  apitoken.Caller
}

// testClock is a clock the test sets: one that runs from what it was set
// to (theClock), or one that stands still.
type testClock struct {
	mu    sync.Mutex
	at    time.Time // what it read when last set
	since time.Time // when it was last set; zero for a clock that stands still
}

// theClock is the clock of this package's apps (their State, Auditor and
// fail limit) and of the tests' services: set once, before any app starts,
// and back to the real time at the start of each guardEnv.
var theClock = func() *testClock {
	c := &testClock{at: time.Now(), since: time.Now()}
	clock = c.Now
	return c
}()

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		return c.at
	}
	return c.at.Add(time.Since(c.since))
}

// Set makes the clock read t now.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = t
	if !c.since.IsZero() {
		c.since = time.Now()
	}
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

var testKey = apitoken.GenerateKeySecret()

// guardConfig is the Caddyfile of the guard tests: admin and HTTP ports,
// the log file, more global options, the storage, api_tokens options, the
// access log, the upstream, api_token_auth and reverse_proxy options,
// api_token_auth's app option, the key options and more site directives.
const guardConfig = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	log {
		output file %[3]s
		level  DEBUG
	}
	%[4]s
	api_tokens {
		issuer       https://reports.test
		storage      %[5]s
		admins       root
		max_lifetime never
		%[12]s
		%[6]s
	}
}
http://localhost:%[2]d {
	log {
		output file %[7]s
		format filter {
			request>uri query {
				delete access_token
				delete token
			}
		}
	}
	%[13]s
	api_token_auth {
		%[11]s
		scope  meta   /meta /meta/*
		scope  report /data/*
		%[9]s
	}
	reverse_proxy %[8]s {
		header_up X-Placeholders "{http.auth.user.id}|{api_token.id}|{api_token.name}|{api_token.scopes}"
		%[10]s
	}
}
`

func newGuardEnv(t *testing.T) *guardEnv {
	t.Helper()
	return newGuardEnvWith(t, "")
}

// newGuardEnvWith adds options to the api_tokens global option.
func newGuardEnvWith(t *testing.T, options string) *guardEnv {
	t.Helper()
	return newGuardEnvOn(t, "", options)
}

// newGuardEnvOn uses storage ("" for SQLite in the test's folder) and adds
// options to the api_tokens global option.
func newGuardEnvOn(t *testing.T, storage, options string) *guardEnv {
	t.Helper()
	return startGuardEnv(t, &guardEnv{storage: storage, keys: "signing_key " + testKey, options: options})
}

// startGuardEnv completes e, loads its config and sets up its users.
func startGuardEnv(t *testing.T, e *guardEnv) *guardEnv {
	t.Helper()
	e.Env = caddytesting.New(t)
	e.up, e.db, e.accessLog, e.clock = caddytesting.NewUpstream(t), e.Dir+"/tokens.db", e.Dir+"/access.log", theClock
	if e.appOption == "" {
		e.appOption = `app "Reports API"`
	}
	e.clock.Set(time.Now())
	e.load()
	ctx := context.Background()
	var err error
	if e.adminCtl, err = e.svc.Caller(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.svc.GrantRole(ctx, e.adminCtl, u, apitoken.RoleAPITokens); err != nil {
			t.Fatal(err)
		}
	}
	e.owner = e.caller("alice")
	e.Secret(testKey)
	return e
}

// load loads the guard's config into the test Caddy. Caddy ignores a load
// of the config it runs: to reload that, use reload.
func (e *guardEnv) load() {
	e.T.Helper()
	e.Load(e.caddyfile())
	e.takeApp()
}

func (e *guardEnv) caddyfile() string {
	storage := "sqlite " + e.db
	if e.storage != "" {
		storage = e.storage
	}
	return fmt.Sprintf(guardConfig, testAdminPort, testHTTPPort, e.Log, e.server, storage, e.options, e.accessLog,
		e.up.Listener.Addr(), e.guard, e.proxy, e.appOption, e.keys, e.site)
}

// reload loads the guard's config again, forced: a new config is
// provisioned and started and the old one stopped and cleaned up, even
// though nothing changed.
func (e *guardEnv) reload() {
	e.T.Helper()
	e.Reload(e.caddyfile())
	e.takeApp()
}

// takeApp takes the running config's api_tokens app and puts its service on
// the test clock.
func (e *guardEnv) takeApp() {
	e.T.Helper()
	a, err := caddy.ActiveContext().App("api_tokens")
	if err != nil {
		e.T.Fatal(err)
	}
	e.app = a.(*App)
	cfg := e.app.Service().Config()
	cfg.Now = e.clock.Now
	e.svc = apitoken.NewService(cfg)
}

// settle waits until the guard's state has read the change sequence past
// every change made so far (each of which drops the cached state it names).
func (e *guardEnv) settle() {
	e.T.Helper()
	if err := e.app.Authenticator().State().Sync(context.Background()); err != nil {
		e.T.Fatalf("reading the change sequence: %v", err)
	}
}

func (e *guardEnv) caller(id string) apitoken.Caller {
	c, err := e.svc.Caller(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// token creates and generates a token of alice's and returns it with its JWT.
func (e *guardEnv) token(name string, expires apitoken.Expiry, scopes apitoken.Scopes) (apitoken.Token, string) {
	e.T.Helper()
	tok, jwt := e.live("alice", name, expires, scopes)
	// Past the changes that made it, as the next poll would be: they would
	// drop what the test's first request caches.
	e.settle()
	return tok, jwt
}

// live creates and generates a token of user's; its JWT is a secret.
func (e *guardEnv) live(user, name string, expires apitoken.Expiry, scopes apitoken.Scopes) (apitoken.Token, string) {
	e.T.Helper()
	ctx := context.Background()
	c := e.caller(user)
	tok, err := e.svc.CreateToken(ctx, c, apitoken.TokenInput{Name: name, Expires: expires, Scopes: scopes})
	if err != nil {
		e.T.Fatal(err)
	}
	jwt, tok, err := e.svc.Generate(ctx, c, tok.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	e.Secret(jwt)
	return tok, jwt
}

// do sends a request to the guard; header pairs are name, value.
func (e *guardEnv) do(method, path string, header ...string) (*http.Response, string) {
	e.T.Helper()
	return e.Do(method, path, header...)
}

// authLogs writes the queued AUTHENTICATE logs and returns the token's.
func (e *guardEnv) authLogs(tokenID string) []apitoken.Log {
	e.T.Helper()
	ctx := context.Background()
	if err := e.app.Auditor().Flush(ctx); err != nil {
		e.T.Fatal(err)
	}
	logs, _, err := e.app.backend.store.ListLogs(ctx, apitoken.LogFilter{TokenID: tokenID, Activity: apitoken.ActivityAuthenticate,
		Page: apitoken.Page{Limit: apitoken.MaxPageLimit}})
	if err != nil {
		e.T.Fatal(err)
	}
	return logs
}

// loggedOK sums the token's AUTHENTICATE OK counts after a flush.
func (e *guardEnv) loggedOK(tokenID string) int64 {
	e.T.Helper()
	var n int64
	for _, l := range e.authLogs(tokenID) {
		if l.Result == apitoken.ResultOK {
			n += l.Count
		}
	}
	return n
}

// startLoad sends GET /meta with jwt from workers goroutines until Stop.
func (e *guardEnv) startLoad(jwt string, workers int) *caddytesting.Load {
	client := &http.Client{Transport: e.Tester.Client.Transport, Timeout: 10 * time.Second}
	return caddytesting.StartLoad(workers, client, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.Base+"/meta", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		return req
	})
}

func bearer(jwt string) []string { return []string{"Authorization", "Bearer " + jwt} }

func TestGuard_ValidTokenReachesUpstreamWithIdentity(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.token("Excel", apitoken.Expiry30d, apitoken.DefaultScopes)

	res, body := e.do("GET", "/data/sales?year=2026", "Authorization", "Bearer "+jwt,
		"X-Api-Token-User", "mallory", "x-api-token-scopes", "meta report", "Connection", "X-Api-Token-Id, keep-alive")
	if res.StatusCode != http.StatusOK || body != `{"path":"/data/sales"}` {
		t.Fatalf("got %d %s, want 200 from upstream", res.StatusCode, body)
	}
	h := e.up.LastHeaders()
	for name, want := range map[string]string{
		"X-Api-Token-User": "alice", "X-Api-Token-Id": tok.ID, "X-Api-Token-Name": "Excel", "X-Api-Token-Scopes": "meta report",
	} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("upstream saw %s = %q, want exactly %q", name, got, want)
		}
	}
	if h.Get("Authorization") != "" {
		t.Error("upstream saw the Authorization header")
	}
	if got, want := h.Get("X-Placeholders"), "alice|"+tok.ID+"|Excel|meta report"; got != want {
		t.Errorf("placeholders gave %q, want %q", got, want)
	}
	exp, err := http.ParseTime(res.Header.Get("Api-Token-Expiration"))
	if err != nil || !exp.Equal(tok.ExpiresAt().Truncate(time.Second)) {
		t.Errorf("Api-Token-Expiration = %q, want %v", res.Header.Get("Api-Token-Expiration"), tok.ExpiresAt())
	}
}

func TestGuard_BasicAuthWithTheTokenAsPasswordIsAccepted(t *testing.T) {
	e := newGuardEnv(t)
	_, jwt := e.token("Power BI", apitoken.ExpiryNever, apitoken.DefaultScopes)
	res, _ := e.do("GET", "/meta", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("anything:"+jwt)))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200", res.StatusCode)
	}
	if res.Header.Get("Api-Token-Expiration") != "" {
		t.Error("a token that never expires got an Api-Token-Expiration header")
	}
}

// refusalCase is one request the guard must refuse without reaching the upstream.
type refusalCase struct {
	name      string
	path      string
	header    []string
	status    int
	challenge string // the exact WWW-Authenticate, "" for none
	errCode   string
	reason    string // the AUTHENTICATE Fail reason logged, "" when nothing names a token
}

const (
	invalidChallenge = `Bearer realm="Reports API", error="invalid_token", error_description="token is not valid"`
	expiredChallenge = `Bearer realm="Reports API", error="invalid_token", error_description="token expired"`
)

func TestGuard_RefusalsNeverReachTheUpstream(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	_, good := e.token("good", apitoken.Expiry30d, apitoken.DefaultScopes)
	metaTok, metaOnly := e.token("meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))

	revokedTok, revoked := e.token("revoked", apitoken.Expiry30d, apitoken.DefaultScopes)
	if _, err := e.svc.Revoke(ctx, e.owner, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	supTok, superseded := e.token("superseded", apitoken.Expiry30d, apitoken.DefaultScopes)
	if _, _, err := e.svc.Generate(ctx, e.owner, supTok.ID); err != nil {
		t.Fatal(err)
	}
	// Generated two days ago with a one-day expiry.
	e.clock.Set(time.Now().Add(-48 * time.Hour))
	expTok, expired := e.token("expired", apitoken.Expiry1d, apitoken.DefaultScopes)
	e.clock.Set(time.Now())

	// Signed with the real key for another user, and by another deployment.
	forged := metaTok
	forged.Owner = "bob"
	ownerMismatch, err := e.app.signer.Issue(&forged, "some-jti", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Signed with the real key for a token that was never generated.
	neverTok, err := e.svc.CreateToken(ctx, e.owner, apitoken.TokenInput{Name: "never generated", Expires: apitoken.Expiry1d, Scopes: apitoken.DefaultScopes})
	if err != nil {
		t.Fatal(err)
	}
	never, err := e.app.signer.Issue(&neverTok, "guessed-jti", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := apitoken.ParseKey(testKey)
	other, _ := apitoken.NewSigner("https://other.test", []apitoken.Key{key}, nil)
	foreign, _ := other.Issue(&metaTok, "jti", time.Now())

	cases := []refusalCase{
		{name: "no credential", path: "/meta", status: 401, challenge: `Bearer realm="Reports API"`, errCode: "unauthorized"},
		{name: "unknown scheme", path: "/meta", header: []string{"Authorization", "Token " + good}, status: 401, challenge: `Bearer realm="Reports API"`, errCode: "unauthorized"},
		{name: "garbage token", path: "/meta", header: bearer("not.a.jwt"), status: 401, challenge: invalidChallenge, errCode: "invalid_token"},
		{name: "tampered signature", path: "/meta", header: bearer(good[:len(good)-4] + "AAAA"), status: 401, challenge: invalidChallenge, errCode: "invalid_token"},
		{name: "revoked", path: "/meta", header: bearer(revoked), status: 401, challenge: invalidChallenge, errCode: "invalid_token", reason: apitoken.ReasonRevoked},
		{name: "superseded", path: "/meta", header: bearer(superseded), status: 401, challenge: invalidChallenge, errCode: "invalid_token", reason: apitoken.ReasonSuperseded},
		{name: "expired", path: "/meta", header: bearer(expired), status: 401, challenge: expiredChallenge, errCode: "invalid_token", reason: apitoken.ReasonExpired},
		{name: "owner mismatch", path: "/meta", header: bearer(ownerMismatch), status: 401, challenge: invalidChallenge, errCode: "invalid_token", reason: apitoken.ReasonOwnerMismatch},
		{name: "never generated", path: "/meta", header: bearer(never), status: 401, challenge: invalidChallenge, errCode: "invalid_token", reason: apitoken.ReasonNotGenerated},
		{name: "foreign issuer", path: "/meta", header: bearer(foreign), status: 401, challenge: invalidChallenge, errCode: "invalid_token"},
		{name: "insufficient scope", path: "/data/sales", header: bearer(metaOnly), status: 403,
			challenge: `Bearer realm="Reports API", error="insufficient_scope", error_description="the token does not have the report scope", scope="report"`,
			errCode:   "insufficient_scope", reason: apitoken.ReasonInsufficientScope},
		{name: "path no rule matches", path: "/admin", header: bearer(good), status: 403,
			challenge: `Bearer realm="Reports API", error="insufficient_scope", error_description="no scope grants access to this path"`,
			errCode:   "insufficient_scope", reason: "path_not_allowed"},
		{name: "dot-dot path", path: "/meta/../data/x", header: bearer(metaOnly), status: 400, errCode: "invalid_request"},
		{name: "encoded dot path", path: "/meta/%2e%2e/data/x", header: bearer(metaOnly), status: 400, errCode: "invalid_request"},
		{name: "encoded slash path", path: "/meta%2F..%2Fdata/x", header: bearer(metaOnly), status: 400, errCode: "invalid_request"},
		{name: "two authorization headers", path: "/meta", header: append(bearer(good), bearer(good)...), status: 400, errCode: "invalid_request"},
		{name: "token in query", path: "/meta?access_token=" + good, status: 400, errCode: "invalid_request"},
		{name: "token over 8 KiB", path: "/meta", header: bearer(strings.Repeat("a", 8<<10+1)), status: 400, errCode: "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.Hits.Load()
			res, body := e.do("GET", c.path, c.header...)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, c.status, body)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, c.challenge)
			}
			var raw map[string]string
			if err := json.Unmarshal([]byte(body), &raw); err != nil || raw["error"] != c.errCode || raw["error_description"] == "" {
				t.Errorf("body %s, want JSON error %q with a description", body, c.errCode)
			}
			if e.up.Hits.Load() != before {
				t.Error("the upstream was reached")
			}
			if strings.Contains(body, good) {
				t.Error("the answer contains the token")
			}
		})
	}

	// Caddy's log has one line per refusal with the reason, and no token.
	logs, err := os.ReadFile(e.Log)
	if err != nil {
		t.Fatal(err)
	}
	for _, jwt := range []string{good, metaOnly, revoked, superseded, expired, ownerMismatch, foreign} {
		sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
		if strings.Contains(string(logs), sig) {
			t.Error("Caddy's log contains a token's signature")
		}
	}
	for _, reason := range []string{`"reason":"revoked"`, `"reason":"superseded"`, `"reason":"expired"`, `"reason":"owner_mismatch"`} {
		if n := strings.Count(string(logs), reason); n != 1 {
			t.Errorf("Caddy's log has %d lines with %s, want 1", n, reason)
		}
	}

	// The reasons are in the tokens' logs.
	for id, want := range map[string]string{revokedTok.ID: apitoken.ReasonRevoked, supTok.ID: apitoken.ReasonSuperseded,
		expTok.ID: apitoken.ReasonExpired, neverTok.ID: apitoken.ReasonNotGenerated} {
		logs := e.authLogs(id)
		if len(logs) != 1 || logs[0].Result != apitoken.ResultFail || logs[0].Reason != want || logs[0].ActivityBy != "Reports API" {
			t.Errorf("token %s logs %+v, want one Fail %s by Reports API", id, logs, want)
		}
	}
}

func mustScope(s apitoken.Scope) apitoken.Scopes {
	b, _ := apitoken.ScopeBit(s)
	return b
}

func TestGuard_OwnerRoleChangesApplyAtOnceAndUndoRestores(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	tok, jwt := e.token("role", apitoken.Expiry7d, apitoken.DefaultScopes)
	yes, no := true, false
	steps := []struct {
		name   string
		change func() error
		status int
		reason string
	}{
		{"role removed", func() error { _, err := e.svc.RemoveRole(ctx, e.adminCtl, "alice", apitoken.RoleAPITokens); return err }, 401, apitoken.ReasonRoleMissing},
		{"role granted again", func() error { _, err := e.svc.GrantRole(ctx, e.adminCtl, "alice", apitoken.RoleAPITokens); return err }, 200, ""},
		{"made view-only", func() error {
			_, err := e.svc.PutUser(ctx, e.adminCtl, "alice", apitoken.UserPatch{ViewOnly: &yes})
			return err
		}, 401, apitoken.ReasonViewOnly},
		{"view-only undone", func() error {
			_, err := e.svc.PutUser(ctx, e.adminCtl, "alice", apitoken.UserPatch{ViewOnly: &no})
			return err
		}, 200, ""},
		{"disabled", func() error {
			_, err := e.svc.PutUser(ctx, e.adminCtl, "alice", apitoken.UserPatch{Disabled: &yes})
			return err
		}, 401, apitoken.ReasonDisabled},
		{"enabled", func() error {
			_, err := e.svc.PutUser(ctx, e.adminCtl, "alice", apitoken.UserPatch{Disabled: &no})
			return err
		}, 200, ""},
	}
	// Warm the caches first: the change must apply although the state is cached.
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
		t.Fatalf("got %d before any change", res.StatusCode)
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		before := e.up.Hits.Load()
		res, _ := e.do("GET", "/meta", bearer(jwt)...)
		if res.StatusCode != s.status {
			t.Fatalf("after %s: status %d, want %d", s.name, res.StatusCode, s.status)
		}
		if reached := e.up.Hits.Load() != before; reached != (s.status == 200) {
			t.Fatalf("after %s: upstream reached = %v", s.name, reached)
		}
	}
	fails := map[string]int64{}
	var oks int64
	for _, l := range e.authLogs(tok.ID) {
		if l.Result == apitoken.ResultOK {
			oks += l.Count
		} else {
			fails[l.Reason] += l.Count
		}
	}
	if oks != 4 || fails[apitoken.ReasonRoleMissing] != 1 || fails[apitoken.ReasonViewOnly] != 1 || fails[apitoken.ReasonDisabled] != 1 {
		t.Errorf("logged %d OK and fails %v; want 4 OK and one each of role_missing, view_only, disabled", oks, fails)
	}
}

func TestGuard_NarrowingScopesAppliesToTheLiveTokenAtOnce(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	tok, jwt := e.token("narrow", apitoken.Expiry30d, apitoken.DefaultScopes)
	if res, _ := e.do("GET", "/data/x", bearer(jwt)...); res.StatusCode != 200 {
		t.Fatalf("got %d before the change", res.StatusCode)
	}
	meta := mustScope(apitoken.ScopeMeta)
	if _, err := e.svc.UpdateToken(ctx, e.owner, tok.ID, apitoken.TokenPatch{Scopes: &meta}); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do("GET", "/data/x", bearer(jwt)...); res.StatusCode != 403 {
		t.Fatalf("got %d after removing the report scope, want 403", res.StatusCode)
	}
	// Widening again does not reach the live JWT... it had both scopes, so
	// it is back; a JWT generated with meta only stays meta only.
	_, metaJWT := e.token("meta first", apitoken.Expiry30d, meta)
	all := apitoken.DefaultScopes
	metaTok := e.tokenByName("meta first")
	if _, err := e.svc.UpdateToken(ctx, e.owner, metaTok.ID, apitoken.TokenPatch{Scopes: &all}); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do("GET", "/data/x", bearer(metaJWT)...); res.StatusCode != 403 {
		t.Fatalf("widened token got %d before regeneration, want 403", res.StatusCode)
	}
	newJWT, _, err := e.svc.Generate(ctx, e.owner, metaTok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do("GET", "/data/x", bearer(newJWT)...); res.StatusCode != 200 {
		t.Fatalf("widened token got %d after regeneration, want 200", res.StatusCode)
	}
}

func (e *guardEnv) tokenByName(name string) apitoken.Token {
	e.T.Helper()
	toks, _, err := e.svc.ListTokens(context.Background(), e.owner, apitoken.TokenFilter{Page: apitoken.Page{Limit: 1000}})
	if err != nil {
		e.T.Fatal(err)
	}
	for _, t := range toks {
		if t.Name == name {
			return t
		}
	}
	e.T.Fatalf("no token %q", name)
	return apitoken.Token{}
}

func TestGuard_ReloadAndStopLoseNoAuditCount(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.token("reload", apitoken.Expiry30d, apitoken.DefaultScopes)
	send := func(n int) {
		for i := 0; i < n; i++ {
			if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
				t.Fatalf("request %d got %d", i, res.StatusCode)
			}
		}
	}
	send(40)
	e.reload() // a config reload right behind the requests, before any flush
	send(40)

	// Stop the app: load a config without it. The last holder of the
	// backend flushes the queue and closes the store.
	e.Tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n}\n", testAdminPort), "caddyfile")
	store, err := sqlite.Open(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logs, _, err := store.ListLogs(context.Background(), apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate, Page: apitoken.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, l := range logs {
		n += l.Count
	}
	if n != 80 {
		t.Fatalf("counted %d authentications across a reload and a stop, want 80", n)
	}
}

func TestGuard_MetricsCountAuthenticationsOnCaddysMetricsEndpoint(t *testing.T) {
	e := newGuardEnv(t)
	_, jwt := e.token("metrics", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	before := scrape(t) // the counters are process-wide: earlier tests moved them
	for i := 0; i < 7; i++ {
		e.do("GET", "/meta", bearer(jwt)...)
	}
	e.do("GET", "/data/x", bearer(jwt)...)
	e.do("GET", "/meta", bearer("garbage")...)
	e.app.Auditor().Flush(context.Background())

	after := scrape(t)
	d := delta(before, after)
	for series, want := range map[string]float64{
		okSeries: 7,
		`caddy_api_tokens_authentications_total{reason="insufficient_scope",result="Fail"}`: 1,
		malformedSeries: 1,
		jwtHitSeries:    7,
		jwtMissSeries:   2,
		queriesSeries:   2,
	} {
		if d[series] != want {
			t.Errorf("%s moved by %v, want %v", series, d[series], want)
		}
	}
	for _, series := range []string{"caddy_api_tokens_audit_queue_rows", "caddy_api_tokens_audit_inflight_rows"} {
		if v, ok := after[series]; !ok || v != 0 {
			t.Errorf("%s = %v (shown: %v), want 0 after a flush", series, v, ok)
		}
	}
	for _, series := range []string{"caddy_api_tokens_audit_flushes_total", "caddy_api_tokens_audit_flush_seconds_total"} {
		if _, ok := after[series]; !ok {
			t.Errorf("metrics lack %s", series)
		}
	}
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", testAdminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if strings.Contains(string(body), jwt[strings.LastIndexByte(jwt, '.')+1:]) {
		t.Error("the metrics contain a token's signature")
	}
}
