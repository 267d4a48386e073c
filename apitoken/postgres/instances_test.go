package postgres_test

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
)

// instance is what one Caddy instance keeps of the deployment: its own
// store (pool and change feed), State following the change sequence,
// Authenticator and Auditor, wired as the api_tokens app wires them.
type instance struct {
	store   *postgres.Store
	state   *apitoken.State
	auth    *apitoken.Authenticator
	auditor *apitoken.Auditor
	stop    context.CancelFunc
	done    sync.WaitGroup
	// down is whether the last read of the change sequence failed, and
	// lapses counts the reads that failed: a starved test machine can time
	// one out (the instance then fails closed until the next read), but
	// an instance must not stay cut off from its store.
	down   atomic.Bool
	lapses atomic.Int32
}

func startInstance(t *testing.T, dsn string, signer *apitoken.Signer, window time.Duration) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stop: cancel}
	var err error
	if in.store, err = postgres.Open(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if in.state, err = apitoken.NewState(apitoken.StateConfig{Store: in.store}); err != nil {
		t.Fatal(err)
	}
	if in.auth, err = apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: signer, State: in.state, CacheTTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	in.auditor = apitoken.NewAuditor(apitoken.AuditConfig{Store: in.store, Window: window,
		OnError: func(err error, queued int) { t.Errorf("audit flush failed (%d queued): %v", queued, err) }})
	if err := in.state.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	in.done.Add(2)
	go func() {
		defer in.done.Done()
		in.store.Wake(ctx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	go func() {
		defer in.done.Done()
		in.state.Follow(ctx, wake, func(err error) {
			in.down.Store(err != nil)
			if err != nil {
				in.lapses.Add(1)
				t.Logf("instance could not read its store's changes (it fails closed until it can): %v", err)
			}
		})
	}()
	return in
}

// close flushes the auditor and closes the store, as Cleanup does.
func (in *instance) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.auditor.Close(ctx); err != nil {
		t.Errorf("last audit flush: %v", err)
	}
	in.stop()
	in.done.Wait()
	in.store.Close()
	if in.down.Load() {
		t.Errorf("instance lost its store: its last read of the changes failed (%d failed in all)", in.lapses.Load())
	}
}

// instancesSize is how large TestInstances runs.
type instancesSize struct {
	instances, tokens, trials int
	duration, window          time.Duration
	rate                      int // authentications a second, all instances together
}

// TestInstances_AuditWritesAreBoundedByTokensAndRevocationReachesEveryInstance
// runs 10 instances on one schema under load: each authenticates a set of
// tokens and records every attempt, as the guard does, while revocations
// made through instance 0 are timed until every instance refuses the token.
// It asserts that
//   - every attempt is counted exactly once in the logs;
//   - the audit rows inserted are bounded by tokens × audit windows and the
//     rows updated by tokens × instances × flushes (each instance writes a
//     token's coalesced row once per flush), whatever the request rate;
//   - every instance refuses a revoked token within 1 s (State.MaxLag), and,
//     in the long run, within 100 ms at p99.
//
// It reports the requests, the row writes (pg_stat_user_tables) and, when
// the server runs on this machine, the CPU time of the server processes
// that served the instances. The default run takes a few seconds; the long
// one runs with APITOKENS_SCALE=1 (1,000 tokens, 60 s, 100 revocations):
//
//	APITOKENS_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  APITOKENS_SCALE=1 go test -run TestInstances -v -timeout 10m ./apitoken/postgres/
func TestInstances_AuditWritesAreBoundedByTokensAndRevocationReachesEveryInstance(t *testing.T) {
	size := instancesSize{instances: 10, tokens: 20, trials: 10, duration: 2 * time.Second, window: time.Second, rate: 10_000}
	long := os.Getenv("APITOKENS_SCALE") != ""
	if long {
		size = instancesSize{instances: 10, tokens: 1000, trials: 100, duration: time.Minute, window: time.Minute, rate: 50_000}
	}
	const flushInterval = 500 * time.Millisecond // the Auditor's default
	ctx := context.Background()
	dsn, schema := pgtest.Schema(t)
	appName := "apitokens-instances-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	dsn = u.String()

	// The deployment's users and tokens, made through one store that is
	// closed before the measurement, so that its writes are not counted.
	signer, err := apitoken.NewSigner("instances", []apitoken.Key{mustKey(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	setup := openStore(t, dsn)
	svc := apitoken.NewService(apitoken.ServiceConfig{Store: setup, Signer: signer, Admins: map[string]bool{"admin": true}, MaxTokensPerUser: size.tokens + size.trials})
	admin, err := svc.Caller(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GrantRole(ctx, admin, "owner", apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	owner, err := svc.Caller(ctx, "owner")
	if err != nil {
		t.Fatal(err)
	}
	newToken := func(name string) (id, jwt string) {
		tok, err := svc.CreateToken(ctx, owner, apitoken.TokenInput{Name: name, Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
		if err != nil {
			t.Fatal(err)
		}
		if jwt, _, err = svc.Generate(ctx, owner, tok.ID); err != nil {
			t.Fatal(err)
		}
		return tok.ID, jwt
	}
	load := make([]string, size.tokens)
	loadIDs := make([]string, size.tokens)
	for i := range load {
		loadIDs[i], load[i] = newToken("load " + strconv.Itoa(i))
	}
	trialIDs := make([]string, size.trials)
	trialJWTs := make([]string, size.trials)
	for i := range trialIDs {
		trialIDs[i], trialJWTs[i] = newToken("revoke " + strconv.Itoa(i))
	}
	setup.Close()

	instances := make([]*instance, size.instances)
	for i := range instances {
		instances[i] = startInstance(t, dsn, signer, size.window)
	}
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			for _, in := range instances {
				in.close(t)
			}
		}
	}
	t.Cleanup(closeAll)
	mon := connect(t, strings.Replace(dsn, appName, appName+"-monitor", 1))
	cpuBefore := serverCPU(t, mon, appName, instances[0].store.Channel())

	// Revocations go through instance 0, which drops its own cache at once
	// (Service.Changed), as the admin routes of a Caddy instance do.
	revoker := apitoken.NewService(apitoken.ServiceConfig{Store: instances[0].store, Signer: signer, Admins: map[string]bool{"admin": true},
		Changed: func(tokenID, userID string) {
			if tokenID != "" {
				instances[0].state.InvalidateToken(tokenID)
			}
		}})

	// The load: every instance authenticates every load token in turn and
	// records the attempt, paced to size.rate in all.
	var requests atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loading sync.WaitGroup
	const tick = 10 * time.Millisecond
	perTick := max(1, int(float64(size.rate)*tick.Seconds())/size.instances)
	for n, in := range instances {
		loading.Add(1)
		go func() {
			defer loading.Done()
			tk := time.NewTicker(tick)
			defer tk.Stop()
			next := n
			for {
				select {
				case <-loadCtx.Done():
					return
				case <-tk.C:
				}
				for range perTick {
					i := next % len(load)
					next++
					if _, f := in.auth.Authenticate(loadCtx, load[i]); f != nil {
						t.Errorf("instance %d refused load token %d: %s %v", n, i, f.Reason, f.Err)
						return
					}
					in.auditor.Record(apitoken.AuthEvent{TokenID: loadIDs[i], ActivityBy: "Reports API", Result: apitoken.ResultOK,
						ClientIP: "192.0.2." + strconv.Itoa(i%250), UserAgent: "Microsoft.Data.Mashup", At: time.Now()})
					requests.Add(1)
				}
			}
		}()
	}
	began := time.Now()

	// The revocations, one after another while the load runs.
	var lags []time.Duration
	for trial := range size.trials {
		for n, in := range instances { // every instance has the token cached
			if _, f := in.auth.Authenticate(ctx, trialJWTs[trial]); f != nil {
				t.Fatalf("instance %d refused trial token %d before its revocation: %s", n, trial, f.Reason)
			}
		}
		if _, err := revoker.RevokeFor(ctx, admin, trialIDs[trial]); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		got := make([]time.Duration, len(instances))
		var wg sync.WaitGroup
		for n, in := range instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Polled every 200 µs: the State tells no one when it
				// drops an entry, and a request is what would notice.
				for {
					_, f := in.auth.Authenticate(ctx, trialJWTs[trial])
					if f != nil && f.Reason == apitoken.ReasonRevoked {
						got[n] = time.Since(revoked)
						return
					}
					if time.Since(revoked) > 5*time.Second {
						got[n] = time.Since(revoked)
						t.Errorf("instance %d still accepts token %s 5 s after its revocation", n, trialIDs[trial])
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
		}
		wg.Wait()
		lags = append(lags, got...)
	}
	if rest := size.duration - time.Since(began); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
		}
	}
	stopLoad()
	loading.Wait()
	elapsed := time.Since(began)
	cpuUsed := serverCPU(t, mon, appName, instances[0].store.Channel()).since(cpuBefore)
	closeAll() // the last flushes; the server processes exit and publish their statistics
	after := settledWrites(t, mon, schema)
	var ins int64 // AUTHENTICATE rows: all of them written by the instances
	if err := mon.QueryRow(ctx, `SELECT count(*) FROM logs WHERE activity = 'AUTHENTICATE'`).Scan(&ins); err != nil {
		t.Fatal(err)
	}

	// Every attempt counted once.
	var counted int64
	if err := mon.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM logs WHERE activity = 'AUTHENTICATE' AND token_id = ANY($1)`,
		loadIDs).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	reqs := requests.Load()
	if counted != reqs {
		t.Errorf("the logs count %d authentications, the instances made %d", counted, reqs)
	}

	// The audit writes, bounded by tokens, instances, windows and flushes.
	upd := after.logsUpd // the setup inserted log rows and updated none
	windows := int64(math.Ceil(elapsed.Seconds()/size.window.Seconds())) + 1
	flushes := int64(math.Ceil(elapsed.Seconds()/flushInterval.Seconds())) + 2 // the first and the last at Close
	// One client per token: one row per token and window.
	maxIns := int64(size.tokens) * windows
	// A flush writes one record per token and window it holds: one, or two
	// when it spans a window's end.
	maxUpd := int64(size.tokens) * int64(size.instances) * (flushes + windows)
	t.Logf("%d instances, %d tokens, %v: %d requests (%.0f/s); audit rows inserted %d (bound %d = tokens × %d windows), updated %d (bound %d = tokens × instances × (%d flushes + %d windows)): %.4f audit row writes per request; tokens rows updated %d (last use; with the setup's %d generations and %d revocations)",
		size.instances, size.tokens, elapsed.Round(time.Millisecond), reqs, float64(reqs)/elapsed.Seconds(),
		ins, maxIns, windows, upd, maxUpd, flushes, windows, float64(ins+upd)/float64(reqs), after.tokensUpd, size.tokens+size.trials, size.trials)
	if ins > maxIns || upd > maxUpd {
		t.Errorf("audit writes not bounded by tokens: %d inserted (bound %d), %d updated (bound %d)", ins, maxIns, upd, maxUpd)
	}
	if cpuUsed.ok {
		t.Logf("database server CPU for the instances' connections: %v over %v (%.1f %% of a core), %.2f µs per request",
			cpuUsed.d.Round(time.Millisecond), elapsed.Round(time.Millisecond), 100*cpuUsed.d.Seconds()/elapsed.Seconds(),
			float64(cpuUsed.d.Microseconds())/float64(reqs))
	} else {
		t.Logf("database server CPU not measured: its processes are not on this machine (/proc/<pid>/stat)")
	}

	// The revocation lag.
	slices.Sort(lags)
	p := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	t.Logf("revocation seen by all %d instances, %d revocations (%d samples): p50 %v, p99 %v, max %v (target p99 ≤ 100ms, bound 1s)",
		size.instances, size.trials, len(lags), p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), lags[len(lags)-1].Round(10*time.Microsecond))
	if lags[len(lags)-1] > time.Second {
		t.Errorf("an instance accepted a revoked token for %v, over 1s", lags[len(lags)-1])
	}
	if long && p(0.99) > 100*time.Millisecond {
		t.Errorf("revocation p99 %v, over the 100ms target", p(0.99))
	}
}

func mustKey(t *testing.T) apitoken.Key {
	k, err := apitoken.NewKey([]byte(strings.Repeat("instances-test-key-", 4)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writes are the row counts written to the audit tables, as the server's
// statistics count them.
type writes struct{ logsUpd, tokensUpd int64 }

// settledWrites reads the statistics of schema's tables once they stop
// moving: a server process publishes its counts when it is idle (at most
// once a second) and when it exits.
func settledWrites(t *testing.T, conn *pgx.Conn, schema string) writes {
	t.Helper()
	ctx := context.Background()
	read := func() writes {
		var w writes
		if _, err := conn.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		err := conn.QueryRow(ctx, `SELECT
				coalesce(sum(n_tup_upd) FILTER (WHERE relname = 'logs'), 0),
				coalesce(sum(n_tup_upd) FILTER (WHERE relname = 'tokens'), 0)
			FROM pg_stat_user_tables WHERE schemaname = $1`, schema).Scan(&w.logsUpd, &w.tokensUpd)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	last := read()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Two reads a publishing interval apart that agree.
		time.Sleep(1100 * time.Millisecond)
		w := read()
		if w == last {
			return w
		}
		last = w
		if time.Now().After(deadline) {
			t.Fatalf("the table statistics of %s did not settle in 20s", schema)
		}
	}
}

// cpuTimes are the CPU times of server processes by pid.
type cpuTimes struct {
	ok    bool
	byPid map[int]time.Duration
}

type cpuUsed struct {
	ok bool
	d  time.Duration
}

// since is the CPU the processes of c used after those of b (a process
// that started in between counts whole).
func (c cpuTimes) since(b cpuTimes) cpuUsed {
	if !c.ok || !b.ok {
		return cpuUsed{}
	}
	var d time.Duration
	for pid, t := range c.byPid {
		d += t - b.byPid[pid]
	}
	return cpuUsed{ok: true, d: d}
}

// serverCPU reads utime+stime of the server processes serving the
// connections named appName and the change feeds of channel, when the
// server runs on this machine.
func serverCPU(t *testing.T, conn *pgx.Conn, appName, channel string) cpuTimes {
	t.Helper()
	rows, _ := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 OR application_name = $2`,
		appName, "caddy-apitokens feed "+channel)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	c := cpuTimes{ok: true, byPid: map[int]time.Duration{}}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return cpuTimes{}
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		// Linux reports these in USER_HZ, 100 a second on every architecture Go runs Linux on.
		c.byPid[int(pid)] = time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return c
}
