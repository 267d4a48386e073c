package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// metrics are the app's Prometheus metrics, registered in the config's
// registry so they appear on Caddy's metrics endpoint. Counters that the
// domain keeps (caches, audit) are read at scrape time: the request path
// pays one atomic add per counter, nothing more.
type metrics struct {
	authOK   prometheus.Counter
	authFail *prometheus.CounterVec // by reason
}

const metricsNamespace = "caddy_api_tokens"

func newMetrics(reg prometheus.Registerer, auth *apitoken.Authenticator, auditor *apitoken.Auditor) (*metrics, error) {
	auths := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "authentications_total",
		Help: "Authentication attempts at api_token_auth, by result (OK, Fail) and reason.",
	}, []string{"result", "reason"})
	m := &metrics{authOK: auths.WithLabelValues(apitoken.ResultOK, ""), authFail: auths.MustCurryWith(prometheus.Labels{"result": apitoken.ResultFail})}

	counter := func(name, help string, labels prometheus.Labels, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help, ConstLabels: labels}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
	}
	jwt, state := prometheus.Labels{"cache": "jwt"}, prometheus.Labels{"cache": "state"}
	collectors := []prometheus.Collector{
		auths,
		counter("cache_hits_total", "Cache hits: verified JWTs (jwt) and token and user state (state).", jwt,
			func() float64 { return float64(auth.Stats().JWTCacheHits) }),
		counter("cache_hits_total", "Cache hits: verified JWTs (jwt) and token and user state (state).", state,
			func() float64 { return float64(auth.Stats().StateCacheHits) }),
		counter("cache_misses_total", "Cache misses: full JWT verifications (jwt) and state lookups (state).", jwt,
			func() float64 { return float64(auth.Stats().JWTCacheMisses) }),
		counter("cache_misses_total", "Cache misses: full JWT verifications (jwt) and state lookups (state).", state,
			func() float64 { return float64(auth.Stats().StateCacheMisses) }),
		counter("store_queries_total", "Store queries made on the request path (state cache misses).", nil,
			func() float64 { return float64(auth.Stats().StateCacheMisses) }),
		gauge("jwt_cache_entries", "Verified JWTs in the cache.",
			func() float64 { return float64(auth.Stats().JWTCacheLen) }),
		gauge("audit_queue_rows", "Coalesced authentication log rows waiting to be written.",
			func() float64 { return float64(auditor.Stats().Pending) }),
		counter("audit_flushes_total", "Audit flushes (writes of queued rows).", nil,
			func() float64 { return float64(auditor.Stats().Flushes) }),
		counter("audit_flush_failures_total", "Audit flushes that failed; their rows are kept for the next.", nil,
			func() float64 { return float64(auditor.Stats().FailedFlushes) }),
		counter("audit_flush_seconds_total", "Time spent writing audit flushes; divide by audit_flushes_total for the mean latency.", nil,
			func() float64 { return auditor.Stats().FlushTime.Seconds() }),
		gauge("audit_last_flush_seconds", "Latency of the latest audit flush.",
			func() float64 { return auditor.Stats().LastFlush.Seconds() }),
		counter("audit_dropped_total", "Authentication attempts whose logs were lost because the store stayed down when Caddy stopped.", nil,
			func() float64 { return float64(auditor.Stats().Dropped) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) {
				continue // the same series from an earlier provisioning of this config
			}
			return nil, err
		}
	}
	return m, nil
}

// authenticated counts one attempt.
func (m *metrics) authenticated(result, reason string) {
	if result == apitoken.ResultOK {
		m.authOK.Inc()
		return
	}
	m.authFail.WithLabelValues(reason).Inc()
}
