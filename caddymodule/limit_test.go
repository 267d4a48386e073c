package caddymodule

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFailLimiter_BlocksAtTheLimitAndLiftsWhenTheWindowHasPassed(t *testing.T) {
	clock := &testClock{at: time.Date(2026, 1, 1, 12, 0, 7, 0, time.UTC)}
	l := newFailLimiter(5, time.Minute, 100, clock.Now)
	const ip = "203.0.113.7"
	for i := 1; i <= 5; i++ {
		if w := l.retryAfter(ip); w != 0 {
			t.Fatalf("after %d failures: blocked for %v, want not yet", i-1, w)
		}
		if reached := l.fail(ip); reached != (i == 5) {
			t.Fatalf("failure %d: reached = %t", i, reached)
		}
	}
	w := l.retryAfter(ip)
	if w <= 0 || w > time.Minute+5*time.Second {
		t.Fatalf("after 5 failures: wait %v, want within the window", w)
	}
	// Another client is not affected.
	if w := l.retryAfter("203.0.113.8"); w != 0 {
		t.Fatalf("another client is blocked for %v", w)
	}
	// Just before the wait is over it is still blocked; at the end it is not.
	clock.Set(clock.Now().Add(w - time.Millisecond))
	if l.retryAfter(ip) == 0 {
		t.Fatal("unblocked before Retry-After")
	}
	clock.Set(clock.Now().Add(time.Millisecond))
	if got := l.retryAfter(ip); got != 0 {
		t.Fatalf("still blocked for %v after Retry-After", got)
	}
}

// The bound the limiter promises: in no 60-second span does one client get
// more than limit failures counted, whatever the timing of its attempts,
// and it is never kept out longer than a minute and a bucket after its
// last counted failure.
func TestFailLimiter_NoMinuteEverHoldsMoreThanTheLimit(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		limit := 1 + r.IntN(12)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Minute))))
		clock := &testClock{at: start}
		l := newFailLimiter(limit, time.Minute, 10, clock.Now)
		var counted []time.Time
		for range 3000 {
			clock.Set(clock.Now().Add(time.Duration(r.Int64N(int64(3 * time.Second)))))
			if w := l.retryAfter("c"); w > 0 {
				if last := counted[len(counted)-1]; clock.Now().Add(w).Sub(last) > time.Minute+l.bucket {
					t.Fatalf("seed %d: blocked until %v after the last failure", seed, clock.Now().Add(w).Sub(last))
				}
				continue
			}
			l.fail("c")
			counted = append(counted, clock.Now())
		}
		sort.Slice(counted, func(i, j int) bool { return counted[i].Before(counted[j]) })
		for i := range counted {
			j := sort.Search(len(counted), func(j int) bool { return !counted[j].Before(counted[i].Add(time.Minute)) })
			if n := j - i; n > limit {
				t.Fatalf("seed %d, limit %d: %d failures counted in the minute from %v", seed, limit, n, counted[i].Sub(start))
			}
		}
		if len(counted) < limit*int(clock.Now().Sub(start)/time.Minute)/2 {
			t.Fatalf("seed %d: only %d failures counted over %v: the limiter blocks too much", seed, len(counted), clock.Now().Sub(start))
		}
	}
}

func TestFailLimiter_IPv6ClientsAreCountedByTheir64(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::2"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
	} {
		if clientKey(tc.a) != clientKey(tc.b) {
			t.Errorf("%s and %s are counted apart (%s, %s)", tc.a, tc.b, clientKey(tc.a), clientKey(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"198.51.100.7", "198.51.100.8"},
	} {
		if clientKey(tc.a) == clientKey(tc.b) {
			t.Errorf("%s and %s are counted together", tc.a, tc.b)
		}
	}
}

func TestFailLimiter_MemoryIsBoundedByItsCapacity(t *testing.T) {
	clock := &testClock{at: time.Now()}
	l := newFailLimiter(3, time.Minute, 1000, clock.Now)
	for i := range 50_000 {
		l.fail(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	if n := l.clients.Len(); n != 1000 {
		t.Fatalf("tracking %d clients, want the capacity 1000", n)
	}
	// The newest are still counted.
	for range 2 {
		l.fail("192.0.2.1")
	}
	l.fail("192.0.2.1")
	if l.retryAfter("192.0.2.1") == 0 {
		t.Fatal("a client at the limit is not blocked after a flood of others")
	}
}

// A client that never failed costs the success path one read: no entry is
// made for it.
func TestFailLimiter_ASuccessfulClientLeavesNoTrace(t *testing.T) {
	l := newFailLimiter(3, time.Minute, 100, nil)
	for range 100 {
		if l.retryAfter("198.51.100.9") != 0 {
			t.Fatal("blocked")
		}
	}
	if n := l.clients.Len(); n != 0 {
		t.Fatalf("%d clients tracked after reads only", n)
	}
}

func BenchmarkFailLimiter_RetryAfterOfAClientThatNeverFailed(b *testing.B) {
	l := newFailLimiter(10, time.Minute, maxTrackedClients, nil)
	for i := range 10_000 {
		l.fail(fmt.Sprintf("10.0.%d.%d", i>>8, i&255))
	}
	key := clientKey("198.51.100.9")
	b.ReportAllocs()
	for b.Loop() {
		if l.retryAfter(key) != 0 {
			b.Fatal("blocked")
		}
	}
}

// take limits every request: requests sent at once never pass the limit
// together, and the wait it answers is when the client is heard again.
func TestFailLimiter_TakeCountsEveryRequestAndNeverLetsMoreThanTheLimitThrough(t *testing.T) {
	clock := &testClock{at: time.Date(2026, 1, 1, 12, 0, 3, 0, time.UTC)}
	l := newFailLimiter(60, time.Minute, 100, clock.Now)
	const ip = "198.51.100.4"
	var wg sync.WaitGroup
	var passed atomic.Int64
	for range 200 {
		wg.Go(func() {
			if l.take(ip) == 0 {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 60 {
		t.Fatalf("%d of 200 requests sent at once passed, want 60", n)
	}
	w := l.take(ip)
	if w <= 0 || w > time.Minute+5*time.Second {
		t.Fatalf("wait %v, want within the window", w)
	}
	if l.take("198.51.100.5") != 0 {
		t.Fatal("another client is refused")
	}
	clock.Set(clock.Now().Add(w - time.Millisecond))
	if l.take(ip) == 0 {
		t.Fatal("heard before the wait was over")
	}
	clock.Set(clock.Now().Add(time.Millisecond))
	if got := l.take(ip); got != 0 {
		t.Fatalf("still refused for %v after the wait", got)
	}
}
