package proxy

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/countersign/countersign/audit"
)

// scrape returns the metric samples served by m, keyed by
// `name{labels}` as written in the text format.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	out := map[string]float64{}
	line := regexp.MustCompile(`^([a-z_]+(?:\{[^}]*\})?) (\S+)$`)
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if mm := line.FindStringSubmatch(l); mm != nil {
			v, err := strconv.ParseFloat(mm[2], 64)
			if err != nil {
				t.Fatalf("bad sample %q", l)
			}
			out[mm[1]] = v
		}
	}
	return out
}

func TestMetricsCountWhatTheAuditLogRecords(t *testing.T) {
	m := NewMetrics()
	h := newHarness(t, harnessOptions{policy: denyDeletes, auditor: func(l *audit.Log) Auditor { return m.Auditor(l) }})
	m.WatchServer(h.srv)
	m.Gauge("countersign_requests_held", "held", func() float64 { return float64(h.broker.Held()) })

	h.do("GET", "https://api.github.com/repos/acme/shop", "")
	h.do("GET", "https://api.github.com/repos/acme/shop", "")
	h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	// Not forwarded: the guard refuses the address after the policy allowed it.
	h.srv.tunnelDialer.resolve["blocked.test:443"] = "10.0.0.1"
	h.do("GET", "https://blocked.test/", "")

	got := scrape(t, m)
	want := map[string]float64{
		`countersign_decisions_total{provider="http",verdict="allow"}`: 3,
		`countersign_decisions_total{provider="http",verdict="deny"}`:  1,
		`countersign_upstream_errors_total`:                            1,
		`countersign_policy_eval_seconds_count`:                        4,
		`countersign_audit_write_errors_total`:                         0,
		`countersign_requests_held`:                                    0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`countersign_audit_write_seconds_count{mode="sync"}`] < 4 {
		t.Errorf("audit_write_seconds{mode=sync} count = %v, want at least the 4 decisions", got[`countersign_audit_write_seconds_count{mode="sync"}`])
	}
	for _, name := range []string{"countersign_proxy_tunnels_open", "countersign_proxy_unauthenticated_closed_total"} {
		if _, ok := got[name]; !ok {
			t.Error(name + " missing")
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("go runtime metrics missing")
	}
	// Every decision counted is one in the log.
	if n := len(h.decisions()); n != 4 {
		t.Errorf("%d decision records, want 4", n)
	}
}

func TestMetricsCountAuditFailures(t *testing.T) {
	m := NewMetrics()
	fa := &failingAudit{failing: true}
	h := newHarness(t, harnessOptions{auditor: func(l *audit.Log) Auditor { fa.log = l; return m.Auditor(fa) }})
	resp, _ := h.do("GET", "https://api.github.com/", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	got := scrape(t, m)
	if got["countersign_audit_write_errors_total"] < 1 {
		t.Errorf("audit_write_errors_total = %v, want at least 1", got["countersign_audit_write_errors_total"])
	}
	if got[`countersign_decisions_total{provider="http",verdict="allow"}`] != 0 {
		t.Error("a decision that was never recorded was counted")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	fa := &failingAudit{}
	if m.Auditor(fa) != Auditor(fa) {
		t.Error("nil Metrics must return the auditor unchanged")
	}
	m.Gauge("x", "y", func() float64 { return 1 })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler answered %d", rec.Code)
	}
}
