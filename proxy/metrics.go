package proxy

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/countersign/countersign/audit"
)

// latencyBuckets spans a decision-cache hit (microseconds) to an fsync on a
// slow disk or a policy at its evaluation timeout (a second).
var latencyBuckets = []float64{
	0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// Metrics collects countersign's Prometheus metrics in its own registry (no
// global state: each running countersign has one, made in its wiring).
//
// What the pipeline decides, how long policies and audit writes take and
// how often the upstream fails are read off the audit stream: Auditor wraps
// the audit log, so the request path pays one clock read per record and an
// atomic add or two, and every number on /metrics matches a record in the
// log. Gauges (held requests, pending approvals, open tunnels) are sampled
// only when /metrics is scraped.
//
// The zero of a *Metrics is not usable; a nil *Metrics is: its Auditor
// returns the log unchanged and its Handler answers 404.
type Metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	evalSecs  prometheus.Histogram
	auditSync prometheus.Observer
	auditAsyn prometheus.Observer
	auditErrs prometheus.Counter
	upErrors  prometheus.Counter
}

// NewMetrics returns Metrics with a fresh registry holding countersign's
// metrics and the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "countersign_decisions_total",
		Help: "Decisions on requests and tunnels, by verdict (allow, deny, approve, would_deny, …) and provider (aws, kubernetes, github, graphql, git, mcp, http; none for refusals before classification).",
	}, []string{"verdict", "provider"})
	m.evalSecs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "countersign_policy_eval_seconds",
		Help:    "Time to evaluate the policy for one request (decision-cache hits included).",
		Buckets: latencyBuckets,
	})
	writes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "countersign_audit_write_seconds",
		Help:    "Time to append one audit record; mode=sync waits for the record to be durable (fsync, group-committed).",
		Buckets: latencyBuckets,
	}, []string{"mode"})
	m.auditSync = writes.WithLabelValues("sync")
	m.auditAsyn = writes.WithLabelValues("async")
	m.auditErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "countersign_audit_write_errors_total",
		Help: "Audit records that could not be written (each one denied its request).",
	})
	m.upErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "countersign_upstream_errors_total",
		Help: "Allowed requests and tunnels that were not forwarded: refused by the address guard, or the upstream could not be resolved, reached or verified.",
	})
	m.reg.MustRegister(m.decisions, m.evalSecs, writes, m.auditErrs, m.upErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gauge registers a gauge sampled from f at each scrape. It is for values
// other components own: held requests, pending approvals.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// WatchServer adds the proxy's gauges: open tunnels (intercepted and
// spliced client connections).
func (m *Metrics) WatchServer(s *Server) {
	m.Gauge("countersign_proxy_tunnels_open", "Client connections inside CONNECT tunnels (intercepted or spliced) open now.",
		func() float64 { return float64(s.openTunnels()) })
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "countersign_proxy_unauthenticated_closed_total",
		Help: "Connections closed before their client authenticated, to make room for a newcomer when every connection slot was taken: a steady rise means connections are opened and left idle (a flood, or clients that connect and wait).",
	}, func() float64 { return float64(s.evicted.Load()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "countersign_proxy_auth_failures_total",
		Help: "Proxy requests with wrong credentials (a wrong password or an unknown client name): a rise means someone is guessing, or a client has an old password.",
	}, func() float64 { return float64(s.auth.failures.Load()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "countersign_proxy_auth_throttled_total",
		Help: "Proxy requests refused (429) without their password being checked, because their source address had failed too often as that client.",
	}, func() float64 { return float64(s.auth.throttled.Load()) }))
}

// openTunnels counts the hijacked client connections.
func (s *Server) openTunnels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tunnelSet)
}

// Auditor wraps a: every record still goes to a, and is counted on the way.
func (m *Metrics) Auditor(a Auditor) Auditor {
	if m == nil {
		return a
	}
	return &meteredAuditor{a: a, m: m}
}

type meteredAuditor struct {
	a Auditor
	m *Metrics
}

func (ma *meteredAuditor) Record(ev *audit.Event) error {
	start := time.Now()
	err := ma.a.Record(ev)
	ma.m.observe(ev, err, ma.m.auditSync, time.Since(start))
	return err
}

func (ma *meteredAuditor) RecordAsync(ev *audit.Event) error {
	start := time.Now()
	err := ma.a.RecordAsync(ev)
	ma.m.observe(ev, err, ma.m.auditAsyn, time.Since(start))
	return err
}

func (ma *meteredAuditor) RecordDeferred(ev *audit.Event) error {
	start := time.Now()
	err := ma.a.RecordDeferred(ev)
	ma.m.observe(ev, err, ma.m.auditAsyn, time.Since(start))
	return err
}

func (m *Metrics) observe(ev *audit.Event, err error, write prometheus.Observer, took time.Duration) {
	write.Observe(took.Seconds())
	if err != nil {
		m.auditErrs.Inc()
		return
	}
	switch ev.Type {
	case "decision":
		provider, _ := ev.Action["provider"].(string)
		if provider == "" {
			provider = "none"
		}
		m.decisions.WithLabelValues(ev.Decision, provider).Inc()
		if ev.PolicyRevision != "" {
			m.evalSecs.Observe(float64(ev.EvalMicros) / 1e6)
		}
	case "forward":
		if ev.Error != "" {
			m.upErrors.Inc()
		}
	}
}
