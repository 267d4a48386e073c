package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// measureGuard sends n requests GET /meta with jwt from 4 workers and
// returns the answers.
func measureGuard(e *guardEnv, jwt string, n int) caddytesting.LoadResult {
	l := e.startLoad(jwt, 4)
	l.Wait(n, 0)
	return l.Stop()
}

// A database that goes silent (every process stopped: connections stay open
// and nothing answers) is found down; from then on no request waits on it,
// once cache_ttl and the trust in the change sequence have passed (on the
// test clock). With stale_if_error the guard answers at once from the
// cache; without it, refusals (503) come at once, not after a lookup's
// timeout.
func TestReliability_ASilentDatabaseIsNotWaitedOnByRequests(t *testing.T) {
	pg := pgtest.Private(t)
	e := newGuardEnvOn(t, "postgres "+pg.DSN, "cache_ttl 1s\n\t\tstale_if_error 1m")
	_, jwt := e.token("partition", apitoken.Expiry30d, apitoken.DefaultScopes)
	e.settle()
	if res, body := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != http.StatusOK {
		t.Fatalf("before the fault: %d %s", res.StatusCode, body)
	}
	normal := measureGuard(e, jwt, 200)

	state := e.app.Authenticator().State()
	frozen := time.Now()
	pg.Freeze()
	caddytesting.Eventually(t, 5*time.Second, "the silent database found down", func() bool { return state.Stats().Down })
	// Found within one poll and one read's timeout, before the last read
	// stops vouching for the cache (apitoken's TestState tests bound it).
	t.Logf("the silent database was found down after %v", time.Since(frozen))
	e.clock.Advance(2 * time.Second) // past cache_ttl and the trust in the last read
	silent := measureGuard(e, jwt, 200)
	t.Logf("stale_if_error: p99 %v normally %v, p99 %v with the database silent %v (max %v)",
		normal.Percentile(99), normal.ByStatus, silent.Percentile(99), silent.ByStatus, silent.Latencies[len(silent.Latencies)-1])
	if silent.ByStatus[http.StatusOK] != silent.Total() {
		t.Errorf("with stale_if_error and the database silent: answers %v, want every one 200", silent.ByStatus)
	}
	// A request that waited on the store would take a read's timeout (500
	// ms) at least.
	if p99 := silent.Percentile(99); p99 > 400*time.Millisecond {
		t.Errorf("200s took %v (p99) with the database silent: requests wait on the store", p99)
	}

	// Without stale_if_error (a reload, which keeps the state and the
	// store's known health), the same requests are refused at once.
	e.options = "cache_ttl 1s"
	e.load()
	refused := measureGuard(e, jwt, 100)
	t.Logf("fail closed: %v with the database silent; p99 %v, max %v", refused.ByStatus, refused.Percentile(99), refused.Latencies[len(refused.Latencies)-1])
	if refused.ByStatus[http.StatusServiceUnavailable] != refused.Total() {
		t.Errorf("without stale_if_error and the database silent: answers %v, want every one 503", refused.ByStatus)
	}
	if p99 := refused.Percentile(99); p99 > 400*time.Millisecond {
		t.Errorf("503s took %v (p99): requests wait on the silent store", p99)
	}

	pg.Thaw()
	caddytesting.Eventually(t, 15*time.Second, "recovery once the database answers", func() bool {
		res, _ := e.do("GET", "/meta", bearer(jwt)...)
		return res.StatusCode == http.StatusOK
	})
}
