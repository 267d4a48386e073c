package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func authKey(l apitoken.Log) string {
	return strings.Join([]string{l.TokenID, l.ActivityBy, l.Result, l.Reason, l.ClientIP, l.UserAgent}, "|")
}

func testRecordAuthCoalesces(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "coalesced", t0))
	w := t0.Add(time.Hour)
	base := apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "Reports API", Result: apitoken.ResultFail,
		Reason: apitoken.ReasonInsufficientScope, ClientIP: "192.0.2.1", UserAgent: "curl/8", Window: w}
	rec := func(first, last time.Duration, count int64, change func(r *apitoken.AuthRecord)) apitoken.AuthRecord {
		r := base
		r.First, r.Last, r.Count = w.Add(first), w.Add(last), count
		if change != nil {
			change(&r)
		}
		return r
	}
	recordAuth(t, s, rec(10*time.Second, 20*time.Second, 3, nil))
	recordAuth(t, s, rec(5*time.Second, 15*time.Second, 4, nil))
	// Twice in one batch.
	recordAuth(t, s, rec(12*time.Second, 12*time.Second, 1, nil), rec(30*time.Second, 30*time.Second, 2, nil))
	// Each part of the key makes a row of its own.
	recordAuth(t, s,
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.ClientIP = "192.0.2.2" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.UserAgent = "wget" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.Reason = apitoken.ReasonExpired }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.Result, r.Reason = apitoken.ResultOK, "" }),
		rec(0, 0, 1, func(r *apitoken.AuthRecord) { r.ActivityBy = "Other API" }),
		rec(time.Minute, time.Minute, 1, func(r *apitoken.AuthRecord) { r.Window = w.Add(time.Minute) }),
	)
	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	if len(logs) != 7 {
		t.Fatalf("%d AUTHENTICATE rows, want 7: %+v", len(logs), logs)
	}
	var main []apitoken.Log
	for _, l := range logs {
		if l.TokenName != "coalesced" {
			t.Errorf("row %d has token name %q, want the token's", l.ID, l.TokenName)
		}
		if authKey(l) == strings.Join([]string{tok.ID, "Reports API", apitoken.ResultFail, apitoken.ReasonInsufficientScope, "192.0.2.1", "curl/8"}, "|") &&
			l.ActivityOn.Before(w.Add(time.Minute)) {
			main = append(main, l)
		} else if l.Count != 1 {
			t.Errorf("row %+v has count %d, want 1", l, l.Count)
		}
	}
	if len(main) != 1 {
		t.Fatalf("%d rows of the repeated key in its window, want 1", len(main))
	}
	m := main[0]
	if m.Count != 10 {
		t.Errorf("coalesced count = %d, want 3+4+1+2 = 10", m.Count)
	}
	if !m.ActivityOn.Equal(w.Add(5*time.Second)) || !m.LastOn.Equal(w.Add(30*time.Second)) {
		t.Errorf("coalesced row spans %v to %v, want the earliest first (5s) and the latest last (30s)", m.ActivityOn.Sub(w), m.LastOn.Sub(w))
	}
}

