package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// limited creates and generates a token of alice's that only clients in
// nets may use, past the changes that made it.
func (e *guardEnv) limited(name string, nets ...string) (apitoken.Token, string) {
	e.T.Helper()
	ctx := context.Background()
	allowed, err := apitoken.ParseNetworks(nets)
	if err != nil {
		e.T.Fatal(err)
	}
	tok, err := e.svc.CreateToken(ctx, e.owner, apitoken.TokenInput{Name: name, Expires: apitoken.Expiry30d,
		Scopes: apitoken.DefaultScopes, AllowedIPs: allowed})
	if err != nil {
		e.T.Fatal(err)
	}
	jwt, tok, err := e.svc.Generate(ctx, e.owner, tok.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	e.Secret(jwt)
	e.settle()
	return tok, jwt
}

// allowIPs replaces the token's allowed_ips, as PATCH /tokens/{id} does.
func (e *guardEnv) allowIPs(id string, nets ...string) {
	e.T.Helper()
	allowed, err := apitoken.ParseNetworks(nets)
	if err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.svc.UpdateToken(context.Background(), e.owner, id, apitoken.TokenPatch{AllowedIPs: &allowed}); err != nil {
		e.T.Fatal(err)
	}
}

// guardAnswer is what a client sees of a refusal, for comparing two of them.
type guardAnswer struct {
	status                       int
	challenge, contentType, body string
	reachedUpstream              bool
}

func (e *guardEnv) answer(header ...string) guardAnswer {
	e.T.Helper()
	before := e.up.Hits.Load()
	res, body := e.do("GET", "/meta", header...)
	return guardAnswer{status: res.StatusCode, challenge: res.Header.Get("WWW-Authenticate"), body: body,
		reachedUpstream: e.up.Hits.Load() != before, contentType: res.Header.Get("Content-Type")}
}

// failReasons lists the token's AUTHENTICATE Fail rows as "reason client_ip".
func (e *guardEnv) failReasons(tokenID string) map[string]int64 {
	e.T.Helper()
	out := map[string]int64{}
	for _, l := range e.authLogs(tokenID) {
		if l.Result == apitoken.ResultFail {
			out[l.Reason+" "+l.ClientIP] += l.Count
		}
	}
	return out
}

// The test client reaches Caddy over loopback, as 127.0.0.1 or ::1.
var loopback = []string{"127.0.0.0/8", "::1"}

func TestGuard_AllowedIPsRefuseOtherClientsExactlyAsAnInvalidToken(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.limited("office only", "198.51.100.0/24", "2001:db8::/32")
	_, other := e.token("unlimited", apitoken.Expiry30d, apitoken.DefaultScopes)
	revoked, revokedJWT := e.token("revoked", apitoken.Expiry30d, apitoken.DefaultScopes)
	if _, err := e.svc.Revoke(context.Background(), e.owner, revoked.ID); err != nil {
		t.Fatal(err)
	}
	e.settle()

	refused := e.answer(bearer(jwt)...)
	if refused.status != http.StatusUnauthorized || refused.challenge != invalidChallenge || refused.reachedUpstream {
		t.Fatalf("a client outside allowed_ips got %+v, want 401 %q without reaching the upstream", refused, invalidChallenge)
	}
	// Nothing tells it apart from a revoked token: no hint of the limit.
	if want := e.answer(bearer(revokedJWT)...); refused != want {
		t.Errorf("refusal outside allowed_ips %+v\ndiffers from a revoked token's %+v", refused, want)
	}
	// X-Forwarded-For from a peer that is not a trusted proxy is the
	// client's own claim: it does not make it a client of the office.
	if got := e.answer(append(bearer(jwt), "X-Forwarded-For", "198.51.100.7")...); got.status != 401 || got.reachedUpstream {
		t.Errorf("a spoofed X-Forwarded-For from an untrusted peer got %+v, want 401", got)
	}
	if got := e.answer(bearer(other)...); got.status != 200 {
		t.Fatalf("a token without allowed_ips got %d", got.status)
	}

	// The reason is in the token's log, with the client's address.
	fails := e.failReasons(tok.ID)
	var n int64
	for k, c := range fails {
		reason, ip, _ := strings.Cut(k, " ")
		if reason != apitoken.ReasonIPNotAllowed || (ip != "127.0.0.1" && ip != "::1") {
			t.Errorf("Fail row %q, want ip_not_allowed from the loopback client", k)
		}
		n += c
	}
	if n != 2 {
		t.Errorf("the token's log counts %d refusals (%v), want 2", n, fails)
	}
	e.NoSecretsIn(t, e.Log, e.accessLog)

	// Widening applies at once, to the live JWT: no new generation.
	e.allowIPs(tok.ID, append([]string{"198.51.100.0/24"}, loopback...)...)
	if got := e.answer(bearer(jwt)...); got.status != 200 || !got.reachedUpstream {
		t.Fatalf("after adding the client's network: %+v, want 200", got)
	}
	// And so does narrowing.
	e.allowIPs(tok.ID, "198.51.100.0/24")
	if got := e.answer(bearer(jwt)...); got.status != 401 || got.reachedUpstream {
		t.Fatalf("after removing the client's network: %+v, want 401", got)
	}
	// An empty list lets any client use it again.
	e.allowIPs(tok.ID)
	if got := e.answer(bearer(jwt)...); got.status != 200 {
		t.Fatalf("after clearing allowed_ips: %d, want 200", got.status)
	}
}

// Behind a trusted proxy the client is the one X-Forwarded-For names, as for
// Caddy's own matchers and logs.
func TestGuard_AllowedIPsBehindATrustedProxyCheckTheForwardedClient(t *testing.T) {
	e := newHostileEnv(t, trustLocalProxy, "")
	tok, jwt := e.limited("office only", "198.51.100.0/24", "2001:db8::/32", "203.0.113.9")
	for _, tc := range []struct {
		client string
		want   int
	}{
		{"198.51.100.7", 200},
		{"198.51.100.255", 200},
		{"203.0.113.9", 200},
		{"2001:db8:5::1", 200},
		{"198.51.101.7", 401},
		{"203.0.113.10", 401},
		{"2001:db9::1", 401},
		// The proxy's own address is not the client's.
		{"", 401},
	} {
		h := bearer(jwt)
		if tc.client != "" {
			h = from(tc.client, h...)
		}
		if got := e.answer(h...); got.status != tc.want || got.reachedUpstream != (tc.want == 200) {
			t.Errorf("client %q: %+v, want %d", tc.client, got, tc.want)
		}
	}
	fails := e.failReasons(tok.ID)
	for _, want := range []string{"ip_not_allowed 198.51.101.7", "ip_not_allowed 203.0.113.10", "ip_not_allowed 2001:db9::1"} {
		if fails[want] != 1 {
			t.Errorf("Fail rows %v, want one %q", fails, want)
		}
	}
}
