package apitoken_test

import (
	"context"
	"errors"
	"fmt"
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
			_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
// the first calls, then passes through.
type failingStore struct {
	apitoken.Store
	failures atomic.Int32
	// during, when set, runs inside each failing call: attempts that come
	// in while a flush is under way.
	during func()
}

var errInjected = errors.New("injected: database is locked")

func (s *failingStore) RecordAuth(ctx context.Context, records []apitoken.AuthRecord) error {
	if s.failures.Add(-1) >= 0 {
		if s.during != nil {
			s.during()
		}
		return errInjected
	}
	return s.Store.RecordAuth(ctx, records)
}

func TestAuditor_FailedFlushKeepsTheBatchForTheNext(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	alice, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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

func TestAuditor_AttemptsDuringAFailedFlushMergeWithTheKeptBatch(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{})
	_, tok, _ := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
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
	if n := a.Pending(); n != 1 {
		t.Errorf("%d rows pending, want the kept batch and the new attempts merged into 1", n)
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
