package postgres_test

import (
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/storetest"
)

// BenchmarkStore runs the benchmarks every store reports (storetest.Bench):
// each lookup is one round trip to the server.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) apitoken.Store {
		dsn, _ := pgtest.Schema(b)
		return openStore(b, dsn)
	})
}
