package caddymodule

import (
	"net/http"
	"os/exec"
	"slices"
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
			_, jwt := e.live("alice", "power query", apitoken.Expiry30d, apitoken.DefaultScopes)
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

// A page of a listed origin may call the API from a browser: its
// preflight is answered by the guard (never by the upstream), and every
// answer to it, refusals included, lets its script read the status, the
// challenge and the token's expiry. Another origin's preflight is refused,
// and its answers say nothing of CORS.
func TestClients_CORSAnswersListedOriginsOnly(t *testing.T) {
	const dash = "https://dash.example.com"
	e := newHostileEnvGuard(t, "", "", "cors "+dash+" http://127.0.0.1:8000")
	_, jwt := e.live("alice", "dashboard", apitoken.Expiry30d, apitoken.DefaultScopes)
	e.secret(jwt)
	bearer := "Bearer " + jwt
	wantAllowed := func(t *testing.T, res *http.Response, origin string) {
		t.Helper()
		h := res.Header
		if got := h.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
			t.Errorf("Access-Control-Allow-Origin %q, want %q", got, origin)
		}
		if !slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("Vary %q, want Origin among them", h.Values("Vary"))
		}
		expose := h.Get("Access-Control-Expose-Headers")
		for _, name := range []string{"Api-Token-Expiration", "WWW-Authenticate", "Retry-After"} {
			if !strings.Contains(expose, name) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, name)
			}
		}
	}
	wantNothing := func(t *testing.T, res *http.Response) {
		t.Helper()
		for name := range res.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				t.Errorf("an unlisted origin got %s: %q", name, res.Header.Values(name))
			}
		}
	}

	t.Run("a listed origin's preflight is answered by the guard", func(t *testing.T) {
		before := e.up.Hits.Load()
		res, body := e.do("OPTIONS", "/data/sales", "Origin", dash, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization")
		if res.StatusCode != http.StatusNoContent || body != "" {
			t.Fatalf("preflight: %d %q, want 204 and no body", res.StatusCode, body)
		}
		wantAllowed(t, res, dash)
		for name, want := range map[string]string{"Access-Control-Allow-Methods": "GET, HEAD, POST",
			"Access-Control-Allow-Headers": "Authorization", "Access-Control-Max-Age": "600"} {
			if got := res.Header.Get(name); got != want {
				t.Errorf("%s %q, want %q", name, got, want)
			}
		}
		if res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("the guard allows credentials: cookies and cached Basic passwords would go with a page's requests")
		}
		if e.up.Hits.Load() != before {
			t.Error("the preflight reached the upstream")
		}
	})
	t.Run("a listed origin reads the data and the token's expiry", func(t *testing.T) {
		res, body := e.do("GET", "/data/sales", "Origin", "http://127.0.0.1:8000", "Authorization", bearer)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET with a token: %d %s", res.StatusCode, body)
		}
		wantAllowed(t, res, "http://127.0.0.1:8000")
		if res.Header.Get("Api-Token-Expiration") == "" {
			t.Error("no Api-Token-Expiration")
		}
	})
	t.Run("a listed origin reads its refusals", func(t *testing.T) {
		before := e.up.Hits.Load()
		for _, tc := range []struct {
			header []string
			status int
		}{
			{[]string{"Origin", dash}, 401},
			{[]string{"Origin", dash, "Authorization", "Bearer not.a.jwt"}, 401},
			{[]string{"Origin", dash, "Authorization", bearer, "Authorization", bearer}, 400},
		} {
			res, body := e.do("GET", "/data/sales", tc.header...)
			if res.StatusCode != tc.status || !strings.Contains(body, `"error"`) {
				t.Errorf("%d %s, want %d and a JSON error", res.StatusCode, body, tc.status)
			}
			wantAllowed(t, res, dash)
		}
		if e.up.Hits.Load() != before {
			t.Error("a refused request reached the upstream")
		}
	})
	t.Run("another origin's preflight is refused", func(t *testing.T) {
		before := e.up.Hits.Load()
		for _, origin := range []string{"https://evil.example.com", "https://DASH.example.com.evil.test", "null", "http://dash.example.com"} {
			res, body := e.do("OPTIONS", "/data/sales", "Origin", origin, "Access-Control-Request-Method", "GET")
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "origin_not_allowed") {
				t.Errorf("%s: %d %s, want 403 origin_not_allowed", origin, res.StatusCode, body)
			}
			wantNothing(t, res)
		}
		res, _ := e.do("GET", "/data/sales", "Origin", "https://evil.example.com", "Authorization", bearer)
		if res.StatusCode != http.StatusOK {
			t.Errorf("a script-less client that sends another Origin: %d, want 200 (CORS binds browsers only)", res.StatusCode)
		}
		wantNothing(t, res)
		if e.up.Hits.Load() != before+1 {
			t.Error("a refused preflight reached the upstream")
		}
	})
	e.noSecretsInLogs(t)
}

// Without cors, a preflight is a request without a credential.
func TestClients_WithoutCORSAPreflightIsUnauthenticated(t *testing.T) {
	e := newHostileEnvGuard(t, "", "", "")
	res, _ := e.do("OPTIONS", "/data/sales", "Origin", "https://dash.example.com", "Access-Control-Request-Method", "GET")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight without cors: %d, Access-Control-Allow-Origin %q; want 401 and none", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	if e.up.Hits.Load() != 0 {
		t.Error("the preflight reached the upstream")
	}
}
