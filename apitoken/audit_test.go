package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// newAuditor starts an Auditor whose loop never fires during a test: the
// tests flush by hand (or by Close).
func newAuditor(t *testing.T, store apitoken.Store) *apitoken.Auditor {
	t.Helper()
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, Window: time.Minute, FlushInterval: time.Hour})
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func authLogs(t *testing.T, e *env, tokenID string) []apitoken.Log {
	t.Helper()
	logs, _, err := e.store.ListLogs(e.ctx, apitoken.LogFilter{TokenID: tokenID, Activity: apitoken.ActivityAuthenticate,
		Page: apitoken.Page{Limit: apitoken.MaxPageLimit}})
	if err != nil {
		t.Fatalf("ListLogs: %v", err)
	}
	return logs
}

func countOf(logs []apitoken.Log) int64 {
	var n int64
	for _, l := range logs {
		n += l.Count
	}
	return n
}

func event(tokenID string, at time.Time) apitoken.AuthEvent {
	return apitoken.AuthEvent{TokenID: tokenID, ActivityBy: "Reports API", Result: apitoken.ResultOK,
		ClientIP: "192.0.2.1", UserAgent: "curl/8.5.0", At: at}
}

func TestAuditor_ConcurrentRecordsAreCountedExactlyAfterClose(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	// A short flush interval so that flushes run while records come in.
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: e.store, Window: time.Minute, FlushInterval: time.Millisecond})
	const goroutines, each = 50, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev := event(tok.ID, t0.Add(time.Duration(i)*time.Second))
				ev.ClientIP = fmt.Sprintf("192.0.2.%d", g%7)
				if i%3 == 0 {
					ev.Result, ev.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
				}
				a.Record(ev)
			}
		}()
	}
	wg.Wait()
	if err := a.Close(e.ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := countOf(authLogs(t, e, tok.ID)); got != goroutines*each {
		t.Errorf("AUTHENTICATE rows count %d attempts, want %d", got, goroutines*each)
	}
	if n := a.Pending(); n != 0 {
		t.Errorf("%d rows still pending after Close", n)
	}
	if err := a.Close(e.ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAuditor_IdenticalAttemptsCoalesceIntoOneRow(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := newAuditor(t, e.store)
	base := event(tok.ID, t0.Add(time.Second))
	variants := map[string]func(ev *apitoken.AuthEvent){
		"same":          func(ev *apitoken.AuthEvent) {},
		"another IP":    func(ev *apitoken.AuthEvent) { ev.ClientIP = "198.51.100.7" },
		"another agent": func(ev *apitoken.AuthEvent) { ev.UserAgent = "python-requests/2.31" },
		"a failure": func(ev *apitoken.AuthEvent) {
			ev.Result, ev.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
		},
		"another reason": func(ev *apitoken.AuthEvent) {
			ev.Result, ev.Reason = apitoken.ResultFail, apitoken.ReasonRoleMissing
		},
	}
	for i := 0; i < 3; i++ {
		for _, vary := range variants {
			ev := base
			ev.At = base.At.Add(time.Duration(i) * 10 * time.Second)
			vary(&ev)
			a.Record(ev)
		}
	}
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	logs := authLogs(t, e, tok.ID)
	if len(logs) != len(variants) {
		t.Fatalf("got %d rows, want one per distinct attempt (%d): %+v", len(logs), len(variants), logs)
	}
	for _, l := range logs {
		if l.Count != 3 {
			t.Errorf("row %s/%s/%s/%s counts %d, want 3", l.Result, l.Reason, l.ClientIP, l.UserAgent, l.Count)
		}
		if !l.ActivityOn.Equal(t0.Add(time.Second)) || !l.LastOn.Equal(t0.Add(21*time.Second)) {
			t.Errorf("row spans %v to %v, want the first and last attempt", l.ActivityOn, l.LastOn)
		}
		if l.ActivityBy != "Reports API" || l.TokenName != tok.Name {
			t.Errorf("row by %q for %q", l.ActivityBy, l.TokenName)
		}
	}
}

func TestAuditor_AttemptsInAnotherWindowStartANewRow(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := newAuditor(t, e.store)
	a.Record(event(tok.ID, t0))
	a.Record(event(tok.ID, t0.Add(59*time.Second)))
	a.Record(event(tok.ID, t0.Add(time.Minute)))
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	logs := authLogs(t, e, tok.ID)
	if len(logs) != 2 || countOf(logs) != 3 {
		t.Fatalf("rows = %+v, want 2 rows counting 3", logs)
	}
}

func TestAuditor_UserAgentIsCutTo200Characters(t *testing.T) {
	for _, tc := range []struct {
		name string
		ua   string
	}{
		{"ASCII", strings.Repeat("a", 250)},
		{"multi-byte", strings.Repeat("ü", 150) + strings.Repeat("€", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, apitoken.AuthConfig{})
			_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
			a := newAuditor(t, e.store)
			ev := event(tok.ID, t0)
			ev.UserAgent = tc.ua
			a.Record(ev)
			ev.UserAgent = tc.ua + "-different-tail" // same first 200 characters: same row
			a.Record(ev)
			if err := a.Flush(e.ctx); err != nil {
				t.Fatal(err)
			}
			logs := authLogs(t, e, tok.ID)
			if len(logs) != 1 {
				t.Fatalf("got %d rows, want 1", len(logs))
			}
			ua := logs[0].UserAgent
			if n := utf8.RuneCountInString(ua); n != apitoken.MaxUserAgentLen || !utf8.ValidString(ua) || !strings.HasPrefix(tc.ua, ua) {
				t.Errorf("stored user agent has %d characters (valid UTF-8 %t), want the first 200", n, utf8.ValidString(ua))
			}
			if logs[0].Count != 2 {
				t.Errorf("count = %d, want 2", logs[0].Count)
			}
		})
	}
}

func TestAuditor_ShortMultiByteUserAgentIsKeptWhole(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := newAuditor(t, e.store)
	ua := strings.Repeat("日", 150) // 450 bytes, 150 characters
	ev := event(tok.ID, t0)
	ev.UserAgent = ua
	a.Record(ev)
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if logs := authLogs(t, e, tok.ID); len(logs) != 1 || logs[0].UserAgent != ua {
		t.Fatalf("stored user agent is not the whole 150-character agent")
	}
}

func TestAuditor_ManyDistinctAttemptsFoldWithinTheRowBound(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := newAuditor(t, e.store)
	const attempts = 500
	for i := 0; i < attempts; i++ {
		ev := event(tok.ID, t0.Add(time.Duration(i)*time.Millisecond))
		ev.ClientIP = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		if i%2 == 1 {
			ev.Result, ev.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
		}
		a.Record(ev)
	}
	if n := a.Pending(); n > apitoken.MaxAuthRowsPerWindow {
		t.Errorf("%d distinct rows queued in memory for one token and window, want at most %d", n, apitoken.MaxAuthRowsPerWindow)
	}
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	logs := authLogs(t, e, tok.ID)
	if len(logs) > apitoken.MaxAuthRowsPerWindow {
		t.Errorf("one window got %d rows, want at most %d", len(logs), apitoken.MaxAuthRowsPerWindow)
	}
	if got := countOf(logs); got != attempts {
		t.Errorf("rows count %d attempts, want %d", got, attempts)
	}
	folded := 0
	for _, l := range logs {
		if l.Reason == apitoken.ReasonFolded {
			folded++
			if l.ClientIP != "" || l.UserAgent != "" {
				t.Errorf("folded row keeps ip %q and agent %q", l.ClientIP, l.UserAgent)
			}
		}
	}
	if folded == 0 {
		t.Error("no folded row")
	}
}

// failingStore is a fault injector over the real store: RecordAuth fails for
// the first calls, then passes through. It notes every call's batch.
type failingStore struct {
	apitoken.Store
	failures atomic.Int32
	// during, when set, runs inside each failing call: attempts that come
	// in while a flush is under way.
	during func()
	// applyThenFail: a failing call applies the batch first, as a COMMIT
	// whose answer is lost does.
	applyThenFail bool

	mu    sync.Mutex
	calls []storeCall
}

type storeCall struct {
	batchID string
	records int
}

var errInjected = errors.New("injected: database is locked")

func (s *failingStore) RecordAuth(ctx context.Context, batchID string, records []apitoken.AuthRecord) error {
	s.mu.Lock()
	s.calls = append(s.calls, storeCall{batchID, len(records)})
	s.mu.Unlock()
	if s.failures.Add(-1) >= 0 {
		if s.during != nil {
			s.during()
		}
		if s.applyThenFail {
			if err := s.Store.RecordAuth(ctx, batchID, records); err != nil {
				return err
			}
		}
		return errInjected
	}
	return s.Store.RecordAuth(ctx, batchID, records)
}

func (s *failingStore) callLog() []storeCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func TestAuditor_FailedFlushKeepsTheBatchForTheNext(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store}
	store.failures.Store(1)
	var reported atomic.Int32
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, Window: time.Minute, FlushInterval: time.Hour,
		OnError: func(err error, queued int) {
			if errors.Is(err, errInjected) && queued > 0 {
				reported.Add(1)
			}
		}})
	defer a.Close(e.ctx)
	// All in the window that starts at t0.
	for i := 0; i < 5; i++ {
		a.Record(event(tok.ID, t0.Add(time.Duration(10+i)*time.Second)))
	}
	if err := a.Flush(e.ctx); !errors.Is(err, errInjected) {
		t.Fatalf("first Flush = %v, want the injected failure", err)
	}
	if reported.Load() != 1 {
		t.Errorf("OnError was told %d times, want once", reported.Load())
	}
	if n := a.Pending(); n != 1 {
		t.Errorf("%d rows pending after the failed flush, want the 1 kept", n)
	}
	if logs := authLogs(t, e, tok.ID); len(logs) != 0 {
		t.Fatalf("a failed flush wrote %d rows", len(logs))
	}
	// More attempts arrive before the retry, one of them earlier than all.
	for i := 5; i < 8; i++ {
		a.Record(event(tok.ID, t0.Add(time.Duration(10+i)*time.Second)))
	}
	a.Record(event(tok.ID, t0.Add(time.Second)))
	if err := a.Flush(e.ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	logs := authLogs(t, e, tok.ID)
	if len(logs) != 1 || logs[0].Count != 9 {
		t.Fatalf("rows = %+v, want one row counting 9", logs)
	}
	if !logs[0].ActivityOn.Equal(t0.Add(time.Second)) || !logs[0].LastOn.Equal(t0.Add(17*time.Second)) {
		t.Errorf("row spans %v to %v", logs[0].ActivityOn, logs[0].LastOn)
	}
}

