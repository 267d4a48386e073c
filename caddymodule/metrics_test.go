package caddymodule

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// scrape reads the api_tokens series from the test Caddy's metrics endpoint:
// name{labels} to value. A series shown twice (a collector registered twice)
// fails the test.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", testAdminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metrics endpoint: %s", res.Status)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metricsNamespace+"_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		if _, dup := series[line[:i]]; dup {
			t.Errorf("series %s shown twice", line[:i])
		}
		series[line[:i]] = v
	}
	return series
}

// delta is what each series moved between two scrapes.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

const (
	okSeries        = `caddy_api_tokens_authentications_total{reason="",result="OK"}`
	malformedSeries = `caddy_api_tokens_authentications_total{reason="malformed",result="Fail"}`
	jwtHitSeries    = `caddy_api_tokens_cache_hits_total{cache="jwt"}`
	jwtMissSeries   = `caddy_api_tokens_cache_misses_total{cache="jwt"}`
	queriesSeries   = `caddy_api_tokens_store_queries_total`
	stateHitSeries  = `caddy_api_tokens_cache_hits_total{cache="state"}`
)

// getAcrossReload sends GET url with the JWT and returns the status. A
// request whose connection is closed unanswered is sent again: right after a
// reload, the old server can still accept a connection and then close it
// (plain Caddy does the same; docs/reliability.md). Such a request never
// reached a handler, so it moves no counter.
func getAcrossReload(t *testing.T, url, jwt string) int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for try := 1; ; try++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			return res.StatusCode
		}
		if try == 3 {
			t.Fatal(err)
		}
	}
}

// The metrics are read from Caddy's metrics endpoint after each of several
// config reloads (through the admin API, as `caddy reload` does): every
// request moves the counters, whichever config served it, and no series is
// registered twice. (Before, the counters started from 0 with each config,
// or stayed bound to the first config's objects and stopped moving.)
func TestMetrics_CountersKeepCountingAcrossReloads(t *testing.T) {
	e := newGuardEnv(t)
	_, jwt := e.token("metrics-reload", apitoken.Expiry30d, apitoken.DefaultScopes)
	e.settle()
	before := scrape(t)
	for reload := 1; reload <= 4; reload++ {
		e.reload()
		for i := 0; i < 2; i++ { // a JWT cache miss (a new config's cache is empty), then a hit
			if status := getAcrossReload(t, e.Base+"/meta", jwt); status != http.StatusOK {
				t.Fatalf("reload %d: status %d", reload, status)
			}
		}
		getAcrossReload(t, e.Base+"/meta", "garbage")
		after := scrape(t)
		d := delta(before, after)
		if d[okSeries] != 2 || d[malformedSeries] != 1 || d[jwtHitSeries] != 1 || d[jwtMissSeries] != 2 || d[stateHitSeries]+d[queriesSeries] != 4 {
			t.Errorf("after reload %d the counters moved OK %+v, malformed %+v, JWT hits %+v, misses %+v, state hits %+v and store queries %+v; "+
				"want 2, 1, 1, 2 (the token's first request and the garbage), and 4 state reads (token and owner, twice)",
				reload, d[okSeries], d[malformedSeries], d[jwtHitSeries], d[jwtMissSeries], d[stateHitSeries], d[queriesSeries])
		}
		// The state cached under the first config is kept by the reloads.
		if reload > 1 && d[queriesSeries] != 0 {
			t.Errorf("after reload %d the store was asked %v times for state cached before the reload", reload, d[queriesSeries])
		}
		before = after
	}
}
