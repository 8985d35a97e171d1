package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// directTransport sends a request whose body is all in memory over a pooled
// HTTP/1.1 connection, in the caller's goroutine.
//
// http.Transport runs two goroutines per connection and hands every request
// to them and its response back: three wake-ups per request, which on a busy
// proxy cost more CPU than the policy decision and, on an idle machine, tens
// of microseconds of latency each. countersign already holds a decided
// request's body in memory (SPEC 10: nothing is forwarded before the
// decision), so the writing and reading can happen right here. Requests
// that stream a body past the inspection limit, and upgrades, still go
// through http.Transport, which can read an early answer while it writes.
//
// It writes the request with http.Request.Write, the same code
// http.Transport writes it with, and reads the answer with
// http.ReadResponse, so what goes upstream and what comes back are framed
// the same either way.
type directTransport struct {
	dial             func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig        func() *tls.Config // read at each dial: the server sets hooks after construction
	headerTimeout    time.Duration      // from writing the request to the answer's header
	handshakeTimeout time.Duration
	idleTimeout      time.Duration
	maxIdlePerHost   int
	maxIdle          int

	mu     sync.Mutex
	idle   map[string][]*directConn // by scheme and host:port, most recent last
	nidle  int
	sweep  *time.Timer // closes connections idle past idleTimeout; nil when none wait
	closed bool        // CloseIdleConnections ran: connections are no longer kept
}

// directConn is one upstream connection with its buffers.
type directConn struct {
	key    string
	conn   net.Conn
	raw    syscall.RawConn // the socket under conn, for alive; nil if unknown
	br     *bufio.Reader
	bw     *bufio.Writer // onto out
	out    countingWriter
	idleAt time.Time
}

// countingWriter counts what the connection took: a request of which
// nothing was written can be sent again on another connection.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newDirectTransport(tr *http.Transport) *directTransport {
	return &directTransport{
		dial:             tr.DialContext,
		tlsConfig:        func() *tls.Config { return tr.TLSClientConfig },
		headerTimeout:    tr.ResponseHeaderTimeout,
		handshakeTimeout: tr.TLSHandshakeTimeout,
		idleTimeout:      tr.IdleConnTimeout,
		maxIdlePerHost:   tr.MaxIdleConnsPerHost,
		maxIdle:          tr.MaxIdleConns,
		idle:             map[string][]*directConn{},
	}
}

// errUnexpectedSwitch is an upstream switching protocols unasked.
var errUnexpectedSwitch = errors.New("the upstream switched protocols for a request that did not ask to")

// max1xx bounds the informational answers read before the final one, as
// http.Transport does.
const max1xx = 5

// RoundTrip sends req, whose body, if any, is body (req.Body is not read).
// The caller reads and closes the answer's body as with http.Transport.
func (t *directTransport) RoundTrip(req *http.Request, body []byte) (*http.Response, error) {
	if err := checkOutgoing(req); err != nil {
		return nil, err
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.get(req.Context(), key, req.URL.Hostname())
		if err != nil {
			return nil, err
		}
		resp, sent, err := t.send(pc, req, body)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		// A kept connection the upstream closed while it idled fails
		// before anything comes back; http.Transport tries such a request
		// again on a new connection when nothing of it was written, or
		// when it can be sent twice. So does this.
		if !reused || attempt > 0 || req.Context().Err() != nil || (sent && !replayable(req, body)) {
			return nil, err
		}
	}
}

