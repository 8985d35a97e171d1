package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/aws"
	"github.com/countersign/countersign/action/git"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/action/graphql"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/golden"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// The Go benchmarks of the hot pieces of the request path (SPEC 11). Their
// bodies live here, outside _test.go, so that the harness can run the
// policy evaluation benchmark itself (testing.Benchmark) for its table;
// hot_test.go wraps them for `go test -bench`.
//
// Every benchmark cycles through the golden corpus: the requests real
// clients (aws, kubectl, gh, git, curl, an MCP SDK) sent, captured under
// action/*/testdata. A benchmark on one request would measure one branch
// of each classifier and, with the decision cache, nothing but a map lookup.

// corpusRequest is one captured client request.
type corpusRequest struct {
	provider string // the testdata directory it came from
	name     string
	req      *action.Request
}

// hotData is everything the benchmarks share, built once.
type hotData struct {
	corpus []corpusRequest
	// inputs[i] is the policy input of corpus[i], classified by the same
	// provider chain as countersign.
	inputs  []*policy.Input
	actions []action.Action
	policy  policy.Source
	// policyName says which policy set the evaluation benchmarks use.
	policyName string
}

var (
	hotOnce sync.Once
	hot     *hotData
	hotErr  error
)

// loadHot reads the corpus and picks the policy (see choosePolicy).
func loadHot() (*hotData, error) {
	hotOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			hotErr = err
			return
		}
		h := &hotData{}
		paths, name := choosePolicy(root, os.Getenv(policyEnv))
		h.policy, h.policyName = policy.Source{Builtin: true}, name
		if len(paths) > 0 {
			h.policy = policy.Source{Paths: paths}
		}
		h.corpus, err = loadCorpus(root)
		if err != nil {
			hotErr = err
			return
		}
		cls := newClassifier()
		for _, c := range h.corpus {
			a := cls.Classify(c.req)
			h.actions = append(h.actions, a)
			h.inputs = append(h.inputs, policy.NewInput(c.req, a, benchSession, benchNow))
		}
		hot = h
	})
	return hot, hotErr
}

// examplePolicies is the policy set SPEC 11 measures, relative to the
// module root.
const examplePolicies = "examples/policies"

// policyEnv chooses the policy for `go test -bench` and is the default of
// the harness's -policy flag: "builtin", or a directory.
const policyEnv = "COUNTERSIGN_BENCH_POLICY"

// choosePolicy resolves a -policy value: "builtin" is the built-in policy,
// a comma-separated list names directories (or files) loaded together, and
// "" means every example set under examplePolicies that combines with the
// others (all but incidents, which its README says to load on its own
// because its inventory overlaps theirs), or the built-in policy when there
// are none. No paths means the built-in policy.
func choosePolicy(root, flag string) (paths []string, name string) {
	switch {
	case flag == "builtin":
		return nil, "built-in default policy"
	case flag != "":
		return strings.Split(flag, ","), flag
	}
	entries, err := os.ReadDir(filepath.Join(root, examplePolicies))
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "incidents" {
			paths = append(paths, filepath.Join(root, examplePolicies, e.Name()))
			names = append(names, e.Name())
		}
	}
	if err != nil || len(paths) == 0 {
		return nil, "built-in default policy (" + examplePolicies + " has no policy sets)"
	}
	return paths, examplePolicies + "/{" + strings.Join(names, ",") + "}"
}

var (
	benchSession = &session.Info{ID: "s-bench", Name: "alice/claude", User: "alice", Command: "claude", Cwd: "/home/alice/shop",
		Labels: map[string]string{"team": "payments"}}
	benchNow = time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC)
)

// newClassifier is the provider chain of countersign run and serve
// (cmd/countersign newClassifier).
func newClassifier() *action.Classifier {
	return action.NewClassifier(aws.New(aws.Options{}), git.New(git.Options{}), mcp.New(mcp.Options{}),
		graphql.New(graphql.Options{}), github.New(github.Options{}), kubernetes.New(kubernetes.Options{}))
}

