package caddymodule

import (
	"context"
	"errors"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// metrics counts the guard's attempts. There is one, process-wide
// (appMetrics): Caddy gives every config a registry of its own, so
// collectors built per config would start again at 0 on each reload, or,
// kept from the first config, stay bound to its objects and stop moving.
// The same collectors are registered in each config's registry instead, as
// Caddy's own HTTP metrics are, and read what every live config counts.
type metrics struct {
	authOK   prometheus.Counter
	authFail *prometheus.CounterVec // by reason
	// failByReason holds authFail's counter of each reason seen, bound
	// once: WithLabelValues hashes the labels and takes the vector's lock
	// on every call.
	failByReason sync.Map // reason -> prometheus.Counter
}

const metricsNamespace = "caddy_api_tokens"

var (
	authentications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "authentications_total",
		Help: "Authentication attempts at api_token_auth, by result (OK, Fail) and reason.",
	}, []string{"result", "reason"})
	appMetrics = &metrics{
		authOK:   authentications.WithLabelValues(apitoken.ResultOK, ""),
		authFail: authentications.MustCurryWith(prometheus.Labels{"result": apitoken.ResultFail}),
	}
	// sources are the stats that the cache and audit metrics read.
	sources = newStatsSources()
	// collectors are built once: registering the same ones in every
	// config's registry is what keeps the series continuous.
	collectors = sync.OnceValue(newCollectors)
)

// newMetrics registers the metrics in the config's registry and reads
// jwtStats (the config's verified-JWT cache) and b (the state and audit
// writer it shares with other configs on the same storage) until ctx, the
// config, ends. Each source counts only its own events, as the sum of every
// live source is what is exported; a backend shared by two configs during a
// reload is counted once.
func newMetrics(ctx caddy.Context, jwtStats func() apitoken.AuthStats, b *backend) (*metrics, error) {
	src := sources.add(jwtStats, b)
	// After the config's servers have stopped (a reload's old config, a
	// failed provisioning): its counts stay in the totals.
	context.AfterFunc(ctx, func() { sources.remove(src) })
	reg := ctx.GetMetricsRegistry()
	for _, c := range collectors() {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) && dup.ExistingCollector == c {
				continue // a second api_tokens app of the same config
			}
			return nil, err
		}
	}
	return appMetrics, nil
}

// authenticated counts one attempt.
func (m *metrics) authenticated(result, reason string) {
	if result == apitoken.ResultOK {
		m.authOK.Inc()
		return
	}
	c, ok := m.failByReason.Load(reason)
	if !ok {
		c, _ = m.failByReason.LoadOrStore(reason, m.authFail.WithLabelValues(reason))
	}
	c.(prometheus.Counter).Inc()
}

func newCollectors() []prometheus.Collector {
	counter := func(name, help string, labels prometheus.Labels, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help, ConstLabels: labels}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
	}
	auth := func(f func(apitoken.AuthStats) uint64) func() float64 {
		return func() float64 { return float64(f(sources.auth())) }
	}
	audit := func(f func(apitoken.AuditStats) float64) func() float64 {
		return func() float64 { return f(sources.audit()) }
	}
	jwt, state := prometheus.Labels{"cache": "jwt"}, prometheus.Labels{"cache": "state"}
	const hits, misses = "Cache hits: verified JWTs (jwt) and token and user state (state).",
		"Cache misses: full JWT verifications (jwt) and state lookups (state)."
	return []prometheus.Collector{
		authentications,
		counter("cache_hits_total", hits, jwt, auth(func(s apitoken.AuthStats) uint64 { return s.JWTCacheHits })),
		counter("cache_hits_total", hits, state, auth(func(s apitoken.AuthStats) uint64 { return s.StateCacheHits })),
		counter("cache_misses_total", misses, jwt, auth(func(s apitoken.AuthStats) uint64 { return s.JWTCacheMisses })),
		counter("cache_misses_total", misses, state, auth(func(s apitoken.AuthStats) uint64 { return s.StateCacheMisses })),
		counter("store_queries_total", "Store queries made on the request path (state cache misses).", nil,
			auth(func(s apitoken.AuthStats) uint64 { return s.StateCacheMisses })),
		gauge("jwt_cache_entries", "Verified JWTs in the caches.",
			auth(func(s apitoken.AuthStats) uint64 { return uint64(s.JWTCacheLen) })),
		counter("change_reads_total", "Reads of the store's change sequence (every poll, and on a notification).", nil,
			func() float64 { return float64(sources.state().Syncs) }),
		gauge("store_down", "1 while the token store failed its last query: requests are answered without waiting on it (stale_if_error or 503).",
			func() float64 {
				if sources.state().Down {
					return 1
				}
				return 0
			}),
		gauge("audit_queue_rows", "Coalesced authentication log rows not yet written: queued, and in flight.",
			audit(func(s apitoken.AuditStats) float64 { return float64(s.Pending) })),
		gauge("audit_inflight_rows", "Of audit_queue_rows, the rows taken into batches that are being written or retried.",
			audit(func(s apitoken.AuditStats) float64 { return float64(s.InFlight) })),
		counter("audit_flushes_total", "Audit batch writes (at most 1,000 rows each).", nil,
			audit(func(s apitoken.AuditStats) float64 { return float64(s.Flushes) })),
		counter("audit_flush_failures_total", "Audit batch writes that failed; the batch is written again, under its id.", nil,
			audit(func(s apitoken.AuditStats) float64 { return float64(s.FailedFlushes) })),
		counter("audit_flush_seconds_total", "Time spent writing audit batches; divide by audit_flushes_total for the mean latency.", nil,
			audit(func(s apitoken.AuditStats) float64 { return s.FlushTime.Seconds() })),
		gauge("audit_last_flush_seconds", "Latency of the latest audit batch write.",
			audit(func(s apitoken.AuditStats) float64 { return s.LastFlush.Seconds() })),
		counter("audit_dropped_total", "Authentication attempts whose logs were lost: the store stayed down past a stop, or for longer than a batch is retried (24 h).", nil,
			audit(func(s apitoken.AuditStats) float64 { return float64(s.Dropped) })),
	}
}

