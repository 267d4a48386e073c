package caddymodule

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// maxTrackedClients bounds the clients whose failed attempts are counted.
// Past it the client least recently seen failing is forgotten: a flood from
// more addresses than this degrades the limit (a forgotten address starts
// again from zero), never memory. Each entry is about 200 bytes.
const maxTrackedClients = 100_000

// failBuckets is the number of buckets a window is cut into. A window of a
// minute counts in 5-second buckets, and a failure is checked against the
// last 13 of them (60 to 65 seconds), so the limit holds for every 60-second
// span, and is lifted at most 5 seconds later than it could be.
const failBuckets = 12

// failLimiter counts failed authentication attempts per client and tells
// when a client has had limit failures within a window. It is on the
// request path: a client that never failed costs one read-locked map
// lookup (lru Peek), and a success never writes.
//
// The bound it keeps: a failure is counted only while the client is under
// the limit, and the limit is checked against a span that covers the whole
// window before it, so no window-long span ever holds more than limit
// counted failures from one client, plus the requests that were already in
// flight when the limit was reached.
type failLimiter struct {
	limit   int
	bucket  time.Duration
	now     func() time.Time
	clients *lru.Cache[string, *failCount]
}

// failCount is one client's failures in the last failBuckets+1 buckets.
type failCount struct {
	mu     sync.Mutex
	last   int64                   // index of the newest bucket counted
	counts [failBuckets + 1]uint32 // ring: counts[i % len] is bucket i
}

func newFailLimiter(limit int, window time.Duration, capacity int, now func() time.Time) *failLimiter {
	if now == nil {
		now = time.Now
	}
	c, err := lru.New[string, *failCount](capacity)
	if err != nil {
		panic(err) // only for a capacity < 1
	}
	return &failLimiter{limit: limit, bucket: window / failBuckets, now: now, clients: c}
}

// clientKey is the address failures are counted under: an IPv6 client by
// its /64, since one host commonly holds a whole /64 and could otherwise
// move to a new address for every guess.
func clientKey(ip string) string {
	if strings.IndexByte(ip, ':') < 0 {
		return ip // IPv4, as Caddy writes it: no allocation on the request path
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// retryAfter is how long the client must wait before it is heard again; 0
// when it is under the limit. It only reads.
func (l *failLimiter) retryAfter(key string) time.Duration {
	c, ok := l.clients.Peek(key)
	if !ok {
		return 0
	}
	now := l.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wait(l, now)
}

// fail counts a failed attempt of the client and reports whether it has now
// reached the limit (the moment to log it once).
func (l *failLimiter) fail(key string) (reached bool) {
	c := l.client(key)
	now := l.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(l, now)
	return c.sum() == uint64(l.limit)
}

// take counts a request of the client unless the client is at the limit,
// and answers how long it must wait then (0 when the request was counted):
// a limit on every request, not only on failures. Checking and counting
// are one step, so requests sent at once cannot pass the limit together.
func (l *failLimiter) take(key string) time.Duration {
	c := l.client(key)
	now := l.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if wait := c.wait(l, now); wait > 0 {
		return wait
	}
	c.add(l, now)
	return 0
}

// client is the count of the client, made when it has none.
func (l *failLimiter) client(key string) *failCount {
	c, ok := l.clients.Get(key)
	if !ok {
		c = new(failCount)
		if prev, found, _ := l.clients.PeekOrAdd(key, c); found {
			c = prev
		}
	}
	return c
}

// add counts one at now. The caller holds c.mu.
func (c *failCount) add(l *failLimiter, now time.Time) {
	b := max(now.UnixNano()/int64(l.bucket), c.last) // a wall clock set back counts in the newest bucket
	c.advance(b)
	c.counts[b%int64(len(c.counts))]++
}

// advance moves the ring to bucket b, zeroing the buckets left behind.
func (c *failCount) advance(b int64) {
	if b <= c.last {
		return
	}
	n := int64(len(c.counts))
	for i := c.last + 1; i <= b && i <= c.last+n; i++ {
		c.counts[i%n] = 0
	}
	c.last = b
}

func (c *failCount) sum() uint64 {
	var s uint64
	for _, v := range c.counts {
		s += uint64(v)
	}
	return s
}

// wait is the time from now until the failures counted fall under the
// limit, if no more come; 0 when they already are.
func (c *failCount) wait(l *failLimiter, now time.Time) time.Duration {
	b := max(now.UnixNano()/int64(l.bucket), c.last)
	n := int64(len(c.counts))
	if b-c.last >= n {
		return 0 // every bucket counted has left the window
	}
	// The buckets still in the window at bucket b are b-n+1 .. b; of those
	// written, last-n+1 .. last are live. Drop the oldest until under.
	total := uint64(0)
	for i := b - n + 1; i <= c.last; i++ {
		total += uint64(c.counts[i%n])
	}
	if total < uint64(l.limit) {
		return 0
	}
	for i := b - n + 1; i <= c.last; i++ {
		total -= uint64(c.counts[i%n])
		if total < uint64(l.limit) {
			// Bucket i leaves the window when bucket i+n starts.
			return time.Unix(0, (i+n)*int64(l.bucket)).Sub(now)
		}
	}
	return 0 // not reached: total drops to 0 < limit
}
