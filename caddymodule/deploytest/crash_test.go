package deploytest_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// After kill -9 the store is consistent and at most the last flush interval
// of counts is missing.
func TestReliability_KillDashNineLosesAtMostOneFlushInterval(t *testing.T) {
	t.Parallel()
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
