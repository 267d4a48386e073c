package browsertest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/apispec"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"

	// The api_tokens app, api_token_auth and api_token_admin, and Caddy's
	// standard modules (basic_auth, reverse_proxy).
	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	_ "github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// Ports of this package's test Caddy, free ports picked in TestMain, so
// that test binaries of this and other packages can run at the same time.
var (
	adminPort   = caddytesting.AdminPort
	managePort  = caddytesting.HTTPPort   // basic_auth + api_token_admin: the pages
	reportsPort = caddytesting.FreePort() // api_token_auth + reverse_proxy to the upstream
	prefixPort  = caddytesting.FreePort() // the same as managePort, under handle_path /manage/*
	dashPort    = caddytesting.FreePort() // a dashboard on 127.0.0.1, an origin the guard's cors lists
)

// chromiumPath is Debian's chromium; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

func TestMain(m *testing.M) {
	code := caddytesting.Main(m)
	stopBrowser()
	os.Exit(code)
}

// The package's tests share one Chromium, started by the first; each test
// has a browser context of its own (cookies, storage, cache and
// permissions of its own, as a fresh profile has), disposed at its end.
var (
	browserOnce sync.Once
	browserRoot context.Context
	browserErr  error
	stopBrowser = func() {}
)

// sharedBrowser is the package's Chromium, started at the first call.
func sharedBrowser() (context.Context, error) {
	browserOnce.Do(func() {
		profile, err := os.MkdirTemp("", "browsertest")
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath),
			chromedp.UserDataDir(profile),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.WindowSize(1280, 800),
			// Without these, Chromium reaches for the network, and its
			// connections are refused on a closed network.
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("lang", "en-US"),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(alloc)
		stopBrowser = func() { cancelBrowser(); cancelAlloc(); os.RemoveAll(profile) }
		if err := chromedp.Do(ctx); err != nil {
			browserErr = fmt.Errorf("starting %s: %w", chromiumPath, err)
			return
		}
		browserRoot = ctx
	})
	return browserRoot, browserErr
}

// users who can sign in with basic_auth, each with the password "pw-" and
// the name. root is a system admin by configuration.
var users = []string{"root", "alice", "bob", "carol", "dave"}

