package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/policy"
)

func mustHot(tb testing.TB) *hotData {
	tb.Helper()
	h, err := loadHot()
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// BenchmarkInput: building the policy input and its OPA document.
func BenchmarkInput(b *testing.B) { benchInput(b, mustHot(b)) }

// BenchmarkClassify: the provider chain, per provider's captures.
func BenchmarkClassify(b *testing.B) {
	h := mustHot(b)
	for _, p := range h.providers() {
		b.Run(p, func(b *testing.B) { benchClassify(b, h.requestsOf(p)) })
	}
}

// BenchmarkEval: policy evaluation over the corpus, with p50/p99/p99.9.
// uncached and cached evaluate the chosen policy (see choosePolicy: by
// default the example sets loaded together); set=NAME/… evaluate each
// example set on its own, as SPEC 11's "example policy set" reads.
func BenchmarkEval(b *testing.B) {
	if _, set := os.LookupEnv("GOGC"); !set {
		// As countersign runs (cmd/countersign: gcpace at 200 %, which a
		// heap this small never leaves): garbage collection is part of
		// what an evaluation's allocations cost, at the binary's pace.
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	h := mustHot(b)
	b.Logf("policy: %s, %d inputs", h.policyName, len(h.inputs))
	b.Run("uncached", func(b *testing.B) { benchEval(b, h, false) })
	b.Run("cached", func(b *testing.B) { benchEval(b, h, true) })
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, examplePolicies))
	if err != nil {
		b.Fatalf("list the example policy sets: %v", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		one := *h
		one.policy = policy.Source{Paths: []string{filepath.Join(root, examplePolicies, e.Name())}}
		one.policyName = e.Name()
		b.Run("set="+e.Name()+"/uncached", func(b *testing.B) { benchEval(b, &one, false) })
		b.Run("set="+e.Name()+"/cached", func(b *testing.B) { benchEval(b, &one, true) })
	}
}

// BenchmarkAuditRecord: encode, hash and append one decision record.
func BenchmarkAuditRecord(b *testing.B) { benchAudit(b, mustHot(b)) }

// BenchmarkLeaf: the leaf certificate of an intercepted connection.
func BenchmarkLeaf(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchLeaf(b, false) })
	b.Run("sign", func(b *testing.B) { benchLeaf(b, true) })
}

func TestCorpusCoversEveryProvider(t *testing.T) {
	h := mustHot(t)
	if len(h.corpus) < 100 {
		t.Errorf("corpus has %d requests, want at least 100", len(h.corpus))
	}
	got := map[string]bool{}
	for i, c := range h.corpus {
		got[c.provider] = true
		if h.inputs[i] == nil {
			t.Errorf("%s/%s: no input", c.provider, c.name)
		}
	}
	for _, p := range []string{"aws", "git", "github", "graphql", "http", "kubernetes", "mcp"} {
		if !got[p] {
			t.Errorf("corpus has no %s request", p)
		}
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		give []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{7}, 0.99, 7},
		{"median of four", []time.Duration{1, 2, 3, 4}, 0.5, 2},
		{"p99 of 100", seq(100), 0.99, 99},
		{"p99.9 of 1000", seq(1000), 0.999, 999},
		{"max", seq(10), 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.give, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.give, tt.p, got, tt.want)
			}
		})
	}
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i + 1)
	}
	return out
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	for i := range 1000 {
		h.add(time.Duration(i+1) * time.Microsecond) // 1 µs … 1 ms
	}
	h.add(time.Hour) // slower than the buckets
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 501*time.Microsecond + histBucket},
		{0.99, 991*time.Microsecond + histBucket},
		{1, time.Hour},
	}
	for _, tt := range tests {
		if got := h.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (count ersign) S 1 4242 4242 0 -1 4194560 1183 0 0 0 250 50 0 0 20 0 9 0 123 1234567 890 ...")
	cpu, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 300 * time.Second / time.Duration(clockTicks()); cpu != want {
		t.Errorf("parseStatCPU = %v, want %v", cpu, want)
	}
	status := []byte("Name:\tcountersign\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n")
	rss, hwm, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([2]int64{10 << 20, 20 << 20}, [2]int64{rss, hwm}); diff != "" {
		t.Errorf("parseStatusMemory (-want +got):\n%s", diff)
	}
	if _, _, err := parseStatusMemory([]byte("Name:\tx\n")); err == nil {
		t.Error("parseStatusMemory without VmRSS: no error")
	}
}

func TestLineCounter(t *testing.T) {
	chunks := []string{`{"detail":"requested"}` + "\n" + `{"detail":"req`, `uested"}` + "\n{}\n", `{"detail":"requested"}`}
	var got []int
	lc := &lineCounter{needle: []byte(`"detail":"requested"`)}
	i := 0
	read := func(string, int64) ([]byte, error) {
		b := []byte(chunks[i])
		i++
		return b, nil
	}
	for range chunks {
		if err := lc.update("audit.jsonl", read); err != nil {
			t.Fatal(err)
		}
		got = append(got, lc.count)
	}
	// The last line is not complete yet, so it is not counted.
	if diff := cmp.Diff([]int{1, 2, 2}, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestPerfReport(t *testing.T) {
	flat := `# Overhead  Symbol
#
    12.50%  [.] github.com/open-policy-agent/opa/v1/topdown.(*eval).evalStep
     7.50%  [.] github.com/open-policy-agent/opa/v1/topdown.evalTerm
     5.00%  [k] finish_task_switch.isra.0
     2.00%  [.] runtime.mallocgc
     1.00%  [.] aeshashbody
     0.50%  [.] __vdso_clock_gettime
`
	got := byPackage(parsePerf(flat), 10)
	want := []pkgShare{
		{"github.com/open-policy-agent/opa/v1/topdown", 20},
		{"kernel", 5},
		{"runtime", 2},
		{"assembly (aeshashbody)", 1},
		{"vdso (clock_gettime)", 0.5},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(pkgShare{})); diff != "" {
		t.Errorf("byPackage (-want +got):\n%s", diff)
	}
	cum := parsePerf("    45.60%     0.12%  [.] github.com/countersign/countersign/proxy.(*Server).handle\n")
	if diff := cmp.Diff([]perfEntry{{45.6, "github.com/countersign/countersign/proxy.(*Server).handle"}}, cum, cmp.AllowUnexported(perfEntry{})); diff != "" {
		t.Errorf("parsePerf --children (-want +got):\n%s", diff)
	}
}

func TestParseMetrics(t *testing.T) {
	text := []byte(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 16
go_memstats_stack_inuse_bytes 1.441792e+06
countersign_decisions_total{provider="aws",verdict="allow"} 3
`)
	m, err := parseMetrics(text, []string{"go_goroutines", "go_memstats_stack_inuse_bytes"})
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 16 || m["go_memstats_stack_inuse_bytes"] != 1441792 {
		t.Errorf("parseMetrics() = %v", m)
	}
	if _, err := parseMetrics(text, []string{"go_memstats_sys_bytes"}); err == nil {
		t.Error("parseMetrics() with a missing metric: no error")
	}
}
