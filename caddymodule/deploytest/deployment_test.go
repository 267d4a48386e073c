package deploytest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// testKey is the signing key of every instance.
var testKey = apitoken.GenerateKeySecret()

func TestMain(m *testing.M) {
	os.Exit(caddytesting.MainBuildingCaddy(m))
}

// instanceConfig is the Caddyfile of one instance: admin port, guard port,
// upstream, management port, basic_auth users, signing key, storage driver.
// The DSN comes from the environment, as a deployment would pass it.
const instanceConfig = `{
	admin localhost:%d
	skip_install_trust
	persist_config off
	auto_https off
	api_tokens {
		storage     %[7]s {env.APITOKENS_DATABASE_URL}
		signing_key %[6]s
		admins      root
		# Long, so that only the change sequence can explain a refusal within 1 s.
		cache_ttl   10m
	}
}
http://127.0.0.1:%[2]d {
	api_token_auth {
		app   "Reports API"
		scope meta   /meta /meta/*
		scope report /data/*
	}
	reverse_proxy %[3]s
}
http://127.0.0.1:%[4]d {
	basic_auth {
%[5]s	}
	api_token_admin
}
`

// caddyProcess is one Caddy instance of the deployment, a process of its
// own.
type caddyProcess struct {
	*caddytesting.Process
	guard  string // base URL of the report API
	manage string // base URL of the management routes
}

func startCaddy(t *testing.T, name, dsn, config string, guardPort, managePort int) *caddyProcess {
	t.Helper()
	return &caddyProcess{Process: caddytesting.StartProcess(t, name, config, "APITOKENS_DATABASE_URL="+dsn),
		guard: fmt.Sprintf("http://127.0.0.1:%d", guardPort), manage: fmt.Sprintf("http://127.0.0.1:%d", managePort)}
}

// waitReady waits for the management routes to answer.
func (p *caddyProcess) waitReady(t *testing.T) {
	t.Helper()
	p.WaitReady(t, caddytesting.Answers(p.manage+"/tokens"))
}

var pgClient = &http.Client{Timeout: 10 * time.Second}

// call makes a management call as user (password "pw-"+user) and decodes
// the JSON answer into out, which may be nil.
func (p *caddyProcess) call(t *testing.T, user, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	c := caddytesting.Call{User: user, Method: method, Path: path, Base: p.manage}
	if body != nil {
		b, _ := json.Marshal(body)
		c.Body = string(b)
	}
	a := caddytesting.Send(t, pgClient, c).Want(wantStatus, "")
	if out != nil {
		a.Decode(out)
	}
}

// use sends a request with jwt to the report API and returns the status.
func (p *caddyProcess) use(t *testing.T, path, jwt string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.guard+path, nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("User-Agent", "pg-e2e/1")
	resp, err := pgClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, p.Name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// until polls the report API as tightly as it answers until it gives
// status, and returns how long that took; it fails the test after 5 s.
func (p *caddyProcess) until(t *testing.T, path, jwt string, status int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := p.use(t, path, jwt)
		if got == status {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s still answers %d for %s after 5s, want %d", p.Name, got, path, status)
		}
	}
}

type pgToken struct {
	ID string `json:"id"`
}

// newToken creates and generates a token of alice's on p: its id and JWT.
func (p *caddyProcess) newToken(t *testing.T, name string) (string, string) {
	t.Helper()
	var tok pgToken
	p.call(t, "alice", http.MethodPost, "/tokens", map[string]any{"name": name, "expires": "30d", "scopes": []string{"meta", "report"}},
		http.StatusCreated, &tok)
	var gen struct {
		Token string `json:"token"`
	}
	p.call(t, "alice", http.MethodPost, "/tokens/"+tok.ID+"/generate", nil, http.StatusOK, &gen)
	return tok.ID, gen.Token
}

// Two Caddy processes on one PostgreSQL schema with the same signing key
// make one deployment: a revocation, regeneration, update or role change
// made through one is enforced by the other within 1 s (its cache TTL is
// 10 minutes, so only the change sequence can do that), and their audit
// counts add up exactly.
//
// Run it alone:
//
//	APITOKENS_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run TestPostgresDeployment -v ./caddymodule/deploytest/
func TestPostgresDeployment_ChangesOnOneInstanceAreEnforcedByTheOtherWithinOneSecond(t *testing.T) {
	t.Parallel()
	dsn, _ := pgtest.Schema(t)
	testDeployment(t, "postgres", dsn)
}

