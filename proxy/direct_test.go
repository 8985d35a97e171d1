package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is an upstream that answers each connection with a function of
// the test's, and counts connections.
type scripted struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
}

// newScripted serves every accepted connection with serve(conn, br, n),
// n counting connections from 1.
func newScripted(t *testing.T, serve func(c net.Conn, br *bufio.Reader, n int32)) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c, bufio.NewReader(c), n)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// readRequest reads one request and its body.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

func testDirect(t *testing.T) *directTransport {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{},
		ResponseHeaderTimeout: 5 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		IdleConnTimeout:       time.Minute,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
	}
	d := newDirectTransport(tr)
	// Before the upstream's cleanup, which waits for its connections.
	t.Cleanup(d.CloseIdleConnections)
	return d
}

func directRequest(t *testing.T, ctx context.Context, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["User-Agent"] = []string{""}
	return req
}

// roundTrip sends and reads the whole answer.
func roundTrip(t *testing.T, d *directTransport, req *http.Request, body string) (int, string, error) {
	t.Helper()
	resp, err := d.RoundTrip(req, []byte(body))
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}

const keepAliveOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// Requests in sequence share one connection, whatever the framing of the
// answers before them.
func TestDirectReusesConnections(t *testing.T) {
	answers := []string{
		keepAliveOK,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", // to a HEAD: no body follows
		keepAliveOK,
	}
	methods := []string{"GET", "POST", "DELETE", "GET", "HEAD", "PUT"}
	var seen []string
	var mu sync.Mutex
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		for i := 0; ; i++ {
			req, body, err := readRequest(br)
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, req.Method+" "+req.URL.Path+" "+string(body)+" ua="+req.Header.Get("User-Agent"))
			mu.Unlock()
			if _, err := io.WriteString(c, answers[i%len(answers)]); err != nil {
				return
			}
		}
	})
	d := testDirect(t)
	for i, m := range methods {
		body := ""
		if m == "POST" || m == "PUT" {
			body = "payload"
		}
		status, got, err := roundTrip(t, d, directRequest(t, t.Context(), m, "http://"+up.ln.Addr().String()+"/r"), body)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		want := map[int]string{2: "", 4: ""}[i]
		if _, ok := map[int]string{2: "", 4: ""}[i]; !ok {
			want = "ok"
		}
		if got != want || (i != 2 && status != 200) || (i == 2 && status != 204) {
			t.Errorf("%s: %d %q", m, status, got)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for %d requests in sequence, want 1", n, len(methods))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(methods) || seen[1] != "POST /r payload ua=" {
		t.Errorf("upstream saw %q", seen)
	}
}

// A kept connection the upstream closed while it idled is not used: the
// next request, of any method, goes on a new one and is sent once.
func TestDirectSkipsConnectionsClosedWhileIdle(t *testing.T) {
	closed := make(chan struct{}, 4)
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, keepAliveOK)
		c.Close() // without saying so
		closed <- struct{}{}
	})
	d := testDirect(t)
	for _, m := range []string{"GET", "POST", "DELETE"} {
		if _, _, err := roundTrip(t, d, directRequest(t, t.Context(), m, "http://"+up.ln.Addr().String()+"/"), ""); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		<-closed
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per request, none sent on a closed one)", n)
	}
}

