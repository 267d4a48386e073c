package caddymodule

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// pythonBasic fetches url with Python's urllib and an HTTPBasicAuthHandler
// holding the JWT as the password: it sends the credential only after a
// Basic challenge. It prints the status, or the error.
const pythonBasic = `
import sys, urllib.request
url, jwt = sys.argv[1], sys.argv[2]
mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
mgr.add_password(None, url, "excel", jwt)
opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(mgr))
try:
    print(opener.open(url).status)
except Exception as e:
    print("error:", e)
`

// Clients that wait for a challenge before sending a user and password
// (Python's HTTPBasicAuthHandler, curl --anyauth; Power Query's Basic
// credential does the same) get one: the 401 without a credential offers
// Bearer, then Basic. basic_challenge off drops the second.
func TestClients_ThatWaitForABasicChallengeGetOne(t *testing.T) {
	for _, bin := range []string{"python3", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed by this test: %v", bin, err)
		}
	}
	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && name != "curl" {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		name, guard string
		want        string
	}{{"default", "", "200"}, {"basic_challenge off", "basic_challenge off", "401"}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnvGuard(t, "", "", tc.guard)
			_, jwt := e.live("alice", "power query", apitoken.Expiry30d, apitoken.AllScopes)
			url := e.Base + "/data/sales"
			res, _ := e.do("GET", "/data/sales")
			challenges := res.Header.Values("WWW-Authenticate")
			t.Logf("challenges: %q", challenges)
			if len(challenges) == 0 || !strings.HasPrefix(challenges[0], "Bearer ") {
				t.Fatalf("first challenge %q, want Bearer", challenges)
			}
			py := run(t, "python3", "-c", pythonBasic, url, jwt)
			curl := run(t, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--anyauth", "-u", "excel:"+jwt, url)
			if tc.want == "200" {
				if py != "200" || curl != "200" {
					t.Errorf("python urllib: %q, curl --anyauth: %q; want 200 from both", py, curl)
				}
				return
			}
			if py == "200" || curl == "200" {
				t.Errorf("with basic_challenge off, python urllib: %q, curl --anyauth: %q; want neither to get in", py, curl)
			}
		})
	}
}
