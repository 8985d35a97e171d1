package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/session"
)

// soakScale multiplies the sizes of the resource tests when
// COUNTERSIGN_SOAK is set (make soak); make test runs them at 1.
func soakScale(t *testing.T) int {
	v := os.Getenv("COUNTERSIGN_SOAK")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("COUNTERSIGN_SOAK=%q: want a positive integer scale", v)
	}
	return n
}

// shortTimeouts makes the deadlines short enough to watch them fire.
func shortTimeouts(o *Options) {
	o.HandshakeTimeout = 300 * time.Millisecond
	o.HeaderTimeout = 300 * time.Millisecond
	o.IdleTimeout = 500 * time.Millisecond
}

// waitClosed reads from c until the proxy closes it, failing if that takes
// longer than limit. Bytes the proxy sends first are returned.
func waitClosed(t *testing.T, c net.Conn, r io.Reader, limit time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(r)
	took := time.Since(start)
	if isTimeout(err) {
		t.Fatalf("the connection was still open after %v", limit)
	}
	return string(b), took
}

// trickle writes one byte of s every interval until s is used up or the
// write fails (the proxy closed the connection); it returns when done.
func trickle(w io.Writer, s string, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < len(s); i++ {
			if _, err := w.Write([]byte{s[i]}); err != nil {
				return
			}
			<-tick.C
		}
	}()
	return done
}

func TestSlowlorisOnTheProxyPort(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: shortTimeouts})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A head that would take 10s to arrive, one byte every 20ms: the head
	// deadline is absolute, so trickling does not extend it.
	head := "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nX-Slow: " + strings.Repeat("a", 500) + "\r\n\r\n"
	done := trickle(c, head, 20*time.Millisecond)
	_, took := waitClosed(t, c, c, 5*time.Second)
	<-done
	if took > 3*time.Second {
		t.Errorf("closed after %v; the header timeout is 300ms", took)
	}
	if n := h.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// A plain http:// request whose body stalls, or that is refused before
// its body comes, is closed at the idle timeout (found by review: net/http
// clears the connection's deadline once the head is read).
func TestSlowlorisPlainHTTPBody(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: shortTimeouts})
	auth := basic(h.sess.ID, h.password)
	for _, tt := range []struct{ name, head, want string }{
		{"body stalls", "POST http://example.test/upload HTTP/1.1\r\nHost: example.test\r\nProxy-Authorization: Basic %s\r\nContent-Length: 100\r\n\r\nonly ten b", ""},
		{"refused, body never comes", "POST http://example.test/upload HTTP/1.1\r\nHost: example.test\r\nProxy-Authorization: Basic %s\r\nContent-Length: 10\r\nX-HTTP-Method-Override: DELETE\r\n\r\n", "HTTP/1.1 400 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, tt.head, auth)
			got, took := waitClosed(t, c, c, 5*time.Second)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("answer %q, want %q first", got, tt.want)
			}
			if took > 3*time.Second {
				t.Errorf("closed after %v; the idle timeout is 500ms", took)
			}
		})
	}
	if n := h.up.Count("POST", ""); n != 0 {
		t.Errorf("upstream saw %d POSTs", n)
	}
}

