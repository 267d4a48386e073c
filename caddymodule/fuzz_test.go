package caddymodule

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"golang.org/x/text/unicode/norm"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// FuzzCredential: credential extraction never panics, and what it returns
// holds: either a refusal or a token of 1 to 8 KiB that came from the one
// Authorization header (as the Bearer value or the Basic password), never
// from the query string, and never when the query names access_token.
//
//	go test -run '^$' -fuzz FuzzCredential -fuzztime 15s ./caddymodule/
func FuzzCredential(f *testing.F) {
	jwt := "eyJhbGciOiJIUzUxMiIsImtpZCI6ImFiYyIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	for _, seed := range []struct{ auth, auth2, query string }{
		{"Bearer " + jwt, "", ""},
		{"bearer  " + jwt + " ", "", "year=2026"},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("excel:"+jwt)), "", ""},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(jwt)), "", ""},
		{"Basic !!!", "", ""},
		{"Bearer " + jwt, "Bearer " + jwt, ""},
		{"", "", "access_token=" + jwt},
		{"Bearer " + jwt, "", "access%5Ftoken=x"},
		{"Bearer " + jwt, "", "a=1;ACCESS_TOKEN=x"},
		{"Bearer " + jwt, "", "access_token[]=x&b=2"},
		{"Bearer " + jwt, "", "%2561ccess_token=x"},
		{"Token " + jwt, "", ""},
		{"Bearer " + strings.Repeat("a", 8<<10+1), "", ""},
		{"Bearer", "", ""},
	} {
		f.Add(seed.auth, seed.auth2, seed.query)
	}
	f.Fuzz(func(t *testing.T, auth, auth2, query string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/meta", RawQuery: query}}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if auth2 != "" {
			r.Header["Authorization"] = append(r.Header["Authorization"], auth2)
		}
		raw, ref := credential(r)
		if ref != nil {
			if raw != "" {
				t.Fatalf("a refusal (%d %s) with a token", ref.status, ref.code)
			}
			if ref.status != http.StatusBadRequest && ref.status != http.StatusUnauthorized {
				t.Fatalf("refusal status %d", ref.status)
			}
			return
		}
		if raw == "" || len(raw) > apitoken.MaxJWTLen {
			t.Fatalf("accepted a token of %d bytes", len(raw))
		}
		if auth2 != "" || auth == "" {
			t.Fatalf("accepted a token with %d Authorization headers", len(r.Header["Authorization"]))
		}
		if _, found := queryTokens(query); found {
			t.Fatal("accepted a request whose query names access_token")
		}
		if q, err := url.ParseQuery(query); err == nil {
			for k := range q {
				if strings.EqualFold(k, "access_token") {
					t.Fatalf("accepted a request whose query has %q", k)
				}
			}
		}
		scheme, rest, _ := strings.Cut(auth, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			if raw != strings.TrimSpace(rest) {
				t.Fatal("the Bearer token is not the header's value")
			}
		case strings.EqualFold(scheme, "Basic"):
			dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
			if _, pass, ok := strings.Cut(string(dec), ":"); err != nil || !ok || pass != raw {
				t.Fatal("the Basic token is not the header's password")
			}
		default:
			t.Fatalf("accepted scheme %q", scheme)
		}
	})
}

// FuzzUnsafePath: a path the guard lets through to a scope means the same
// scope to an upstream that normalises it as hard as servers do:
// decoding again and again, backslashes as slashes, path parameters and
// trailing dots dropped, Unicode compatibility forms folded, dot segments
// resolved, case folded. Without that, a token of one scope could reach
// the other's data. The guard has a default scope, so every path it does
// not refuse is let through to some scope.
//
//	go test -run '^$' -fuzz FuzzUnsafePath -fuzztime 15s ./caddymodule/
func FuzzUnsafePath(f *testing.F) {
	for _, p := range []string{
		"/meta", "/meta/reports/sales", "/data/sales", "/meta/../data/x", "/meta/%2e%2e/data/x", "/meta/%252e%252e/data/x",
		"/meta/..;/data/x", "/meta/..%3b/data/x", "/meta%2fdata", "/meta/%c0%ae%c0%ae/data", "/META/x", "//data/x",
		"/meta/.../data", "/meta/%ef%bc%8e%ef%bc%8e/data", "/meta/a%20b", "/meta/%25", "/data",
		"/data;x/sales", "/data./sales", "/%ef%bc%a4ATA/x", "/reports;v=2",
		"/%2564ata/sales", "/%2544ATA/x", "/d%2561ta/x", "/%25%36%34ata/x", "/%252564ata/x", "/other/100%25",
	} {
		f.Add(p)
	}
	h := &Auth{Scopes: []ScopeRule{
		{Scope: "meta", Paths: caddyhttp.MatchPath{"/meta", "/meta/*"}},
		{Scope: "report", Paths: caddyhttp.MatchPath{"/data/*"}},
	}, DefaultScope: "meta"}
	h.defaultScope, _ = apitoken.ScopeBit(apitoken.ScopeMeta)
	for _, rule := range h.Scopes {
		bit, _ := apitoken.ScopeBit(apitoken.Scope(rule.Scope))
		h.rules = append(h.rules, scopeRule{name: rule.Scope, scope: bit, paths: compilePaths(rule.Paths)})
	}
	f.Fuzz(func(t *testing.T, rawPath string) {
		u, err := url.ParseRequestURI(rawPath)
		if err != nil || u.Path == "" || u.Path[0] != '/' || u.RawQuery != "" || u.Fragment != "" {
			return // not a request target Go's server would hand on
		}
		r := (&http.Request{Method: "GET", URL: u, Header: http.Header{}, RequestURI: rawPath}).WithContext(
			context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if desc, err := h.pathRefusal(r); err != nil {
			t.Fatal(err)
		} else if desc != "" {
			return // refused: nothing to compare
		}
		need, _, err := h.scopeFor(r)
		if err != nil {
			t.Fatal(err)
		}
		if need == 0 {
			return // refused (403): no rule grants it
		}
		n := normalise(u.EscapedPath())
		r2 := r.Clone(r.Context())
		r2.URL = &url.URL{Path: n}
		upstreamNeed, _, _ := h.scopeFor(r2)
		if need != upstreamNeed {
			t.Fatalf("%q needs scope %d here but %d at a normalising upstream (%q)", rawPath, need, upstreamNeed, n)
		}
	})
}

// normalise is what a lenient upstream may make of an escaped path: every
// step applied again until none changes it, since one step can make work
// for another (NFKC turns a fullwidth backslash into one).
func normalise(p string) string {
	for {
		next := normaliseOnce(p)
		if next == p {
			return p
		}
		p = next
	}
}

func normaliseOnce(p string) string {
	p = laxUnescape(p)
	p = norm.NFKC.String(dotLookalikes.Replace(p))
	p = strings.ReplaceAll(p, "\\", "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			s = s[:j]
		}
		if strings.Trim(s, ". ") == "" && strings.Contains(s, ".") {
			s = strings.TrimRight(s, " ")
			if len(s) > 2 {
				s = ".."
			}
		} else {
			s = strings.TrimRight(s, ". ") // Windows
		}
		segs[i] = s
	}
	joined := strings.ToLower(strings.Join(segs, "/"))
	clean := path.Clean("/" + joined)
	if strings.HasSuffix(joined, "/") && clean != "/" {
		clean += "/" // path.Clean drops it; servers keep it
	}
	return clean
}
