package caddymodule

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// load sends requests with jwt from workers goroutines until stop is closed,
// and counts the answers: OK, other statuses, and connections closed
// without an answer.
type load struct {
	ok, failed, unanswered atomic.Int64
	wg                     sync.WaitGroup
	stop                   chan struct{}
	answered               chan struct{} // an OK answer, when there is room
}

// waitOK waits for n OK answers from now.
func (l *load) waitOK(n int) {
	for len(l.answered) > 0 {
		<-l.answered
	}
	for range n {
		<-l.answered
	}
}

func startLoad(e *guardEnv, jwt string, workers int) *load {
	l := &load{stop: make(chan struct{}), answered: make(chan struct{}, 64)}
	client := &http.Client{Transport: e.tester.Client.Transport, Timeout: 10 * time.Second}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.base+"/meta", nil)
				req.Header.Set("Authorization", "Bearer "+jwt)
				res, err := client.Do(req)
				if err != nil {
					l.unanswered.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					l.ok.Add(1)
					select {
					case l.answered <- struct{}{}:
					default:
					}
				} else {
					l.failed.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) finish() (ok, failed, unanswered int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.unanswered.Load()
}

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

// loggedOK sums the token's AUTHENTICATE OK counts after a flush.
func (e *guardEnv) loggedOK(tokenID string) int64 {
	e.t.Helper()
	var n int64
	for _, l := range e.authLogs(tokenID) {
		if l.Result == apitoken.ResultOK {
			n += l.Count
		}
	}
	return n
}

// Ten forced reloads (a new config each time) under load: no request gets
// an error status and every answered attempt is counted once. A connection
// that the old server closes during the switch, unanswered, is counted and
// reported: Go's client sends such a request again when it can, a client
// that does not retry sees the error, as it would with plain Caddy.
func TestReliability_TenReloadsUnderLoadFailNoRequestAndLoseNoCount(t *testing.T) {
	e := newGuardEnv(t)
	tok, jwt := e.token("reloads", apitoken.Expiry30d, apitoken.DefaultScopes)
	l := startLoad(e, jwt, 8)
	for i := 0; i < 10; i++ {
		l.waitOK(50) // requests between reloads
		e.reload()
	}
	ok, failed, unanswered := l.finish()
	if failed != 0 {
		t.Errorf("%d of %d requests got an error status across ten reloads", failed, ok+failed)
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
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
		t.Fatalf("got %d before the lock", res.StatusCode)
	}

	release := holdWriteLock(t, e.db)
	failedBefore := e.app.Auditor().Stats().FailedFlushes

	var slowest time.Duration
	const during = 40
	for i := 0; i < during; i++ {
		began := time.Now()
		res, _ := e.do("GET", "/meta", bearer(jwt)...)
		slowest = max(slowest, time.Since(began))
		if res.StatusCode != 200 {
			logs, _ := os.ReadFile(e.logFile)
			t.Fatalf("request %d under the lock got %d\n%s", i, res.StatusCode, logs)
		}
		time.Sleep(150 * time.Millisecond) // spans the 5 s busy timeout of a flush
	}
	if e.app.Auditor().Stats().FailedFlushes == failedBefore {
		t.Fatal("no audit flush failed while the database was locked: the test did not test")
	}
	release()
	if logged := e.loggedOK(tok.ID); logged != during+1 {
		t.Errorf("%d OK authentications in the logs after the lock, want %d", logged, during+1)
	}
	if slowest > time.Second {
		t.Errorf("a request took %v while the database was locked", slowest)
	}
	t.Logf("slowest request under the lock: %v", slowest)
}

// After kill -9 the store is consistent and at most the last flush interval
// of counts is missing.
func TestReliability_KillDashNineLosesAtMostOneFlushInterval(t *testing.T) {
	t.Parallel() // its own Caddy processes: it runs beside the in-process tests
	bin := caddytesting.BuildCaddy(t)
	ctx := context.Background()
	dir := t.TempDir()
	db := dir + "/tokens.db"
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
	tok, err := svc.CreateToken(ctx, alice, apitoken.TokenInput{Name: "crash", Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
	if err != nil {
		t.Fatal(err)
	}
	jwt, _, err := svc.Generate(ctx, alice, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	port := caddytesting.FreePort()
	config := fmt.Sprintf(`{
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
`, db, testKey, port, up.Listener.Addr())
	cfgFile := dir + "/Caddyfile"
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgFile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if res, err := http.Get(base + "/meta"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("caddy did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", base+"/meta", nil)
				req.Header.Set("Authorization", "Bearer "+jwt)
				res, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	began := ok.Load()
	time.Sleep(time.Second)
	rate := float64(ok.Load() - began) // OK answers per second
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	wg.Wait()

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
	answered := ok.Load()
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
