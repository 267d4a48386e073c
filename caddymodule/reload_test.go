package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
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
	var ok, transportErrs atomic.Int64
	var other sync.Map // status -> count
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, e.base+"/data/sales", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+jwt)
				res, err := client.Do(req)
				if err != nil {
					transportErrs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					ok.Add(1)
					continue
				}
				n, _ := other.LoadOrStore(res.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	for i := range 100 {
		// Each config differs from the last, so that Caddy really reloads.
		e.options = fmt.Sprintf("cache_ttl %ds", 30+i%2)
		e.load()
	}
	close(stop)
	wg.Wait()

	other.Range(func(status, n any) bool {
		t.Errorf("%d answers with status %v, want 200", n.(*atomic.Int64).Load(), status)
		return true
	})
	log, err := os.ReadFile(e.logFile)
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
	t.Logf("100 reloads under 4 POST clients that never retry: %d answered 200, %d lost in transport", ok.Load(), transportErrs.Load())
	if ok.Load() == 0 {
		t.Fatal("no request was answered")
	}
}
