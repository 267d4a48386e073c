package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
)

// benchGuard builds the guard on a real SQLite store with one generated
// token (limited to the allowed networks, if any), outside a running Caddy,
// and returns it with the token's JWT.
func benchGuard(b *testing.B, allowed ...string) (*Auth, string) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir()+"/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	key, _ := apitoken.ParseKey(testKey)
	signer, _ := apitoken.NewSigner("bench", []apitoken.Key{key}, nil)
	auth, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: signer, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	auditor := apitoken.NewAuditor(apitoken.AuditConfig{Store: store})
	b.Cleanup(func() {
		auditor.Close(ctx)
		store.Close()
	})
	svc := apitoken.NewService(apitoken.ServiceConfig{Store: store, Signer: signer, Admins: map[string]bool{"root": true}})
	root, _ := svc.Caller(ctx, "root")
	if _, err := svc.GrantRole(ctx, root, "alice", apitoken.RoleAPITokens); err != nil {
		b.Fatal(err)
	}
	alice, _ := svc.Caller(ctx, "alice")
	nets, err := apitoken.ParseNetworks(allowed)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := svc.CreateToken(ctx, alice, apitoken.TokenInput{Name: "bench", Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes,
		AllowedIPs: nets})
	if err != nil {
		b.Fatal(err)
	}
	jwt, _, err := svc.Generate(ctx, alice, tok.ID)
	if err != nil {
		b.Fatal(err)
	}
	h := &Auth{App: "Reports API", Scopes: []ScopeRule{
		{Scope: "meta", Paths: caddyhttp.MatchPath{"/meta", "/meta/*"}},
		{Scope: "report", Paths: caddyhttp.MatchPath{"/data/*"}},
	}}
	h.logger = zap.NewNop()
	h.identities = new(identities)
	for _, r := range h.Scopes {
		bit, _ := apitoken.ScopeBit(apitoken.Scope(r.Scope))
		h.rules = append(h.rules, scopeRule{name: r.Scope, scope: bit, paths: compilePaths(r.Paths)})
	}
	h.app = &App{auth: auth, backend: &backend{store: store, auditor: auditor}, metrics: appMetrics}
	return h, jwt
}

var okNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
})

// guardRequest prepares a request the way Caddy's server does.
func guardRequest(jwt string) (*http.Request, http.ResponseWriter) {
	r := httptest.NewRequest("GET", "http://reports.test/data/sales?year=2026", nil)
	r.RemoteAddr = "192.0.2.10:51234"
	if jwt != "" {
		r.Header.Set("Authorization", "Bearer "+jwt)
	}
	r.Header.Set("User-Agent", "Microsoft.Data.Mashup (https://go.microsoft.com/fwlink/?LinkID=304225)")
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	return caddyhttp.PrepareRequest(r, repl, w, &caddyhttp.Server{}), w
}

// reportCPU starts counting the process's CPU time; the function it
// returns, deferred, reports it as cpu-ns/op. On a machine that other
// processes share, ns/op (wall time) counts the time the benchmark waited
// for a core; CPU time (every thread, the garbage collector's included)
// does not.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		if end, ok2 := processCPU(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkGuard is the whole api_token_auth path for a JWT seen before:
// credential, cache hits, scope rule, audit record, headers, placeholders.
// Compare with BenchmarkGuardBaseline, which does the same request set-up
// without the guard.
func BenchmarkGuard(b *testing.B) {
	benchmarkGuard(b)
}

// BenchmarkGuardAllowedIPs is BenchmarkGuard for a token limited to 20
// networks, the client's the last one compared.
func BenchmarkGuardAllowedIPs(b *testing.B) {
	nets := make([]string, apitoken.MaxAllowedIPs)
	for i := range nets[1:] {
		nets[i] = fmt.Sprintf("10.%d.0.0/16", i)
	}
	nets[len(nets)-1] = "192.0.2.0/24" // guardRequest's client
	benchmarkGuard(b, nets...)
}

func benchmarkGuard(b *testing.B, allowed ...string) {
	h, jwt := benchGuard(b, allowed...)
	r, w := guardRequest(jwt)
	if err := h.ServeHTTP(w, r, okNext); err != nil || w.(*httptest.ResponseRecorder).Code != 200 {
		b.Fatalf("warm-up refused: %v %d", err, w.(*httptest.ResponseRecorder).Code)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r, w := guardRequest(jwt)
		if err := h.ServeHTTP(w, r, okNext); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardBaseline is BenchmarkGuard's request set-up alone.
func BenchmarkGuardBaseline(b *testing.B) {
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r, w := guardRequest("eyJhbGciOiJIUzUxMiIsImtpZCI6ImUxYzExMDUzY2M1MDVjZTkiLCJ0eXAiOiJKV1QifQ.x.y")
		if err := okNext.ServeHTTP(w, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardParallel runs BenchmarkGuard on every core at once: the
// contention of the caches and the audit queue.
func BenchmarkGuardParallel(b *testing.B) {
	h, jwt := benchGuard(b)
	b.ReportAllocs()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, w := guardRequest(jwt)
			if err := h.ServeHTTP(w, r, okNext); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