func testRecordAuthBound(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "popular", t0))
	other := createToken(t, s, newToken("alice", "other", t0))
	w := t0.Add(time.Hour)
	attempt := func(id, result, reason, ip string, count int64, win time.Time) apitoken.AuthRecord {
		return apitoken.AuthRecord{TokenID: id, ActivityBy: "Reports API", Result: result, Reason: reason, ClientIP: ip,
			UserAgent: "ua/" + ip, Window: win, First: win.Add(time.Second), Last: win.Add(2 * time.Second), Count: count}
	}
	var fails, oks []apitoken.AuthRecord
	for i := range 150 {
		fails = append(fails, attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonExpired, fmt.Sprintf("10.0.%d.%d", i/200, i%200), 1, w))
	}
	for i := range 30 {
		oks = append(oks, attempt(tok.ID, apitoken.ResultOK, "", fmt.Sprintf("10.1.0.%d", i), 2, w))
	}
	recordAuth(t, s, fails[:60]...)
	recordAuth(t, s, fails[60:]...)
	recordAuth(t, s, oks...)
	// Past the bound, a record with a row of its own still goes to that row.
	again := fails[0]
	again.Count = 5
	recordAuth(t, s, again)
	// A record the auditor already folded goes to the folded row.
	folded := attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonFolded, "", 7, w)
	folded.UserAgent = ""
	recordAuth(t, s, folded)
	// Other windows and other tokens have bounds of their own.
	recordAuth(t, s, attempt(tok.ID, apitoken.ResultFail, apitoken.ReasonExpired, "10.9.9.9", 1, w.Add(time.Minute)),
		attempt(other.ID, apitoken.ResultFail, apitoken.ReasonExpired, "10.9.9.9", 1, w))

	logs := allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate})
	var inWindow []apitoken.Log
	for _, l := range logs {
		if l.ActivityOn.Before(w.Add(time.Minute)) {
			inWindow = append(inWindow, l)
		} else if l.Reason != apitoken.ReasonExpired || l.Count != 1 {
			t.Errorf("the next window's row = %+v, want a row of its own", l)
		}
	}
	if len(logs)-len(inWindow) != 1 {
		t.Errorf("%d rows in the next window, want 1", len(logs)-len(inWindow))
	}
	if len(inWindow) > apitoken.MaxAuthRowsPerWindow {
		t.Fatalf("%d rows in one window, want at most %d", len(inWindow), apitoken.MaxAuthRowsPerWindow)
	}
	sums := map[string]int64{}
	foldedRows := map[string]int{}
	kept := 0
	for _, l := range inWindow {
		sums[l.Result] += l.Count
		if l.Reason == apitoken.ReasonFolded {
			foldedRows[l.Result]++
			if l.ClientIP != "" || l.UserAgent != "" {
				t.Errorf("folded row %+v names a client", l)
			}
			if !l.ActivityOn.Equal(w.Add(time.Second)) || !l.LastOn.Equal(w.Add(2*time.Second)) {
				t.Errorf("folded row spans %v to %v", l.ActivityOn, l.LastOn)
			}
			continue
		}
		kept++
		if l.ClientIP == fails[0].ClientIP && l.Count != 6 {
			t.Errorf("the first client's row has count %d, want 1+5", l.Count)
		}
	}
	if want := int64(150 + 5 + 7); sums[apitoken.ResultFail] != want {
		t.Errorf("Fail attempts sum to %d, want %d: none may be lost", sums[apitoken.ResultFail], want)
	}
	if want := int64(60); sums[apitoken.ResultOK] != want {
		t.Errorf("OK attempts sum to %d, want %d", sums[apitoken.ResultOK], want)
	}
	if foldedRows[apitoken.ResultFail] != 1 || foldedRows[apitoken.ResultOK] != 1 {
		t.Errorf("folded rows per result = %v, want one for Fail and one for OK", foldedRows)
	}
	if kept < apitoken.MaxAuthRowsPerWindow-2 {
		t.Errorf("only %d rows kept their client before folding, want at least %d", kept, apitoken.MaxAuthRowsPerWindow-2)
	}
	if o := allLogs(t, s, apitoken.LogFilter{TokenID: other.ID, Activity: apitoken.ActivityAuthenticate}); len(o) != 1 || o[0].Reason != apitoken.ReasonExpired {
		t.Errorf("the other token's rows = %+v, want its own unfolded row", o)
	}
}

func testRecordAuthLastUsed(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "used", t0))
	check := func(at time.Time, ip string) {
		t.Helper()
		got := mustGetToken(t, s, tok.ID)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) || got.LastUsedIP != ip {
			t.Errorf("last used = %v from %q, want %v from %q", got.LastUsedAt, got.LastUsedIP, at, ip)
		}
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt != nil || got.LastUsedIP != "" {
		t.Fatalf("a new token has last used %v from %q", got.LastUsedAt, got.LastUsedIP)
	}
	recordAuth(t, s, okAt(tok.ID, t0.Add(10*time.Minute), "192.0.2.1"))
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// An older OK (a late flush) does not move it back.
	recordAuth(t, s, okAt(tok.ID, t0.Add(5*time.Minute), "192.0.2.2"))
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// A failure does not move it.
	fail := okAt(tok.ID, t0.Add(20*time.Minute), "192.0.2.3")
	fail.Result, fail.Reason = apitoken.ResultFail, apitoken.ReasonInsufficientScope
	recordAuth(t, s, fail)
	check(t0.Add(10*time.Minute), "192.0.2.1")
	// The latest Last of a run counts, whatever the order in the batch.
	run := okAt(tok.ID, t0.Add(25*time.Minute), "192.0.2.4")
	run.Last = t0.Add(40 * time.Minute)
	recordAuth(t, s, run, okAt(tok.ID, t0.Add(30*time.Minute), "192.0.2.5"))
	check(t0.Add(40*time.Minute), "192.0.2.4")
	recordAuth(t, s, okAt(tok.ID, t0.Add(45*time.Minute), "192.0.2.6"), okAt(tok.ID, t0.Add(50*time.Minute), "192.0.2.7"))
	check(t0.Add(50*time.Minute), "192.0.2.7")
}

