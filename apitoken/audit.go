package apitoken

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// FlushInterval is how often a flush starts (default 500ms), on a
	// ticker: a crash loses the attempts of at most the last interval plus
	// the write in progress.
	FlushInterval time.Duration
	// MaxPending bounds the distinct rows queued in memory (default 100,000).
	// Past it, attempts fold into one row per token and result; the counts
	// stay exact.
	MaxPending int
	// OnError is told of each failed flush (which is retried) and of each
	// batch dropped at Close because the store stayed down.
	OnError func(err error, queued int)
	// Now is the clock that ages batches for MaxBatchRetry (default
	// time.Now).
	Now func() time.Time
}

// MaxBatchRecords bounds the records of one RecordAuth call, so that a
// backlog drains in pieces: each piece needs the disk space and lock time
// of itself only, not of the whole queue.
const MaxBatchRecords = 1000

// AuditBatchRetention is how long a store keeps the id of each batch it
// applied. A batch is retried under its id for at most MaxBatchRetry, so
// every retry finds the id of an earlier attempt that was applied.
const AuditBatchRetention = 48 * time.Hour

// MaxBatchRetry is how long the Auditor retries one batch: half of
// AuditBatchRetention, leaving room for clocks that disagree. A batch
// still failing after that is dropped (counted in Dropped): writing it
// again could count it twice.
const MaxBatchRetry = AuditBatchRetention / 2

