package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// measureGuard sends GET /meta with jwt from 4 workers for d and returns
// the answers by status and the latencies, sorted.
func measureGuard(e *guardEnv, jwt string, d time.Duration) (byStatus map[int]int, latencies []time.Duration) {
	l := e.startLoad(jwt, 4)
	time.Sleep(d)
	r := l.Stop()
	return r.ByStatus, r.Latencies
}

// A database that goes silent (every process stopped: connections stay open
// and nothing answers) is found down within one read of the change sequence,
// before cached state stops being trusted; from then on no request waits on
// it. With stale_if_error the guard goes on at the same pace; without it,
// refusals (503) come at once, not after a lookup's timeout.
func TestReliability_ASilentDatabaseIsNotWaitedOnByRequests(t *testing.T) {
	pg := pgtest.Private(t)
	// A short cache_ttl, so that the silence outlasts it.
	e := newGuardEnvOn(t, "postgres "+pg.DSN, "cache_ttl 1s\n\t\tstale_if_error 1m")
	_, jwt := e.token("partition", apitoken.Expiry30d, apitoken.AllScopes)
	e.settle()
	if res, body := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != http.StatusOK {
		t.Fatalf("before the fault: %d %s", res.StatusCode, body)
	}
	normal, _ := measureGuard(e, jwt, time.Second)

	pg.Freeze()
	silent, lat := measureGuard(e, jwt, time.Second)
	t.Logf("stale_if_error: %d answers in 1s normally %v, %d with the database silent %v; p99 %v, max %v",
		normal[200], normal, silent[200], silent, caddytesting.Percentile(lat, 99), lat[len(lat)-1])
	if silent[200] != sumCounts(silent) {
		t.Errorf("with stale_if_error and the database silent: answers %v, want every one 200", silent)
	}
	if silent[200] < normal[200]/2 {
		t.Errorf("with the database silent the guard answered %d requests in 1s against %d normally: requests wait on the store", silent[200], normal[200])
	}

	// Without stale_if_error (a reload, which keeps the state and the
	// store's known health), the same requests are refused at once.
	e.options = "cache_ttl 1s"
	e.load()
	refused, lat := measureGuard(e, jwt, 500*time.Millisecond)
	t.Logf("fail closed: %v in 0.5s with the database silent; p99 %v, max %v", refused, caddytesting.Percentile(lat, 99), lat[len(lat)-1])
	if refused[http.StatusServiceUnavailable] != sumCounts(refused) {
		t.Errorf("without stale_if_error and the database silent: answers %v, want every one 503", refused)
	}
	if p99 := caddytesting.Percentile(lat, 99); p99 > 200*time.Millisecond {
		t.Errorf("503s took %v (p99): requests wait on the silent store", p99)
	}

	pg.Thaw()
	eventually(t, "recovery once the database answers", func() bool {
		res, _ := e.do("GET", "/meta", bearer(jwt)...)
		return res.StatusCode == http.StatusOK
	})
}

func sumCounts(m map[int]int) (n int) {
	for _, c := range m {
		n += c
	}
	return n
}