// A plain http:// request held for a human outlasts the idle timeout: the
// body's deadline ends with the body, so net/http's watch for the client
// leaving does not cancel the held request.
func TestPlainHTTPHoldOutlastsTheIdleTimeout(t *testing.T) {
	const approvePosts = `package countersign

approve contains "posts need a human" if input.request.method == "POST"
`
	h := newHarness(t, harnessOptions{policy: approvePosts, hold: time.Minute, configure: shortTimeouts})
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://example.test/x", strings.NewReader("hello"))
		if err != nil {
			done <- result{err: err}
			return
		}
		resp, err := h.client().Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	rec := h.waitPending()
	// Three idle timeouts pass with the request still held.
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
		select {
		case r := <-done:
			t.Fatalf("the held request ended before a decision: %+v", r)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.status != http.StatusOK {
		t.Fatalf("after approval: %+v, want 200", r)
	}
	if n := h.up.Count("POST", "/x"); n != 1 {
		t.Errorf("upstream saw %d POSTs, want 1", n)
	}
}

func TestSlowlorisInsideATunnel(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: shortTimeouts})

	t.Run("TLS handshake never starts", func(t *testing.T) {
		before := len(h.records())
		c, br := h.tunnel("api.github.com:443")
		_, took := waitClosed(t, c, br, 5*time.Second)
		if took > 3*time.Second {
			t.Errorf("closed after %v; the handshake timeout is 300ms", took)
		}
		// The stalled handshake is audited as a refusal.
		found := false
		for _, r := range h.records()[before:] {
			if r.Decision == "deny" && len(r.Reasons) == 1 && strings.Contains(r.Reasons[0], "handshake in time") {
				found = true
			}
		}
		if !found {
			t.Error("no audit record for the stalled TLS handshake")
		}
	})

	t.Run("request head trickles", func(t *testing.T) {
		tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
		head := "GET /repos/acme/shop HTTP/1.1\r\nHost: api.github.com\r\nX-Slow: " + strings.Repeat("a", 500) + "\r\n\r\n"
		done := trickle(tc, head, 20*time.Millisecond)
		_, took := waitClosed(t, tc, br, 5*time.Second)
		<-done
		if took > 3*time.Second {
			t.Errorf("closed after %v; the header timeout is 300ms", took)
		}
	})

	t.Run("request body stalls", func(t *testing.T) {
		tc, br := h.tlsTunnel("example.test:443", "example.test")
		fmt.Fprint(tc, "POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100\r\n\r\nonly ten b")
		_, took := waitClosed(t, tc, br, 5*time.Second)
		if took > 3*time.Second {
			t.Errorf("closed after %v; the idle timeout is 500ms", took)
		}
	})

	t.Run("refused request's body never comes", func(t *testing.T) {
		// Found by review: the refusal drained the body first, with no
		// deadline, so no answer came and the connection stayed.
		tc, br := h.tlsTunnel("example.test:443", "example.test")
		fmt.Fprint(tc, "POST /x HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\nX-HTTP-Method-Override: DELETE\r\n\r\n")
		got, took := waitClosed(t, tc, br, 5*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Errorf("answer %q, want 400", got)
		}
		if took > 3*time.Second {
			t.Errorf("closed after %v; the idle timeout is 500ms", took)
		}
	})

	t.Run("kept-alive connection goes idle", func(t *testing.T) {
		tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
		fmt.Fprint(tc, "GET /repos/acme/shop HTTP/1.1\r\nHost: api.github.com\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		_, took := waitClosed(t, tc, br, 5*time.Second)
		if took > 3*time.Second {
			t.Errorf("idle connection closed after %v; the idle timeout is 500ms", took)
		}
	})

	t.Run("answer is never read", func(t *testing.T) {
		// 64 MiB of unknown length; the handler returns once a write
		// fails, that is once the proxy has let go of the exchange.
		stopped := make(chan struct{})
		ca, err := testinfra.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		up, err := testinfra.StartServer(ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(stopped)
			chunk := strings.Repeat("x", 64<<10)
			for range 1024 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer up.Close()
		hb := newHarness(t, harnessOptions{configure: func(o *Options) {
			shortTimeouts(o)
			o.RootCAs = ca.Pool()
			o.Resolve["big.test:443"] = up.Addr
		}})
		tc, br := hb.tlsTunnel("big.test:443", "big.test")
		fmt.Fprint(tc, "GET /big HTTP/1.1\r\nHost: big.test\r\n\r\n")
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the proxy still holds the answer 20 idle timeouts after the client stopped reading")
		}
		// What was in flight drains, then the connection is closed.
		_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, br)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the client connection is still open: %v", err)
		}
	})

	if n := h.up.Count("POST", ""); n != 0 {
		t.Errorf("upstream saw %d POSTs from stalled uploads", n)
	}
	// The proxy still serves.
	if resp, _ := h.do("GET", "https://api.github.com/repos/acme/shop", ""); resp.StatusCode != 200 {
		t.Fatalf("after the slow clients: %d", resp.StatusCode)
	}
}

