package apitoken

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MaxUserAgentLen is how much of a user agent is kept, in characters.
const MaxUserAgentLen = 200

// AuthEvent is one authentication attempt that named a token.
type AuthEvent struct {
	TokenID    string
	ActivityBy string // the guarded app
	Result     string // ResultOK or ResultFail
	Reason     string
	ClientIP   string
	UserAgent  string
	At         time.Time
}

// AuditConfig configures an Auditor.
type AuditConfig struct {
	Store Store
	// Window is the coalescing window of AUTHENTICATE rows (default 1m).
	Window time.Duration
	// FlushInterval is how often queued attempts are written (default
	// 500ms); it bounds what a crash can lose.
	FlushInterval time.Duration
	// MaxPending bounds the distinct rows queued in memory (default 100,000).
	// Past it, attempts fold into one row per token and result; the counts
	// stay exact.
	MaxPending int
	// OnError is told of each failed flush (which is retried) and of each
	// batch dropped at Close because the store stayed down.
	OnError func(err error, queued int)
}

type auditKey struct {
	tokenID, by, result, reason, ip, ua string
	window                              int64
}

type tokenWindow struct {
	tokenID string
	window  int64
}

// Auditor queues authentication attempts in memory, coalesced, and writes
// them to the store in batches off the request path. Record never blocks on
// the store. Counts are exact: a failed flush keeps its batch for the next.
type Auditor struct {
	cfg    AuditConfig
	window atomic.Int64

	mu      sync.Mutex
	pending map[auditKey]*AuthRecord
	rows    map[tokenWindow]int // distinct queued rows per token and window
	flushMu sync.Mutex          // one flush at a time

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	stats    struct{ flushes, failures, flushNanos, lastFlushNanos, dropped atomic.Uint64 }
}

// AuditStats are the Auditor's counters since it started.
type AuditStats struct {
	Flushes, FailedFlushes uint64
	FlushTime, LastFlush   time.Duration // total and latest flush latency
	Dropped                uint64        // attempts lost because the store stayed down past Close
	Pending                int           // distinct rows queued now
}

// Stats reads the counters.
func (a *Auditor) Stats() AuditStats {
	return AuditStats{Flushes: a.stats.flushes.Load(), FailedFlushes: a.stats.failures.Load(),
		FlushTime: time.Duration(a.stats.flushNanos.Load()), LastFlush: time.Duration(a.stats.lastFlushNanos.Load()),
		Dropped: a.stats.dropped.Load(), Pending: a.Pending()}
}

// NewAuditor starts an Auditor; Close stops it after a last flush.
func NewAuditor(cfg AuditConfig) *Auditor {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 500 * time.Millisecond
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error, int) {}
	}
	a := &Auditor{cfg: cfg, pending: map[auditKey]*AuthRecord{}, rows: map[tokenWindow]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	a.SetWindow(cfg.Window)
	go a.loop()
	return a
}

// SetWindow changes the coalescing window (a config reload may).
func (a *Auditor) SetWindow(d time.Duration) {
	if d <= 0 {
		d = time.Minute
	}
	a.window.Store(int64(d))
}

// Record queues one attempt. It never blocks on the store.
func (a *Auditor) Record(ev AuthEvent) {
	if len(ev.UserAgent) > MaxUserAgentLen {
		ev.UserAgent = truncateRunes(ev.UserAgent, MaxUserAgentLen)
	}
	w := a.window.Load()
	k := auditKey{tokenID: ev.TokenID, by: ev.ActivityBy, result: ev.Result, reason: ev.Reason, ip: ev.ClientIP, ua: ev.UserAgent,
		window: ev.At.UnixNano() / w * w}
	a.mu.Lock()
	r, ok := a.pending[k]
	if !ok {
		tw := tokenWindow{k.tokenID, k.window}
		if a.rows[tw] >= MaxAuthRowsPerWindow-2 || len(a.pending) >= a.cfg.MaxPending {
			// Too many distinct rows: fold into the token's row for this
			// result, which the store bounds the same way.
			k.reason, k.ip, k.ua = ReasonFolded, "", ""
			r, ok = a.pending[k]
		}
		if !ok {
			r = &AuthRecord{TokenID: k.tokenID, ActivityBy: k.by, Result: k.result, Reason: k.reason, ClientIP: k.ip, UserAgent: k.ua,
				Window: time.Unix(0, k.window).UTC(), First: ev.At}
			a.pending[k] = r
			a.rows[tw]++
		}
	}
	r.Count++
	if ev.At.Before(r.First) {
		r.First = ev.At
	}
	if ev.At.After(r.Last) {
		r.Last = ev.At
	}
	a.mu.Unlock()
}

// Pending is the number of distinct rows waiting to be written.
func (a *Auditor) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Flush writes everything queued now. On failure the batch goes back to the
// queue, merged with what came in meanwhile.
func (a *Auditor) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	batch := a.pending
	if len(batch) == 0 {
		a.mu.Unlock()
		return nil
	}
	a.pending = make(map[auditKey]*AuthRecord, len(batch))
	a.rows = map[tokenWindow]int{}
	a.mu.Unlock()

	records := make([]AuthRecord, 0, len(batch))
	for _, r := range batch {
		records = append(records, *r)
	}
	start := time.Now()
	err := a.cfg.Store.RecordAuth(ctx, records)
	took := time.Since(start)
	a.stats.flushes.Add(1)
	a.stats.flushNanos.Add(uint64(took))
	a.stats.lastFlushNanos.Store(uint64(took))
	if err == nil {
		return nil
	}
	a.stats.failures.Add(1)
	a.mu.Lock()
	for k, r := range batch {
		if cur, ok := a.pending[k]; ok {
			cur.Count += r.Count
			if r.First.Before(cur.First) {
				cur.First = r.First
			}
			if r.Last.After(cur.Last) {
				cur.Last = r.Last
			}
		} else {
			a.pending[k] = r
			a.rows[tokenWindow{k.tokenID, k.window}]++
		}
	}
	n := len(a.pending)
	a.mu.Unlock()
	a.cfg.OnError(err, n)
	return err
}

func (a *Auditor) loop() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = a.Flush(ctx) // a failure is reported by Flush and retried next tick
			cancel()
		}
	}
}

// Close stops the flush loop and writes what is queued, trying until ctx
// ends. It is safe to call more than once.
func (a *Auditor) Close(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stop) })
	<-a.done
	for {
		err := a.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			a.mu.Lock()
			rows := len(a.pending)
			for _, r := range a.pending {
				a.stats.dropped.Add(uint64(r.Count))
			}
			a.mu.Unlock()
			a.cfg.OnError(fmt.Errorf("giving up on queued authentication logs: %w", ctx.Err()), rows)
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func truncateRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