// A request the upstream took and then closed on without answering (its
// close raced the request) is sent again only if it may be sent twice.
func TestDirectResendsOnlyReplayableRequests(t *testing.T) {
	for _, tc := range []struct {
		method string
		header string
		body   string
		sends  int32 // times the upstream reads it
		ok     bool
	}{
		{method: "GET", sends: 2, ok: true},
		{method: "DELETE", sends: 1, ok: false},
		{method: "POST", sends: 1, ok: false},
		{method: "POST", header: "Idempotency-Key", sends: 2, ok: true},
		{method: "POST", header: "Idempotency-Key", body: "{}", sends: 1, ok: false},
		{method: "GET", body: "q", sends: 1, ok: false},
	} {
		var second atomic.Int32
		up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
			for i := 0; ; i++ {
				req, _, err := readRequest(br)
				if err != nil {
					return
				}
				if req.URL.Path == "/second" {
					second.Add(1)
					if n == 1 {
						return // took it, closes without an answer
					}
				}
				if _, err := io.WriteString(c, keepAliveOK); err != nil {
					return
				}
			}
		})
		d := testDirect(t)
		base := "http://" + up.ln.Addr().String()
		if _, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", base+"/first"), ""); err != nil {
			t.Fatal(err)
		}
		req := directRequest(t, t.Context(), tc.method, base+"/second")
		if tc.header != "" {
			req.Header.Set(tc.header, "k-1")
		}
		status, _, err := roundTrip(t, d, req, tc.body)
		if tc.ok != (err == nil && status == 200) || second.Load() != tc.sends {
			t.Errorf("%s %s %q: status %d, error %v, upstream read it %d times; want ok %v and %d", tc.method, tc.header, tc.body, status, err, second.Load(), tc.ok, tc.sends)
		}
	}
}

// An upstream that answers before taking the whole body (413, 401) and
// closes: its answer is what comes back, not a write error.
func TestDirectEarlyAnswer(t *testing.T) {
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
		// Close with unread data: the kernel resets the connection, and
		// the proxy's write of the rest fails.
		c.Close()
	})
	d := testDirect(t)
	body := strings.Repeat("x", 32<<20)
	status, got, err := roundTrip(t, d, directRequest(t, t.Context(), "PUT", "http://"+up.ln.Addr().String()+"/"), body)
	if err != nil || status != http.StatusRequestEntityTooLarge || got != "big" {
		t.Fatalf("status %d %q, error %v; want the upstream's 413", status, got, err)
	}
}

// A body the caller stops reading, or a request cancelled mid-answer,
// leaves its connection closed, never pooled with the rest of an answer on
// it.
func TestDirectUnfinishedAnswersAreNotPooled(t *testing.T) {
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		pending := false
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/big" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("y", 10))
				pending = true
				continue
			}
			if pending {
				// A request on a connection whose answer is unfinished
				// gets the rest of that answer first: what a pooled
				// connection would read as its next answer.
				_, _ = io.WriteString(c, strings.Repeat("y", 100))
			}
			_, _ = io.WriteString(c, keepAliveOK)
		}
	})
	d := testDirect(t)
	d.headerTimeout = 0
	base := "http://" + up.ln.Addr().String()

	resp, err := d.RoundTrip(directRequest(t, t.Context(), "GET", base+"/big"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil { // all that came
		t.Fatal(err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithCancel(t.Context())
	resp, err = d.RoundTrip(directRequest(t, ctx, "GET", base+"/big"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	if _, err := io.ReadAll(resp.Body); err == nil || time.Since(start) > 5*time.Second {
		// The rest never comes: only the cancellation ends the read
		// before the upstream's deadline (10 s).
		t.Fatalf("reading an answer after its request was cancelled: %v after %s", err, time.Since(start))
	}
	resp.Body.Close()

	// A POST, which nothing re-sends: a desynchronised connection would
	// show as an error here, not be hidden by a second try.
	if _, got, err := roundTrip(t, d, directRequest(t, t.Context(), "POST", base+"/small"), ""); err != nil || got != "ok" {
		t.Fatalf("after two unfinished answers: %q, %v", got, err)
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3: each unfinished answer's connection closed", n)
	}
}

// What the upstream must not do to a request that did not ask to switch
// protocols, and answers that are not HTTP, are errors.
func TestDirectRefusesWhatItCannotRelay(t *testing.T) {
	for name, answer := range map[string]string{
		"unasked 101":  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
		"not HTTP":     "SSH-2.0-OpenSSH_9.6\r\n",
		"too many 1xx": strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", max1xx+1) + keepAliveOK,
	} {
		up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, answer)
		})
		d := testDirect(t)
		if status, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", "http://"+up.ln.Addr().String()+"/"), ""); err == nil {
			t.Errorf("%s: status %d, want an error", name, status)
		}
	}
	d := testDirect(t)
	req := directRequest(t, t.Context(), "GET", "http://127.0.0.1:1/")
	req.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
	if _, err := d.RoundTrip(req, nil); err == nil || !strings.Contains(err.Error(), "invalid header field value") {
		t.Errorf("a header value with CRLF: %v", err)
	}
}

// Over TLS: the certificate is verified for the host, one handshake serves
// a run of requests, and a failed verification is the error.
func TestDirectTLS(t *testing.T) {
	var handshakes atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	d := testDirect(t)
	d.tlsConfig = func() *tls.Config { return srv.Client().Transport.(*http.Transport).TLSClientConfig }
	d.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	for range 5 {
		// httptest's certificate is for example.com.
		if _, got, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", "https://example.com:"+strconv.Itoa(port)+"/"), ""); err != nil || got != "ok" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("%d handshakes for 5 requests, want 1", n)
	}
	_, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", "https://wrong.test:"+strconv.Itoa(port)+"/"), "")
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("a certificate for another name: %v, want a verification error", err)
	}
}