func testRecordAuthUnknownToken(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "known", t0))
	recordAuth(t, s, okAt("tok_gone", t0, "192.0.2.1"), okAt(tok.ID, t0, "192.0.2.1"), okAt("tok_gone", t0, "192.0.2.2"))
	recordAuth(t, s, okAt("tok_gone", t0, "192.0.2.1"))
	recordAuth(t, s)
	logs := allLogs(t, s, apitoken.LogFilter{Activity: apitoken.ActivityAuthenticate})
	if len(logs) != 1 || logs[0].TokenID != tok.ID {
		t.Errorf("AUTHENTICATE rows = %+v, want only the known token's", logs)
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt == nil {
		t.Errorf("the known token's use was not recorded")
	}
}

// A batch written again under its id (a retry after a lost COMMIT answer)
// is not applied again; another id is.
func testRecordAuthBatchIDOnce(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "retried", t0))
	batch := []apitoken.AuthRecord{okAt(tok.ID, t0, "192.0.2.1"), okAt(tok.ID, t0, "192.0.2.2")}
	id := apitoken.NewBatchID()
	for range 3 {
		if err := s.RecordAuth(t.Context(), id, batch); err != nil {
			t.Fatalf("RecordAuth: %v", err)
		}
	}
	if err := s.RecordAuth(t.Context(), apitoken.NewBatchID(), batch); err != nil {
		t.Fatalf("RecordAuth: %v", err)
	}
	var n int64
	for _, l := range allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate}) {
		n += l.Count
	}
	if n != 4 {
		t.Errorf("counted %d, want 4: the batch once under each of its two ids", n)
	}
}

func testRecordAuthConcurrent(t *testing.T, s apitoken.Store) {
	putUser(t, s, "alice", t0)
	tok := createToken(t, s, newToken("alice", "hot", t0))
	const workers, batches = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				at := t0.Add(time.Duration(g*batches+b) * time.Millisecond)
				shared := okAt(tok.ID, at, "192.0.2.1")
				double := okAt(tok.ID, at, "192.0.2.2")
				double.Count = 2
				own := okAt(tok.ID, at, fmt.Sprintf("198.51.100.%d", g))
				errs <- s.RecordAuth(t.Context(), "", []apitoken.AuthRecord{shared, double, own})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent RecordAuth failed: %v", err)
		}
	}
	last := t0.Add(time.Duration(workers*batches-1) * time.Millisecond)
	counts := map[string]int64{}
	for _, l := range allLogs(t, s, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate}) {
		counts[l.ClientIP] += l.Count
		if shared := l.ClientIP == "192.0.2.1" || l.ClientIP == "192.0.2.2"; shared && (!l.ActivityOn.Equal(t0) || !l.LastOn.Equal(last)) {
			t.Errorf("row of %s spans %v to %v, want t0 to %v", l.ClientIP, l.ActivityOn, l.LastOn, last)
		}
	}
	if counts["192.0.2.1"] != workers*batches || counts["192.0.2.2"] != 2*workers*batches {
		t.Errorf("shared rows count %d and %d, want %d and %d", counts["192.0.2.1"], counts["192.0.2.2"], workers*batches, 2*workers*batches)
	}
	for g := range workers {
		if c := counts[fmt.Sprintf("198.51.100.%d", g)]; c != batches {
			t.Errorf("worker %d's row counts %d, want %d", g, c, batches)
		}
	}
	if got := mustGetToken(t, s, tok.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(last) {
		t.Errorf("last used = %v, want the latest attempt %v", got.LastUsedAt, last)
	}
}
