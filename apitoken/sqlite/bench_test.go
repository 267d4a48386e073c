package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/storetest"
)

// BenchmarkStore runs the benchmarks every store reports (storetest.Bench).
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) apitoken.Store {
		s := openStore(b, filepath.Join(b.TempDir(), "bench.db"))
		b.Cleanup(func() { s.Close() })
		return s
	})
}