// checkOutgoing refuses what http.Transport refuses to write.
func checkOutgoing(req *http.Request) error {
	if req.URL == nil || req.URL.Host == "" {
		return errors.New("http: no host in request URL")
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("unsupported protocol scheme %q", req.URL.Scheme)
	}
	if !httpguts.ValidHeaderFieldName(req.Method) { // a token, as a method must be
		return fmt.Errorf("net/http: invalid method %q", req.Method)
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return errors.New("http: invalid Host header")
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// replayable reports whether req may be sent twice, by http.Transport's
// rule for a body it cannot read again: no body, and a method without side
// effects or an idempotency key.
func replayable(req *http.Request, body []byte) bool {
	if len(body) > 0 {
		return false
	}
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, okX := req.Header["X-Idempotency-Key"]
	return ok || okX
}

// send writes req on pc and reads the answer's header. sent reports whether
// any of the request reached the connection. On error the caller closes
// pc.
func (t *directTransport) send(pc *directConn, req *http.Request, body []byte) (resp *http.Response, sent bool, err error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if t.headerTimeout > 0 {
		_ = pc.conn.SetDeadline(time.Now().Add(t.headerTimeout))
	} else {
		_ = pc.conn.SetDeadline(time.Time{})
	}
	pc.out.n = 0
	out := *req
	out.Body, out.GetBody = nil, nil
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	out.ContentLength = int64(len(body))
	if werr := out.Write(pc.bw); werr != nil {
		// The upstream may have answered and closed before taking the whole
		// body (413, 401): that answer is the one to give.
		if resp, rerr := t.readResponse(pc, req); rerr == nil {
			resp.Close = true
			return t.withBody(pc, resp, stop), true, nil
		}
		return nil, pc.out.n > 0, t.failed(ctx, werr)
	}
	if werr := pc.bw.Flush(); werr != nil {
		if resp, rerr := t.readResponse(pc, req); rerr == nil {
			resp.Close = true
			return t.withBody(pc, resp, stop), true, nil
		}
		return nil, pc.out.n > 0, t.failed(ctx, werr)
	}
	resp, err = t.readResponse(pc, req)
	if err != nil {
		return nil, true, t.failed(ctx, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return nil, true, errUnexpectedSwitch
	}
	// The body is read at the client's pace, as with http.Transport: no
	// deadline but the request's context.
	_ = pc.conn.SetDeadline(time.Time{})
	return t.withBody(pc, resp, stop), true, nil
}

// readResponse reads the final answer's header, skipping informational ones.
func (t *directTransport) readResponse(pc *directConn, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n >= max1xx {
			return nil, errors.New("net/http: too many 1xx informational responses")
		}
	}
}

// failed is err, or the context's error when that is why it failed.
func (t *directTransport) failed(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// withBody gives resp a body that returns pc to the pool once read to its
// end, and closes it if the caller stops before.
func (t *directTransport) withBody(pc *directConn, resp *http.Response, stop func() bool) *http.Response {
	keep := !resp.Close && !resp.Request.Close
	if resp.Body == http.NoBody {
		t.done(pc, keep, stop)
		return resp
	}
	resp.Body = &directBody{t: t, pc: pc, body: resp.Body, keep: keep, stop: stop}
	return resp
}

// done ends a request on pc: back to the pool if it may be kept.
func (t *directTransport) done(pc *directConn, keep bool, stop func() bool) {
	if !stop() || !keep || pc.br.Buffered() > 0 {
		// Cancelled (its deadline is spent), asked to close, or the
		// upstream sent more than the answer: not reusable.
		pc.conn.Close()
		return
	}
	t.put(pc)
}

// directBody is an answer's body on a pooled connection.
type directBody struct {
	t    *directTransport
	pc   *directConn
	body io.ReadCloser
	keep bool
	stop func() bool

	mu       sync.Mutex
	finished bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *directBody) Close() error {
	// Stopped before the end: the rest of the answer is still on the
	// connection, which therefore cannot carry another request.
	b.finish(false)
	return nil
}

func (b *directBody) finish(atEnd bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	if atEnd {
		b.t.done(b.pc, b.keep, b.stop)
		return
	}
	b.stop()
	b.pc.conn.Close()
}

// get returns an idle connection for key, or a new one.
func (t *directTransport) get(ctx context.Context, key, host string) (pc *directConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0; list = t.idle[key] {
		pc = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		t.nidle--
		if now.Sub(pc.idleAt) < t.idleTimeout && pc.alive() {
			t.mu.Unlock()
			return pc, true, nil
		}
		pc.conn.Close()
	}
	if len(t.idle[key]) == 0 {
		delete(t.idle, key)
	}
	t.mu.Unlock()
	pc, err = t.connect(ctx, key, host)
	return pc, false, err
}

// connect dials addr (key's host:port) and, for https, verifies the
// upstream's certificate for host.
func (t *directTransport) connect(ctx context.Context, key, host string) (*directConn, error) {
	scheme, addr := "https", key[len("https://"):]
	if len(key) >= len("http://") && key[:len("http://")] == "http://" {
		scheme, addr = "http", key[len("http://"):]
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp := conn
	if scheme == "https" {
		cfg := t.tlsConfig().Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		hctx := ctx
		if t.handshakeTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.handshakeTimeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	pc := &directConn{key: key, conn: conn, br: bufio.NewReader(conn), out: countingWriter{w: conn}}
	pc.bw = bufio.NewWriter(&pc.out)
	if sc, ok := tcp.(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
	}
	return pc, nil
}

// put keeps pc for the next request to its host, within the pool's bounds.
func (t *directTransport) put(pc *directConn) {
	pc.idleAt = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.idle[pc.key]) >= t.maxIdlePerHost || t.nidle >= t.maxIdle {
		pc.conn.Close()
		return
	}
	t.idle[pc.key] = append(t.idle[pc.key], pc)
	t.nidle++
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
}

// sweepIdle closes connections idle past idleTimeout: the upstream has
// likely closed its end, and the socket would linger until the host's next
// request.
func (t *directTransport) sweepIdle() {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, list := range t.idle {
		kept := list[:0]
		for _, pc := range list {
			if now.Sub(pc.idleAt) >= t.idleTimeout {
				pc.conn.Close()
				t.nidle--
				continue
			}
			kept = append(kept, pc)
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, key)
		} else {
			t.idle[key] = kept
		}
	}
	if t.nidle > 0 {
		t.sweep.Reset(t.idleTimeout)
	} else {
		t.sweep = nil
	}
}

// CloseIdleConnections closes every kept connection, and keeps no more:
// the server is shutting down.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for key, list := range t.idle {
		for _, pc := range list {
			pc.conn.Close()
		}
		delete(t.idle, key)
	}
	t.nidle = 0
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
}
