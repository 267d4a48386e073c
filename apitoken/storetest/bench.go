package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Bench runs the store benchmarks every backend reports, on the same data:
// 100 users of 10 tokens each, the first token of each user generated.
//
//	GetToken, GetUser  the lookups of a request whose state is not cached
//	RecordAuth         one audit flush of 100 coalesced records
//
// newStore returns an empty store, closed by the caller's cleanup.
func Bench(b *testing.B, newStore func(b *testing.B) apitoken.Store) {
	s := newStore(b)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var users, tokens []string
	for u := range 100 {
		id := fmt.Sprintf("user%03d", u)
		putUser(b, s, id, t0)
		users = append(users, id)
		for i := range 10 {
			tokens = append(tokens, createToken(b, s, newToken(id, fmt.Sprint("token ", i), t0)).ID)
		}
		if _, err := s.UpdateToken(ctx, tokens[len(tokens)-10], func(t *apitoken.Token) (apitoken.Log, error) {
			t.GeneratedAt, t.GeneratedExp, t.JTIHash = &t0, t.Expires.ExpiresAt(t0), hash(t.ID)
			return apitoken.Log{}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}

	lookups := func(name string, ids []string, get func(id string) error) {
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := get(ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if err := get(ids[i*7%len(ids)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	lookups("GetToken", tokens, func(id string) error { _, err := s.GetToken(ctx, id); return err })
	lookups("GetUser", users, func(id string) error { _, err := s.GetUser(ctx, id); return err })

	// 10 tokens, 10 clients each, mostly OK.
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
	// Every record adds to a row of an earlier flush: a busy window.
	b.Run("RecordAuth/existing-rows", func(b *testing.B) {
		recs := batch(t0)
		if err := s.RecordAuth(ctx, "", recs); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.RecordAuth(ctx, "", recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Every record starts a row: the first flush of a window.
	b.Run("RecordAuth/new-rows", func(b *testing.B) {
		w := t0.Add(time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			w = w.Add(time.Minute)
			if err := s.RecordAuth(ctx, "", batch(w)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
