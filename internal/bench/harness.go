package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/internal/testinfra"
)

// harness owns the upstream, the proxies and the results of one run.
type harness struct {
	cfg     config
	w       io.Writer
	outFile *os.File
	root    string
	tmp     string

	countersignBin, baselineBin, mitmdumpBin string

	caCert, caKey string
	csRoots       *x509.CertPool
	upCAFile      string
	up            *upstream
	policyPaths   []string
	policyName    string

	// The proxies that live through the comparison phases.
	bare, cs, csNoSync, mitm *proc
	targets                  map[string]*target
	clients                  map[string]*http.Client // kept-alive, -c connections

	mu    sync.Mutex
	procs []*proc

	res   results
	notes []string
}

// Target keys, in display order.
const (
	kDirect   = "direct"
	kBare     = "bare"
	kCS       = "cs"
	kCSNoSync = "cs-nofsync"
	kMitm     = "mitmdump"
)

var displayName = map[string]string{
	kDirect:   "direct (no proxy)",
	kBare:     "bare goproxy interception",
	kCS:       "countersign (audit fsync)",
	kCSNoSync: "countersign (audit no fsync)",
	kMitm:     "mitmdump",
}

type results struct {
	throughput map[string][]sample
	latency    map[string][]sample
	// evalMicros are eval_us of countersign's decision records during the
	// 1-connection windows (audit fsync instance).
	evalMicros []int64
	newconn    map[string][]sample
	download   map[string][]sample
	upload     map[string][]sample
	// uploadText is the 1 MiB upload with a text body, which the policy
	// input and the audit record carry.
	uploadText map[string][]sample
	streams    map[string]*streamResult
	idle       map[string]*idleResult
	held       *heldResult
	eval       *evalFigures
	evalErr    error
	profile    *profileSummary
}

func newHarness(cfg config) (*harness, error) {
	h := &harness{cfg: cfg, w: os.Stdout, targets: map[string]*target{}, clients: map[string]*http.Client{}}
	if cfg.out != "" {
		f, err := os.Create(cfg.out)
		if err != nil {
			return nil, err
		}
		h.outFile = f
		h.w = io.MultiWriter(os.Stdout, f)
	}
	var err error
	if h.root, err = moduleRoot(); err != nil {
		return nil, err
	}
	if h.tmp, err = os.MkdirTemp("", "countersign-bench-"); err != nil {
		return nil, err
	}
	// Enough descriptors for -held client connections here and in the
	// proxy, which inherits the limit.
	if got, err := raiseFileLimit(uint64(3*cfg.held + 8192)); err != nil || got < uint64(cfg.held+1024) {
		h.note("RLIMIT_NOFILE is %d (%v): the held-approvals test may run out of descriptors", got, err)
	}

	fmt.Fprintln(os.Stderr, "bench: building countersign and the baseline")
	h.countersignBin = cfg.countersign
	if h.countersignBin == "" {
		if h.countersignBin, err = build(h.root, h.tmp, "./cmd/countersign", "countersign"); err != nil {
			return nil, err
		}
	}
	h.baselineBin = cfg.baseline
	if h.baselineBin == "" {
		if h.baselineBin, err = build(h.root, h.tmp, "./internal/bench/baseline", "baseline"); err != nil {
			return nil, err
		}
	}
	if cfg.mitmdump != "off" {
		if p, err := exec.LookPath(cfg.mitmdump); err == nil {
			h.mitmdumpBin = p
		} else {
			h.note("MITMDUMP IS MISSING: the \"vs mitmdump\" row is skipped. Install Debian's mitmproxy (apt-get install mitmproxy; `make bench` does it as root)")
		}
	}

	h.policyPaths, h.policyName = choosePolicy(h.root, cfg.policy)

	// The interception CA shared by countersign and the baseline.
	h.caCert, h.caKey = filepath.Join(h.tmp, "ca.pem"), filepath.Join(h.tmp, "ca-key.pem")
	ca, _, err := mitm.LoadOrCreate(h.caCert, h.caKey, nil)
	if err != nil {
		return nil, err
	}
	h.csRoots = x509.NewCertPool()
	h.csRoots.AddCert(ca.Certificate())

	upCA, err := testinfra.NewCA()
	if err != nil {
		return nil, err
	}
	h.upCAFile = filepath.Join(h.tmp, "upstream-ca.pem")
	if err := os.WriteFile(h.upCAFile, upCA.CertPEM(), 0o600); err != nil {
		return nil, err
	}
	if h.up, err = startUpstream(upCA); err != nil {
		return nil, err
	}
	h.targets[kDirect] = &target{name: displayName[kDirect], base: "https://" + benchHost, roots: upCA.Pool(), dial: h.up.addr, up: h.up}
	return h, nil
}

