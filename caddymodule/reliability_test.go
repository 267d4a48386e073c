package caddymodule

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// holdWriteLock takes the SQLite file's write lock from another connection,
// as another process would, until release or the test's end.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
}

// Ten forced reloads (a new config each time) under load: no request gets
// an error status and every answered attempt is counted once. A connection
// that the old server closes during the switch, unanswered, is counted and
// reported: Go's client sends such a request again when it can, a client
// that does not retry sees the error, as it would with plain Caddy.
func TestReliability_TenReloadsUnderLoadFailNoRequestAndLoseNoCount(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.token("reloads", apitoken.Expiry30d, apitoken.AllScopes)
	l := e.startLoad(jwt, 8)
	for i := 0; i < 10; i++ {
		l.Wait(50, http.StatusOK) // requests between reloads
		e.reload()
	}
	r := l.Stop()
	ok, unanswered := int64(r.ByStatus[http.StatusOK]), r.ByStatus[0]
	if failed := r.Total() - int(ok) - unanswered; failed != 0 {
		t.Errorf("%d of %d requests got an error status across ten reloads: %v", failed, r.Total()-unanswered, r.ByStatus)
	}
	if logged := e.loggedOK(tok.ID); logged != ok {
		t.Errorf("%d OK answers, %d in the token's logs", ok, logged)
	}
	t.Logf("%d requests across ten reloads, all answered and counted; %d connections closed unanswered", ok, unanswered)
}

// A writer that holds SQLite's write lock (another process, a backup, a
// long migration) stops the audit flushes, not the requests: the guard only
// reads, and the queue keeps every count until the lock is gone.
func TestReliability_LockedDatabaseDelaysAuditWithoutSlowingRequests(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.token("locked", apitoken.Expiry30d, apitoken.AllScopes)
	get := func(when string) time.Duration {
		t.Helper()
		began := time.Now()
		if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
			logs, _ := os.ReadFile(e.Log)
			t.Fatalf("%s: got %d\n%s", when, res.StatusCode, logs)
		}
		return time.Since(began)
	}
	get("before the lock")

	release := holdWriteLock(t, e.db)
	get("under the lock")
	auditor := e.app.Auditor()
	caddytesting.Eventually(t, 5*time.Second, "a flush waiting on the lock", func() bool { return auditor.Stats().InFlight > 0 })
	flushes := auditor.Stats().Flushes

	var slowest time.Duration
	const during = 40
	for i := range during {
		slowest = max(slowest, get(fmt.Sprint("request ", i, " while a flush waits on the lock")))
	}
	if s := auditor.Stats(); s.Flushes != flushes || s.InFlight == 0 {
		t.Fatalf("the flush did not wait on the lock all along (%+v): the test did not test", s)
	}
	release()
	if logged := e.loggedOK(tok.ID); logged != during+2 {
		t.Errorf("%d OK authentications in the logs after the lock, want %d", logged, during+2)
	}
	if slowest > time.Second {
		t.Errorf("a request took %v while a flush waited on the lock", slowest)
	}
	t.Logf("slowest request while a flush waited on the lock: %v", slowest)
}

// After kill -9 the store is consistent and at most the last flush interval
// of counts is missing.
func TestReliability_KillDashNineLosesAtMostOneFlushInterval(t *testing.T) {
	t.Parallel() // its own Caddy processes: it runs beside the in-process tests
	ctx := context.Background()
	db := t.TempDir() + "/tokens.db"
	up := caddytesting.NewUpstream(t)

	// The token, made through the real service on the database Caddy will use.
	store, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := apitoken.ParseKey(testKey)
	signer, _ := apitoken.NewSigner("https://reports.test", []apitoken.Key{key}, nil)
	svc := apitoken.NewService(apitoken.ServiceConfig{Store: store, Signer: signer, Admins: map[string]bool{"root": true}})
	root, _ := svc.Caller(ctx, "root")
	if _, err := svc.GrantRole(ctx, root, "alice", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	alice, _ := svc.Caller(ctx, "alice")
	tok, err := svc.CreateToken(ctx, alice, apitoken.TokenInput{Name: "crash", Expires: apitoken.Expiry30d, Scopes: apitoken.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	jwt, _, err := svc.Generate(ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	port := caddytesting.FreePort()
	p := caddytesting.StartProcess(t, "crash", fmt.Sprintf(`{
	admin off
	persist_config off
	api_tokens {
		issuer      https://reports.test
		storage     sqlite %s
		signing_key %s
	}
}
http://127.0.0.1:%d {
	api_token_auth {
		scope meta /meta
	}
	reverse_proxy %s
}
`, db, testKey, port, up.Listener.Addr()))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.WaitReady(t, caddytesting.Answers(base+"/meta"))

	l := caddytesting.StartLoad(8, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}, func() *http.Request {
		req, _ := http.NewRequest("GET", base+"/meta", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		return req
	})
	// The rate over 500 answers, then two seconds of traffic at that rate
	// (several flush intervals) before the kill.
	began := time.Now()
	l.Wait(500, http.StatusOK)
	rate := 500 / time.Since(began).Seconds() // OK answers per second
	l.Wait(int(2*rate), http.StatusOK)
	p.Kill()
	answered := int64(l.Stop().ByStatus[http.StatusOK])

	store, err = sqlite.Open(ctx, db) // opens cleanly: the store is consistent
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logs, _, err := store.ListLogs(ctx, apitoken.LogFilter{TokenID: tok.ID, Activity: apitoken.ActivityAuthenticate, Page: apitoken.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	var logged int64
	for _, l := range logs {
		logged += l.Count
	}
	missing := answered - logged
	t.Logf("kill -9 under load: %d OK answers, %d logged, %d missing = %.0f ms of traffic at %.0f req/s",
		answered, logged, missing, float64(missing)/rate*1000, rate)
	if missing < 0 {
		t.Errorf("more authentications logged (%d) than answered (%d)", logged, answered)
	}
	if float64(missing) > rate*1.0 {
		t.Errorf("%d counts missing: more than one second of traffic (%.0f)", missing, rate)
	}
	if got, err := store.GetToken(ctx, tok.ID); err != nil || got.LastUsedAt == nil {
		t.Errorf("token after the crash: %+v, %v", got, err)
	}
}