// Two Caddy processes on one SQLite file (an old and a new process during a
// zero-downtime upgrade) are one deployment too.
//
//	go test -run TestSQLiteDeployment -v ./caddymodule/deploytest/
func TestSQLiteDeployment_TwoProcessesOnOneFileEnforceEachOthersChangesWithinOneSecond(t *testing.T) {
	t.Parallel()
	testDeployment(t, "sqlite", filepath.Join(t.TempDir(), "apitokens.db"))
}

// startDeployment starts two Caddy processes, A and B, on one store, and
// grants alice the token role.
func startDeployment(t *testing.T, driver, dsn string) (a, b *caddyProcess) {
	t.Helper()
	up := caddytesting.NewUpstream(t)
	// The ports of the two Caddy processes, free ones, so that another
	// test binary can run at the same time.
	var (
		adminPortA, adminPortB = caddytesting.FreePort(), caddytesting.FreePort()
		guardPortA, manageAPIA = caddytesting.FreePort(), caddytesting.FreePort() // instance A: report API, management routes
		guardPortB, manageAPIB = caddytesting.FreePort(), caddytesting.FreePort() // instance B
	)
	users := caddytesting.Accounts(t, "\t\t", "root", "alice")
	upstream := up.Listener.Addr().String()
	// Both start at once on an empty store: the migration lock lets one
	// create the tables while the other waits.
	a = startCaddy(t, "A", dsn, fmt.Sprintf(instanceConfig, adminPortA, guardPortA, upstream, manageAPIA, users, testKey, driver),
		guardPortA, manageAPIA)
	b = startCaddy(t, "B", dsn, fmt.Sprintf(instanceConfig, adminPortB, guardPortB, upstream, manageAPIB, users, testKey, driver),
		guardPortB, manageAPIB)
	a.waitReady(t)
	b.waitReady(t)
	a.call(t, "root", http.MethodPut, "/admin/users/alice/roles/api_tokens", nil, http.StatusOK, nil)
	return a, b
}

