package caddytesting

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Upstream is a server behind the test Caddy. It records what reached it.
type Upstream struct {
	*httptest.Server
	Hits    atomic.Int64 // requests that reached it
	mu      sync.Mutex
	headers http.Header
}

// NewUpstream answers {"path": the request's path} as JSON.
func NewUpstream(t testing.TB) *Upstream {
	return NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
}

// NewUpstreamFunc answers with answer. The server is closed at the end of
// the test.
func NewUpstreamFunc(t testing.TB, answer http.HandlerFunc) *Upstream {
	return NewUpstreamWrapped(t, nil, answer)
}

// NewUpstreamWrapped answers with answer behind wrap (nil for none), which
// sees every request first: a server that switches protocols
// (h2c.NewHandler) records what reached it after the switch too.
func NewUpstreamWrapped(t testing.TB, wrap func(http.Handler) http.Handler, answer http.HandlerFunc) *Upstream {
	u := &Upstream{}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.Hits.Add(1)
		u.mu.Lock()
		u.headers = r.Header.Clone()
		u.mu.Unlock()
		answer(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	u.Server = httptest.NewServer(h)
	t.Cleanup(u.Close)
	return u
}

// LastHeaders are the headers of the last request that reached u.
func (u *Upstream) LastHeaders() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers
}
