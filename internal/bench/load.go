package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchHost is the name the load generator asks for; countersign and the
// baseline send it to the local upstream (upstream.resolve), the direct
// client dials the upstream itself. It is one of the company's hosts of the
// egress-allowlist example, so that the example policies allow GETs and
// POSTs to it, as does the built-in policy.
const benchHost = "bench.acme.example"

// target is one way of reaching the upstream: directly or through a proxy.
type target struct {
	name string
	// base is the URL prefix of every request ("https://bench.example.test").
	base  string
	proxy *url.URL // nil: direct
	roots *x509.CertPool
	// dial, for the direct target, is the upstream's address.
	dial string
	proc *proc // nil for direct
	up   *upstream
}

// client returns an HTTP/1.1 client with up to conc connections, kept alive
// or one request per connection.
func (t *target) client(conc int, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: t.roots},
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		IdleConnTimeout:     10 * time.Minute,
		DisableCompression:  true,
		DisableKeepAlives:   !keepAlive,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if t.proxy != nil {
		tr.Proxy = http.ProxyURL(t.proxy)
	} else {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.dial)
		}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// op is one request; it returns the payload bytes moved.
type op func(ctx context.Context, c *http.Client, base string) (int64, error)

func getSmall(ctx context.Context, c *http.Client, base string) (int64, error) {
	return do(ctx, c, http.MethodGet, base+"/bench", nil, 0, "")
}

func download(n int64) op {
	return func(ctx context.Context, c *http.Client, base string) (int64, error) {
		return do(ctx, c, http.MethodGet, fmt.Sprintf("%s/download?n=%d", base, n), nil, 0, "")
	}
}

// upload posts n bytes of binary data, or of text when text is set.
func upload(n int64, text bool) op {
	data, ctype := binaryFiller, "application/octet-stream"
	if text {
		data, ctype = textFiller, "text/plain; charset=utf-8"
	}
	return func(ctx context.Context, c *http.Client, base string) (int64, error) {
		if _, err := do(ctx, c, http.MethodPost, base+"/upload", io.LimitReader(repeatReader{data}, n), n, ctype); err != nil {
			return 0, err
		}
		return n, nil
	}
}

func do(ctx context.Context, c *http.Client, method, u string, body io.Reader, size int64, ctype string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("status %s: %s", resp.Status, firstLine(resp.Header.Get("X-Countersign-Decision")))
	}
	return n, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// sample is one measured window of one target.
type sample struct {
	n, errs  int64
	firstErr string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	bytes    int64
	cpu      time.Duration // the proxy process's CPU time in the window
	// selfCPU is this process's CPU time in the window: the load generator
	// and the upstream.
	selfCPU    time.Duration
	handshakes int64 // upstream TLS handshakes in the window
}

func (s sample) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

// mbps is payload MiB/s.
func (s sample) mbps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.bytes) / (1 << 20) / s.elapsed.Seconds()
}

// cpuPerReq is the proxy's CPU microseconds per request; NaN for direct.
func (s sample) cpuPerReq() float64 {
	if s.n == 0 || s.cpu == 0 {
		return math.NaN()
	}
	return float64(s.cpu.Microseconds()) / float64(s.n)
}

// totalCPUPerReq is the CPU microseconds per request of every process
// involved: load generator, upstream and proxy. It does not depend on how
// much of a shared machine the run got.
func (s sample) totalCPUPerReq() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return float64((s.cpu + s.selfCPU).Microseconds()) / float64(s.n)
}

// pct is the p-quantile of the latencies (nearest rank).
func (s sample) pct(p float64) time.Duration {
	return percentile(s.lat, p)
}

func percentile[T ~int64](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// measure runs conc workers that repeat o against t for d, then lets the
// requests in flight at the deadline finish; every completed request counts,
// and the window (and the proxy's CPU time) runs until the last one ends.
func measure(t *target, c *http.Client, conc int, d time.Duration, o op) sample {
	var cpu0 time.Duration
	if t.proc != nil {
		cpu0, _ = t.proc.cpu()
	}
	hs0 := t.up.handshakes.Load()
	self0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	var (
		n, errs, moved atomic.Int64
		errOnce        sync.Once
		firstErr       string
		wg             sync.WaitGroup
	)
	lat := make([][]time.Duration, conc)
	ctx := context.Background()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				b, err := o(ctx, c, t.base)
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					// A refused connection would otherwise spin.
					time.Sleep(time.Millisecond)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				n.Add(1)
				moved.Add(b)
			}
		}()
	}
	wg.Wait()
	s := sample{n: n.Load(), errs: errs.Load(), firstErr: firstErr, elapsed: time.Since(start), bytes: moved.Load(),
		handshakes: t.up.handshakes.Load() - hs0, selfCPU: selfCPU() - self0}
	if t.proc != nil {
		cpu1, _ := t.proc.cpu()
		s.cpu = cpu1 - cpu0
	}
	s.lat = slices.Concat(lat...)
	slices.Sort(s.lat)
	return s
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tunnelConn is a raw intercepted connection: CONNECT, TLS through the
// proxy, then HTTP/1.1 written by hand.
type tunnelConn struct {
	tls *tls.Conn
	br  *bufio.Reader
}

// openTunnel dials proxyAddr, asks for a tunnel to host:443 and completes
// the TLS handshake with the proxy's leaf.
func openTunnel(ctx context.Context, proxyAddr, host string, roots *x509.CertPool) (*tunnelConn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	// Cancelling ctx interrupts the set-up, not the connection after it.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(raw, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", host, host); err != nil {
		raw.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(raw, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		raw.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		raw.Close()
		return nil, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	if br.Buffered() > 0 {
		raw.Close()
		return nil, errors.New("CONNECT: bytes after the response")
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	if !stop() {
		raw.Close()
		return nil, ctx.Err()
	}
	_ = raw.SetDeadline(time.Time{})
	return &tunnelConn{tls: tc, br: bufio.NewReaderSize(tc, 2048)}, nil
}

// send writes one GET request for path.
func (c *tunnelConn) send(host, path string) error {
	_, err := fmt.Fprintf(c.tls, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: countersign-bench\r\n\r\n", path, host)
	return err
}

// roundTrip sends GET path and reads the whole response.
func (c *tunnelConn) roundTrip(host, path string) error {
	if err := c.send(host, path); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (c *tunnelConn) close() { _ = c.tls.Close() }

// openMany calls open for 0…n-1 with conc workers and
// returns those that succeeded with the number of failures and the first
// error.
func openMany(n, conc int, open func(i int) (*tunnelConn, error)) ([]*tunnelConn, int, error) {
	var (
		mu       sync.Mutex
		conns    = make([]*tunnelConn, 0, n)
		failed   int
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := open(i)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, failed, firstErr
}

// lineCounter counts the occurrences of needle in the complete lines of
// a growing file.
type lineCounter struct {
	needle []byte
	off    int64
	rest   []byte
	count  int
}

func (lc *lineCounter) update(path string, readAt func(path string, off int64) ([]byte, error)) error {
	b, err := readAt(path, lc.off)
	if err != nil {
		return err
	}
	lc.off += int64(len(b))
	data := append(lc.rest, b...)
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		lc.rest = data
		return nil
	}
	lc.count += bytes.Count(data[:last+1], lc.needle)
	lc.rest = append([]byte(nil), data[last+1:]...)
	return nil
}
