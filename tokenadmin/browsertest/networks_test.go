package browsertest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A person limits a token to networks in the create dialog, sees them on
// the token, changes and clears them in the edit dialog; the guard follows
// each change for the JWT in use, and a network written wrongly is refused
// in the dialog with what to fix.
func TestBrowser_AllowedNetworksAreSetShownEditedAndCleared(t *testing.T) {
	e := newEnv(t)
	b := e.tab("alice")
	b.open("/")
	b.waitFor("the empty grid", `!document.querySelector("#empty").hidden`)

	b.click("#create")
	b.waitFor("the create dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.CSS("#token-name"), "Office"),
		chromedp.SendKeys(chromedp.CSS("#token-allowed-ips"), "198.51.100.0/24\n2001:DB8::1"),
		chromedp.Click(chromedp.CSS("#token-submit")))
	b.waitRow("Office", "198.51.100.0/24")
	if row := b.rowText("Office"); !strings.Contains(row, "| 198.51.100.0/242001:db8::1/128 |") { // two tags
		t.Fatalf("the row does not show the networks as the server keeps them: %q", row)
	}
	id := e.api("alice", "GET", "/tokens?limit=1", "", 200)["tokens"].([]any)[0].(map[string]any)["id"].(string)
	jwt := e.api("alice", "POST", "/tokens/"+id+"/generate", "", 200)["token"].(string)
	// The report API's client here is loopback: outside the office.
	if status, _ := e.report("/meta", jwt); status != 401 {
		t.Fatalf("a client outside the allowed networks: %d, want 401", status)
	}

	// Edit: the field holds the networks, one per line; loopback added.
	b.click(`button[aria-label="Edit Office"]`)
	b.waitFor("the edit dialog", `document.querySelector("#token-dialog").open`)
	if v := eval[string](b, `document.querySelector("#token-allowed-ips").value`); v != "198.51.100.0/24\n2001:db8::1/128" {
		t.Fatalf("the edit dialog holds the networks %q", v)
	}
	b.do(chromedp.SetValue(chromedp.CSS("#token-allowed-ips"), "198.51.100.0/24, 127.0.0.1 ::1"), chromedp.Click(chromedp.CSS("#token-submit")))
	b.waitRow("Office", "127.0.0.1/32")
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("after allowing loopback, for the JWT in use: %d, want 200", status)
	}

	// A network with host bits set is refused, saying what to write.
	b.click(`button[aria-label="Edit Office"]`)
	b.waitFor("the edit dialog", `document.querySelector("#token-dialog").open`)
	b.do(chromedp.SetValue(chromedp.CSS("#token-allowed-ips"), "10.1.2.3/24"), chromedp.Click(chromedp.CSS("#token-submit")))
	b.allow("400")
	b.waitFor("the refusal to be shown", `!document.querySelector("#token-dialog .form-error").hidden`)
	if msg := b.text("#token-dialog .form-error"); !strings.Contains(msg, "write the network 10.1.2.0/24") {
		t.Fatalf("the refusal says %q", msg)
	}
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Fatalf("a refused edit changed the networks: %d", status)
	}

	// Cleared: any address, shown as Any.
	b.replaceText("#token-allowed-ips", "\b") // selected, then deleted
	b.click("#token-submit")
	b.waitFor("the dialog to close", `!document.querySelector("#token-dialog").open`)
	b.waitRow("Office", "Any")
	got := e.api("alice", "GET", "/tokens/"+id, "", 200)["allowed_ips"]
	if fmt.Sprint(got) != "[]" {
		t.Fatalf("allowed_ips after clearing the field: %v", got)
	}
}