// TestIdleConnectsAreCapped: authenticated connections hold at most
// maxBound of the MaxConns slots (the rest stay for connections that have
// not authenticated yet); past that, a CONNECT is refused with 503,
// audited, and once a tunnel closes the next one gets in.
func TestIdleConnectsAreCapped(t *testing.T) {
	const limit = 50
	idle := 1000 * soakScale(t)
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.MaxConns = limit
		o.MaxConnsPerSession = limit // one session here: the global cap is tested
		// Idle before the TLS handshake for as long as the test takes: the
		// cap, not the handshake deadline, is what frees slots here.
		o.HandshakeTimeout = 10 * time.Minute
	}})
	bound := h.srv.maxBound()
	if bound >= limit {
		t.Fatalf("maxBound %d leaves no slot for connections not yet authenticated", bound)
	}

	// Open many connections that each send a CONNECT and then sit idle
	// inside the tunnel. The first maxBound get their tunnel; the rest are
	// refused.
	auth := basic(h.sess.ID, h.password)
	connect := func() (net.Conn, int) {
		t.Helper()
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic %s\r\n\r\n", auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT: %v", err)
		}
		resp.Body.Close()
		return c, resp.StatusCode
	}
	var tunnels []net.Conn
	defer func() {
		for _, c := range tunnels {
			c.Close()
		}
	}()
	refused := 0
	for i := range idle {
		c, code := connect()
		switch {
		case code == http.StatusOK && i < bound:
			tunnels = append(tunnels, c)
		case code == http.StatusServiceUnavailable && i >= bound:
			refused++
			c.Close()
		default:
			c.Close()
			t.Fatalf("CONNECT %d: %d (maxBound %d)", i, code, bound)
		}
	}
	if n := h.srv.openTunnels(); n != bound {
		t.Errorf("%d tunnels open in the proxy, want the cap %d", n, bound)
	}
	if refused != idle-bound {
		t.Errorf("%d CONNECTs refused, want %d", refused, idle-bound)
	}
	audited := 0
	for _, r := range h.records() {
		if r.Type == "decision" && r.Decision == "deny" && slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "as many as it keeps") }) {
			audited++
		}
	}
	if audited != refused {
		t.Errorf("%d refusals audited, want %d", audited, refused)
	}
	// Closing a tunnel lets the next one in (bounded wait for the proxy
	// to see the close).
	tunnels[0].Close()
	tunnels = append(tunnels[1:], connectOnceFreed(t, connect, "the closed tunnel's slot never came back"))
}