// coalescing holds what TLS writes, once told to, until flush, so that two
// records leave in one TCP segment and the client's TLS layer reads both
// at once.
type coalescing struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *coalescing) Write(p []byte) (int, error) {
	if !c.hold {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *coalescing) flush() error {
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// An answer the upstream sends unasked, in a TLS record that arrives with
// the last one of the answer before it (a body after a 204), sits inside
// the client's TLS layer, where neither bufio nor a peek at the socket
// sees it. The connection must not be reused: the next request, from any
// session, would read it as its answer.
func TestDirectUnsolicitedBytesInsideTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	serverTLS := srv.TLS.Clone()
	serverTLS.NextProtos = nil
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		cc := &coalescing{Conn: c}
		tc := tls.Server(cc, serverTLS)
		if err := tc.Handshake(); err != nil {
			return
		}
		cc.hold = true // all written from here in the same goroutine
		tbr := bufio.NewReader(tc)
		for i := 0; ; i++ {
			if _, _, err := readRequest(tbr); err != nil {
				return
			}
			if n == 1 && i == 0 {
				_, _ = io.WriteString(tc, "HTTP/1.1 204 No Content\r\n\r\n")
				_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			} else {
				_, _ = io.WriteString(tc, keepAliveOK)
			}
			if err := cc.flush(); err != nil {
				return
			}
		}
	})
	d := testDirect(t)
	d.tlsConfig = func() *tls.Config { return srv.Client().Transport.(*http.Transport).TLSClientConfig }
	d.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, up.ln.Addr().String())
	}
	if status, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", "https://example.com/"), ""); err != nil || status != 204 {
		t.Fatalf("first: %d, %v", status, err)
	}
	status, got, err := roundTrip(t, d, directRequest(t, t.Context(), "POST", "https://example.com/"), "")
	if err != nil || got != "ok" {
		t.Fatalf("second request: %d %q, %v; want its own answer", status, got, err)
	}
	if n := up.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the first holds an unsolicited answer", n)
	}
}

// An upstream's header is bounded: an endless header line is an error,
// not the proxy's memory.
func TestDirectBoundsTheResponseHeader(t *testing.T) {
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: "); err != nil {
			return
		}
		chunk := strings.Repeat("a", 64<<10)
		for range 2 * maxResponseHeaderBytes / len(chunk) {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	})
	d := testDirect(t)
	_, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", "http://"+up.ln.Addr().String()+"/"), "")
	if !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("an endless header: %v, want errHeaderTooLarge", err)
	}
}

