package browsertest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// names is the names of the grid's rows, in order.
func (b *tab) names() string {
	b.t.Helper()
	return eval[string](b, `[...document.querySelectorAll("#tokens td.name")].map((td) => td.textContent).join(", ")`)
}

// Revoked tokens are hidden until "Show revoked" is on, on My tokens and on
// All API Tokens. The server filters them (status=...), so that paging
// works: 110 revoked tokens newer than the 3 live ones do not fill the
// first page. The switch is kept in the page's URL.
func TestBrowser_RevokedTokensAreHiddenUntilShowRevoked(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"Excel sales", "Power BI finance", "Nightly export"} {
		e.api("alice", "POST", "/tokens", fmt.Sprintf(`{"name": %q, "expires": "30d", "scopes": ["meta"]}`, name), 201)
	}
	const revoked = 110 // more than a page (100)
	for i := range revoked {
		id := e.api("alice", "POST", "/tokens", fmt.Sprintf(`{"name": "old %03d", "expires": "1d", "scopes": ["meta"]}`, i), 201)["id"].(string)
		e.api("alice", "POST", "/tokens/"+id+"/revoke", "", 200)
	}

	b := e.tab("alice")
	b.open("/")
	b.waitRow("Excel sales", "Not Generated")
	if got := b.names(); got != "Nightly export, Power BI finance, Excel sales" {
		t.Fatalf("My tokens, revoked hidden: %s", got)
	}
	if eval[bool](b, `document.querySelector("#show-revoked").checked || !document.querySelector("#more").hidden`) {
		t.Fatal("Show revoked is on, or More is offered, before anything was asked")
	}

	// Show revoked: the first page, then the rest with More.
	b.click("#show-revoked")
	b.waitFor("a page with the revoked tokens", `document.querySelectorAll("#tokens tbody tr").length === 100 && !document.querySelector("#more").hidden`)
	if !strings.HasSuffix(eval[string](b, `location.search`), "revoked=show") {
		t.Fatalf("the page's URL does not keep the switch: %s", eval[string](b, `location.href`))
	}
	b.click("#more")
	b.waitFor("every token", fmt.Sprintf(`document.querySelectorAll("#tokens tbody tr").length === %d && document.querySelector("#more").hidden`, revoked+3))
	if n := eval[int](b, `document.querySelectorAll("#tokens tr.revoked").length`); n != revoked {
		t.Fatalf("%d rows marked revoked, want %d", n, revoked)
	}
	// A reload keeps the choice; turning it off hides them again.
	b.do(chromedp.Reload())
	b.waitFor("the revoked tokens after a reload", `document.querySelector("#show-revoked").checked && document.querySelectorAll("#tokens tbody tr").length === 100`)
	b.click("#show-revoked")
	b.waitFor("the revoked tokens hidden", `document.querySelectorAll("#tokens tbody tr").length === 3 && document.querySelector("#more").hidden`)
	if got := eval[string](b, `location.search`); got != "" {
		t.Fatalf("the URL still says %q with the switch off", got)
	}

	// A token revoked on the page stays in view, marked, until the next load.
	b.click(`button[aria-label="Revoke Power BI finance"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.click("#confirm-ok")
	b.waitRow("Power BI finance", "Revoked")
	b.open("/")
	b.waitRow("Excel sales", "Not Generated")
	if got := b.names(); got != "Nightly export, Excel sales" {
		t.Fatalf("My tokens after a revocation and a load: %s", got)
	}

	// All API Tokens: the same, and a status chosen in the filters wins.
	r := e.tab("root")
	r.open("/ui/admin/tokens")
	r.waitRow("Excel sales", "alice")
	if got := r.names(); got != "Nightly export, Excel sales" || !eval[bool](r, `document.querySelector("#more").hidden`) {
		t.Fatalf("All API Tokens, revoked hidden: %s", got)
	}
	r.click("#show-revoked")
	r.waitFor("a page with the revoked tokens", `document.querySelectorAll("#tokens tbody tr").length === 100 && !document.querySelector("#more").hidden`)
	r.click("#more")
	r.waitFor("every token", fmt.Sprintf(`document.querySelectorAll("#tokens tbody tr").length === %d`, revoked+3))
	r.click("#show-revoked")
	r.waitFor("the revoked tokens hidden", `document.querySelectorAll("#tokens tbody tr").length === 2`)
	r.do(chromedp.SetValue(chromedp.CSS("#filter-status"), "revoked"), chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	r.waitFor("the revoked tokens, as filtered", fmt.Sprintf(`document.querySelectorAll("#tokens tr.revoked").length === 100`))
	r.click("#filter-clear")
	r.waitFor("the filters cleared, revoked hidden", `document.querySelectorAll("#tokens tbody tr").length === 2`)
}

// The "created: generate it" notice goes once the token is generated.
func TestBrowser_CreatedNoticeGoesOnceTheTokenIsGenerated(t *testing.T) {
	e := newEnv(t)
	b := e.tab("alice")
	b.open("/")
	b.waitFor("the empty grid", `!document.querySelector("#empty").hidden`)
	b.click("#create")
	b.waitFor("the create dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#token-name"), "Excel sales\n"))
	b.waitRow("Excel sales", "Not Generated")
	if n := b.text("#notice"); !strings.Contains(n, "created. Generate it") {
		t.Fatalf("after create, the notice says %q", n)
	}
	b.click(`button[aria-label="Generate Excel sales"]`)
	b.waitFor("the token dialog", `document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value !== ""`)
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the token dialog to close", `!document.querySelector("#jwt-dialog").open`)
	b.waitRow("Excel sales", "Generated - Inactive")
	// Well within the notice's own 10 s.
	if n := b.text("#notice"); n != "" {
		t.Fatalf("after generate, the notice still says %q", n)
	}
}