func TestAuditor_CloseRetriesUntilTheStoreRecovers(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store}
	store.failures.Store(2)
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, Window: time.Minute, FlushInterval: time.Hour})
	for i := 0; i < 4; i++ {
		a.Record(event(tok.ID, t0))
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := countOf(authLogs(t, e, tok.ID)); got != 4 {
		t.Errorf("rows count %d attempts, want 4", got)
	}
}

func TestAuditor_OKMarksTheTokenActiveOnlyForItsGeneration(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	alice, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	a := newAuditor(t, e.store)
	ok := event(tok.ID, t0.Add(10*time.Second))
	a.Record(ok) // a use of the first generation, not yet flushed
	e.clock.Advance(time.Minute)
	e.generate(alice, tok.ID) // the second generation, at t0+1m
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.GetToken(e.ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.StatusAt(e.clock.Now()); st != apitoken.StatusGeneratedInactive {
		t.Errorf("status after a late use of the previous JWT = %q, want generated_inactive", st)
	}
	ok.At = e.clock.Now().Add(time.Second)
	ok.ClientIP = "203.0.113.9"
	a.Record(ok)
	fail := ok
	fail.Result, fail.Reason, fail.ClientIP = apitoken.ResultFail, apitoken.ReasonInsufficientScope, "198.51.100.1"
	fail.At = ok.At.Add(time.Second)
	a.Record(fail)
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = e.store.GetToken(e.ctx, tok.ID)
	if st := got.StatusAt(e.clock.Now()); st != apitoken.StatusGeneratedActive {
		t.Errorf("status after a use of the live JWT = %q, want generated_active", st)
	}
	if got.LastUsedIP != "203.0.113.9" || got.LastUsedAt == nil || !got.LastUsedAt.Equal(ok.At) {
		t.Errorf("last used %v from %q, want the OK attempt's time and IP", got.LastUsedAt, got.LastUsedIP)
	}
}

func TestAuditor_AttemptsDuringAFailedFlushAreWrittenAfterTheKeptBatch(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store}
	store.failures.Store(1)
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, Window: time.Minute, FlushInterval: time.Hour})
	defer a.Close(e.ctx)
	store.during = func() {
		for i := 0; i < 3; i++ {
			a.Record(event(tok.ID, t0.Add(20*time.Second))) // the same row as the batch in flight
		}
	}
	for i := 0; i < 5; i++ {
		a.Record(event(tok.ID, t0.Add(10*time.Second)))
	}
	if err := a.Flush(e.ctx); !errors.Is(err, errInjected) {
		t.Fatalf("first Flush = %v, want the injected failure", err)
	}
	// The kept batch stays as it was (its id names exactly those
	// attempts); the new attempts wait in the queue beside it.
	if st := a.Stats(); st.Pending != 2 || st.InFlight != 1 {
		t.Errorf("stats %+v, want 2 rows pending: the kept batch's (in flight) and the queued one", st)
	}
	if err := a.Flush(e.ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	logs := authLogs(t, e, tok.ID)
	if len(logs) != 1 || logs[0].Count != 8 {
		t.Fatalf("rows = %+v, want one row counting 8", logs)
	}
	if !logs[0].ActivityOn.Equal(t0.Add(10*time.Second)) || !logs[0].LastOn.Equal(t0.Add(20*time.Second)) {
		t.Errorf("row spans %v to %v", logs[0].ActivityOn, logs[0].LastOn)
	}
}

