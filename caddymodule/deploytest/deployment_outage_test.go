package deploytest_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// revokeOnceWritable revokes a token through p, retrying while p cannot
// write yet (its database just came back), and returns when p answered.
func (p *caddyProcess) revokeOnceWritable(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, p.manage+"/tokens/"+id+"/revoke", nil)
		req.SetBasicAuth("alice", "pw-alice")
		resp, err := pgClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s could not revoke %s within 20s of the database's return (last: %v, %v)", p.Name, id, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A revocation made on one instance right after the database restarts, or
// after the other instance's notification connection was ended, reaches
// the other instance within 1 s: it reads the change sequence itself every
// poll, whatever its notifications are doing, and does not trust what it
// cached while it could not read it.
//
//	APITOKENS_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run TestPostgresDeployment_RevocationsAfter -v ./caddymodule/deploytest/
func TestPostgresDeployment_RevocationsAfterARestartOrALostFeedReachTheOtherInstanceWithinOneSecond(t *testing.T) {
	t.Parallel()
	pg := pgtest.Private(t)
	a, b := startDeployment(t, "postgres", pg.DSN)
	var lags []time.Duration
	trial := func(what string, fault func()) {
		id, jwt := a.newToken(t, fmt.Sprint(what, " ", len(lags)))
		if got := b.use(t, "/data/sales", jwt); got != http.StatusOK {
			t.Fatalf("%s: B answers %d for a fresh token, want 200", what, got)
		}
		fault()
		a.revokeOnceWritable(t, id)
		lag := b.until(t, "/data/sales", jwt, http.StatusUnauthorized)
		t.Logf("%s: B enforced the revocation after %v", what, lag)
		lags = append(lags, lag)
	}
	for _, down := range []time.Duration{time.Second, 3 * time.Second, 8 * time.Second} {
		trial(fmt.Sprintf("database down %v", down), func() {
			pg.Stop()
			time.Sleep(down)
			pg.Start()
		})
	}
	for i := range 5 {
		trial(fmt.Sprintf("notification connections ended (%d)", i), func() {
			conn, err := pgx.Connect(context.Background(), pg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(),
				`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'caddy-apitokens feed %'`); err != nil {
				t.Fatal(err)
			}
		})
	}
	slices.Sort(lags)
	t.Logf("revocation lag on the other instance after restarts and lost feeds: p50 %v, p99 %v, max %v over %d trials",
		caddytesting.Percentile(lags, 50), caddytesting.Percentile(lags, 99), lags[len(lags)-1], len(lags))
	if worst := lags[len(lags)-1]; worst > time.Second {
		t.Errorf("a revocation took %v to reach the other instance, want at most 1s", worst)
	}
}
