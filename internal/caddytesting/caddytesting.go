// Package caddytesting is the harness of the tests that run a real Caddy
// with caddytest: a TestMain that keeps Caddy's data out of $HOME, free
// ports, a recording upstream, basic_auth accounts, the tester and the
// built caddy binary. Only _test.go files import it.
package caddytesting

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"golang.org/x/crypto/bcrypt"
)

// dir is the temporary folder of Main: Caddy's data and config, and the
// built caddy under bin/.
var dir string

// Main runs the tests of m with Caddy's data and config (autosave,
// generated keys) in a temporary folder instead of $HOME, removes the
// folder and returns the exit code: func TestMain(m *testing.M) {
// os.Exit(caddytesting.Main(m)) }.
func Main(m *testing.M) int {
	d, err := os.MkdirTemp("", "caddytesting")
	if err != nil {
		panic(err)
	}
	dir = d
	defer os.RemoveAll(d)
	os.Setenv("XDG_DATA_HOME", d)
	os.Setenv("XDG_CONFIG_HOME", d)
	return m.Run()
}

// FreePort asks the kernel for a free loopback port. Test binaries pick
// their Caddy's ports with it in TestMain, so that two binaries (of one
// package or of two) never load configs into each other's Caddy.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewTester is a caddytest tester of the test Caddy whose admin endpoint
// is on adminPort.
func NewTester(t testing.TB, adminPort int) *caddytest.Tester {
	t.Helper()
	return caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort, LoadRequestTimeout: 30 * time.Second})
}

// BcryptHash is password's bcrypt hash, at the lowest cost, for
// basic_auth.
func BcryptHash(t testing.TB, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(hash)
}

// Accounts are the lines of a basic_auth block, each one after indent:
// the users, each with the password "pw-" and the name.
func Accounts(t testing.TB, indent string, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s%s %s\n", indent, u, BcryptHash(t, "pw-"+u))
	}
	return b.String()
}

// Upstream is a server behind the test Caddy. It records what reached it.
type Upstream struct {
	*httptest.Server
	Hits    atomic.Int64 // requests that reached it
	mu      sync.Mutex
	headers http.Header
}

// NewUpstream answers {"path": the request's path} as JSON.
func NewUpstream(t testing.TB) *Upstream {
	return NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
}

// NewUpstreamFunc answers with answer. The server is closed at the end of
// the test.
func NewUpstreamFunc(t testing.TB, answer http.HandlerFunc) *Upstream {
	return NewUpstreamWrapped(t, nil, answer)
}

// NewUpstreamWrapped answers with answer behind wrap (nil for none), which
// sees every request first: a server that switches protocols
// (h2c.NewHandler) records what reached it after the switch too.
func NewUpstreamWrapped(t testing.TB, wrap func(http.Handler) http.Handler, answer http.HandlerFunc) *Upstream {
	u := &Upstream{}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.Hits.Add(1)
		u.mu.Lock()
		u.headers = r.Header.Clone()
		u.mu.Unlock()
		answer(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	u.Server = httptest.NewServer(h)
	t.Cleanup(u.Close)
	return u
}

// LastHeaders are the headers of the last request that reached u.
func (u *Upstream) LastHeaders() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers
}

var build = sync.OnceValues(func() (string, error) {
	if dir == "" {
		return "", fmt.Errorf("caddytesting.Main did not run")
	}
	bin := filepath.Join(dir, "bin", "caddy") // dir itself is Caddy's data dir
	out, err := exec.Command("go", "build", "-o", bin, "github.com/caddy-apitokens/caddy-apitokens/cmd/caddy").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// BuildCaddy builds cmd/caddy (Caddy with this plugin, as xcaddy would)
// once per test binary, into Main's folder, and returns its path.
func BuildCaddy(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// GetWithToken sends GET url with the JWT as a bearer token through client
// and returns the status and the body.
func GetWithToken(t testing.TB, client *http.Client, url, jwt string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}