// A write that applied its batch but reported a failure (a COMMIT answer
// lost) is retried under the same id, by the next flush too, and the store
// does not apply it again: each attempt is counted once.
func TestAuditor_ABatchAppliedButReportedFailedIsNotCountedTwice(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store, applyThenFail: true}
	store.failures.Store(3) // three flushes in a row: the store "unreachable" after the lost answer
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, FlushInterval: time.Hour})
	defer a.Close(e.ctx)
	for i := 0; i < 7; i++ {
		a.Record(event(tok.ID, t0.Add(10*time.Second)))
	}
	for i := 0; i < 3; i++ {
		if err := a.Flush(e.ctx); !errors.Is(err, errInjected) {
			t.Fatalf("flush %d = %v, want the injected failure", i, err)
		}
	}
	a.Record(event(tok.ID, t0.Add(20*time.Second))) // one more, queued behind the kept batch
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := countOf(authLogs(t, e, tok.ID)); got != 8 {
		t.Errorf("counted %d attempts, want 8: the batch applied once and the later attempt", got)
	}
	calls := store.callLog()
	if len(calls) != 5 {
		t.Fatalf("store calls %+v, want 4 writes of the kept batch and 1 of the later attempt", calls)
	}
	for _, c := range calls[1:4] {
		if c.batchID != calls[0].batchID {
			t.Errorf("the kept batch was written as %q after %q: a retry must keep the id", c.batchID, calls[0].batchID)
		}
	}
	if calls[4].batchID == calls[0].batchID {
		t.Error("the later attempt went under the kept batch's id")
	}
	if st := a.Stats(); st.Pending != 0 || st.InFlight != 0 || st.Dropped != 0 {
		t.Errorf("stats after the recovery: %+v", st)
	}
}

