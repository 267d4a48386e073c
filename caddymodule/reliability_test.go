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
	tok, jwt := e.token("reloads", apitoken.Expiry30d, apitoken.DefaultScopes)
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
	tok, jwt := e.token("locked", apitoken.Expiry30d, apitoken.DefaultScopes)
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