func (h *harness) track(p *proc) *proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = append(h.procs, p)
	return p
}

// stop stops p and forgets it.
func (h *harness) stop(p *proc) {
	if p == nil {
		return
	}
	p.stop(40 * time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = slices.DeleteFunc(h.procs, func(q *proc) bool { return q == p })
}

func (h *harness) stopAll() {
	h.mu.Lock()
	ps := slices.Clone(h.procs)
	h.mu.Unlock()
	for _, p := range ps {
		h.stop(p)
	}
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
}

func (h *harness) close() {
	h.stopAll()
	if h.up != nil {
		h.up.close()
	}
	if h.tmp != "" {
		_ = os.RemoveAll(h.tmp)
	}
	if h.outFile != nil {
		_ = h.outFile.Close()
	}
}

// proxyTarget is a target reached through p, which intercepts with roots.
func (h *harness) proxyTarget(key string, p *proc, roots *x509.CertPool, base string) *target {
	t := &target{name: displayName[key], base: base, proxy: &url.URL{Scheme: "http", Host: p.addr}, roots: roots, proc: p, up: h.up}
	h.targets[key] = t
	return t
}

// startLongLived starts the proxies of the comparison phases.
func (h *harness) startLongLived() error {
	var err error
	if h.bare, err = h.startBaseline("baseline"); err != nil {
		return err
	}
	h.track(h.bare)
	h.proxyTarget(kBare, h.bare, h.csRoots, "https://"+benchHost)
	if h.cs, err = h.startCountersign(csOptions{name: "countersign", fsync: true, policies: h.policyPaths}); err != nil {
		if len(h.policyPaths) > 0 {
			return fmt.Errorf("%w\n(with policy %s; COUNTERSIGN_BENCH_POLICY=builtin make bench measures the built-in policy instead)", err, h.policyName)
		}
		return err
	}
	h.track(h.cs)
	h.proxyTarget(kCS, h.cs, h.csRoots, "https://"+benchHost)
	if h.csNoSync, err = h.startCountersign(csOptions{name: "countersign-nofsync", fsync: false, policies: h.policyPaths}); err != nil {
		return err
	}
	h.track(h.csNoSync)
	h.proxyTarget(kCSNoSync, h.csNoSync, h.csRoots, "https://"+benchHost)
	if h.mitmdumpBin != "" {
		p, err := h.startMitmdump()
		if err != nil {
			h.note("MITMDUMP DID NOT START, its row is skipped: %v", err)
		} else {
			h.mitm = h.track(p)
			pem, err := os.ReadFile(filepath.Join(p.dir, "mitmproxy-ca-cert.pem"))
			if err != nil {
				return err
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			// mitmdump resolves the name itself: ask for localhost.
			_, port, _ := strings.Cut(h.up.addr, ":")
			h.proxyTarget(kMitm, p, roots, "https://localhost:"+port)
		}
	}
	return nil
}

// present returns the keys of the targets that exist, in display order.
func (h *harness) present(keys ...string) []string {
	var out []string
	for _, k := range keys {
		if t, ok := h.targets[k]; ok && (t.proc == nil || t.proc.alive()) {
			out = append(out, k)
		}
	}
	return out
}

// roundsSpec is one interleaved comparison.
type roundsSpec struct {
	label     string
	keys      []string
	conc      int
	warm, dur time.Duration
	keepAlive bool
	op        op
	// before and after run around each measured window.
	before func(key string)
	after  func(key string, s sample)
	// perMiB prints MiB/s instead of requests/s.
	perMiB bool
}

// runRounds measures every target of spec in each round, rotating the
// order from round to round.
func (h *harness) runRounds(spec roundsSpec) map[string][]sample {
	clients := map[string]*http.Client{}
	for _, k := range spec.keys {
		clients[k] = h.targets[k].client(spec.conc, spec.keepAlive)
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	out := map[string][]sample{}
	reported := map[string]bool{}
	for r := range h.cfg.rounds {
		for i := range spec.keys {
			k := spec.keys[(i+r)%len(spec.keys)]
			t := h.targets[k]
			if t.proc != nil && !t.proc.alive() {
				h.note("%s exited during %s: %v\n%s", t.name, spec.label, t.proc.err, t.proc.out.String())
				continue
			}
			measure(t, clients[k], spec.conc, spec.warm, spec.op)
			if spec.before != nil {
				spec.before(k)
			}
			s := measure(t, clients[k], spec.conc, spec.dur, spec.op)
			if spec.after != nil {
				spec.after(k, s)
			}
			out[k] = append(out[k], s)
			rate := fmt.Sprintf("%9.0f req/s", s.rps())
			if spec.perMiB {
				rate = fmt.Sprintf("%9.1f MiB/s", s.mbps())
			}
			fmt.Fprintf(os.Stderr, "  %-10s round %d  %-30s %s  p50 %9s  p99 %9s  cpu %s  errors %d\n",
				spec.label, r+1, t.name, rate, fmtDur(s.pct(0.5)), fmtDur(s.pct(0.99)), fmtCPU(s.cpuPerReq()), s.errs)
			if s.errs > 0 && !reported[k] {
				reported[k] = true
				h.note("%s, %s: %d errors, first: %s", spec.label, t.name, s.errs, s.firstErr)
			}
		}
	}
	return out
}

// throughput is the main comparison: 1 KiB GETs over -c kept-alive
// connections.
func (h *harness) throughput() error {
	keys := h.present(kDirect, kBare, kCS, kCSNoSync, kMitm)
	fmt.Fprintf(os.Stderr, "bench: throughput, %d kept-alive connections\n", h.cfg.conc)
	h.res.throughput = h.runRounds(roundsSpec{label: "throughput", keys: keys, conc: h.cfg.conc,
		warm: h.cfg.warm, dur: h.cfg.dur, keepAlive: true, op: getSmall})
	return nil
}

// latency measures at one connection, and collects countersign's own
// evaluation times from its audit log for the same windows.
func (h *harness) latency() error {
	keys := h.present(kDirect, kBare, kCS, kCSNoSync)
	fmt.Fprintln(os.Stderr, "bench: latency, 1 connection")
	var off int64
	h.res.latency = h.runRounds(roundsSpec{label: "latency", keys: keys, conc: 1,
		warm: h.cfg.warm / 4, dur: h.cfg.latDur, keepAlive: true, op: getSmall,
		before: func(k string) {
			if k == kCS {
				if st, err := os.Stat(h.cs.audit); err == nil {
					off = st.Size()
				}
			}
		},
		after: func(k string, _ sample) {
			if k != kCS {
				return
			}
			us, err := evalMicros(h.cs.audit, off)
			if err != nil {
				h.note("read eval_us from %s: %v", h.cs.audit, err)
				return
			}
			h.res.evalMicros = append(h.res.evalMicros, us...)
		},
	})
	return nil
}

// evalMicros returns eval_us of the decision records after off.
func evalMicros(path string, off int64) ([]int64, error) {
	b, err := readFrom(path, off)
	if err != nil {
		return nil, err
	}
	var out []int64
	for line := range bytes.Lines(b) {
		if !bytes.Contains(line, []byte(`"event":"decision"`)) {
			continue
		}
		var rec struct {
			EvalUS int64 `json:"eval_us"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			continue // a record still being written
		}
		out = append(out, rec.EvalUS)
	}
	return out, nil
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// newConnections: one request per TLS connection, and the upstream
// handshakes the proxies make for them.
func (h *harness) newConnections() error {
	keys := h.present(kDirect, kBare, kCS)
	fmt.Fprintf(os.Stderr, "bench: new connections, one request each, %d at a time\n", h.cfg.conc)
	h.res.newconn = h.runRounds(roundsSpec{label: "newconn", keys: keys, conc: h.cfg.conc,
		warm: h.cfg.warm / 4, dur: h.cfg.newDur, keepAlive: false, op: getSmall})
	return nil
}

// transfers: 10 MiB downloads and 1 MiB uploads.
func (h *harness) transfers() error {
	keys := h.present(kDirect, kBare, kCS)
	fmt.Fprintf(os.Stderr, "bench: 10 MiB downloads and 1 MiB uploads, %d connections\n", h.cfg.xferConc)
	h.res.download = h.runRounds(roundsSpec{label: "download", keys: keys, conc: h.cfg.xferConc,
		warm: h.cfg.warm / 4, dur: h.cfg.xferDur, keepAlive: true, op: download(10 << 20), perMiB: true})
	h.res.upload = h.runRounds(roundsSpec{label: "upload", keys: keys, conc: h.cfg.xferConc,
		warm: h.cfg.warm / 4, dur: h.cfg.xferDur, keepAlive: true, op: upload(1<<20, false), perMiB: true})
	h.res.uploadText = h.runRounds(roundsSpec{label: "upload-txt", keys: keys, conc: h.cfg.xferConc,
		warm: h.cfg.warm / 4, dur: h.cfg.xferDur, keepAlive: true, op: upload(1<<20, true), perMiB: true})
	return nil
}

// streamResult is one proxy's 1 GiB download and upload.
type streamResult struct {
	size                 int64
	downRate, upRate     float64 // MiB/s
	rssBefore            int64
	hwmDown, hwmUp       int64
	downErr, upErr       error
	downElapsed, upElaps time.Duration
}

// streams moves -stream-mib down and then up through fresh proxies and
// reads their peak RSS.
func (h *harness) streams() error {
	fmt.Fprintf(os.Stderr, "bench: %d MiB download and upload through fresh proxies\n", h.cfg.streamSize>>20)
	h.res.streams = map[string]*streamResult{}
	for _, k := range []string{kBare, kCS} {
		p, t, err := h.fresh(k, "stream")
		if err != nil {
			return err
		}
		c := t.client(1, true)
		r := &streamResult{size: h.cfg.streamSize}
		if _, err := getSmall(context.Background(), c, t.base); err != nil {
			h.stop(p)
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
		r.rssBefore, _, _ = p.memory()
		start := time.Now()
		_, r.downErr = download(h.cfg.streamSize)(context.Background(), c, t.base)
		r.downElapsed = time.Since(start)
		r.downRate = float64(h.cfg.streamSize) / (1 << 20) / r.downElapsed.Seconds()
		_, r.hwmDown, _ = p.memory()
		start = time.Now()
		_, r.upErr = upload(h.cfg.streamSize, false)(context.Background(), c, t.base)
		r.upElaps = time.Since(start)
		r.upRate = float64(h.cfg.streamSize) / (1 << 20) / r.upElaps.Seconds()
		_, r.hwmUp, _ = p.memory()
		c.CloseIdleConnections()
		h.stop(p)
		fmt.Fprintf(os.Stderr, "  stream     %-30s down %7.1f MiB/s  up %7.1f MiB/s  RSS %s → peak %s / %s  (errors: %v, %v)\n",
			t.name, r.downRate, r.upRate, fmtBytes(r.rssBefore), fmtBytes(r.hwmDown), fmtBytes(r.hwmUp), r.downErr, r.upErr)
		if r.downErr != nil || r.upErr != nil {
			h.note("stream through %s: download %v, upload %v", t.name, r.downErr, r.upErr)
		}
		h.res.streams[k] = r
	}
	return nil
}

// fresh starts a new process of kind k (bare or countersign with fsync) for
// a memory measurement.
func (h *harness) fresh(k, phase string) (*proc, *target, error) {
	var p *proc
	var err error
	switch k {
	case kBare:
		p, err = h.startBaseline("baseline-" + phase)
	case kCS:
		p, err = h.startCountersign(csOptions{name: "countersign-" + phase, fsync: true, policies: h.policyPaths})
	default:
		return nil, nil, fmt.Errorf("no fresh %s", k)
	}
	if err != nil {
		return nil, nil, err
	}
	h.track(p)
	t := &target{name: displayName[k], base: "https://" + benchHost, proxy: &url.URL{Scheme: "http", Host: p.addr}, roots: h.csRoots, proc: p, up: h.up}
	return p, t, nil
}

// idleResult is the memory of n idle intercepted connections.
type idleResult struct {
	n, failed         int
	before, after     int64
	perConn           float64
	firstErr          error
	upstreamHandshake int64
}

// idleMemory opens -idle intercepted connections through fresh proxies,
// one request each, leaves them idle and reads the RSS they added.
func (h *harness) idleMemory() error {
	fmt.Fprintf(os.Stderr, "bench: %d idle intercepted connections through fresh proxies\n", h.cfg.idle)
	h.res.idle = map[string]*idleResult{}
	for _, k := range []string{kBare, kCS} {
		p, t, err := h.fresh(k, "idle")
		if err != nil {
			return err
		}
		open := func() (*tunnelConn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := openTunnel(ctx, p.addr, benchHost, h.csRoots)
			if err != nil {
				return nil, err
			}
			if err := c.roundTrip(benchHost, "/bench"); err != nil {
				c.close()
				return nil, err
			}
			return c, nil
		}
		// Warm: leaf cached, policy compiled, an upstream connection.
		c, err := open()
		if err != nil {
			h.stop(p)
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
		c.close()
		time.Sleep(time.Second)
		r := &idleResult{}
		r.before, _, _ = p.memory()
		hs0 := h.up.handshakes.Load()
		conns, failed, firstErr := openMany(h.cfg.idle, 50, func(int) (*tunnelConn, error) { return open() })
		r.upstreamHandshake = h.up.handshakes.Load() - hs0
		// Let the connections settle into their idle state.
		time.Sleep(2 * time.Second)
		r.after, _, _ = p.memory()
		r.n, r.failed, r.firstErr = len(conns), failed, firstErr
		if r.n > 0 {
			r.perConn = float64(r.after-r.before) / float64(r.n)
		}
		for _, c := range conns {
			c.close()
		}
		h.stop(p)
		fmt.Fprintf(os.Stderr, "  idle       %-30s %d connections (%d failed): RSS %s → %s, %.1f KiB each\n",
			t.name, r.n, r.failed, fmtBytes(r.before), fmtBytes(r.after), r.perConn/1024)
		if failed > 0 {
			h.note("idle connections through %s: %d failed, first: %v", t.name, failed, firstErr)
		}
		h.res.idle[k] = r
	}
	return nil
}

// heldResult is the held-approvals test.
type heldResult struct {
	want, reached, pendingAPI int
	failed                    int
	firstErr                  error
	rss, hwm, rssBefore       int64
	elapsed                   time.Duration
	stalled                   bool
	apiErr                    error
	// runtime is the Go runtime's own accounting with the requests held
	// (stacks, heap in use, everything mapped), from /metrics.
	runtime map[string]float64
	// rate is how many approvals a second were still being opened over
	// the last ten seconds of the wait.
	rate float64
}

// holdPolicy holds every request for a human, for ten minutes
// (approval.hold itself must stay under four: SigV4 signatures age).
const holdPolicy = `package countersign

approve contains {"msg": "bench: every request waits for a human", "hold": "10m"} if true
`

// heldApprovals opens -held connections, each with one request that the
// policy holds, waits until countersign has opened an approval for each,
// and reads its RSS.
func (h *harness) heldApprovals() error {
	fmt.Fprintf(os.Stderr, "bench: %d requests held for approval at once\n", h.cfg.held)
	polDir := filepath.Join(h.tmp, "hold-policy")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(polDir, "hold.rego"), []byte(holdPolicy), 0o600); err != nil {
		return err
	}
	// No fsync: the figure is memory, and 10,000 serial fsyncs under the
	// broker's lock would only make the wait longer.
	p, err := h.startCountersign(csOptions{name: "countersign-held", fsync: false, policies: []string{polDir}})
	if err != nil {
		return err
	}
	h.track(p)
	defer h.stop(p)
	r := &heldResult{want: h.cfg.held}
	h.res.held = r
	r.rssBefore, _, _ = p.memory()

	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.heldTimeout)
	defer cancel()
	lc := &lineCounter{needle: []byte(`"detail":"requested"`)}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		last, lastChange := 0, time.Now()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		type point struct {
			at time.Time
			n  int
		}
		var history []point
		defer func() {
			if len(history) > 1 {
				a, b := history[0], history[len(history)-1]
				r.rate = float64(b.n-a.n) / b.at.Sub(a.at).Seconds()
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := lc.update(p.audit, readFrom); err != nil && !errors.Is(err, os.ErrNotExist) {
				h.note("held: read %s: %v", p.audit, err)
			}
			history = append(history, point{time.Now(), lc.count})
			for len(history) > 1 && time.Since(history[0].at) > 10*time.Second {
				history = history[1:]
			}
			if lc.count >= h.cfg.held {
				return
			}
			if lc.count != last {
				last, lastChange = lc.count, time.Now()
			} else if last > 0 && time.Since(lastChange) > 20*time.Second {
				r.stalled = true
				cancel()
				return
			}
		}
	}()
	conns, failed, firstErr := openMany(h.cfg.held, 200, func(i int) (*tunnelConn, error) {
		c, err := openTunnel(ctx, p.addr, benchHost, h.csRoots)
		if err != nil {
			return nil, err
		}
		if err := c.send(benchHost, "/hold/"+strconv.Itoa(i)); err != nil {
			c.close()
			return nil, err
		}
		return c, nil
	})
	<-done
	r.elapsed = time.Since(start)
	r.reached, r.failed, r.firstErr = lc.count, failed, firstErr
	// Let the last approvals land before reading memory.
	time.Sleep(time.Second)
	r.rss, r.hwm, _ = p.memory()
	r.pendingAPI, r.apiErr = pendingApprovals(p)
	if m, err := runtimeMemory(p); err != nil {
		h.note("held: runtime memory from /metrics: %v", err)
	} else {
		r.runtime = m
	}
	fmt.Fprintf(os.Stderr, "  held       %d of %d approvals pending after %s (API says %d; %d connections failed; last 10 s: %.1f/s): RSS %s → %s, peak %s\n",
		r.reached, r.want, r.elapsed.Round(time.Second), r.pendingAPI, r.failed, r.rate, fmtBytes(r.rssBefore), fmtBytes(r.rss), fmtBytes(r.hwm))
	if failed > 0 {
		h.note("held approvals: %d of %d connections failed, first: %v", failed, h.cfg.held, firstErr)
	}
	cancel()
	for _, c := range conns {
		c.close()
	}
	return nil
}

// pendingApprovals asks countersign's admin API how many approvals are
// pending.
func pendingApprovals(p *proc) (int, error) {
	tok, err := os.ReadFile(filepath.Join(p.dir, "admin-token"))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodGet, p.approvals+"/api/v1/approvals?pending=1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin API: %s", resp.Status)
	}
	var list []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, err
	}
	return len(list), nil
}

// memoryMetrics are the Go runtime figures that say where a process's
// memory is: goroutine stacks, live heap, heap spans in use, and all the
// runtime has mapped.
var memoryMetrics = []string{"go_memstats_stack_inuse_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines"}

// runtimeMemory reads memoryMetrics from countersign's /metrics.
func runtimeMemory(p *proc) (map[string]float64, error) {
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(p.approvals + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	return parseMetrics(b, memoryMetrics)
}

// parseMetrics picks the named unlabelled samples out of a Prometheus
// text exposition.
func parseMetrics(b []byte, names []string) (map[string]float64, error) {
	m := make(map[string]float64, len(names))
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		m[name] = f
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return nil, fmt.Errorf("metric %s missing", n)
		}
	}
	return m, nil
}

func (h *harness) evalBenchmarks() {
	fmt.Fprintln(os.Stderr, "bench: policy evaluation benchmark")
	f, err := runEvalBenchmarks(h.policyPaths, h.policyName)
	if err != nil {
		h.res.evalErr = err
		h.note("%v", err)
		return
	}
	h.res.eval = &f
}

// Formatting.

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func fmtCPU(us float64) string {
	if math.IsNaN(us) {
		return "      —"
	}
	return fmt.Sprintf("%6.1f µs/req", us)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

func numCPU() int { return runtime.NumCPU() }

// Statistics over rounds.

func median(xs []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf is the median over rounds of f.
func medianOf(ss []sample, f func(sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

// pairedRatio is the median over rounds of f(a)/f(b), round by round.
func pairedRatio(a, b []sample, f func(sample) float64) float64 {
	n := min(len(a), len(b))
	xs := make([]float64, n)
	for i := range n {
		xs[i] = f(a[i]) / f(b[i])
	}
	return median(xs)
}

// pairedDiff is the median over rounds of f(a)-f(b).
func pairedDiff(a, b []sample, f func(sample) float64) float64 {
	n := min(len(a), len(b))
	xs := make([]float64, n)
	for i := range n {
		xs[i] = f(a[i]) - f(b[i])
	}
	return median(xs)
}
