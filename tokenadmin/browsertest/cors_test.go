package browsertest_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// dashboardPage is a report dashboard of another site: the user pastes a
// token, and its script fetches a report from the guarded API with it and
// renders the rows, or says why it could not. %s is the report API.
const dashboardPage = `<!doctype html>
<title>dashboard</title>
<label>Token <input id="token"></label> <button id="load">Load</button>
<p id="status"></p>
<table><tbody id="rows"></tbody></table>
<script>
document.querySelector("#load").addEventListener("click", async () => {
	const status = document.querySelector("#status");
	try {
		const res = await fetch("%s/data/sales", { headers: { Authorization: "Bearer " + document.querySelector("#token").value } });
		const answer = res.status + " expires=" + (res.headers.get("Api-Token-Expiration") || "") +
			" challenge=" + (res.headers.get("WWW-Authenticate") || "");
		const body = await res.json();
		for (const row of body.rows || []) {
			const tr = document.querySelector("#rows").insertRow();
			tr.insertCell().textContent = row.region;
			tr.insertCell().textContent = row.amount;
		}
		// The status last: the test reads the rows once it appears.
		status.textContent = answer;
	} catch (e) {
		status.textContent = "blocked: " + e.message;
	}
});
</script>
`

// serveDashboard serves dashboardPage on l until the test ends, and
// returns its origin.
func (e *env) serveDashboard(l net.Listener) string {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, dashboardPage, e.reports)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	e.T.Cleanup(srv.Close)
	return srv.URL
}

// A dashboard on an origin that the guard's cors lists fetches report rows
// with a token in a real browser, and reads a refusal's status and
// challenge; the same page on another origin is blocked by the browser,
// its preflight refused by the guard, and the report server never reached.
func TestBrowser_ListedOriginsFetchReportsWithATokenOthersAreBlocked(t *testing.T) {
	e := newEnv(t)
	tok := e.api("alice", "POST", "/tokens", `{"name": "dashboard", "expires": "30d", "scopes": ["report"]}`, 201)
	jwt := e.api("alice", "POST", "/tokens/"+tok["id"].(string)+"/generate", "", 200)["token"].(string)

	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", dashPort))
	if err != nil {
		t.Fatal(err)
	}
	listed := e.serveDashboard(l)
	unlisted := e.serveDashboard(httptest.NewUnstartedServer(nil).Listener)

	load := func(b *tab, origin, token string) string {
		t.Helper()
		b.do(chromedp.Navigate(origin + "/"))
		b.do(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#load")))
		b.waitFor("the answer", `document.querySelector("#status").textContent !== ""`)
		return b.text("#status")
	}

	b := e.tab("")
	b.allow("401 (Unauthorized)") // the refused token below, in the console
	status := load(b, listed, jwt)
	if !strings.HasPrefix(status, "200 expires=") || strings.HasSuffix(status, "expires= challenge=") {
		t.Fatalf("listed origin: %q, want 200 with the token's expiry readable", status)
	}
	if rows := b.rows("#rows"); strings.Join(rows, "; ") != "North | 120; South | 80" {
		t.Fatalf("rendered rows %q", rows)
	}
	if n := e.upstreamCalls(); n != 1 {
		t.Fatalf("the report server was called %d times, want once (the preflight is the guard's)", n)
	}
	status = load(b, listed, "not-a-token")
	if !strings.HasPrefix(status, "401 ") || !strings.Contains(status, `error="invalid_token"`) {
		t.Fatalf("listed origin with a bad token: %q, want 401 with its challenge readable", status)
	}

	o := e.tab("")
	o.allow("blocked by CORS policy")
	o.allow("Failed to load resource")
	status = load(o, unlisted, jwt)
	if !strings.HasPrefix(status, "blocked: ") {
		t.Fatalf("unlisted origin %s: %q, want the browser to block the fetch", unlisted, status)
	}
	if rows := o.rows("#rows"); len(rows) != 0 {
		t.Fatalf("unlisted origin rendered %q", rows)
	}
	if n := e.upstreamCalls(); n != 1 {
		t.Fatalf("the report server was called %d times, want only the listed origin's request", n)
	}
}
