package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// A PostgreSQL server really stopped and started under a running guard:
// by default it fails closed with 503 (not 401: the token is not at fault)
// once the change sequence could not be read for 1s (on the test clock), stale_if_error keeps
// cached tokens working for its window, the audit queue keeps every count,
// and all recovers without a restart.
func TestReliability_PostgresOutageFailsClosedAndRecovers(t *testing.T) {
	pg := pgtest.Private(t)
	e := newGuardEnvOn(t, "postgres "+pg.DSN, "cache_ttl 3s")
	warmTok, warm := e.token("warm", apitoken.Expiry30d, apitoken.DefaultScopes)
	_, cold := e.token("cold", apitoken.Expiry30d, apitoken.DefaultScopes)
	answeredOK := 0
	expect := func(jwt string, status int, when string) *http.Response {
		t.Helper()
		before := e.up.Hits.Load()
		res, body := e.do("GET", "/meta", bearer(jwt)...)
		if res.StatusCode != status {
			t.Fatalf("%s: got %d, want %d: %s", when, res.StatusCode, status, body)
		}
		if reached := e.up.Hits.Load() != before; reached != (status == 200) {
			t.Fatalf("%s: upstream reached = %v", when, reached)
		}
		if status == 200 && jwt == warm {
			answeredOK++
		}
		return res
	}
	e.settle()
	expect(warm, 200, "before the outage")

	stopped := time.Now()
	pg.Stop()
	t.Logf("stopping PostgreSQL took %v", time.Since(stopped))
	res := expect(cold, 503, "down, state never cached")
	if res.Header.Get("Retry-After") == "" || res.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("503 headers %v: want Retry-After and no challenge", res.Header)
	}
	e.clock.Advance(1100 * time.Millisecond)
	expect(warm, 503, "down, the change sequence unread for 1s, no stale_if_error")

	pg.Start()
	caddytesting.Eventually(t, 15*time.Second, "recovery without a restart", func() bool {
		res, _ := e.do("GET", "/meta", bearer(cold)...)
		return res.StatusCode == 200
	})
	expect(warm, 200, "after the outage")
	caddytesting.Eventually(t, 15*time.Second, "the audit queue draining", func() bool { return e.app.Auditor().Flush(context.Background()) == nil })
	if logged := e.loggedOK(warmTok.ID); logged != int64(answeredOK) {
		t.Errorf("%d OK answers for the warm token, %d in its logs", answeredOK, logged)
	}

	// With stale_if_error, a cached state outlives cache_ttl while the store
	// is down; a state never cached still cannot be had. The state cached
	// before a reload is kept by it: reloading to set stale_if_error in the
	// middle of an incident must not turn it into a full outage.
	_, never := e.token("never used", apitoken.Expiry30d, apitoken.DefaultScopes)
	e.settle()
	expect(warm, 200, "before the second outage")
	expect(cold, 200, "before the second outage")
	pg.Stop()
	e.options = "cache_ttl 3s\n\t\tstale_if_error 1m"
	e.load()
	expect(cold, 200, "stale_if_error set by a reload during the outage")
	e.clock.Advance(3100 * time.Millisecond)
	expect(warm, 200, "stale_if_error: down, past cache_ttl")
	expect(never, 503, "stale_if_error: down, never cached")
	pg.Start()
	caddytesting.Eventually(t, 15*time.Second, "recovery after the second outage", func() bool {
		res, _ := e.do("GET", "/meta", bearer(cold)...)
		return res.StatusCode == 200
	})
}
