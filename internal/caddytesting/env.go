package caddytesting

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Env is a test's Caddy: the test binary's Caddy (on AdminPort and
// HTTPPort) running the configs the test loads, a folder of the test's
// own for their databases and logs, and requests to it.
type Env struct {
	T      testing.TB
	Tester *caddytest.Tester
	Base   string // http://localhost:HTTPPort
	Admin  string // http://localhost:AdminPort, the admin endpoint
	Dir    string // the test's folder
	Log    string // Dir/caddy.log, where the tests' configs write Caddy's log

	secrets []string
}

// New is the test binary's Caddy for t, with no config of t's loaded yet.
func New(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	return &Env{T: t, Tester: NewTester(t, AdminPort), Dir: dir, Log: dir + "/caddy.log",
		Base: fmt.Sprintf("http://localhost:%d", HTTPPort), Admin: fmt.Sprintf("http://localhost:%d", AdminPort)}
}

// Load loads caddyfile and stops the test if Caddy refuses it. Caddy
// ignores a load of the config it runs: use Reload for that.
func (e *Env) Load(caddyfile string) {
	e.T.Helper()
	e.Tester.InitServer(caddyfile, "caddyfile")
	if e.T.Failed() {
		e.T.FailNow()
	}
	e.dropIdle()
}

// dropIdle closes the client's idle connections after a load: the old
// config's server closes them, and a request that is not retried (a POST)
// sent on one as it does would fail.
func (e *Env) dropIdle() { e.Tester.Client.CloseIdleConnections() }

// Reload loads caddyfile through the admin API, forced (Cache-Control:
// must-revalidate, as `caddy reload --force` sends): a new config is
// provisioned and started and the old one stopped and cleaned up, even
// when nothing changed.
func (e *Env) Reload(caddyfile string) {
	e.T.Helper()
	req, _ := http.NewRequest("POST", e.Admin+"/load", strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.T.Fatalf("reload: %s %s", res.Status, body)
	}
	e.dropIdle()
}

// Do sends a request to the HTTP port; header pairs are name, value.
func (e *Env) Do(method, path string, header ...string) (*http.Response, string) {
	e.T.Helper()
	req, err := http.NewRequest(method, e.Base+path, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := e.Tester.Client.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// Get sends GET path to the HTTP port with the JWT as a bearer token and
// returns the status and the body.
func (e *Env) Get(path, jwt string) (int, string) {
	e.T.Helper()
	res, body := e.Do("GET", path, "Authorization", "Bearer "+jwt)
	return res.StatusCode, body
}

// Call is a request to the management routes.
type Call struct {
	User   string // signs in with basic_auth as User, password "pw-"+User; "" for no one
	Method string
	Path   string
	Body   string // sent as application/json
	Header []string
	// Chunked sends the body without a known length.
	Chunked bool
	// Base is where to send it (default: the Env's HTTP port).
	Base string
}

// Call sends a request as user to the HTTP port; header pairs are name,
// value, and an empty value removes the header.
func (e *Env) Call(user, method, path, body string, header ...string) Answer {
	e.T.Helper()
	return e.Send(Call{User: user, Method: method, Path: path, Body: body, Header: header})
}

// Send sends c.
func (e *Env) Send(c Call) Answer {
	e.T.Helper()
	if c.Base == "" {
		c.Base = e.Base
	}
	return Send(e.T, e.Tester.Client, c)
}

// Send sends c through client. A JSON answer is decoded.
func Send(t testing.TB, client *http.Client, c Call) Answer {
	t.Helper()
	var body io.Reader
	if c.Body != "" {
		body = bytes.NewBufferString(c.Body)
		if c.Chunked {
			body = io.NopCloser(strings.NewReader(c.Body)) // no known length: chunked
		}
	}
	req, err := http.NewRequest(c.Method, c.Base+c.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, "pw-"+c.User)
	}
	for i := 0; i+1 < len(c.Header); i += 2 {
		if c.Header[i+1] == "" {
			req.Header.Del(c.Header[i])
		} else {
			req.Header.Set(c.Header[i], c.Header[i+1])
		}
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.Method, c.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := Answer{T: t, Desc: c.User + " " + c.Method + " " + req.URL.Host + c.Path, Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if res.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &a.JSON); err != nil {
			t.Fatalf("%s: invalid JSON: %v: %s", a.Desc, err, raw)
		}
	}
	return a
}

// Answer is the answer to a Call.
type Answer struct {
	T      testing.TB
	Desc   string // who sent what, where
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any // the body, when it is a JSON object
}

// Want checks the status, the headers every answer of the management
// routes carries, and for an error (code not "") the code and the shape of
// the JSON error body.
func (a Answer) Want(status int, code string) Answer {
	a.T.Helper()
	if a.Status != status {
		a.T.Fatalf("%s: status %d, want %d: %s", a.Desc, a.Status, status, a.Raw)
	}
	for _, h := range [][2]string{{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}} {
		if got := a.Header.Get(h[0]); got != h[1] {
			a.T.Fatalf("%s: %s %q, want %q", a.Desc, h[0], got, h[1])
		}
	}
	if code != "" {
		msg, _ := a.JSON["message"].(string)
		if a.JSON["error"] != code || msg == "" || len(a.JSON) != 2 {
			a.T.Fatalf("%s: want error %q with a message, got %s", a.Desc, code, a.Raw)
		}
	}
	return a
}

// Str is the string member key of the JSON answer.
func (a Answer) Str(key string) string { s, _ := a.JSON[key].(string); return s }

// IDs are the ids of the items of the list member key.
func (a Answer) IDs(key string) []string {
	var out []string
	items, _ := a.JSON[key].([]any)
	for _, it := range items {
		id, _ := it.(map[string]any)["id"].(string)
		out = append(out, id)
	}
	return out
}

// Decode decodes the body into v.
func (a Answer) Decode(v any) {
	a.T.Helper()
	if err := json.Unmarshal([]byte(a.Raw), v); err != nil {
		a.T.Fatalf("%s: %v in %s", a.Desc, err, a.Raw)
	}
}

// Secret remembers values that must appear in no log: for a JWT, the JWT
// and its signature.
func (e *Env) Secret(values ...string) {
	for _, v := range values {
		if v == "" {
			continue
		}
		e.secrets = append(e.secrets, v)
		if i := strings.LastIndexByte(v, '.'); i > 0 && len(v)-i > 20 {
			e.secrets = append(e.secrets, v[i+1:])
		}
	}
}

// HasSecret reports whether text holds a secret.
func (e *Env) HasSecret(text string) bool {
	for _, s := range e.secrets {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// NoSecretsIn fails t if a secret is in one of the log files. It also
// checks that they are written, so it cannot pass vacuously.
func (e *Env) NoSecretsIn(t testing.TB, files ...string) {
	t.Helper()
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil || len(b) == 0 {
			t.Fatalf("log %s is missing or empty (%v)", file, err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			for _, s := range e.secrets {
				if bytes.Contains(line, []byte(s)) {
					// Say where, without printing the secret.
					var entry struct{ Logger, Msg string }
					json.Unmarshal(line, &entry)
					t.Errorf("%s: a line of logger %q, message %q, contains a secret (%.8s...)", file, entry.Logger, entry.Msg, s)
				}
			}
		}
	}
}