// A backlog larger than MaxBatchRecords is written in pieces of at most
// that many records, each its own transaction, so that each needs the disk
// space and lock time of itself only.
func TestAuditor_ABacklogIsWrittenInBoundedBatches(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store}
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, FlushInterval: time.Hour})
	defer a.Close(e.ctx)
	const rows = 2*apitoken.MaxBatchRecords + 500
	for i := 0; i < rows; i++ {
		a.Record(event(tok.ID, t0.Add(time.Duration(i)*time.Minute))) // a window each: one row each
	}
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	ids := map[string]bool{}
	for _, c := range store.callLog() {
		sizes = append(sizes, c.records)
		ids[c.batchID] = true
	}
	if len(sizes) != 3 || slices.Max(sizes) > apitoken.MaxBatchRecords || len(ids) != 3 {
		t.Errorf("batch sizes %v under %d ids, want 3 batches of at most %d, each its own id", sizes, len(ids), apitoken.MaxBatchRecords)
	}
	var got int64
	f := apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate, Page: apitoken.Page{Limit: apitoken.MaxPageLimit}}
	for {
		logs, next, err := e.store.ListLogs(e.ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got += countOf(logs)
		if f.Cursor = next; next == "" {
			break
		}
	}
	if got != rows {
		t.Errorf("counted %d, want %d", got, rows)
	}
}

