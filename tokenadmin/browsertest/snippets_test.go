package browsertest_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp/kb"

	"github.com/chromedp/chromedp"
)

// The "token generated" dialog shows the report API's URL (api_url) and,
// for the client the user picks, the steps and a snippet. The curl and
// Python snippets, pasted into a shell and Python as they are, fetch the
// report with the new token; the snippet goes with the token when the
// dialog closes.
func TestBrowser_GeneratedDialogShowsTheAPIURLAndClientSnippets(t *testing.T) {
	e := newEnv(t)
	for _, bin := range []string{"bash", "curl", "python3"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed by this test (.ci/run installs it): %v", bin, err)
		}
	}
	e.api("alice", "POST", "/tokens", `{"name": "Monthly sales", "expires": "30d", "scopes": ["meta", "report"]}`, 201)
	b := e.tab("alice")
	b.open("/")
	b.waitRow("Monthly sales", "Not Generated")
	b.click(`button[aria-label="Generate Monthly sales"]`)
	b.waitFor("the token dialog", `document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-value").value !== ""`)
	jwt := eval[string](b, `document.querySelector("#jwt-value").value`)

	if url := eval[string](b, `document.querySelector("#jwt-url").value`); url != e.reports+"/meta" {
		t.Fatalf("the URL field holds %q, want api_url and /meta (the token has meta)", url)
	}
	pick := func(client string) (steps, snippet string) {
		t.Helper()
		eval[any](b, fmt.Sprintf(`(() => { const s = document.querySelector("#jwt-client"); s.value = %s; s.dispatchEvent(new Event("change")); return null; })()`, js(client)))
		return b.text("#jwt-steps"), eval[string](b, `document.querySelector("#jwt-snippet").value`)
	}
	for _, tc := range []struct {
		client    string
		steps     []string
		snippet   []string
		withToken bool
	}{
		{"excel-basic", []string{"From Web", "choose Basic", "Password: the token"}, []string{"Web.Contents(\"" + e.reports + "/meta\")"}, false},
		{"excel-m", []string{"Advanced Editor", "choose Anonymous", "saved in the workbook"}, []string{"Headers = [Authorization = \"Bearer " + jwt + "\"]"}, true},
		{"powerbi", []string{"Get data › Web", "Data source credentials", "Scheduled refresh"}, []string{"Web.Contents(\"" + e.reports + "/meta\")"}, false},
		{"postman", []string{"Authorization tab", "Bearer Token"}, []string{"'Authorization: Bearer " + jwt + "'"}, true},
		{"curl", []string{"Api-Token-Expiration"}, []string{"curl -fsS -D - -H \"Authorization: Bearer $TOKEN\" '" + e.reports + "/meta'"}, true},
		{"python", []string{"requests"}, []string{"requests.get(\"" + e.reports + "/meta\""}, true},
		{"powershell", []string{"PowerShell 7"}, []string{"Invoke-RestMethod -Uri '" + e.reports + "/meta'", "Api-Token-Expiration"}, true},
	} {
		steps, snippet := pick(tc.client)
		for _, want := range tc.steps {
			if !strings.Contains(steps, want) {
				t.Errorf("%s: the steps %q do not say %q", tc.client, steps, want)
			}
		}
		for _, want := range tc.snippet {
			if !strings.Contains(snippet, want) {
				t.Errorf("%s: the snippet\n%s\ndoes not hold %q", tc.client, snippet, want)
			}
		}
		if strings.Contains(snippet, jwt) != tc.withToken {
			t.Errorf("%s: the snippet holds the token: %v, want %v (a Basic credential is typed, not pasted in the query)", tc.client, !tc.withToken, tc.withToken)
		}
	}

	// The snippets work as pasted, and follow the URL field.
	b.replaceText("#jwt-url", e.reports+"/data/sales")
	_, curl := pick("curl")
	out, err := exec.Command("bash", "-c", curl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Api-Token-Expiration: ") || !strings.Contains(string(out), `"report": "/data/sales"`) {
		t.Fatalf("the curl snippet: %v\n%s", err, out)
	}
	_, py := pick("python")
	out, err = exec.Command("python3", "-c", py+"\nprint(data['rows'][0]['region'])").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "token expires: ") || !strings.HasSuffix(strings.TrimSpace(string(out)), "North") {
		t.Fatalf("the Python snippet: %v\n%s", err, out)
	}

	// Copy snippet puts it on the clipboard.
	_, snippet := pick("excel-basic")
	b.click("#jwt-snippet-copy")
	b.waitFor("the copy to be confirmed", `document.querySelector("#jwt-snippet-copied").textContent === "Copied to the clipboard."`)
	if copied := eval[string](b, `navigator.clipboard.readText()`); copied != snippet {
		t.Fatalf("the clipboard holds %q, want the snippet", copied)
	}
	pick("powerbi")
	b.shot("client-snippets")

	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog to close and forget", `!document.querySelector("#jwt-dialog").open && document.querySelector("#jwt-snippet").value === ""`)
}