// connectOnceFreed retries connect (bounded) until it gets 200: the proxy
// sees a closed connection a moment after the client closes it.
func connectOnceFreed(t *testing.T, connect func() (net.Conn, int), failure string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, code := connect()
		if code == http.StatusOK {
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal(failure)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpstreamFailures checks that upstream failures are answered
// 502 with nothing half-forwarded: a refused connection, a reset in the
// middle of the response body, and upstream TLS that does not verify
// (expired, wrong name, self-signed).
func TestUpstreamFailures(t *testing.T) {
	ca := newTestCA(t)
	good := ca.leaf(t, "good.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	expired := ca.leaf(t, "expired.test", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	wrongName := ca.leaf(t, "other.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	selfSigned := newTestCA(t).leaf(t, "selfsigned.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))

	hits := make(chan string, 16)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		if r.URL.Path == "/reset-request" {
			// Read the start of the request body, then reset the
			// connection while the proxy is still sending it.
			_, _ = io.ReadFull(r.Body, make([]byte, 10))
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				if tc, ok := c.(*tls.Conn); ok {
					if nc, ok := tc.NetConn().(*net.TCPConn); ok {
						_ = nc.SetLinger(0)
					}
				}
				c.Close()
			}
			return
		}
		if r.URL.Path == "/reset" {
			// Promise 1000 bytes, send 10, then reset the connection.
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				if tc, ok := c.(*tls.Conn); ok {
					if nc, ok := tc.NetConn().(*net.TCPConn); ok {
						_ = nc.SetLinger(0)
					}
				}
				c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	serve := func(cert tls.Certificate) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: handler, ErrorLog: discardLog(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	refusedAddr, release, err := testinfra.RefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	resolve := map[string]string{
		"good.test:443":       serve(good),
		"expired.test:443":    serve(expired),
		"wrongname.test:443":  serve(wrongName),
		"selfsigned.test:443": serve(selfSigned),
		"refused.test:443":    refusedAddr,
	}
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.RootCAs = ca.pool()
		o.Resolve = resolve
	}})

	tests := []struct {
		name, url string
		want      string // substring of the answer
	}{
		{"refused", "https://refused.test/", "could not reach refused.test"},
		{"expired", "https://expired.test/", "TLS certificate of expired.test could not be verified"},
		{"wrong name", "https://wrongname.test/", "TLS certificate of wrongname.test could not be verified"},
		{"self-signed", "https://selfsigned.test/", "TLS certificate of selfsigned.test could not be verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do("POST", tt.url, "payload")
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, tt.want) {
				t.Errorf("answer %d %q, want 502 naming %q", resp.StatusCode, body, tt.want)
			}
			var found bool
			id := resp.Header.Get("X-Countersign-Request")
			for _, r := range h.records() {
				if r.Type == "forward" && r.RequestID == id && r.Error != "" {
					found = true
				}
			}
			if !found {
				t.Errorf("no forward record with the error for request %s", id)
			}
		})
	}
	select {
	case p := <-hits:
		t.Fatalf("a handler ran (%s) behind a failed connection or handshake", p)
	default:
	}

	t.Run("reset while the request body is sent", func(t *testing.T) {
		resp, body := h.do("POST", "https://good.test/reset-request", strings.Repeat("x", 512<<10))
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, "countersign:") {
			t.Errorf("answer %d %q, want countersign's 502", resp.StatusCode, body)
		}
		id := resp.Header.Get("X-Countersign-Request")
		var allowed, failed bool
		for _, r := range h.records() {
			switch {
			case r.RequestID != id:
			case r.Type == "decision" && r.Decision == "allow":
				allowed = true
			case r.Type == "forward" && r.Error != "":
				failed = true
			}
		}
		if !allowed || !failed {
			t.Errorf("request %s: decision recorded %v, failed forward recorded %v; want both", id, allowed, failed)
		}
		if resp, _ := h.do("GET", "https://good.test/fine", ""); resp.StatusCode != 200 {
			t.Errorf("after the reset: %d", resp.StatusCode)
		}
	})
	t.Run("reset mid-body", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://good.test/reset", nil)
		resp, err := h.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("read a complete %d-byte response %q from an upstream that reset mid-body", len(b), b)
		}
		if len(b) > 10 {
			t.Errorf("got %d bytes, more than the upstream sent", len(b))
		}
		if resp, _ := h.do("GET", "https://good.test/fine", ""); resp.StatusCode != 200 {
			t.Errorf("after the reset: %d", resp.StatusCode)
		}
	})
}

// testCA issues certificates for TestUpstreamFailures.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "upstream failure test CA"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) leaf(t *testing.T, name string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// A plain-HTTP client that never reads its answer is cut off after the idle
// timeout, as inside a tunnel: goproxy writes plain answers with no
// deadline of its own (found by review).
func TestPlainAnswerNeverRead(t *testing.T) {
	stopped := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(stopped)
		chunk := strings.Repeat("x", 64<<10)
		for range 1024 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		shortTimeouts(o)
		o.Resolve["big.test:80"] = up.Listener.Addr().String()
	}})
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://big.test/big HTTP/1.1\r\nHost: big.test\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy still holds the plain answer 20 idle timeouts after the client stopped reading")
	}
	// The proxy still serves.
	if resp, _ := h.do("GET", "https://api.github.com/repos/acme/shop", ""); resp.StatusCode != 200 {
		t.Fatalf("after the stalled client: %d", resp.StatusCode)
	}
}

