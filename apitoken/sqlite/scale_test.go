package sqlite

import (
	"context"
	"database/sql"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// TestScale_ManagementStaysFastWithAMillionTokens fills a store with 10,000
// users, 1,000,000 tokens and 10,000,000 log rows, then times what the
// management routes do. It takes minutes and a few GB of disk, so it runs
// only with APITOKENS_SCALE=1:
//
//	APITOKENS_SCALE=1 go test -run TestScale -v -timeout 30m ./apitoken/sqlite/
func TestScale_ManagementStaysFastWithAMillionTokens(t *testing.T) {
	if os.Getenv("APITOKENS_SCALE") == "" {
		t.Skip("APITOKENS_SCALE is not set: the scale test fills 10,000,000 log rows and takes minutes")
	}
	const (
		users          = 10_000
		tokensPerUser  = 100
		logsPerToken   = 10
		maxLatency     = 50 * time.Millisecond
		unixMicroStart = 1_767_225_600_000_000 // 2026-01-01
	)
	ctx := context.Background()
	path := t.TempDir() + "/scale.db"
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Bulk load with plain SQL on the store's own schema: the store API
	// would take hours for ten million rows.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=busy_timeout(60000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
		INSERT INTO users (id, created_at) SELECT 'user' || i, ? + i FROM n`, users, unixMicroStart)
	exec(`INSERT INTO user_roles (user_id, role) SELECT id, 'api_tokens' FROM users`)
	exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
		INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at, generated_at, jti_hash, expires_at)
		SELECT printf('tok_%026d', i), 'user' || (i % ?), 'token ' || i, 'token ' || i, 3, '1y', ? + i, ? + i,
		       randomblob(32), ? + i + 31536000000000 FROM n`,
		users*tokensPerUser, users, unixMicroStart, unixMicroStart, unixMicroStart)
	exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
		INSERT INTO logs (token_id, token_name, activity, activity_on, activity_by, result, client_ip, user_agent, count, last_on, window_start)
		SELECT printf('tok_%026d', i / ?), 'token ' || (i / ?), 'AUTHENTICATE', ? + i, 'Reports API', 'OK',
		       '192.0.2.' || (i % 250), 'Microsoft.Data.Mashup', 1 + i % 7, ? + i, ? + (i % ?) * 60000000 FROM n`,
		users*tokensPerUser*logsPerToken, logsPerToken, logsPerToken, unixMicroStart, unixMicroStart, unixMicroStart, logsPerToken)
	exec(`ANALYZE`)
	t.Logf("loaded %d users, %d tokens, %d log rows in %v", users, users*tokensPerUser, users*tokensPerUser*logsPerToken, time.Since(start).Round(time.Second))

	svc := apitoken.NewService(apitoken.ServiceConfig{Store: st, MaxTokensPerUser: tokensPerUser + 10}) // the loaded tokens and the timed creates
	caller, err := svc.Caller(ctx, "user4242")
	if err != nil {
		t.Fatal(err)
	}
	timed := func(name string, f func() error) {
		t.Helper()
		var worst time.Duration
		for i := 0; i < 5; i++ {
			began := time.Now()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			worst = max(worst, time.Since(began))
		}
		t.Logf("%-36s worst of 5: %v", name, worst)
		if worst > maxLatency {
			t.Errorf("%s took %v, over %v", name, worst, maxLatency)
		}
	}
	n := 0
	timed("create a token", func() error {
		n++
		_, err := svc.CreateToken(ctx, caller, apitoken.TokenInput{Name: "scale " + strconv.Itoa(n), Expires: apitoken.Expiry30d, Scopes: apitoken.DefaultScopes})
		return err
	})
	timed("list a user's tokens (100)", func() error {
		ts, _, err := svc.ListTokens(ctx, caller, apitoken.TokenFilter{Page: apitoken.Page{Limit: 100}})
		if err == nil && len(ts) != 100 {
			t.Errorf("listed %d tokens", len(ts))
		}
		return err
	})
	tokenID := "tok_00000000000000000000424242"
	timed("read a token's newest logs (100)", func() error {
		_, _, err := st.ListLogs(ctx, apitoken.LogFilter{TokenID: tokenID, Page: apitoken.Page{Limit: 100}})
		return err
	})
	timed("admin: every token, first page", func() error {
		_, _, err := st.ListTokens(ctx, apitoken.TokenFilter{Page: apitoken.Page{Limit: 100}})
		return err
	})
	timed("admin: every log, first page", func() error {
		_, _, err := st.ListLogs(ctx, apitoken.LogFilter{Page: apitoken.Page{Limit: 100}})
		return err
	})
	timed("admin: one owner's expired tokens", func() error {
		_, _, err := st.ListTokens(ctx, apitoken.TokenFilter{Owner: "user7", Statuses: []apitoken.Status{apitoken.StatusExpired}, Now: time.Now(), Page: apitoken.Page{Limit: 100}})
		return err
	})
	timed("record a flush of 100 attempts", func() error {
		recs := make([]apitoken.AuthRecord, 100)
		now := time.Now()
		for i := range recs {
			recs[i] = apitoken.AuthRecord{TokenID: tokenID, ActivityBy: "Reports API", Result: apitoken.ResultOK,
				ClientIP: "198.51.100." + strconv.Itoa(i), Window: now.Truncate(time.Minute), First: now, Last: now, Count: 1}
		}
		return st.RecordAuth(ctx, "", recs)
	})
}

// TestScale_CacheMemoryWith100kLiveTokens authenticates 100,000 distinct live
// tokens once each, so that every cache holds them all, and reports the heap
// and the process's resident memory. The caches are bounded (CacheSize
// entries each), so this is also the most they hold with the defaults.
//
//	APITOKENS_SCALE=1 go test -run TestScale_Cache -v ./apitoken/sqlite/
func TestScale_CacheMemoryWith100kLiveTokens(t *testing.T) {
	if os.Getenv("APITOKENS_SCALE") == "" {
		t.Skip("APITOKENS_SCALE is not set: the scale test makes 100,000 tokens")
	}
	const live = 100_000
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir()+"/cache.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := apitoken.NewKey(make([]byte, apitoken.MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := apitoken.NewSigner("scale", []apitoken.Key{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)

	// Tokens straight into the store's tables, in one transaction.
	tx, err := st.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO users (id, created_at) VALUES ('owner', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO user_roles (user_id, role) VALUES ('owner', 'api_tokens')`); err != nil {
		t.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at, generated_at, generated_exp, jti_hash, expires_at)
		VALUES (?, 'owner', ?, ?, 3, '1y', ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	jwts := make([]string, live)
	for i := range jwts {
		id, name, jti := apitoken.NewTokenID(), "token "+strconv.Itoa(i), apitoken.NewJTI()
		hash := apitoken.HashJTI(jti)
		tok := apitoken.Token{ID: id, Name: name, Owner: "owner", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry1y}
		if jwts[i], err = signer.Issue(&tok, jti, now); err != nil {
			t.Fatal(err)
		}
		exp := now.Add(365 * 24 * time.Hour).UnixMicro()
		if _, err := ins.Exec(id, name, name, now.UnixMicro(), now.UnixMicro(), exp, hash[:], exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	before := heapAfterGC()
	auth, err := apitoken.NewAuthenticator(apitoken.AuthConfig{Signer: signer, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for i, jwt := range jwts {
		if _, fail := auth.Authenticate(ctx, jwt); fail != nil {
			t.Fatalf("token %d refused: %s %v", i, fail.Reason, fail.Err)
		}
	}
	// The caches keep the JWT strings the test made; in Caddy those come
	// from requests and live on only in the cache, so they count too.
	heap := heapAfterGC() - before
	for _, jwt := range jwts {
		heap += uint64(len(jwt))
	}
	st2 := auth.Stats()
	t.Logf("%d live tokens cached: %d JWTs; caches %.1f MiB (%d bytes a token, JWT strings included); process RSS %s",
		live, st2.JWTCacheLen, float64(heap)/(1<<20), heap/live, rss())
	if st2.JWTCacheLen != live {
		t.Errorf("JWT cache holds %d, want %d", st2.JWTCacheLen, live)
	}
	runtime.KeepAlive(auth)
}

func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