// loadCorpus parses every action/*/testdata/*.txt capture: a raw HTTP
// request, a "----------" line, the expected action. Captures net/http
// cannot parse (the strict reader's own corpus) are left out.
func loadCorpus(root string) ([]corpusRequest, error) {
	files, err := filepath.Glob(filepath.Join(root, "action", "*", "testdata", "*.txt"))
	if err != nil {
		return nil, err
	}
	var out []corpusRequest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		raw, _ := golden.Split(b)
		ar, err := golden.Request(raw, golden.Options{})
		if err != nil {
			continue // a capture cut short, or one net/http does not read
		}
		out = append(out, corpusRequest{
			provider: filepath.Base(filepath.Dir(filepath.Dir(f))),
			name:     strings.TrimSuffix(filepath.Base(f), ".txt"),
			req:      ar,
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no captures parsed under %s", filepath.Join(root, "action", "*", "testdata"))
	}
	// The plain request the harness sends, so that the http provider is in
	// the mix too.
	out = append(out, corpusRequest{provider: "http", name: "get-1k", req: &action.Request{
		Method: "GET", Scheme: "https", Host: benchHost, Port: 443, Path: "/bench", RawPath: "/bench",
		Query: map[string][]string{}, Header: http.Header{"User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"identity"}},
	}})
	return out, nil
}

// providers lists the corpus's provider directories in order.
func (h *hotData) providers() []string {
	var ps []string
	for _, c := range h.corpus {
		if !slices.Contains(ps, c.provider) {
			ps = append(ps, c.provider)
		}
	}
	slices.Sort(ps)
	return ps
}

func (h *hotData) requestsOf(provider string) []*action.Request {
	var rs []*action.Request
	for _, c := range h.corpus {
		if c.provider == provider {
			rs = append(rs, c.req)
		}
	}
	return rs
}

// benchInput measures building the policy input (redaction, body parsing
// and hashing) and turning it into the document OPA evaluates.
func benchInput(b *testing.B, h *hotData) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := h.corpus[i%len(h.corpus)]
		in := policy.NewInput(c.req, h.actions[i%len(h.actions)], benchSession, benchNow)
		_ = in.Map()
		i++
	}
}

// benchClassify measures the whole provider chain on one provider's
// captures.
func benchClassify(b *testing.B, reqs []*action.Request) {
	cls := newClassifier()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		cls.Classify(reqs[i%len(reqs)])
		i++
	}
}

// benchEval measures policy evaluation (Decide, which includes building the
// OPA document) over the corpus. Uncached, every evaluation runs OPA, as for
// a request shape the proxy has not seen; cached, the decision cache answers
// after the first pass. Besides ns/op it reports p50/p99/p99.9 of single
// evaluations from a histogram: SPEC 11 asks for the tail, not the mean.
func benchEval(b *testing.B, h *hotData, cached bool) {
	e, err := policy.New(context.Background(), policy.Options{Source: h.policy, NoCache: !cached, EvalTimeout: time.Minute}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, in := range h.inputs {
		if d := e.Decide(ctx, in); d.Err != nil {
			b.Fatalf("Decide: %v", d.Err)
		}
	}
	var hist histogram
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := h.inputs[i%len(h.inputs)]
		t0 := time.Now()
		e.Decide(ctx, in)
		hist.add(time.Since(t0))
		i++
	}
	b.ReportMetric(hist.quantile(0.50).Seconds()*1e6, "p50-µs")
	b.ReportMetric(hist.quantile(0.99).Seconds()*1e6, "p99-µs")
	b.ReportMetric(hist.quantile(0.999).Seconds()*1e6, "p99.9-µs")
}

// histogram has 100 ns buckets up to 10 ms, and keeps slower observations
// as they are: no allocation per observation but for those.
type histogram struct {
	counts [100_000]uint32
	slow   []time.Duration
	n      uint64
}

const histBucket = 100 * time.Nanosecond

func (h *histogram) add(d time.Duration) {
	h.n++
	i := int(d / histBucket)
	if i >= len(h.counts) {
		h.slow = append(h.slow, d)
		return
	}
	h.counts[max(i, 0)]++
}

// quantile returns the upper edge of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return time.Duration(i+1) * histBucket
		}
	}
	slow := slices.Sorted(slices.Values(h.slow))
	return slow[min(int(rank-seen)-1, len(slow)-1)]
}