const config = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	api_tokens {
		storage      sqlite %[4]s
		signing_key  %[5]s
		admins       root
		max_lifetime 90d
	}
}
http://localhost:%[2]d {
	basic_auth {
%[6]s	}
	api_token_admin {
		api_url http://localhost:%[3]d
	}
}
http://localhost:%[8]d {
	basic_auth {
%[6]s	}
	handle_path /manage/* {
		api_token_admin
	}
}
http://localhost:%[3]d {
	api_token_auth {
		app   "Reports API"
		scope meta   /meta /meta/*
		scope report /data/*
		cors  http://127.0.0.1:%[9]d
	}
	reverse_proxy %[7]s
}
`

// foreignPage is a page of another site that a signed-in user visits: it
// frames the management pages and sends requests to the JSON routes as a
// form or a script can, without a CORS preflight. %[1]s is the management
// site, %[2]s a token id to revoke.
const foreignPage = `<!doctype html>
<title>another site</title>
<iframe id="framed" src="%[1]s/"></iframe>
<script>
const opts = { method: "POST", mode: "no-cors", credentials: "include", headers: { "Content-Type": "text/plain" } };
Promise.allSettled([
	fetch("%[1]s/tokens", { ...opts, body: '{"name": "planted", "expires": "90d", "scopes": ["meta", "report"]}' }),
	fetch("%[1]s/tokens/%[2]s/revoke", opts),
	fetch("%[1]s/tokens/%[2]s/revoke", { method: "POST", mode: "no-cors", credentials: "include" }),
]).then(() => { document.title = "sent"; });
</script>
`

// env is a running Caddy with its upstream, and a headless Chromium.
type env struct {
	*caddytesting.Env
	manage  string // the pages and the JSON routes (the Env's Base)
	reports string // the guarded report API
	foreign string // another web site, which tries to frame the pages and change tokens
	browser context.Context
	up      *caddytesting.Upstream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("the browser tests need Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	e := &env{Env: caddytesting.New(t), reports: fmt.Sprintf("http://localhost:%d", reportsPort)}
	e.manage = e.Base
	e.up = caddytesting.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"report": %q, "requested_by": %q, "rows": [{"region": "North", "amount": 120}, {"region": "South", "amount": 80}]}`,
			r.URL.Path, r.Header.Get("X-Api-Token-User"))
	})
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, foreignPage, e.manage, r.URL.Query().Get("revoke"))
	}))
	t.Cleanup(foreign.Close)
	e.foreign = foreign.URL

	e.Load(fmt.Sprintf(config, adminPort, managePort, reportsPort, filepath.Join(e.Dir, "t.db"),
		apitoken.GenerateKeySecret(), caddytesting.Accounts(t, "\t\t", users...), strings.TrimPrefix(e.up.URL, "http://"), prefixPort, dashPort))
	// The answers of the JSON routes the test calls are checked against
	// docs/openapi.json.
	site := apispec.Site(nil)
	e.Tester.Client.Transport = apispec.Transport(t, e.Tester.Client.Transport, func(r *http.Request) (string, bool) {
		if r.URL.Port() != strconv.Itoa(managePort) {
			return "", false // the guarded report API
		}
		return site(r)
	})

	// A browser context of the test's own in the package's Chromium; each
	// user gets a tab in it.
	root, err := sharedBrowser()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a browser context: %v", err)
	}
	e.browser = ctx

	// Set the users up as a system admin would, through the JSON routes.
	e.api("root", "PUT", "/admin/users/alice/roles/api_tokens", "", 200)
	e.api("root", "PUT", "/admin/users/bob/roles/api_tokens", "", 200)
	e.api("root", "PUT", "/admin/users/carol", `{"view_only": true, "email": "carol@example.com"}`, 200)
	return e
}

// api calls a JSON route as user and returns the decoded answer.
func (e *env) api(user, method, path, body string, status int) map[string]any {
	e.T.Helper()
	return e.Call(user, method, path, body).Want(status, "").JSON
}

// report calls the guarded report API with a JWT, as Excel would, and
// returns the status and the body.
func (e *env) report(path, jwt string) (int, string) {
	e.T.Helper()
	a := caddytesting.Send(e.T, e.Tester.Client, caddytesting.Call{Method: "GET", Base: e.reports, Path: path, Header: []string{"Authorization", "Bearer " + jwt}})
	return a.Status, a.Raw
}

func (e *env) upstreamCalls() int { return int(e.up.Hits.Load()) }

// waitForLog waits until the token's logs, read through the JSON route,
// hold an entry of the activity (AUTHENTICATE rows are written in the
// background).
func (e *env) waitForLog(user, id, activity string) {
	e.T.Helper()
	caddytesting.Eventually(e.T, 5*time.Second, "a "+activity+" log of "+id, func() bool {
		logs, _ := e.api(user, "GET", "/tokens/"+id+"/logs", "", 200)["logs"].([]any)
		for _, l := range logs {
			if l.(map[string]any)["activity"] == activity {
				return true
			}
		}
		return false
	})
}

type tab struct {
	t    testing.TB
	e    *env
	user string
	ctx  context.Context

	mu       sync.Mutex
	problems []string // script errors, CSP violations, failed page loads
	allowed  []string // texts of expected console errors
}

// tab opens a tab that sends user's basic credentials with every request,
// as a browser does once its user has signed in; for user "", a tab that
// has signed in nowhere.
func (e *env) tab(user string) *tab {
	t := e.T
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser)
	t.Cleanup(cancel)
	b := &tab{t: t, e: e, user: user, ctx: ctx}
	console := chromedp.Console(ctx)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user))
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			if _, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{}); err != nil {
				return err
			}
			if user == "" {
				return nil
			}
			if _, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
				Headers: network.Headers{"Authorization": auth}}); err != nil {
				return err
			}
			// A headless page is never the focused window; the clipboard
			// needs a focused page.
			_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
			return err
		}),
		chromedp.EmulateViewport(1280, 800),
	); err != nil {
		t.Fatalf("opening a tab for %s: %v", user, err)
	}
	// The clipboard, for the copy button: the page may write it (as a
	// click does anyway) and the test may read it.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: e.manage,
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != "error" && !m.IsException() && m.Source != "security" {
				continue
			}
			b.mu.Lock()
			b.problems = append(b.problems, fmt.Sprintf("%s (%s %s:%d)", m.String(), m.Source, m.URL, m.Line))
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			if !b.isAllowed(p) {
				t.Errorf("%s's tab: %s", user, p)
			}
		}
	})
	return b
}

// allow marks console errors that contain text as expected: a refused
// request shows in the console as a failed load.
func (b *tab) allow(text string) {
	b.mu.Lock()
	b.allowed = append(b.allowed, text)
	b.mu.Unlock()
}

func (b *tab) isAllowed(p string) bool {
	for _, a := range b.allowed {
		if strings.Contains(p, a) {
			return true
		}
	}
	return false
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fatal("%v", err)
	}
}

// fatal fails the test with a screenshot of the tab's state, when
// screenshots are kept.
func (b *tab) fatal(format string, args ...any) {
	b.t.Helper()
	b.shot("failure-" + strings.ReplaceAll(b.t.Name(), "/", "-"))
	b.t.Fatalf("%s's tab: "+format, append([]any{b.user}, args...)...)
}

func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.e.manage + path))
}

// eval runs a JavaScript expression and decodes its value; a promise is
// awaited.
func eval[T any](b *tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fatal("evaluating %s: %v", js, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is true.
func (b *tab) waitFor(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		b.fatal("waiting for %s (%s): %v", what, js, err)
	}
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// replaceText selects the text of a field and types text over it, as a
// person does with Ctrl+A.
func (b *tab) replaceText(sel, text string) {
	b.t.Helper()
	eval[any](b, fmt.Sprintf(`(() => { const f = document.querySelector(%s); f.focus(); f.select(); return null; })()`, js(sel)))
	b.do(chromedp.KeyEvent(text))
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").replace(/\s+/g, " ").trim()`, js(sel)))
}

// rows is the text of the rows of a table body, each cell's text joined
// by " | ".
func (b *tab) rows(tbody string) []string {
	b.t.Helper()
	return eval[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%s + " tr")].map((tr) =>
		[...tr.cells].map((c) => c.textContent.replace(/\s+/g, " ").trim()).join(" | "))`, js(tbody)))
}

// focusedJS describes the focused element: its id, else its aria-label,
// else its text.
const focusedJS = `(() => { const e = document.activeElement; return e.id || e.getAttribute("aria-label") || e.textContent.trim(); })()`

// wantFocus waits until the focused element is want (focus moves in a
// dialog's close event, which comes after the dialog is closed), and fails
// naming where focus is instead.
func (b *tab) wantFocus(want, when string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](focusedJS+" === "+js(want), chromedp.WithPollingTimeout(3*time.Second))); err != nil {
		b.fatal("focus %s is on %q, want %q", when, eval[string](b, focusedJS), want)
	}
}

// rowText is the text of the grid row whose name cell is name, its cells
// joined by " | ".
func (b *tab) rowText(name string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(() => {
		const td = [...document.querySelectorAll("#tokens td.name")].find((td) => td.textContent === %s);
		return td ? [...td.parentElement.cells].map((c) => c.textContent.replace(/\s+/g, " ").trim()).join(" | ") : "";
	})()`, js(name)))
}

func (b *tab) waitRow(name, contains string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("a row %q with %q", name, contains), fmt.Sprintf(`(() => {
		const td = [...document.querySelectorAll("#tokens td.name")].find((td) => td.textContent === %s);
		return !!td && td.parentElement.textContent.includes(%s);
	})()`, js(name), js(contains)))
}

// shot saves a screenshot of the tab when APITOKENS_SCREENSHOTS names a
// folder.
func (b *tab) shot(name string) {
	dir := os.Getenv("APITOKENS_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// WebP at quality 80: a third of a PNG's size, for the docs.
	webp := chromedp.Action[[]byte](func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		q := int64(80)
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatWebp, Quality: &q})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	})
	img, err := chromedp.Run(ctx, webp)
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".webp"), img, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// js quotes s as a JavaScript string.
func js(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
