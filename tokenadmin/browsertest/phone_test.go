package browsertest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// phone makes the tab a phone's screen, 390 px wide.
func (b *tab) phone() {
	b.t.Helper()
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
}

// scrollTo scrolls the page to the top of the element sel, for a
// screenshot of what is below it.
func (b *tab) scrollTo(sel string) {
	b.t.Helper()
	eval[any](b, fmt.Sprintf(`(() => { document.querySelector(%s).scrollIntoView(); return null; })()`, js(sel)))
}

// offScreen lists the buttons of the rows of tbody that a person cannot
// tap: the page is scrolled down to each (never sideways), which must then lie
// inside the viewport's width and be the element at its own centre (not
// covered, not clipped away). It also reports a page wider than the
// viewport, which would scroll sideways.
func (b *tab) offScreen(tbody string) []string {
	b.t.Helper()
	return eval[[]string](b, fmt.Sprintf(`(() => {
		const bad = [];
		if (document.documentElement.scrollWidth > innerWidth) bad.push("the page is " + document.documentElement.scrollWidth + " px wide");
		const buttons = [...document.querySelectorAll(%s + " button")];
		if (buttons.length === 0) bad.push("no buttons");
		for (const btn of buttons) {
			scrollTo(0, btn.getBoundingClientRect().top + scrollY - innerHeight / 2); // down, never sideways
			const r = btn.getBoundingClientRect();
			const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			if (r.width === 0 || r.left < 0 || r.right > innerWidth || !btn.contains(at)) {
				bad.push(btn.getAttribute("aria-label") + " at " + Math.round(r.left) + ".." + Math.round(r.right));
			}
		}
		scrollTo(0, 0);
		return bad;
	})()`, js(tbody)))
}

// On a phone (390 px), each token is a card showing its values with their
// labels, and every action of every token is on screen and works from
// there; the same on the admin pages. The page never scrolls sideways.
func TestBrowser_PhoneShowsEachTokenAsACardWithEveryAction(t *testing.T) {
	e := newEnv(t)
	sales := e.api("alice", "POST", "/tokens", `{"name": "Excel – monthly sales by region", "expires": "30d", "scopes": ["meta", "report"]}`, 201)["id"].(string)
	e.api("alice", "POST", "/tokens/"+sales+"/generate", "", 200)
	e.api("alice", "POST", "/tokens", `{"name": "Power BI finance", "expires": "7d", "scopes": ["report"]}`, 201)

	b := e.tab("alice")
	b.phone()
	b.open("/")
	b.waitRow("Power BI finance", "Not Generated")
	if bad := b.offScreen("#tokens tbody"); len(bad) > 0 {
		t.Fatalf("on a phone, these cannot be tapped: %s", strings.Join(bad, "; "))
	}
	// Each value is shown under its column's name.
	if got := eval[string](b, `getComputedStyle(document.querySelector('#tokens tbody td[data-label="Status"]'), "::before").content`); got != `"Status"` {
		t.Fatalf("the status cell's label is %s", got)
	}
	b.shot("my-tokens-phone")

	// Revoke, tapped on the card.
	b.click(`button[aria-label="Revoke Power BI finance"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.click("#confirm-ok")
	b.waitRow("Power BI finance", "Revoked")
	if got := e.api("alice", "GET", "/tokens?status=revoked", "", 200)["tokens"].([]any); len(got) != 1 {
		t.Fatalf("revoked tokens after a tap on a card: %v", got)
	}
	// Generate from a card opens the one-time dialog, which fits the screen.
	b.click(`button[aria-label="Regenerate Excel – monthly sales by region"]`)
	b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
	b.click("#confirm-ok")
	b.waitFor("the token dialog", `document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value !== ""`)
	if w := eval[int](b, `document.querySelector("#jwt-dialog").getBoundingClientRect().right`); w > 390 {
		t.Fatalf("the token dialog ends at %d px, beyond the screen", w)
	}
	b.shot("generated-dialog-phone")
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the token dialog to close", `!document.querySelector("#jwt-dialog").open`)

	// The admin pages, as cards too.
	r := e.tab("root")
	r.phone()
	r.open("/ui/admin/tokens")
	r.waitRow("Excel – monthly sales by region", "alice")
	if bad := r.offScreen("#tokens tbody"); len(bad) > 0 {
		t.Fatalf("on a phone, on All API Tokens, these cannot be tapped: %s", strings.Join(bad, "; "))
	}
	r.scrollTo(".list-tools")
	r.shot("admin-tokens-phone")
	r.click(`button[aria-label="Logs Excel – monthly sales by region of alice"]`)
	r.waitFor("the logs", `document.querySelectorAll("#logs-table tbody tr").length >= 2`)
	if w := eval[string](r, `(() => { const d = document.querySelector("#logs-dialog"); return d.scrollWidth + " in " + d.clientWidth; })()`); !fits(w) {
		t.Fatalf("on a phone, the logs dialog's content is %s px wide: it scrolls sideways", w)
	}
	r.shot("token-logs-phone")
	r.do(chromedp.KeyEvent(kb.Escape))

	r.open("/ui/admin/users")
	r.waitFor("the users", `document.querySelectorAll("#users tbody tr").length >= 3`)
	if bad := r.offScreen("#users tbody"); len(bad) > 0 {
		t.Fatalf("on a phone, on Users and Roles, these cannot be tapped: %s", strings.Join(bad, "; "))
	}
	r.scrollTo("#users")
	r.shot("admin-users-phone")
	r.click(`button[aria-label="Edit alice"]`)
	r.waitFor("alice's dialog", `document.querySelector("#user-dialog").open`)
}

// fits reads "content in box" widths.
func fits(widths string) bool {
	var content, box int
	_, err := fmt.Sscanf(widths, "%d in %d", &content, &box)
	return err == nil && content <= box
}

// On a desktop (1280 px), every action of every token is on screen too,
// with every column shown: a token limited to networks, in an overlap,
// with both scopes, on My tokens and on All tokens.
func TestBrowser_DesktopShowsEveryActionOfEveryToken(t *testing.T) {
	e := newEnv(t)
	id := e.api("alice", "POST", "/tokens", `{"name": "Excel – monthly sales by region", "expires": "90d", "scopes": ["meta", "report"], "allowed_ips": ["198.51.100.0/24", "2001:db8:1234::/48"]}`, 201)["id"].(string)
	e.api("alice", "POST", "/tokens/"+id+"/generate", "", 200)
	e.api("alice", "POST", "/tokens/"+id+"/generate", `{"overlap": "1h"}`, 200)
	e.api("alice", "POST", "/tokens", `{"name": "Power BI finance", "expires": "7d", "scopes": ["report"]}`, 201)

	b := e.tab("alice")
	b.open("/")
	b.waitRow("Power BI finance", "Not Generated")
	if bad := b.offScreen("#tokens tbody"); len(bad) > 0 {
		t.Fatalf("at 1280 px, these cannot be clicked: %s", strings.Join(bad, "; "))
	}
	r := e.tab("root")
	r.open("/ui/admin/tokens")
	r.waitRow("Excel – monthly sales by region", "alice")
	if bad := r.offScreen("#tokens tbody"); len(bad) > 0 {
		t.Fatalf("at 1280 px, on All API Tokens, these cannot be clicked: %s", strings.Join(bad, "; "))
	}
}
