// Package caddytesting is the one harness of the tests that run a real
// Caddy: a TestMain that keeps Caddy's data out of $HOME, the ports of the
// test binary's Caddy, an Env (that Caddy with a test's config loaded, and
// requests to it), a recording upstream, basic_auth accounts, a load of
// concurrent requests, Caddy processes of the built caddy binary, and
// Eventually for what happens in the background. Only _test.go files
// import it.
package caddytesting

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/certmagic"
	"golang.org/x/crypto/bcrypt"
)

// dir is the temporary folder of Main: Caddy's data and config.
var dir string

// AdminPort and HTTPPort are the ports of the test binary's Caddy: free
// ports picked when the binary starts, so that two binaries (of one
// package or of two) never load configs into each other's Caddy.
var AdminPort, HTTPPort = FreePort(), FreePort()

// Main runs the tests of m with Caddy's data and config (autosave,
// storage, generated keys) in a temporary folder instead of $HOME, removes the
// folder and returns the exit code: func TestMain(m *testing.M) {
// os.Exit(caddytesting.Main(m)) }.
func Main(m *testing.M) int { return run(m, false) }

// MainBuildingCaddy is Main for the tests that run the built caddy
// (BuildCaddy): when all the tests run (no -run), the build starts at
// once, in the background, so that it overlaps the first tests instead of
// waiting for the first that needs it.
func MainBuildingCaddy(m *testing.M) int { return run(m, true) }

func run(m *testing.M, prebuild bool) int {
	d, err := os.MkdirTemp("", "caddytesting")
	if err != nil {
		panic(err)
	}
	dir = d
	defer os.RemoveAll(d)
	os.Setenv("XDG_DATA_HOME", d)
	os.Setenv("XDG_CONFIG_HOME", d)
	// Caddy set these from $HOME before Main ran: the autosave of a config
	// that does not turn it off (caddytest's first one), and the default
	// storage (the TLS app's, which it cleans and writes to).
	caddy.ConfigAutosavePath = filepath.Join(caddy.AppConfigDir(), "autosave.json")
	caddy.DefaultStorage = &certmagic.FileStorage{Path: caddy.AppDataDir()}
	flag.Parse()
	if prebuild && flag.Lookup("test.run").Value.String() == "" {
		go build()
	}
	return m.Run()
}

// FreePort asks the kernel for a free loopback port.
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
