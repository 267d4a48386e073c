package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// benchStore is a store with 100 users of 10 tokens each, the first of them
// generated: the same data as the SQLite store's benchmarks.
func benchStore(b *testing.B) (*postgres.Store, []string, []string) {
	b.Helper()
	dsn, _ := pgtest.Schema(b)
	s := openStore(b, dsn)
	var users, tokens []string
	for u := range 100 {
		id := fmt.Sprintf("user%03d", u)
		putUser(b, s, id)
		users = append(users, id)
		for i := range 10 {
			tok := putToken(b, s, id, fmt.Sprint("token ", i))
			tokens = append(tokens, tok.ID)
		}
		gen := t0
		if _, err := s.UpdateToken(context.Background(), tokens[len(tokens)-10], func(t *apitoken.Token) (apitoken.Log, error) {
			t.GeneratedAt, t.GeneratedExp, t.JTIHash = &gen, t.Expires.ExpiresAt(gen), make([]byte, 32)
			return apitoken.Log{}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	return s, users, tokens
}

// BenchmarkGetToken is the token lookup of a request whose token state is
// not cached: one round trip to the server.
func BenchmarkGetToken(b *testing.B) {
	s, _, tokens := benchStore(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetToken(ctx, tokens[i%len(tokens)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.GetToken(ctx, tokens[i*7%len(tokens)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkGetUser is the owner lookup of a request whose user state is not
// cached.
func BenchmarkGetUser(b *testing.B) {
	s, users, _ := benchStore(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetUser(ctx, users[i%len(users)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.GetUser(ctx, users[i*7%len(users)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkRecordAuth is one audit flush of 100 coalesced records: 10
// tokens, 10 clients each, mostly OK.
func BenchmarkRecordAuth(b *testing.B) {
	s, _, tokens := benchStore(b)
	ctx := context.Background()
	batch := func(window time.Time) []apitoken.AuthRecord {
		recs := make([]apitoken.AuthRecord, 0, 100)
		for tk := range 10 {
			for c := range 10 {
				r := apitoken.AuthRecord{TokenID: tokens[tk*10], ActivityBy: "Reports API", Result: apitoken.ResultOK,
					ClientIP: fmt.Sprintf("192.0.2.%d", c), UserAgent: "report-client/1.0", Window: window,
					First: window.Add(time.Second), Last: window.Add(50 * time.Second), Count: 17}
				if c == 9 {
					r.Result, r.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
				}
				recs = append(recs, r)
			}
		}
		return recs
	}
	b.Run("existing-rows", func(b *testing.B) {
		recs := batch(t0)
		if err := s.RecordAuth(ctx, recs); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.RecordAuth(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-rows", func(b *testing.B) {
		w := t0.Add(time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			w = w.Add(time.Minute)
			if err := s.RecordAuth(ctx, batch(w)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