// An opaque tunnel whose client has gone, to a target that stays silent,
// ends after the idle timeout; Shutdown also closes the target's side
// (found by review: the relay waited on the target for ever).
func TestOpaqueTunnelEndsWhenOneSideHasGone(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never written
		}
	}()
	defer func() {
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	start := func(idle time.Duration) *harness {
		return newHarness(t, harnessOptions{policy: "package countersign\n\nallow if true\n", configure: func(o *Options) {
			shortTimeouts(o)
			o.IdleTimeout = idle
			o.MITM = []string{"api.github.com"}
			o.Resolve["quiet.test:443"] = silent.Addr().String()
		}})
	}
	tunnels := func(h *harness) int {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.tunnelSet)
	}

	h := start(500 * time.Millisecond)
	c, _ := h.tunnel("quiet.test:443")
	c.Close()
	waitFor(t, func() bool { return tunnels(h) == 0 })

	// A tunnel still open at shutdown, its client still there, and an idle
	// timeout longer than Shutdown's deadline.
	h = start(time.Hour)
	c, _ = h.tunnel("quiet.test:443")
	defer c.Close()
	waitFor(t, func() bool { return tunnels(h) == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return 8 s after its deadline")
	}
}

// One session cannot hold every connection slot: past its share
// (MaxConnsPerSession) its CONNECTs and plain requests are refused (503,
// audited), while another session still gets in; a closed connection
// gives its share back.
func TestConnectionsPerSessionAreCapped(t *testing.T) {
	other := &session.Info{ID: "s-other", Name: "bob/agent", User: "bob"}
	const otherPassword = "pw-other-zzzzzzzzzzzzzzzz"
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.MaxConns = 8
		o.MaxConnsPerSession = 3
		o.Sessions = session.NewRegistry(nil,
			session.Credential{Username: "s-test", Password: "pw-" + strings.Repeat("x", 20), Session: &session.Info{ID: "s-test"}},
			session.Credential{Username: other.ID, Password: otherPassword, Session: other})
	}})
	connect := func(user, password string) (net.Conn, int) {
		t.Helper()
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(user, password))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c, resp.StatusCode
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 3 {
		c, code := connect(h.sess.ID, h.password)
		if code != http.StatusOK {
			t.Fatalf("CONNECT %d within the share: %d", i, code)
		}
		open = append(open, c)
	}
	c, code := connect(h.sess.ID, h.password)
	c.Close()
	if code != http.StatusServiceUnavailable {
		t.Errorf("a fourth CONNECT of one session: %d, want 503", code)
	}
	// A plain request of that session is refused too.
	resp, body := h.plainVia(h.sess.ID, h.password, "http://example.test/plain")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "its share") {
		t.Errorf("a plain request past the share: %d %q, want 503", resp.StatusCode, body)
	}
	// Another session still gets in.
	c, code = connect(other.ID, otherPassword)
	c.Close()
	if code != http.StatusOK {
		t.Errorf("another session's CONNECT: %d, want 200", code)
	}
	refused := 0
	for _, r := range h.records() {
		if r.Type == "decision" && r.Decision == "deny" && slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "its share") }) {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d refusals audited, want 2", refused)
	}
	// Closing one gives its share back (bounded wait for the proxy to see
	// the close).
	open[0].Close()
	open = append(open[1:], connectOnceFreed(t, func() (net.Conn, int) { return connect(h.sess.ID, h.password) }, "the closed connection's share never came back"))
}