// benchAudit measures encoding, hashing and appending decision records as
// serve writes them (with the policy input, for replay) to a file that
// discards what it is given: the cost of the chain, not of the disk.
func benchAudit(b *testing.B, h *hotData) {
	l, err := audit.Open(audit.Options{Path: "-", OpenFile: func(string) (audit.File, error) { return discardFile{}, nil }}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	events := make([]*audit.Event, len(h.inputs))
	for i, in := range h.inputs {
		r := h.corpus[i].req
		events[i] = &audit.Event{
			Type: "decision", RequestID: "r-0123456789ab",
			Session: &audit.SessionRef{ID: benchSession.ID, Name: benchSession.Name, User: benchSession.User, Command: benchSession.Command, Labels: benchSession.Labels},
			Request: &audit.RequestSummary{Method: r.Method, URL: "https://" + r.Host + r.RawPath, Host: r.Host, Port: r.Port,
				Headers: in.Request.Headers, BodySize: in.Request.BodySize, BodySHA256: in.Request.BodySHA256},
			Action: in.Action.Map(), Decision: "allow", PolicyRevision: "0123456789abcdef", EvalMicros: 12,
			Input: in.Map(),
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := l.Record(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// discardFile is an empty audit file that drops writes.
type discardFile struct{}

func (discardFile) Write(p []byte) (int, error)       { return len(p), nil }
func (discardFile) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (discardFile) Sync() error                       { return nil }
func (discardFile) Truncate(int64) error              { return nil }
func (discardFile) Stat() (fs.FileInfo, error)        { return emptyInfo{}, nil }
func (discardFile) Close() error                      { return nil }

type emptyInfo struct{}

func (emptyInfo) Name() string       { return "discard" }
func (emptyInfo) Size() int64        { return 0 }
func (emptyInfo) Mode() fs.FileMode  { return 0o600 }
func (emptyInfo) ModTime() time.Time { return time.Time{} }
func (emptyInfo) IsDir() bool        { return false }
func (emptyInfo) Sys() any           { return nil }

// benchLeaf measures the leaf certificate lookup of every intercepted
// connection: a cache hit for a known host, or signing a new leaf (miss).
func benchLeaf(b *testing.B, miss bool) {
	dir := b.TempDir()
	ca, _, err := mitm.LoadOrCreate(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), nil)
	if err != nil {
		b.Fatal(err)
	}
	iss := mitm.NewIssuer(ca, mitm.IssuerOptions{MaxEntries: 1 << 20})
	hosts := []string{"api.github.com", "ec2.us-east-1.amazonaws.com", "kubernetes.example.com", "api.anthropic.com"}
	for _, host := range hosts {
		if _, err := iss.Certificate(host); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		host := hosts[i%len(hosts)]
		if miss {
			host = fmt.Sprintf("h%d.bench.example.test", i)
		}
		if _, err := iss.Certificate(host); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// evalFigures runs the evaluation benchmark inside the harness.
type evalFigures struct {
	policyName           string
	nsPerOp              float64
	allocs               int64
	p50, p99, p999       float64 // µs
	cachedNs             float64
	cachedAllocs         int64
	cachedP99            float64
	inputNs              float64
	inputAllocs          int64
	samples, cachedSamps int
}

// runEvalBenchmarks measures the policy the harness gave countersign: the
// policy paths, or the built-in policy when there are none.
func runEvalBenchmarks(paths []string, policyName string) (evalFigures, error) {
	shared, err := loadHot()
	if err != nil {
		return evalFigures{}, err
	}
	h := *shared
	h.policy, h.policyName = policy.Source{Builtin: true}, policyName
	if len(paths) > 0 {
		h.policy = policy.Source{Paths: paths}
	}
	var failed bool
	guard := func(f func(b *testing.B)) func(b *testing.B) {
		return func(b *testing.B) {
			f(b)
			if b.Failed() {
				failed = true
			}
		}
	}
	un := testing.Benchmark(guard(func(b *testing.B) { benchEval(b, &h, false) }))
	ca := testing.Benchmark(guard(func(b *testing.B) { benchEval(b, &h, true) }))
	in := testing.Benchmark(guard(func(b *testing.B) { benchInput(b, &h) }))
	if failed || un.N == 0 || ca.N == 0 || in.N == 0 {
		return evalFigures{}, errors.New("the evaluation benchmark failed (run go test -bench Eval ./internal/bench/ for the message)")
	}
	return evalFigures{
		policyName: h.policyName,
		nsPerOp:    float64(un.T.Nanoseconds()) / float64(un.N), allocs: un.AllocsPerOp(),
		p50: un.Extra["p50-µs"], p99: un.Extra["p99-µs"], p999: un.Extra["p99.9-µs"],
		cachedNs: float64(ca.T.Nanoseconds()) / float64(ca.N), cachedAllocs: ca.AllocsPerOp(), cachedP99: ca.Extra["p99-µs"],
		inputNs: float64(in.T.Nanoseconds()) / float64(in.N), inputAllocs: in.AllocsPerOp(),
		samples: un.N, cachedSamps: ca.N,
	}, nil
}
