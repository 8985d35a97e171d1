// Command bench measures countersign's allow path against a direct
// connection and against bare goproxy interception, side by side in one run
// on loopback, and prints requests/s, p50/p99 latency and the ratios.
//
// Each round runs every target once, interleaved, so that noise on a shared
// machine hits them alike; the reported ratios are medians over rounds of
// the per-round ratios. Run it with `make bench`.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/proxy"
	"github.com/countersign/countersign/session"
)

const host = "bench.example.test"

func main() {
	conc := flag.Int("c", 50, "concurrent kept-alive connections")
	dur := flag.Duration("d", 3*time.Second, "measured duration per target per round")
	warm := flag.Duration("warmup", time.Second, "warm-up per target per round")
	rounds := flag.Int("rounds", 3, "interleaved rounds (≥ 3)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := run(*conc, *dur, *warm, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type target struct {
	name   string
	client *http.Client
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

func run(conc int, dur, warm time.Duration, rounds int) error {
	dir, err := os.MkdirTemp("", "countersign-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	upCA, err := testinfra.NewCA()
	if err != nil {
		return err
	}
	payload := strings.Repeat("x", 1024)
	up, err := testinfra.StartServer(upCA, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, payload)
	}))
	if err != nil {
		return err
	}
	defer up.Close()

	ca, _, err := mitm.LoadOrCreate(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), nil)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())

	// Bare goproxy interception: ECDSA CA, a certificate cache, a pool
	// sized for the load — the floor countersign is measured against.
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = discardLogger{}
	gp.CertStore = mitm.NewIssuer(ca, mitm.IssuerOptions{})
	tlsCert := ca.TLSCertificate()
	gp.OnRequest().HandleConnect(goproxy.FuncHttpsHandler(func(h string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&tlsCert)}, h
	}))
	gp.Tr = &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: upCA.Pool()},
		MaxIdleConnsPerHost: 256,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, up.Addr)
		},
	}
	// goproxy forwards the client's Connection header; keep upstream
	// connections alive as SPEC 11 notes a tuned baseline does.
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		r.Close = false
		return r, nil
	})
	gpAddr, stopGP, err := serveHTTP(gp)
	if err != nil {
		return err
	}
	defer stopGP()

	csAddr, stopCS, err := startCountersign(dir, ca, upCA, up.Addr, true)
	if err != nil {
		return err
	}
	defer stopCS()
	csNoSyncAddr, stopCSNoSync, err := startCountersign(filepath.Join(dir, "nosync"), ca, upCA, up.Addr, false)
	if err != nil {
		return err
	}
	defer stopCSNoSync()

	targets := []target{
		{"direct", client(conc, nil, upCA.Pool(), up.Addr)},
		{"goproxy (bare interception)", client(conc, &url.URL{Scheme: "http", Host: gpAddr}, roots, "")},
		{"countersign (allow, audit fsync)", client(conc, &url.URL{Scheme: "http", Host: csAddr, User: url.UserPassword("bench", "bench-password")}, roots, "")},
		{"countersign (allow, audit no fsync)", client(conc, &url.URL{Scheme: "http", Host: csNoSyncAddr, User: url.UserPassword("bench", "bench-password")}, roots, "")},
	}

	fmt.Printf("countersign bench: %d kept-alive connections, 1 KiB responses over HTTPS on loopback, %d rounds × %s (+%s warm-up), %s\n\n",
		conc, rounds, dur, warm, time.Now().Format(time.RFC3339))
	all := make([][]result, len(targets))
	for r := 0; r < rounds; r++ {
		for i, t := range targets {
			load(t.client, conc, warm)
			res := load(t.client, conc, dur)
			all[i] = append(all[i], res)
			fmt.Printf("round %d  %-36s %9.0f req/s  p50 %7s  p99 %7s  errors %d\n", r+1, t.name, res.rps, round(res.p50), round(res.p99), res.errors)
		}
	}

	fmt.Printf("\n%-36s %12s %10s %10s %14s %14s\n", "target (median over rounds)", "req/s", "p50", "p99", "vs goproxy", "vs direct")
	for i, t := range targets {
		rps := median(pick(all[i], func(r result) float64 { return r.rps }))
		p50 := time.Duration(median(pick(all[i], func(r result) float64 { return float64(r.p50) })))
		p99 := time.Duration(median(pick(all[i], func(r result) float64 { return float64(r.p99) })))
		vsGP := median(pairedRatios(all[i], all[1]))
		vsDirect := median(pairedRatios(all[i], all[0]))
		fmt.Printf("%-36s %12.0f %10s %10s %13.2fx %13.2fx\n", t.name, rps, round(p50), round(p99), vsGP, vsDirect)
	}
	fmt.Println("\nratios are medians of per-round throughput ratios (each round runs every target back to back)")
	return nil
}

func pick(rs []result, f func(result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func pairedRatios(a, b []result) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i].rps / b[i].rps
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// client makes conc kept-alive connections through proxyURL (nil: direct to
// addr).
func client(conc int, proxyURL *url.URL, roots *x509.CertPool, addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		DisableCompression:  true,
	}
	if proxyURL != nil {
		tr.Proxy = http.ProxyURL(proxyURL)
	} else {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// load runs conc workers against c for d and returns throughput and
// latency percentiles.
func load(c *http.Client, conc int, d time.Duration) result {
	var count, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := c.Get("https://" + host + "/bench")
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(start))
				count.Add(1)
			}
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	return result{rps: float64(count.Load()) / d.Seconds(), p50: pct(0.50), p99: pct(0.99), errors: errs.Load()}
}

func serveHTTP(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// startCountersign runs the real pipeline with the built-in default policy
// (GETs are allowed) and the audit log on.
func startCountersign(dir string, ca *mitm.CA, upCA *testinfra.CA, upAddr string, fsync bool) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	ctx := context.Background()
	engine, err := policy.New(ctx, policy.Options{Source: policy.Source{Builtin: true}}, nil)
	if err != nil {
		return "", nil, err
	}
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.jsonl"), Fsync: fsync}, nil)
	if err != nil {
		return "", nil, err
	}
	broker, err := approval.NewBroker(approval.Options{Store: approval.NewMemoryStore(), Auditor: log}, nil)
	if err != nil {
		return "", nil, err
	}
	sess := &session.Info{ID: "bench", Name: "bench"}
	srv, err := proxy.New(proxy.Options{
		Issuer:     mitm.NewIssuer(ca, mitm.IssuerOptions{}),
		Decider:    engine,
		Audit:      log,
		Approvals:  broker,
		Sessions:   session.NewRegistry(nil, session.Credential{Username: "bench", Password: "bench-password", Session: sess}),
		Classifier: action.NewClassifier(),
		RootCAs:    upCA.Pool(),
		Guard:      hostport.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Resolve:    map[string]string{host + ":443": upAddr},
	}, nil)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		broker.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = log.Close()
	}, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
