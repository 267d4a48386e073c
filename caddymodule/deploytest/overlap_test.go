package deploytest_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// A regeneration's overlap holds on every instance of a deployment: the
// previous JWT works on A and on B while it runs, and is refused by both
// within 1 s of a regeneration without overlap or a revocation made on A
// (cache_ttl 10m, so only the change sequence can explain it).
//
//	APITOKENS_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run TestPostgresDeployment_Overlap -v ./caddymodule/deploytest/
func TestPostgresDeployment_OverlapHoldsOnEveryInstance(t *testing.T) {
	t.Parallel()
	dsn, _ := pgtest.Schema(t)
	testOverlap(t, "postgres", dsn)
}

// The same with two processes on one SQLite file:
//
//	go test -run TestSQLiteDeployment_Overlap -v ./caddymodule/deploytest/
func TestSQLiteDeployment_OverlapHoldsOnEveryProcess(t *testing.T) {
	t.Parallel()
	testOverlap(t, "sqlite", filepath.Join(t.TempDir(), "apitokens.db"))
}

func testOverlap(t *testing.T, driver, dsn string) {
	a, b := startDeployment(t, driver, dsn)
	both := []*caddyProcess{a, b}
	// generate makes a new JWT on A, with the overlap asked for by body.
	generate := func(id string, body any) (jwt string, previousValidUntil *string) {
		t.Helper()
		var gen struct {
			Token   string `json:"token"`
			Details struct {
				PreviousValidUntil *string `json:"previous_valid_until"`
			} `json:"details"`
		}
		a.call(t, "alice", http.MethodPost, "/tokens/"+id+"/generate", body, http.StatusOK, &gen)
		return gen.Token, gen.Details.PreviousValidUntil
	}
	// works fails unless every JWT opens the report API on every instance.
	works := func(what string, jwts ...string) {
		t.Helper()
		for _, p := range both {
			for _, jwt := range jwts {
				if got := p.use(t, "/data/sales", jwt); got != http.StatusOK {
					t.Fatalf("%s: %s answers %d, want 200", what, p.Name, got)
				}
			}
		}
	}
	// refusedWithin1s fails unless A refuses jwt at once and B within 1 s.
	refusedWithin1s := func(what, jwt string) {
		t.Helper()
		if got := a.use(t, "/data/sales", jwt); got != http.StatusUnauthorized {
			t.Errorf("%s: A, which made the change, answers %d, want 401", what, got)
		}
		lag := b.until(t, "/data/sales", jwt, http.StatusUnauthorized)
		t.Logf("%s: refused by B after %v", what, lag.Round(10*time.Microsecond))
		if lag >= time.Second {
			t.Errorf("%s: B took %v to refuse it, want under 1s", what, lag)
		}
	}

	id, first := a.newToken(t, "rotating")
	works("the first JWT", first) // both instances cache the token's state
	second, until := generate(id, map[string]string{"overlap": "1h"})
	if until == nil {
		t.Fatalf("a generation with an overlap of 1h has no previous_valid_until")
	}
	// B accepts the new JWT once the change reaches it; from then on it
	// knows both.
	if lag := b.until(t, "/data/sales", second, http.StatusOK); lag >= time.Second {
		t.Errorf("B took %v to accept the new JWT, want under 1s", lag)
	}
	works("during the overlap", first, second)
	// Generating again without an overlap ends the previous JWT at once
	// everywhere.
	third, until := generate(id, nil)
	if until != nil {
		t.Errorf("a generation without overlap has previous_valid_until %s", *until)
	}
	refusedWithin1s("the previous JWT after a regeneration without overlap", second)
	refusedWithin1s("the JWT before it", first)
	works("the new JWT", third)

	// A revocation ends a running overlap at once everywhere.
	fourth, _ := generate(id, map[string]string{"overlap": "24h"})
	if lag := b.until(t, "/data/sales", fourth, http.StatusOK); lag >= time.Second {
		t.Errorf("B took %v to accept the new JWT, want under 1s", lag)
	}
	works("during the second overlap", third, fourth)
	a.call(t, "alice", http.MethodPost, "/tokens/"+id+"/revoke", nil, http.StatusOK, nil)
	refusedWithin1s("the previous JWT after a revocation", third)
	refusedWithin1s("the new JWT after a revocation", fourth)
}