// A request whose client has already left is not sent, and one it leaves
// while waiting is reported as cancelled, not as an upstream timeout.
func TestDirectCancelled(t *testing.T) {
	got := make(chan string, 4)
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			got <- req.URL.Path
			if req.URL.Path == "/hang" {
				continue // never answered
			}
			_, _ = io.WriteString(c, keepAliveOK)
		}
	})
	d := testDirect(t)
	base := "http://" + up.ln.Addr().String()
	if _, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", base+"/first"), ""); err != nil {
		t.Fatal(err)
	}
	<-got
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.RoundTrip(directRequest(t, ctx, "DELETE", base+"/late"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("an already cancelled request: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() {
		<-got // the upstream has it
		cancel()
	}()
	// No header timeout: only the cancellation can end the wait before the
	// upstream's own deadline (10 s) closes the connection.
	d.headerTimeout = 0
	start := time.Now()
	_, err := d.RoundTrip(directRequest(t, ctx, "GET", base+"/hang"), nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("a request cancelled while waiting: %v after %s; want context.Canceled at once", err, time.Since(start))
	}
	if status, _ := upstreamFailure("h", err); status != http.StatusBadGateway {
		t.Errorf("a cancelled request maps to %d, want 502 (not a 504 timeout)", status)
	}
	d.CloseIdleConnections()
	up.ln.Close()
	up.wg.Wait()
	close(got)
	for p := range got {
		t.Errorf("the upstream also received %s", p)
	}
}

// A request that timed out waiting for its answer is not sent again, even
// a GET: the upstream may still be acting on it.
func TestDirectTimeoutIsNotRetried(t *testing.T) {
	var hangs atomic.Int32
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/hang" {
				hangs.Add(1)
				continue
			}
			_, _ = io.WriteString(c, keepAliveOK)
		}
	})
	d := testDirect(t)
	base := "http://" + up.ln.Addr().String()
	if _, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", base+"/first"), ""); err != nil {
		t.Fatal(err)
	}
	d.headerTimeout = 50 * time.Millisecond
	_, err := d.RoundTrip(directRequest(t, t.Context(), "GET", base+"/hang"), nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a request never answered: %v, want a timeout", err)
	}
	d.CloseIdleConnections()
	up.ln.Close()
	up.wg.Wait()
	if n := hangs.Load(); n != 1 {
		t.Errorf("the upstream received the timed-out GET %d times, want 1", n)
	}
}

// Which requests go direct: a small body and header; anything larger goes
// through http.Transport, which reads an early answer while it writes.
func TestDirectUsable(t *testing.T) {
	small := http.Header{"Accept": {"*/*"}}
	if !usable(small, make([]byte, maxDirectBody-100)) {
		t.Error("a body just under the bound is not sent directly")
	}
	if usable(small, make([]byte, maxDirectBody+1)) {
		t.Error("a body over the bound is sent directly")
	}
	if usable(http.Header{"Cookie": {strings.Repeat("c", maxDirectBody)}}, nil) {
		t.Error("a header over the bound is sent directly")
	}
}

// A failure after the request reached the upstream is not reported as
// "nothing was sent": the agent must not think it safe to send again.
func TestDirectFailureAfterSending(t *testing.T) {
	up := newScripted(t, func(c net.Conn, br *bufio.Reader, n int32) {
		for i := 0; ; i++ {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if i == 1 {
				return // took the POST, closes without an answer
			}
			_, _ = io.WriteString(c, keepAliveOK)
		}
	})
	d := testDirect(t)
	base := "http://" + up.ln.Addr().String()
	if _, _, err := roundTrip(t, d, directRequest(t, t.Context(), "GET", base+"/"), ""); err != nil {
		t.Fatal(err)
	}
	_, err := d.RoundTrip(directRequest(t, t.Context(), "POST", base+"/"), []byte("x=1"))
	var sent *sentError
	if !errors.As(err, &sent) {
		t.Fatalf("a POST the upstream took and dropped: %v, want a sentError", err)
	}
	if status, msg := upstreamFailure("api.test", err); status != http.StatusBadGateway || !strings.Contains(msg, "may have received it") {
		t.Errorf("reported as %d %q", status, msg)
	}
}