// plainVia sends a plain-HTTP GET through the proxy with the given
// credentials.
func (h *harness) plainVia(user, password, target string) (*http.Response, string) {
	h.t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: h.addr, User: url.UserPassword(user, password)})}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(target)
	if err != nil {
		h.t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestUnauthenticatedConnectionsMakeRoom: connections that never send a
// request take slots before authenticating, and without more would hold
// them until the header timeout, locking every client out. When the cap
// is reached, the oldest of them is closed for a newcomer; tunnels that
// authenticated keep theirs, and however many there are, they leave room
// for connections not yet authenticated.
func TestUnauthenticatedConnectionsMakeRoom(t *testing.T) {
	const limit = 12
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.MaxConns = limit
		o.MaxConnsPerSession = limit
		// Idle for as long as the test takes: no deadline frees slots here.
		o.HeaderTimeout = 10 * time.Minute
		o.HandshakeTimeout = 10 * time.Minute
		o.AuthGrace = 20 * time.Millisecond
	}})
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Authenticated tunnels, idle before their TLS handshake, in all the
	// slots they may hold but one (left for the client below).
	var tunnels []net.Conn
	for i := range h.srv.maxBound() - 1 {
		c := dial()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %d: %v %v", i, resp, err)
		}
		tunnels = append(tunnels, c)
	}
	// Then the rest of the slots and more, by connections that send
	// nothing. Each is accepted, closing an older one past the cap.
	var idle []net.Conn
	for range 3 * limit {
		idle = append(idle, dial())
	}
	// A client still gets through, many times over.
	for i := range 2 * limit {
		// Once the proxy has seen the last one's connection close: only
		// one slot is left for authenticated clients.
		waitFor(t, func() bool {
			h.srv.conns.mu.Lock()
			defer h.srv.conns.mu.Unlock()
			return h.srv.conns.total <= len(tunnels)
		})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.github.com/repos/acme/shop", nil)
		c := h.client()
		resp, err := c.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("request %d with every slot taken: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		cancel()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// The oldest idle connections were closed; the tunnels were not.
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}
	if !closed(idle[0]) {
		t.Error("the oldest unauthenticated connection is still open")
	}
	for i, c := range tunnels {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Errorf("authenticated tunnel %d was closed: %v", i, err)
		}
	}
	if n := h.srv.openTunnels(); n < len(tunnels) {
		t.Errorf("%d tunnels open, want at least %d", n, len(tunnels))
	}
	// All but those that fit beside the tunnels made room for another.
	if n, want := h.srv.evicted.Load(), int64(len(idle)-(limit-len(tunnels))); n < want {
		t.Errorf("%d connections counted as closed to make room, want at least %d", n, want)
	}
}

// TestEvictedBeforeBindGivesItsShareBack: a connection closed for a
// newcomer while its request was being authenticated must not keep a
// place in its session's share (found by review: it did, for the life of
// the process).
func TestEvictedBeforeBindGivesItsShareBack(t *testing.T) {
	s := &Server{opts: Options{MaxConns: 8, MaxConnsPerSession: 1, AuthGrace: time.Millisecond}, logger: zap.NewNop()}
	l := &strictListener{s: s, slots: make(chan struct{}, 1), done: make(chan struct{})}
	client, server := net.Pipe()
	defer client.Close()
	l.slots <- struct{}{}
	c := &strictConn{Conn: server, s: s, l: l, accepted: time.Now().Add(-time.Second)}
	c.unbound = l.unbound.PushBack(c)
	if l.evictOldest() != 0 {
		t.Fatal("the connection past its grace was not closed")
	}
	req := httptest.NewRequest(http.MethodConnect, "http://api.github.com:443/", nil)
	req = req.WithContext(context.WithValue(req.Context(), connKey{}, c))
	if err := s.bindSession(req, "s-a"); !errors.Is(err, errEvicted) {
		t.Errorf("bindSession of a closed connection = %v, want errEvicted", err)
	}
	c.Close()
	if err := s.conns.take("s-a", 1, 8); err != nil {
		t.Errorf("the session's share is still held: %v (%v)", err, s.conns.by)
	}
}
