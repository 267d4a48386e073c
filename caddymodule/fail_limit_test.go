package caddymodule

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// trustLocalProxy makes the test client a trusted proxy, so each request
// names its client in X-Forwarded-For, as behind a load balancer.
const trustLocalProxy = "servers {\n\t\ttrusted_proxies static 127.0.0.1/32 ::1/128\n\t}"

func newFailLimitEnv(t *testing.T, server string, limit int) *hostileEnv {
	t.Helper()
	e := newHostileEnv(t, server, "signing_key "+testKey+"\n\t\tfail_limit "+strconv.Itoa(limit))
	if e.app.limiter == nil || e.app.FailLimit != limit {
		t.Fatalf("fail_limit %d was not applied", limit)
	}
	return e
}

// from is a request header naming the client behind the trusted proxy.
func from(ip string, header ...string) []string {
	return append([]string{"X-Forwarded-For", ip}, header...)
}

// tooMany checks a 429 answer and returns its Retry-After.
func tooMany(t *testing.T, e *hostileEnv, header []string) time.Duration {
	t.Helper()
	before := e.up.Hits.Load()
	res, body := e.do("GET", "/meta", header...)
	if res.StatusCode != 429 {
		t.Fatalf("status %d, want 429: %s", res.StatusCode, body)
	}
	if e.up.Hits.Load() != before {
		t.Fatal("a request past fail_limit reached the upstream")
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || got["error"] != "too_many_requests" || got["error_description"] == "" {
		t.Errorf("body %q, want a JSON too_many_requests error", body)
	}
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 65 {
		t.Fatalf("Retry-After %q, want 1 to 65 seconds", res.Header.Get("Retry-After"))
	}
	return time.Duration(secs) * time.Second
}

func status(t *testing.T, e *hostileEnv, header []string) int {
	t.Helper()
	before := e.up.Hits.Load()
	res, _ := e.do("GET", "/meta", header...)
	if reached := e.up.Hits.Load() != before; reached != (res.StatusCode == 200) {
		t.Fatalf("status %d, upstream reached %t", res.StatusCode, reached)
	}
	return res.StatusCode
}

func TestFailLimit_BlocksTheFailingClientOnlyAndLiftsAfterRetryAfter(t *testing.T) {
	e := newFailLimitEnv(t, trustLocalProxy, 5)
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	bad := bearer(good[:len(good)-3] + "AAA")

	const a, b = "203.0.113.7", "203.0.113.8"
	for i := range 5 {
		if got := status(t, e, from(a, bad...)); got != 401 {
			t.Fatalf("failure %d got %d, want 401", i+1, got)
		}
	}
	// Past the limit even a good token is not looked at.
	wait := tooMany(t, e, from(a, bearer(good)...))
	tooMany(t, e, from(a, "X-Fill", "no credential at all"))
	// Another client is not locked out, and still gets its own answers.
	if got := status(t, e, from(b, bearer(good)...)); got != 200 {
		t.Fatalf("another client with a good token got %d", got)
	}
	if got := status(t, e, from(b, bad...)); got != 401 {
		t.Fatalf("another client with a bad token got %d", got)
	}
	// After Retry-After, the client is heard again.
	e.clock.Set(e.clock.Now().Add(wait))
	if got := status(t, e, from(a, bearer(good)...)); got != 200 {
		t.Fatalf("after Retry-After the good token got %d", got)
	}

	logs, _ := os.ReadFile(e.Log)
	if n := strings.Count(string(logs), "client reached fail_limit"); n != 1 {
		t.Errorf("Caddy's log tells %d times of a client reaching fail_limit, want once", n)
	}
	e.noSecretsInLogs(t)
}

func TestFailLimit_RequestsWithoutACredentialDoNotCount(t *testing.T) {
	e := newFailLimitEnv(t, trustLocalProxy, 3)
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	const c = "198.51.100.20"
	for range 20 { // what .NET's HttpClient sends before its credentials
		if got := status(t, e, from(c)); got != 401 {
			t.Fatalf("no credential got %d", got)
		}
	}
	if got := status(t, e, from(c, bearer(good)...)); got != 200 {
		t.Fatalf("after 20 requests without a credential a good token got %d", got)
	}
	// Nor does a valid token lacking a scope (403): it is no guess.
	for range 5 {
		res, _ := e.do("GET", "/nowhere", from(c, bearer(good)...)...)
		if res.StatusCode != 403 {
			t.Fatalf("got %d", res.StatusCode)
		}
	}
	if got := status(t, e, from(c, bearer(good)...)); got != 200 {
		t.Fatalf("after 403s a good token got %d", got)
	}
}

// A success does not reset the count: a client holding one valid token
// must not be able to interleave it to keep guessing.
func TestFailLimit_ASuccessDoesNotResetTheCount(t *testing.T) {
	e := newFailLimitEnv(t, trustLocalProxy, 3)
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	const d = "198.51.100.30"
	for range 2 {
		status(t, e, from(d, bearer("not.a.token")...))
		if got := status(t, e, from(d, bearer(good)...)); got != 200 {
			t.Fatalf("good token got %d", got)
		}
	}
	status(t, e, from(d, "Authorization", "Bearer "+good, "Authorization", "Bearer "+good)) // 400 counts too
	tooMany(t, e, from(d, bearer(good)...))
}

func TestFailLimit_AnIPv6ClientIsCountedByIts64(t *testing.T) {
	e := newFailLimitEnv(t, trustLocalProxy, 3)
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	for i := range 3 {
		status(t, e, from("2001:db8:7:7::"+strconv.Itoa(i+1), bearer("x.y.z")...))
	}
	tooMany(t, e, from("2001:db8:7:7:dead:beef:0:1", bearer(good)...))
	if got := status(t, e, from("2001:db8:7:8::1", bearer(good)...)); got != 200 {
		t.Fatalf("a client of another /64 got %d", got)
	}
}

// Attempts past the limit are not verified, so they are not recorded: a
// flood with a revoked token writes the attempts up to the limit, not one
// row or count per request.
func TestFailLimit_AFloodDoesNotReachTheAuditLog(t *testing.T) {
	e := newFailLimitEnv(t, trustLocalProxy, 5)
	tok, jwt := e.live("alice", "revoked", apitoken.Expiry30d, apitoken.DefaultScopes)
	if _, err := e.svc.Revoke(context.Background(), e.owner, tok.ID); err != nil {
		t.Fatal(err)
	}
	refused := map[int]int{}
	for range 300 {
		res, _ := e.do("GET", "/meta", from("192.0.2.99", bearer(jwt)...)...)
		refused[res.StatusCode]++
	}
	if refused[401] != 5 || refused[429] != 295 {
		t.Fatalf("answers %v, want 5 × 401 then 295 × 429", refused)
	}
	var counted int64
	for _, l := range e.authLogs(tok.ID) {
		counted += l.Count
	}
	if counted != 5 {
		t.Fatalf("the token's log counts %d attempts, want the 5 before the limit", counted)
	}
	if e.up.Hits.Load() != 0 {
		t.Fatal("the upstream was reached")
	}
}

// Without trusted_proxies, X-Forwarded-For is the client's own claim and is
// ignored: changing it does not make a new client.
func TestFailLimit_ASpoofedForwardedForDoesNotEscapeTheLimit(t *testing.T) {
	e := newFailLimitEnv(t, "", 4)
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	for i := range 4 {
		status(t, e, from("203.0.113."+strconv.Itoa(i+1), bearer("x.y.z")...))
	}
	tooMany(t, e, from("203.0.113.200", bearer(good)...))
	tooMany(t, e, bearer(good))
}
