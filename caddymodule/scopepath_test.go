package caddymodule

import (
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// scopePathPatterns are path patterns of every kind the compiled matcher
// tells apart, and the ones it leaves to Caddy.
var scopePathPatterns = []string{
	"*", "/meta", "/META/*", "/data/*", "/Data/Sales", "*.json", "*/sales", "*/sales/*", "**",
	"/a//b", "/a//*", "/a/*/c", "/x[ab]", "/x?", `/x\*`, "/[", "/", "/data/", "/data*",
	"/%2F*", "/caf%C3%A9", "/{http.request.host}/*",
}

var scopePathSegments = []string{"", "meta", "META", "Meta", "data", "Data", "sales", "SALES", ".", "..", "x.json",
	"a", "b", "c", "xa", "xc", "x*", "[", "café", "reports.test", "%2F", "%", " "}

// matchesAsCaddy reports whether the compiled matcher of patterns and
// Caddy's path matcher agree on a request for rawPath (a path as it comes
// from the request line); the request's path must parse.
func matchesAsCaddy(t *testing.T, patterns []string, rawPath string) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://reports.test/", nil)
	r.URL.Path, r.URL.RawPath = rawPath, ""
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), &caddyhttp.Server{})
	for _, pat := range patterns {
		caddys := caddyhttp.MatchPath{pat}
		if err := caddys.Provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
		ours := compilePaths(append(caddyhttp.MatchPath(nil), caddys...))
		p := newRequestPath(r)
		got, err := ours.match(&p)
		want, werr := caddys.MatchWithError(r)
		if err != nil || werr != nil || got != want {
			t.Fatalf("pattern %q, path %q: compiled %v (%v), Caddy's matcher %v (%v)", pat, rawPath, got, err, want, werr)
		}
	}
}

// The compiled scope paths answer as Caddy's path matcher does, for every
// kind of pattern and paths with dot segments, doubled and trailing
// slashes, any case, escapes and non-ASCII.
func TestScopePaths_MatchAsCaddysPathMatcher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			b.WriteByte('/')
			b.WriteString(scopePathSegments[rng.IntN(len(scopePathSegments))])
		}
		matchesAsCaddy(t, scopePathPatterns, b.String())
	}
}

// A rule of several patterns matches when any of them does, as in Caddy.
func TestScopePaths_ARuleMatchesWhenAnyPatternDoes(t *testing.T) {
	rule := compilePaths(caddyhttp.MatchPath{"/meta", "/meta/*", "/{http.request.host}/*"})
	for path, want := range map[string]bool{"/meta": true, "/meta/x": true, "/reports.test/x": true, "/data/x": false} {
		r := httptest.NewRequest("GET", "http://reports.test"+path, nil)
		r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), &caddyhttp.Server{})
		p := newRequestPath(r)
		if got, err := rule.match(&p); got != want || err != nil {
			t.Errorf("%s: %v (%v), want %v", path, got, err, want)
		}
	}
}

func FuzzScopePaths(f *testing.F) {
	for _, s := range []string{"/meta", "/data//sales/", "/DATA/../meta/x.json", "/a/./b//c", "/x%2Fy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawPath string) {
		if !strings.HasPrefix(rawPath, "/") {
			return
		}
		matchesAsCaddy(t, scopePathPatterns, rawPath)
	})
}
