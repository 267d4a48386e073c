package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// A reload is a normal event under load: requests of the old config still
// in flight in the guard record through the backend after the old config's
// Cleanup, which must not take it from them. Clients that never retry (POST)
// see no answer lost to the guard, and Caddy logs no panic, over 100
// reloads.
func TestReload_RequestsInFlightAcrossAHundredReloadsNeverPanic(t *testing.T) {
	e := newGuardEnv(t)
	_, jwt := e.token("reloads", apitoken.Expiry30d, apitoken.DefaultScopes)
	// Go's client never retries a POST: every lost answer is seen.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	l := caddytesting.StartLoad(4, client, func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.Base+"/data/sales", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+jwt)
		return req
	})
	for i := range 100 {
		// Each config differs from the last, so that Caddy really reloads.
		e.options = fmt.Sprintf("cache_ttl %ds", 30+i%2)
		e.load()
	}
	r := l.Stop()
	for status, n := range r.ByStatus {
		if status != http.StatusOK && status != 0 {
			t.Errorf("%d answers with status %d, want 200", n, status)
		}
	}
	log, err := os.ReadFile(e.Log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "panic") {
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "panic") {
				t.Errorf("Caddy logged a panic: %.500s", line)
				break
			}
		}
	}
	t.Logf("100 reloads under 4 POST clients that never retry: %d answered 200, %d lost in transport", r.ByStatus[http.StatusOK], r.ByStatus[0])
	if r.ByStatus[http.StatusOK] == 0 {
		t.Fatal("no request was answered")
	}
}
