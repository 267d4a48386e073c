package browsertest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Regenerate lets the owner keep the token in use working a while: the
// previous JWT still opens the report API, the list says until when, and a
// regeneration "at once" ends it.
func TestBrowser_RegenerateWithAnOverlapKeepsThePreviousTokenWorking(t *testing.T) {
	e := newEnv(t)
	tok := e.api("alice", "POST", "/tokens", `{"name": "Nightly refresh", "expires": "30d", "scopes": ["meta"]}`, 201)
	id := tok["id"].(string)
	first := e.api("alice", "POST", "/tokens/"+id+"/generate", "", 200)["token"].(string)
	e.Secret(first)
	b := e.tab("alice")
	b.open("/")
	b.waitRow("Nightly refresh", "Generated - Inactive")
	if row := b.rowText("Nightly refresh"); strings.Contains(row, "Previous token") {
		t.Fatalf("a token without overlap shows a previous token: %q", row)
	}

	regenerate := func(overlap string) string {
		t.Helper()
		b.click(`button[aria-label="Regenerate Nightly refresh"]`)
		b.waitFor("the confirmation", `document.querySelector("#confirm-dialog").open`)
		if got := eval[string](b, `[...document.querySelectorAll("#confirm-overlap option")].map((o) => o.value + "=" + o.textContent).join("|")`); got != "=at once|1h=in 1 hour|24h=in 24 hours" {
			t.Fatalf("overlap choices %q", got)
		}
		if label := b.text(`label[for="confirm-overlap"]`); label != "The token in use stops working" {
			t.Fatalf("overlap label %q", label)
		}
		b.do(chromedp.SetValue(chromedp.CSS("#confirm-overlap"), overlap))
		if got := eval[string](b, `document.querySelector("#confirm-overlap").value`); got != overlap {
			t.Fatalf("chose overlap %q, the dialog has %q", overlap, got)
		}
		b.click("#confirm-ok")
		b.waitFor("the new token", `(document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value !== "") || !document.querySelector("#error").hidden`)
		if msg := b.text("#error"); msg != "" {
			t.Fatalf("regenerate with overlap %q: %s", overlap, msg)
		}
		jwt := eval[string](b, `document.querySelector("#jwt-value").value`)
		e.Secret(jwt)
		b.click("#jwt-done")
		b.waitFor("the token dialog to close", `!document.querySelector("#jwt-dialog").open`)
		return jwt
	}

	second := regenerate("1h")
	b.waitRow("Nightly refresh", "Previous token valid until")
	b.shot("my-tokens-previous-token-valid-until")
	if status, _ := e.report("/meta", first); status != 200 {
		t.Fatalf("the previous JWT during its overlap: %d", status)
	}
	if status, _ := e.report("/meta", second); status != 200 {
		t.Fatalf("the new JWT: %d", status)
	}
	got := e.api("alice", "GET", "/tokens/"+id, "", 200)
	until, _ := got["previous_valid_until"].(string)
	if until == "" || !eval[bool](b, fmt.Sprintf(`[...document.querySelectorAll("#tokens time")].some((t) => t.dateTime === %s)`, js(until))) {
		t.Fatalf("the row does not show previous_valid_until %q: %q", until, b.rowText("Nightly refresh"))
	}

	// At once: no overlap, the previous JWT stops, the note goes.
	third := regenerate("")
	b.waitFor("the note to go", `!document.querySelector("#tokens").textContent.includes("Previous token")`)
	for name, jwt := range map[string]string{"first": first, "second": second} {
		if status, _ := e.report("/meta", jwt); status != 401 {
			t.Errorf("the %s JWT after a regeneration at once: %d", name, status)
		}
	}
	if status, _ := e.report("/meta", third); status != 200 {
		t.Fatalf("the newest JWT: %d", status)
	}
}