// NewBatchID returns a random id (a version 4 UUID) for one RecordAuth
// batch.
func NewBatchID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// auditBatch is a piece of the queue taken for writing. It keeps its id and
// its records, unchanged, until a write of it succeeds: a write whose
// outcome was unknown (a COMMIT sent, its answer lost) may have applied it,
// and only the same id lets the store tell.
type auditBatch struct {
	id      string
	records []AuthRecord
	since   time.Time // its first write attempt
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
// the store. Counts are exact: a failed batch is written again, under the
// same id, until the store takes it, so it is applied once.
type Auditor struct {
	cfg    AuditConfig
	window atomic.Int64

	mu      sync.Mutex
	pending map[auditKey]*AuthRecord
	rows    map[tokenWindow]int // distinct queued rows per token and window

	flushMu  sync.Mutex    // one flush at a time; guards batches
	batches  []*auditBatch // taken from pending, not yet written, oldest first
	inFlight atomic.Int64  // records in batches

	stop     chan struct{}
	done     chan struct{}
	closed   chan struct{} // closed when Close has ended
	stopOnce sync.Once
	endOnce  sync.Once
	stats    struct{ flushes, failures, flushNanos, lastFlushNanos, dropped atomic.Uint64 }
}

// AuditStats are the Auditor's counters since it started.
type AuditStats struct {
	Flushes, FailedFlushes uint64        // RecordAuth calls, and those that failed
	FlushTime, LastFlush   time.Duration // total and latest RecordAuth latency
	Dropped                uint64        // attempts lost: the store stayed down past Close, or past MaxBatchRetry
	Pending                int           // rows not yet written: queued, and in flight
	InFlight               int           // of Pending, rows taken into batches that are being written or retried
}

// Stats reads the counters.
func (a *Auditor) Stats() AuditStats {
	inFlight := int(a.inFlight.Load())
	a.mu.Lock()
	queued := len(a.pending)
	a.mu.Unlock()
	return AuditStats{Flushes: a.stats.flushes.Load(), FailedFlushes: a.stats.failures.Load(),
		FlushTime: time.Duration(a.stats.flushNanos.Load()), LastFlush: time.Duration(a.stats.lastFlushNanos.Load()),
		Dropped: a.stats.dropped.Load(), Pending: queued + inFlight, InFlight: inFlight}
}

// Closed is closed when Close has ended (its last flush done or given up):
// the counters do not move after it.
func (a *Auditor) Closed() <-chan struct{} { return a.closed }

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Auditor{cfg: cfg, pending: map[auditKey]*AuthRecord{}, rows: map[tokenWindow]int{},
		stop: make(chan struct{}), done: make(chan struct{}), closed: make(chan struct{})}
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
		rec := AuthRecord{TokenID: k.tokenID, ActivityBy: k.by, Result: k.result, Reason: k.reason, ClientIP: k.ip, UserAgent: k.ua,
			Window: time.Unix(0, k.window).UTC(), First: ev.At}
		if !(AuthWindow{Rows: a.rows[tw]}).OwnRow(&rec) || len(a.pending) >= a.cfg.MaxPending {
			// Too many distinct rows: fold into the token's row for this
			// result, by the rule the store applies too (authrows.go).
			rec = Folded(rec)
			k.reason, k.ip, k.ua = rec.Reason, rec.ClientIP, rec.UserAgent
			r, ok = a.pending[k]
		}
		if !ok {
			r = &rec
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

// Pending is the number of rows not yet written: queued, and in flight.
func (a *Auditor) Pending() int { return a.Stats().Pending }

// Flush writes everything queued now, in batches of at most
// MaxBatchRecords. Batches that failed before are written first, unchanged
// and under their ids; only when they are through is the queue taken, so
// that during an outage new attempts keep coalescing in the queue (bounded
// by MaxPending) instead of piling up as batches. A failed batch stays for
// the next flush.
func (a *Auditor) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	retrying := len(a.batches) > 0
	if !retrying {
		a.take()
	}
	if err := a.writeBatches(ctx); err != nil || !retrying {
		return err
	}
	a.take() // what was queued while the retried batches waited
	return a.writeBatches(ctx)
}

// take moves the queue into batches. The caller holds flushMu.
func (a *Auditor) take() {
	a.mu.Lock()
	queued := a.pending
	if len(queued) == 0 {
		a.mu.Unlock()
		return
	}
	a.pending = make(map[auditKey]*AuthRecord, len(queued))
	a.rows = map[tokenWindow]int{}
	// Counted in flight before the lock is let go: Pending never reads a
	// taken row as written.
	a.inFlight.Add(int64(len(queued)))
	a.mu.Unlock()

	var b *auditBatch
	for _, r := range queued {
		if b == nil || len(b.records) == MaxBatchRecords {
			b = &auditBatch{id: NewBatchID(), records: make([]AuthRecord, 0, min(len(queued), MaxBatchRecords))}
			a.batches = append(a.batches, b)
		}
		b.records = append(b.records, *r)
	}
}

// writeBatches writes the batches in order and stops at the first failure,
// which it reports. The caller holds flushMu.
func (a *Auditor) writeBatches(ctx context.Context) error {
	for len(a.batches) > 0 {
		b := a.batches[0]
		now := a.cfg.Now()
		if b.since.IsZero() {
			b.since = now
		} else if now.Sub(b.since) > MaxBatchRetry {
			// The store may have pruned the id of an earlier attempt that
			// was applied: a write now could count the batch twice.
			a.drop(1)
			a.cfg.OnError(fmt.Errorf("giving up on an authentication log batch failing since %s", b.since.Format(time.RFC3339)),
				a.Pending())
			continue
		}
		start := time.Now()
		err := a.cfg.Store.RecordAuth(ctx, b.id, b.records)
		took := time.Since(start)
		a.stats.flushes.Add(1)
		a.stats.flushNanos.Add(uint64(took))
		a.stats.lastFlushNanos.Store(uint64(took))
		if err != nil {
			a.stats.failures.Add(1)
			a.cfg.OnError(err, a.Pending())
			return err
		}
		a.batches = a.batches[1:]
		a.inFlight.Add(-int64(len(b.records)))
	}
	a.batches = nil // let go of the backing array of written batches
	return nil
}

// drop gives up on the first n batches, counting their attempts as
// dropped. The caller holds flushMu.
func (a *Auditor) drop(n int) {
	for _, b := range a.batches[:n] {
		for _, r := range b.records {
			a.stats.dropped.Add(uint64(r.Count))
		}
		a.inFlight.Add(-int64(len(b.records)))
	}
	a.batches = a.batches[n:]
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
	defer a.endOnce.Do(func() { close(a.closed) })
	for {
		err := a.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			a.flushMu.Lock()
			rows := a.Pending()
			a.take()
			a.drop(len(a.batches))
			a.flushMu.Unlock()
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