// testDeployment runs two Caddy processes on one store and checks that they
// make one deployment.
func testDeployment(t *testing.T, driver, dsn string) {
	a, b := startDeployment(t, driver, dsn)

	t.Run("revocation", func(t *testing.T) {
		const trials = 25
		var lags []time.Duration
		for i := range trials {
			id, jwt := a.newToken(t, fmt.Sprint("revoked ", i))
			for range 3 { // B learns the token and caches its state
				if got := b.use(t, "/data/sales", jwt); got != http.StatusOK {
					t.Fatalf("trial %d: B answers %d for a fresh token, want 200", i, got)
				}
			}
			a.call(t, "alice", http.MethodPost, "/tokens/"+id+"/revoke", nil, http.StatusOK, nil)
			lags = append(lags, b.until(t, "/data/sales", jwt, http.StatusUnauthorized))
		}
		slices.Sort(lags)
		p50, p99 := caddytesting.Percentile(lags, 50), caddytesting.Percentile(lags, 99)
		t.Logf("a revocation on A is enforced by B (cache warm, cache_ttl 10m) after: p50 %v, p99 %v, max %v over %d trials (from A's answer to B's first 401)",
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lags[len(lags)-1].Round(10*time.Microsecond), trials)
		if p99 >= time.Second {
			t.Errorf("p99 %v: a revocation must be enforced everywhere within 1s", p99)
		}
	})

	t.Run("regeneration", func(t *testing.T) {
		id, old := a.newToken(t, "regenerated")
		if got := b.use(t, "/data/sales", old); got != http.StatusOK {
			t.Fatalf("B answers %d, want 200", got)
		}
		var gen struct {
			Token string `json:"token"`
		}
		a.call(t, "alice", http.MethodPost, "/tokens/"+id+"/generate", nil, http.StatusOK, &gen)
		t.Logf("the superseded JWT is refused by B after %v", b.until(t, "/data/sales", old, http.StatusUnauthorized))
		if got := b.use(t, "/data/sales", gen.Token); got != http.StatusOK {
			t.Errorf("B answers %d for the new JWT, want 200", got)
		}
	})

	t.Run("narrowing update", func(t *testing.T) {
		id, jwt := a.newToken(t, "narrowed")
		if got := b.use(t, "/data/sales", jwt); got != http.StatusOK {
			t.Fatalf("B answers %d, want 200", got)
		}
		a.call(t, "alice", http.MethodPatch, "/tokens/"+id, map[string]any{"scopes": []string{"meta"}}, http.StatusOK, nil)
		t.Logf("a scope removed on A is enforced by B after %v", b.until(t, "/data/sales", jwt, http.StatusForbidden))
		if got := b.use(t, "/meta", jwt); got != http.StatusOK {
			t.Errorf("B answers %d for the scope the token kept, want 200", got)
		}
	})

	t.Run("allowed networks", func(t *testing.T) {
		// Not part of the JWT: narrowing and widening them on A both reach
		// B's cached state through the change sequence.
		id, jwt := a.newToken(t, "networks")
		if got := b.use(t, "/data/sales", jwt); got != http.StatusOK {
			t.Fatalf("B answers %d, want 200", got)
		}
		a.call(t, "alice", http.MethodPatch, "/tokens/"+id, map[string]any{"allowed_ips": []string{"198.51.100.0/24"}}, http.StatusOK, nil)
		lag := b.until(t, "/data/sales", jwt, http.StatusUnauthorized)
		t.Logf("allowed_ips narrowed on A (B's client left out) are enforced by B after %v", lag)
		if lag >= time.Second {
			t.Errorf("a narrowing of allowed_ips took %v to reach B, want under 1s", lag)
		}
		a.call(t, "alice", http.MethodPatch, "/tokens/"+id, map[string]any{"allowed_ips": []string{"198.51.100.0/24", "127.0.0.1"}}, http.StatusOK, nil)
		if lag := b.until(t, "/data/sales", jwt, http.StatusOK); lag >= time.Second {
			t.Errorf("a widening of allowed_ips took %v to reach B, want under 1s", lag)
		}
	})

	t.Run("role removal", func(t *testing.T) {
		_, jwt := a.newToken(t, "role")
		if got := b.use(t, "/data/sales", jwt); got != http.StatusOK {
			t.Fatalf("B answers %d, want 200", got)
		}
		a.call(t, "root", http.MethodDelete, "/admin/users/alice/roles/api_tokens", nil, http.StatusOK, nil)
		lag := b.until(t, "/data/sales", jwt, http.StatusUnauthorized)
		t.Logf("the token role removed on A is enforced by B after %v", lag)
		if lag >= time.Second {
			t.Errorf("a role removal took %v to reach B, want under 1s", lag)
		}
		a.call(t, "root", http.MethodPut, "/admin/users/alice/roles/api_tokens", nil, http.StatusOK, nil)
		if lag := b.until(t, "/data/sales", jwt, http.StatusOK); lag >= time.Second {
			t.Errorf("the role granted back took %v to reach B, want under 1s", lag)
		}
	})

	t.Run("audit sums", func(t *testing.T) {
		id, jwt := a.newToken(t, "audited")
		const onA, onB = 37, 53
		began := time.Now()
		var wg sync.WaitGroup
		for _, side := range []struct {
			p *caddyProcess
			n int
		}{{a, onA}, {b, onB}} {
			wg.Go(func() {
				for range side.n {
					if got := side.p.use(t, "/data/sales", jwt); got != http.StatusOK {
						t.Errorf("%s answered %d, want 200", side.p.Name, got)
					}
				}
			})
		}
		wg.Wait()
		// One row per audit window (1 minute): two if the requests
		// straddled a minute.
		windows := 1
		if !began.Truncate(time.Minute).Equal(time.Now().Truncate(time.Minute)) {
			windows = 2
		}
		okCount := func() (sum int64, rows int) {
			var page struct {
				Logs []struct {
					Activity string `json:"activity"`
					Result   string `json:"result"`
					Count    int64  `json:"count"`
				} `json:"logs"`
			}
			b.call(t, "alice", http.MethodGet, "/tokens/"+id+"/logs?limit=1000", nil, http.StatusOK, &page)
			for _, l := range page.Logs {
				if l.Activity == "AUTHENTICATE" && l.Result == "OK" {
					sum += l.Count
					rows++
				}
			}
			return sum, rows
		}
		deadline := time.Now().Add(5 * time.Second)
		sum, rows := okCount()
		for sum < onA+onB && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			sum, rows = okCount()
		}
		time.Sleep(1200 * time.Millisecond) // two more flush intervals: nothing may be added twice
		if sum, rows = okCount(); sum != onA+onB {
			t.Errorf("the token's log counts %d OK attempts, want exactly %d (%d on A, %d on B)", sum, onA+onB, onA, onB)
		}
		if rows != windows {
			t.Errorf("%d OK rows for one client, app and user agent, want %d: both instances add to the same row", rows, windows)
		}
	})
}