// blockingStore holds each RecordAuth until released, telling entered.
type blockingStore struct {
	apitoken.Store
	entered, release chan struct{}
}

func (s *blockingStore) RecordAuth(ctx context.Context, batchID string, records []apitoken.AuthRecord) error {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.RecordAuth(ctx, batchID, records)
}

// Rows taken from the queue by a flush that has not committed yet are
// still pending (and in flight): the queue metric does not read 0 while a
// write is stuck.
func TestAuditor_RowsOfAStuckFlushArePendingAndInFlight(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &blockingStore{Store: e.store, entered: make(chan struct{}), release: make(chan struct{})}
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, FlushInterval: time.Hour})
	for i := 0; i < 3; i++ {
		a.Record(event(tok.ID, t0.Add(time.Duration(i)*time.Minute)))
	}
	flushed := make(chan error)
	go func() { flushed <- a.Flush(e.ctx) }()
	<-store.entered
	a.Record(event(tok.ID, t0.Add(time.Hour))) // queued while the write is stuck
	if st := a.Stats(); st.Pending != 4 || st.InFlight != 3 {
		t.Errorf("stats during a stuck write: %+v, want 4 pending of which 3 in flight", st)
	}
	close(store.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Pending != 1 || st.InFlight != 0 {
		t.Errorf("stats after the write: %+v, want 1 pending, none in flight", st)
	}
	go func() { <-store.entered }() // Close's flush
	if err := a.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// A batch that has failed for longer than MaxBatchRetry is dropped and
// counted: the store keeps batch ids for AuditBatchRetention only, so a
// write after that could count an applied batch twice.
func TestAuditor_ABatchFailingPastMaxBatchRetryIsDroppedAndCounted(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.DefaultScopes, apitoken.Expiry30d)
	store := &failingStore{Store: e.store}
	store.failures.Store(2)
	clock := newClock()
	var gaveUp atomic.Int32
	a := apitoken.NewAuditor(apitoken.AuditConfig{Store: store, FlushInterval: time.Hour, Now: clock.Now,
		OnError: func(err error, _ int) {
			if strings.Contains(err.Error(), "giving up") {
				gaveUp.Add(1)
			}
		}})
	defer a.Close(e.ctx)
	for i := 0; i < 5; i++ {
		a.Record(event(tok.ID, t0))
	}
	if err := a.Flush(e.ctx); err == nil {
		t.Fatal("the first flush did not fail")
	}
	clock.Advance(apitoken.MaxBatchRetry - time.Second)
	if err := a.Flush(e.ctx); err == nil {
		t.Fatal("the second flush did not fail")
	}
	if st := a.Stats(); st.Dropped != 0 || st.InFlight != 1 {
		t.Fatalf("stats within MaxBatchRetry: %+v, want the batch kept", st)
	}
	clock.Advance(2 * time.Second)
	a.Record(event(tok.ID, t0.Add(time.Minute)))
	if err := a.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Dropped != 5 || st.Pending != 0 || gaveUp.Load() != 1 {
		t.Errorf("stats %+v, %d give-ups; want the 5 attempts of the old batch dropped, once", st, gaveUp.Load())
	}
	if got := countOf(authLogs(t, e, tok.ID)); got != 1 {
		t.Errorf("counted %d, want the 1 later attempt", got)
	}
}
