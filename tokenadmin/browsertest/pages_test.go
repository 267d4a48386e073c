package browsertest_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// The life of a token as its owner lives it in the pages: create, generate,
// copy, use, regenerate, edit, read its logs, revoke.
func TestBrowser_OwnerCreatesGeneratesCopiesUsesAndRevokesAToken(t *testing.T) {
	e := newEnv(t)
	b := e.tab("alice")

	b.open("/")
	b.waitFor("the empty grid", `!document.querySelector("#empty").hidden`)
	if h1 := b.text("h1"); h1 != "My API Access Tokens" {
		t.Fatalf("heading %q", h1)
	}

	// Create New, from the keyboard: the dialog opens with the name
	// focused, and Enter in the name field submits it.
	b.do(chromedp.Focus(chromedp.CSS("#create")), chromedp.KeyEvent(kb.Enter))
	b.waitFor("the create dialog", `document.querySelector("#token-dialog").open`)
	b.wantFocus("token-name", "in the create dialog")
	// The expiry choices are the policy's (max_lifetime 90d), 30 days first.
	if got := eval[string](b, `[...document.querySelectorAll("#token-expires option")].map((o) => o.value + (o.selected ? "*" : "")).join(" ")`); got != "1d 7d 30d* 60d 90d" {
		t.Fatalf("expiry choices %q", got)
	}
	b.shot("create-dialog")
	b.do(chromedp.SetValue(chromedp.CSS("#token-expires"), "7d"),
		chromedp.SendKeys(chromedp.CSS("#token-name"), "Excel sales\n"))
	b.waitRow("Excel sales", "Not Generated")
	if row := b.rowText("Excel sales"); !strings.Contains(row, "meta") || !strings.Contains(row, "report") || !strings.Contains(row, "7 days") {
		t.Fatalf("new row: %q", row)
	}
	b.waitFor("the dialog to close", `!document.querySelector("#token-dialog").open`)
	// Focus goes to the new token's Generate button, the next step.
	b.wantFocus("Generate Excel sales", "after create")
	if n := e.upstreamCalls(); n != 0 {
		t.Fatalf("the upstream was called %d times", n)
	}

	// Generate: the JWT is shown once, with its expiry and the warning.
	b.click(`button[aria-label="Generate Excel sales"]`)
	b.waitFor("the token dialog", `document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value !== ""`)
	jwt := eval[string](b, `document.querySelector("#jwt-value").value`)
	if !jwtShape.MatchString(jwt) {
		t.Fatalf("the dialog shows %q, not a JWT", jwt)
	}
	if w := b.text("#jwt-warning"); !strings.Contains(w, "it will not be shown again") {
		t.Fatalf("warning %q", w)
	}
	if exp := b.text("#jwt-expires"); exp == "" || exp == "never" {
		t.Fatalf("expiry shown: %q", exp)
	}
	b.wantFocus("jwt-copy", "in the token dialog")

	// Copy: the clipboard holds something else until the button is pressed.
	eval[any](b, `navigator.clipboard.writeText("not the token").then(() => null)`)
	b.click("#jwt-copy")
	b.waitFor("the copy to be confirmed", `document.querySelector("#jwt-copied").textContent === "Copied to the clipboard."`)
	b.shot("generated-dialog")
	copied := eval[string](b, `navigator.clipboard.readText()`)
	if copied != jwt {
		t.Fatalf("the clipboard holds %q, want the JWT shown", copied)
	}

	// The copied token opens the report API, as alice.
	if status, body := e.report("/data/sales", copied); status != 200 || !strings.Contains(body, `"requested_by": "alice"`) {
		t.Fatalf("the report API with the copied token: %d %s", status, body)
	}

	// Closing the dialog forgets the JWT: it is nowhere in the page, in
	// storage, cookies or any URL the page loaded.
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the token dialog to close", `!document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value === ""`)
	leak := eval[string](b, fmt.Sprintf(`(() => {
		const jwt = %s;
		if (document.documentElement.outerHTML.includes(jwt)) return "the DOM";
		if ([...document.querySelectorAll("input, textarea")].some((e) => e.value.includes(jwt))) return "a field";
		if (localStorage.length || sessionStorage.length) return "storage";
		if (document.cookie) return "a cookie";
		if (location.href.includes(jwt) || performance.getEntries().some((e) => e.name.includes(jwt))) return "a URL";
		return "";
	})()`, js(jwt)))
	if leak != "" {
		t.Fatalf("after the dialog closed, the JWT is still in %s", leak)
	}
	b.wantFocus("Regenerate Excel sales", "after the token dialog")

	// Its use shows on the next load.
	e.waitForLog("alice", eval[string](b, `document.querySelector("#tokens tbody tr").dataset.token`), "AUTHENTICATE")
	b.open("/")
	b.waitRow("Excel sales", "Generated - Active")
	if row := b.rowText("Excel sales"); strings.Contains(row, "Never") {
		t.Fatalf("last used is not shown: %q", row)
	}

	// Regenerate asks first; Escape keeps the token in use.
	b.click(`button[aria-label="Regenerate Excel sales"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.wantFocus("confirm-cancel", "in the confirmation")
	if txt := b.text("#confirm-text"); !strings.Contains(txt, "stops working at once") {
		t.Fatalf("confirmation %q", txt)
	}
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the confirmation to close", `!document.querySelector("#confirm-dialog").open`)
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("a cancelled regenerate changed the token: %d", status)
	}
	b.click(`button[aria-label="Regenerate Excel sales"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.click("#confirm-ok")
	b.waitFor("the new token", fmt.Sprintf(`document.querySelector("#jwt-dialog").open && !["", %s].includes(document.querySelector("#jwt-value").value)`, js(jwt)))
	jwt2 := eval[string](b, `document.querySelector("#jwt-value").value`)
	b.click("#jwt-done")
	if status, _ := e.report("/meta", jwt); status != 401 {
		t.Fatalf("the old JWT after regenerate: %d", status)
	}
	if status, _ := e.report("/meta", jwt2); status != 200 {
		t.Fatalf("the new JWT: %d", status)
	}

	// Edit: a new name and the report list only; narrowing applies to the
	// live JWT at once.
	b.click(`button[aria-label="Edit Excel sales"]`)
	b.waitFor("the edit dialog", `document.querySelector("#token-dialog").open`)
	if v := eval[string](b, `document.querySelector("#token-name").value + "|" + document.querySelector("#token-expires").value`); v != "Excel sales|7d" {
		t.Fatalf("the edit dialog holds %q", v)
	}
	b.replaceText("#token-name", "Excel report list")
	b.do(chromedp.Click(chromedp.CSS(`#token-form input[value="report"]`)),
		chromedp.Click(chromedp.CSS("#token-submit")))
	b.waitRow("Excel report list", "meta")
	if cells := strings.Split(b.rowText("Excel report list"), " | "); cells[2] != "meta" {
		t.Fatalf("the edited row has the scopes %q, want meta", cells[2])
	}
	if status, _ := e.report("/data/sales", jwt2); status != 403 {
		t.Fatalf("report data after narrowing to meta: %d", status)
	}
	if status, _ := e.report("/meta", jwt2); status != 200 {
		t.Fatalf("the report list after narrowing to meta: %d", status)
	}

	// Widening the expiry waits for the next generation, and the row says
	// so, keeping the date of the JWT in use; report, back within what the
	// JWT claims, applies at once.
	expiry := b.text(`#tokens tbody tr time`)
	b.click(`button[aria-label="Edit Excel report list"]`)
	b.waitFor("the edit dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.Click(chromedp.CSS(`#token-form input[value="report"]`)),
		chromedp.SetValue(chromedp.CSS("#token-expires"), "30d"),
		chromedp.Click(chromedp.CSS("#token-submit")))
	b.waitRow("Excel report list", "Regenerate to apply")
	if got := b.text(`#tokens tbody tr time`); got != expiry {
		t.Fatalf("the expiry shown after widening is %q, want the JWT's %q", got, expiry)
	}
	if status, _ := e.report("/data/sales", jwt2); status != 200 {
		t.Fatalf("report data after restoring the JWT's report scope: %d", status)
	}

	// A second token for the screenshot, and a name clash refused in the
	// dialog with the server's message.
	b.click("#create")
	b.waitFor("the create dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#token-name"), "EXCEL REPORT LIST\n"))
	b.allow("409")
	b.waitFor("the clash to be shown", `!document.querySelector("#token-dialog .form-error").hidden`)
	if msg := b.text("#token-dialog .form-error"); !strings.Contains(strings.ToLower(msg), "already") {
		t.Fatalf("the clash says %q", msg)
	}
	b.replaceText("#token-name", "Power BI finance\r")
	b.waitRow("Power BI finance", "Not Generated")

	// Token Logs.
	b.click(`button[aria-label="Logs Excel report list"]`)
	b.waitFor("the logs", `document.querySelectorAll("#logs-table tbody tr").length >= 5`)
	logs := strings.Join(b.rows("#logs-table tbody"), "\n")
	for _, want := range []string{"| Create Excel sales | alice |", "| Generate Excel sales | alice |", "| Update Excel report list | alice |",
		"| Authenticate Excel sales | Reports API | OK | 127.0.0.1 | Go-http-client/1.1 |"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the logs lack %q:\n%s", want, logs)
		}
	}
	b.shot("token-logs")
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the logs to close", `!document.querySelector("#logs-dialog").open`)
	b.wantFocus("Logs Excel report list", "after the logs")

	// Revoke, confirmed: final.
	b.click(`button[aria-label="Revoke Excel report list"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.click("#confirm-ok")
	b.waitRow("Excel report list", "Revoked")
	if n := eval[int](b, `document.querySelectorAll('button[aria-label$="Excel report list"]').length`); n != 1 {
		t.Fatalf("a revoked token offers %d actions, want Logs only", n)
	}
	if status, _ := e.report("/meta", jwt2); status != 401 {
		t.Fatalf("the revoked JWT: %d", status)
	}
	b.wantFocus("Logs Excel report list", "after revoke")

	// A token made elsewhere (the JSON routes) and used shows on the next
	// load, newest first.
	id := e.api("alice", "POST", "/tokens", `{"name": "Nightly export script", "expires": "90d", "scopes": ["report"]}`, 201)["id"].(string)
	if status, _ := e.report("/data/sales", e.api("alice", "POST", "/tokens/"+id+"/generate", "", 200)["token"].(string)); status != 200 {
		t.Fatalf("the script's token: %d", status)
	}
	e.waitForLog("alice", id, "AUTHENTICATE")
	b.open("/")
	b.waitRow("Nightly export script", "Generated - Active")
	if got := eval[string](b, `[...document.querySelectorAll("#tokens td.name")].map((td) => td.textContent).join(", ")`); got != "Nightly export script, Power BI finance" {
		t.Fatalf("the grid after a load, revoked tokens hidden: %s", got)
	}
	b.click("#show-revoked")
	b.waitRow("Excel report list", "Revoked")
	if got := eval[string](b, `[...document.querySelectorAll("#tokens td.name")].map((td) => td.textContent).join(", ")`); got != "Nightly export script, Power BI finance, Excel report list" {
		t.Fatalf("the grid with Show revoked: %s", got)
	}
	b.shot("my-tokens")

	// A scope the JWT in use does not claim is struck through until the
	// next generation.
	pbi := e.api("alice", "POST", "/tokens", `{"name": "Power BI", "expires": "7d", "scopes": ["meta"]}`, 201)["id"].(string)
	e.api("alice", "POST", "/tokens/"+pbi+"/generate", "", 200)
	e.api("alice", "PATCH", "/tokens/"+pbi, `{"scopes": ["meta", "report"]}`, 200)
	b.open("/")
	b.waitRow("Power BI", "Regenerate to apply")
	if off := eval[string](b, `[...document.querySelectorAll("#tokens tbody tr .tag.off")].map((e) => e.textContent).join(" ")`); off != "report" {
		t.Fatalf("struck-through scopes %q, want report", off)
	}
	b.shot("my-tokens-regenerate-to-apply")
}

// The pages link and call everything relative to themselves, so they work
// where the handler is mounted under a path (handle_path /manage/*).
func TestBrowser_PagesWorkUnderAPathPrefix(t *testing.T) {
	e := newEnv(t)
	base := fmt.Sprintf("http://localhost:%d/manage", prefixPort)
	b := e.tab("alice")
	b.do(chromedp.Navigate(base + "/"))
	b.waitFor("the empty grid", `!document.querySelector("#empty").hidden`)
	b.click("#create")
	b.waitFor("the create dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#token-name"), "Under a prefix\n"))
	b.waitRow("Under a prefix", "Not Generated")
	b.click(`button[aria-label="Generate Under a prefix"]`)
	b.waitFor("the token dialog", `document.querySelector("#jwt-value").value !== ""`)
	jwt := eval[string](b, `document.querySelector("#jwt-value").value`)
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("the token made under a prefix: %d", status)
	}
	// This mount has no api_url: the dialog says whom to ask.
	if url, hint := eval[string](b, `document.querySelector("#jwt-url").value`), b.text("#jwt-url-hint"); url != "" || !strings.Contains(hint, "Ask your administrator") {
		t.Fatalf("without api_url the URL field holds %q, its hint %q", url, hint)
	}

	r := e.tab("root")
	r.do(chromedp.Navigate(base + "/ui/admin/tokens"))
	r.waitRow("Under a prefix", "alice")
	if href := eval[string](r, `document.querySelector('nav a[href$="users"]').href`); href != base+"/ui/admin/users" {
		t.Fatalf("the users link goes to %s", href)
	}
}

// A system admin finds another user's token with the filters and revokes
// it; the owner's JWT stops at once and no one else's does.
func TestBrowser_AdminRevokesAnotherUsersToken(t *testing.T) {
	e := newEnv(t)
	bobs := e.api("bob", "POST", "/tokens", `{"name": "Power BI finance", "expires": "90d", "scopes": ["report"]}`, 201)["id"].(string)
	bobJWT := e.api("bob", "POST", "/tokens/"+bobs+"/generate", "", 200)["token"].(string)
	alices := e.api("alice", "POST", "/tokens", `{"name": "Nightly export", "expires": "30d", "scopes": ["meta", "report"]}`, 201)["id"].(string)
	aliceJWT := e.api("alice", "POST", "/tokens/"+alices+"/generate", "", 200)["token"].(string)
	e.api("alice", "POST", "/tokens", `{"name": "Excel sales", "expires": "7d", "scopes": ["meta"]}`, 201)
	if status, _ := e.report("/data/q3", bobJWT); status != 200 {
		t.Fatalf("bob's JWT before: %d", status)
	}

	b := e.tab("root")
	b.open("/ui/admin/tokens")
	b.waitFor("every token", `document.querySelectorAll("#tokens tbody tr").length === 3`)
	b.shot("admin-tokens")

	// Filter by owner, then by status.
	b.do(chromedp.SendKeys(chromedp.CSS("#filter-owner"), "bob"), chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	b.waitFor("bob's tokens only", `document.querySelectorAll("#tokens tbody tr").length === 1`)
	b.waitRow("Power BI finance", "bob")
	b.do(chromedp.Click(chromedp.CSS("#filter-clear")))
	b.waitFor("every token again", `document.querySelectorAll("#tokens tbody tr").length === 3`)
	b.do(chromedp.SetValue(chromedp.CSS("#filter-status"), "not_generated"), chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	b.waitFor("the tokens not generated", `document.querySelectorAll("#tokens tbody tr").length === 1`)
	b.waitRow("Excel sales", "Not Generated")
	b.do(chromedp.Click(chromedp.CSS("#filter-clear")))
	b.waitFor("every token again", `document.querySelectorAll("#tokens tbody tr").length === 3`)

	b.click(`button[aria-label="Revoke Power BI finance of bob"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	if title := b.text("#confirm-title"); !strings.Contains(title, "of bob") {
		t.Fatalf("confirmation %q", title)
	}
	b.click("#confirm-ok")
	b.waitRow("Power BI finance", "Revoked")
	if status, _ := e.report("/data/q3", bobJWT); status != 401 {
		t.Fatalf("bob's JWT after an admin revoked it: %d", status)
	}
	if status, _ := e.report("/data/q3", aliceJWT); status != 200 {
		t.Fatalf("alice's JWT after bob's was revoked: %d", status)
	}
	got := e.api("bob", "GET", "/tokens/"+bobs, "", 200)
	if got["status"] != "revoked" {
		t.Fatalf("bob's token: %v", got)
	}

	// The admin's revocation is in the token's log, by root.
	b.click(`button[aria-label="Logs Power BI finance of bob"]`)
	b.waitFor("the logs", `document.querySelector("#logs-table tbody").textContent.includes("Revoke")`)
	if logs := strings.Join(b.rows("#logs-table tbody"), "\n"); !strings.Contains(logs, "| Revoke Power BI finance | root | revoked by system admin root |") {
		t.Fatalf("the logs lack root's revocation:\n%s", logs)
	}
	b.do(chromedp.KeyEvent(kb.Escape))

	// The admin pages are not for alice, and her pages do not link them.
	a := e.tab("alice")
	a.allow("403")
	a.open("/ui/admin/tokens")
	if msg := a.text("#page-error"); msg != "This page is for system admins." {
		t.Fatalf("alice on the admin page: %q", msg)
	}
	// Her use of her JWT shows on the next load once it is logged.
	e.waitForLog("alice", alices, "AUTHENTICATE")
	a.open("/")
	a.waitRow("Nightly export", "Generated - Active")
	if n := eval[int](a, `document.querySelectorAll('a[href*="ui/admin"]').length`); n != 0 {
		t.Fatalf("alice's page links %d admin pages", n)
	}
}

// A system admin manages users and roles in the page.
func TestBrowser_AdminManagesUsersAndRoles(t *testing.T) {
	e := newEnv(t)
	b := e.tab("root")
	b.open("/ui/admin/users")
	b.waitFor("the users", `document.querySelectorAll("#users tbody tr").length === 4`) // root too, made at sign-in

	// Add dave with an email and the token role.
	b.click("#add-user")
	b.waitFor("the user dialog", `document.querySelector("#user-dialog").open`)
	b.wantFocus("user-id", "in the user dialog")
	b.do(chromedp.SendKeys(chromedp.CSS("#user-id"), "dave"),
		chromedp.SendKeys(chromedp.CSS("#user-email"), "dave@example.com"),
		chromedp.Click(chromedp.CSS("#user-role-api_tokens")),
		chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("dave's row", `!!document.querySelector('#users tr[data-user="dave"]')`)
	if row := b.text(`#users tr[data-user="dave"]`); !strings.Contains(row, "dave@example.com") || !strings.Contains(row, "api_tokens") {
		t.Fatalf("dave's row: %q", row)
	}
	b.wantFocus("Edit dave", "after saving")
	// dave can now use the token pages.
	d := e.tab("dave")
	d.open("/")
	d.waitFor("dave's grid", `!!document.querySelector("#create") && !document.querySelector("#empty").hidden`)

	// carol is view-only: the token role is refused, with the reason.
	b.click(`button[aria-label="Edit carol"]`)
	b.waitFor("carol's dialog", `document.querySelector("#user-dialog").open && document.querySelector("#user-view-only").checked`)
	b.allow("409")
	b.do(chromedp.Click(chromedp.CSS("#user-role-api_tokens")), chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("the refusal", `!document.querySelector("#user-dialog .form-error").hidden`)
	if msg := b.text("#user-dialog .form-error"); !strings.Contains(msg, "view-only") {
		t.Fatalf("the refusal says %q", msg)
	}
	b.shot("admin-user-refused")
	// No longer view-only, the role is granted in the same save.
	b.do(chromedp.Click(chromedp.CSS("#user-view-only")), chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("the dialog to close", `!document.querySelector("#user-dialog").open`)
	u := e.api("root", "GET", "/admin/users?limit=1000", "", 200)
	roles := map[string]string{}
	for _, x := range u["users"].([]any) {
		m := x.(map[string]any)
		roles[m["id"].(string)] = fmt.Sprintf("%v %v %v %v", m["roles"], m["view_only"], m["disabled"], m["email"])
	}
	if roles["carol"] != "[api_tokens] false false carol@example.com" {
		t.Fatalf("carol: %s", roles["carol"])
	}

	// alice becomes an admin, and dave is disabled: refused everywhere.
	b.click(`button[aria-label="Edit alice"]`)
	b.waitFor("alice's dialog", `document.querySelector("#user-dialog").open`)
	b.do(chromedp.Click(chromedp.CSS("#user-role-admin")), chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("alice's roles", `document.querySelector('#users tr[data-user="alice"]').textContent.includes("admin")`)
	b.click(`button[aria-label="Edit dave"]`)
	b.waitFor("dave's dialog", `document.querySelector("#user-dialog").open`)
	b.do(chromedp.Click(chromedp.CSS("#user-disabled")), chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("dave disabled", `document.querySelector('#users tr[data-user="dave"]').textContent.includes("Disabled")`)
	b.shot("admin-users")
	d.allow("403")
	d.open("/")
	if msg := d.text("#page-error"); msg != "Your account is disabled." {
		t.Fatalf("disabled dave sees %q", msg)
	}
	a := e.tab("alice")
	a.open("/ui/admin/users")
	a.waitFor("the users, for alice the admin", `document.querySelectorAll("#users tbody tr").length === 5`) // and dave
}

// Another web site cannot show the pages in a frame, nor change tokens
// with the user's credentials; and the pages run no code but their own.
func TestBrowser_OtherSitesCannotFrameThePagesOrChangeTokens(t *testing.T) {
	e := newEnv(t)
	id := e.api("alice", "POST", "/tokens", `{"name": "Excel sales", "expires": "30d", "scopes": ["meta"]}`, 201)["id"].(string)
	jwt := e.api("alice", "POST", "/tokens/"+id+"/generate", "", 200)["token"].(string)

	b := e.tab("alice")
	b.allow("X-Frame-Options")
	b.allow("frame-ancestors")
	b.allow("403")
	b.allow("415")
	b.do(chromedp.Navigate(e.foreign + "/?revoke=" + id))
	b.waitFor("the requests to be sent", `document.title === "sent"`)
	// The frame is a target of its own (another site, another process):
	// it shows the browser's error page, not the management page.
	targets, err := chromedp.Targets(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	framed := 0
	for _, x := range targets {
		if x.Type == "iframe" && strings.HasPrefix(x.URL, e.manage) {
			framed++
			fctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(x.TargetID), chromedp.WithDetachOnCancel())
			defer cancel()
			shown, err := chromedp.Run(fctx, chromedp.Evaluate[string](`location.href + " " + document.title`))
			if err != nil {
				t.Fatalf("reading the frame: %v", err)
			}
			if !strings.HasPrefix(shown, "chrome-error:") {
				t.Fatalf("another site shows the page in a frame: %s", shown)
			}
		}
	}
	if framed != 1 {
		t.Fatalf("%d frames of the management site, want 1", framed)
	}
	if got := e.api("alice", "GET", "/tokens", "", 200)["tokens"].([]any); len(got) != 1 || got[0].(map[string]any)["status"] != "generated_inactive" {
		t.Fatalf("alice's tokens after the other site's requests: %v", got)
	}
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("the token after the other site's requests: %d", status)
	}

	// Script and style added to the page are refused by its policy.
	b.allow("Content Security Policy")
	b.open("/")
	b.waitRow("Excel sales", "Generated")
	ran := eval[bool](b, `new Promise((done) => {
		const s = document.createElement("script");
		s.textContent = "window.injected = true";
		document.head.append(s);
		const st = document.createElement("style");
		st.textContent = "body { display: none }";
		document.head.append(st);
		setTimeout(() => done(window.injected === true || getComputedStyle(document.body).display === "none"), 100);
	})`)
	if ran {
		t.Fatal("inline script or style ran in the page")
	}
}

// A system admin adds a service account, finds it by kind and name, and
// creates and generates its token in the page; the JWT opens the report API.
// On All API Tokens, a service account's token can be generated again, a
// person's cannot.
func TestBrowser_AdminMakesAServiceAccountAndGeneratesItsToken(t *testing.T) {
	e := newEnv(t)
	e.api("alice", "POST", "/tokens", `{"name": "Excel sales", "expires": "30d", "scopes": ["meta"]}`, 201)
	b := e.tab("root")
	b.open("/ui/admin/users")
	b.waitFor("the users", `document.querySelectorAll("#users tbody tr").length > 0`)
	b.click("#add-user")
	b.waitFor("the user dialog", `document.querySelector("#user-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#user-id"), "svc-export"),
		chromedp.SetValue(chromedp.CSS("#user-kind"), "service"),
		chromedp.SendKeys(chromedp.CSS("#user-name"), "Nightly export"),
		chromedp.Click(chromedp.CSS("#user-role-api_tokens")),
		chromedp.Click(chromedp.CSS("#user-submit")))
	b.waitFor("the service account's row", `!!document.querySelector('#users tr[data-user="svc-export"]')`)
	if row := b.text(`#users tr[data-user="svc-export"]`); !strings.Contains(row, "Service account") ||
		!strings.Contains(row, "Nightly export") || !strings.Contains(row, "never") {
		t.Fatalf("svc-export's row: %q", row)
	}
	// Only service accounts, found by a part of the name.
	b.do(chromedp.SetValue(chromedp.CSS("#filter-kind"), "service"), chromedp.SendKeys(chromedp.CSS("#filter-q"), "nightly"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	b.waitFor("the filtered list", `document.querySelectorAll("#users tbody tr").length === 1`)

	b.click(`button[aria-label="New token svc-export"]`)
	b.waitFor("the token dialog", `document.querySelector("#svc-token-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#svc-token-name"), "export"), chromedp.Click(chromedp.CSS("#svc-token-submit")))
	b.waitFor("the JWT", `document.querySelector("#admin-jwt-dialog").open && document.querySelector("#admin-jwt-value").value !== ""`)
	jwt := eval[string](b, `document.querySelector("#admin-jwt-value").value`)
	if status, body := e.report("/meta", jwt); status != 200 || !strings.Contains(body, "svc-export") {
		t.Fatalf("the report API with the JWT the page showed: %d %s", status, body)
	}
	b.do(chromedp.Click(chromedp.CSS(`#admin-jwt-dialog [data-close]`)))
	b.waitFor("the JWT dropped from the page once its dialog closed", `document.querySelector("#admin-jwt-value").value === ""`)

	b.open("/ui/admin/tokens")
	b.waitFor("the tokens", `document.querySelectorAll("#tokens tbody tr").length === 2`)
	if n := eval[int](b, `document.querySelectorAll('#tokens button[data-action="generate"]').length`); n != 1 {
		t.Fatalf("%d Generate buttons on All API Tokens, want 1 (the service account's, not alice's)", n)
	}
}