// statsSources are the live configs' JWT caches and backends (state and
// audit writer), and the counts of those that are gone, so that every
// counter keeps growing across reloads.
type statsSources struct {
	mu   sync.Mutex
	jwts map[*statsSource]bool
	// backends counts the live sources of each backend: a reload that keeps
	// the storage shares one between two configs, counted once.
	backends map[*backend]int
	// closing are backends no config uses any more, whose audit writer's
	// last flush (when the backend is destroyed) is still to be counted.
	closing   map[*backend]bool
	goneAuth  apitoken.AuthStats
	goneState apitoken.StateStats
	goneAudit apitoken.AuditStats
}

type statsSource struct {
	jwts func() apitoken.AuthStats
	b    *backend
}

func newStatsSources() *statsSources {
	return &statsSources{jwts: map[*statsSource]bool{}, backends: map[*backend]int{}, closing: map[*backend]bool{}}
}

func (s *statsSources) add(jwts func() apitoken.AuthStats, b *backend) *statsSource {
	src := &statsSource{jwts: jwts, b: b}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwts[src] = true
	s.backends[b]++
	delete(s.closing, b) // a config took it up again
	return src
}

func (s *statsSources) remove(src *statsSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.jwts[src] {
		return
	}
	delete(s.jwts, src)
	s.goneAuth = addAuthCounts(s.goneAuth, src.jwts())
	if s.backends[src.b]--; s.backends[src.b] == 0 {
		delete(s.backends, src.b)
		s.closing[src.b] = true
	}
}

// settle moves the counts of closing backends whose audit writer has
// closed to the totals. s.mu is held.
func (s *statsSources) settle() {
	for b := range s.closing {
		select {
		case <-b.auditor.Closed():
			delete(s.closing, b)
			s.goneAudit = addAuditCounts(s.goneAudit, b.auditor.Stats())
			s.goneState = addStateCounts(s.goneState, b.state.Stats())
		default:
		}
	}
}

// eachBackend calls f with every backend in use or closing. s.mu is held.
func (s *statsSources) eachBackend(f func(*backend)) {
	for b := range s.backends {
		f(b)
	}
	for b := range s.closing {
		f(b)
	}
}

// auth sums the cache stats: counters of every config ever, gauges of the
// live ones.
func (s *statsSources) auth() apitoken.AuthStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	sum := s.goneAuth
	for src := range s.jwts {
		st := src.jwts()
		sum = addAuthCounts(sum, st)
		sum.JWTCacheLen += st.JWTCacheLen
	}
	st := s.stateLocked()
	sum.StateCacheHits += st.Hits
	sum.StateCacheMisses += st.Lookups
	return sum
}

// state sums the backends' change-sequence reads, and says whether a live
// backend's store is down.
func (s *statsSources) state() apitoken.StateStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	return s.stateLocked()
}

// stateLocked sums the state counters of every backend ever; Down is that
// of the live ones. s.mu is held and settled.
func (s *statsSources) stateLocked() apitoken.StateStats {
	sum := s.goneState
	s.eachBackend(func(b *backend) { sum = addStateCounts(sum, b.state.Stats()) })
	for b := range s.backends {
		sum.Down = sum.Down || b.state.Stats().Down
	}
	return sum
}

// audit sums the audit writers' stats likewise.
func (s *statsSources) audit() apitoken.AuditStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	sum := s.goneAudit
	s.eachBackend(func(b *backend) {
		st := b.auditor.Stats()
		sum = addAuditCounts(sum, st)
		sum.Pending += st.Pending
		sum.InFlight += st.InFlight
		sum.LastFlush = max(sum.LastFlush, st.LastFlush)
	})
	return sum
}

// addAuthCounts adds b's counters (not its gauge) to a.
func addAuthCounts(a, b apitoken.AuthStats) apitoken.AuthStats {
	a.JWTCacheHits += b.JWTCacheHits
	a.JWTCacheMisses += b.JWTCacheMisses
	a.StateCacheHits += b.StateCacheHits
	a.StateCacheMisses += b.StateCacheMisses
	return a
}

// addStateCounts adds b's counters (not Down) to a.
func addStateCounts(a, b apitoken.StateStats) apitoken.StateStats {
	a.Hits += b.Hits
	a.Lookups += b.Lookups
	a.Syncs += b.Syncs
	return a
}

// addAuditCounts adds b's counters (not its gauges) to a.
func addAuditCounts(a, b apitoken.AuditStats) apitoken.AuditStats {
	a.Flushes += b.Flushes
	a.FailedFlushes += b.FailedFlushes
	a.FlushTime += b.FlushTime
	a.Dropped += b.Dropped
	return a
}
