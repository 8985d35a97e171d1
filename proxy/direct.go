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
	"strings"
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
	idle   map[poolKey][]*directConn // most recent last
	nidle  int
	sweep  *time.Timer // closes connections idle past idleTimeout; nil when none wait
	closed bool        // CloseIdleConnections ran: connections are no longer kept
}

// directConn is one upstream connection with its buffers.
// poolKey names the kept connections a request may use: its session's, to
// one scheme://host:port.
type poolKey struct{ session, target string }

type directConn struct {
	key    poolKey
	conn   net.Conn
	tls    bool
	raw    syscall.RawConn // the socket under conn, for alive; nil if unknown
	in     limitedConn     // conn, read through br
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
	maxIdle := tr.MaxIdleConns
	if !canPeek {
		// Without a look at the socket, bytes an upstream sent unasked
		// would be read as the next request's answer: keep nothing.
		maxIdle = 0
	}
	return &directTransport{
		dial:             tr.DialContext,
		tlsConfig:        func() *tls.Config { return tr.TLSClientConfig },
		headerTimeout:    tr.ResponseHeaderTimeout,
		handshakeTimeout: tr.TLSHandshakeTimeout,
		idleTimeout:      tr.IdleConnTimeout,
		maxIdlePerHost:   tr.MaxIdleConnsPerHost,
		maxIdle:          maxIdle,
		idle:             map[poolKey][]*directConn{},
	}
}

// errUnexpectedSwitch is an upstream switching protocols unasked.
var errUnexpectedSwitch = errors.New("the upstream switched protocols for a request that did not ask to")

const (
	// max1xx bounds the informational answers read before the final one.
	max1xx = 5
	// maxResponseHeaderBytes bounds what an upstream may send before its
	// final answer's body, informational answers included: an endless
	// header line would otherwise take the proxy's memory (http.Transport
	// is given the same bound).
	maxResponseHeaderBytes = 1 << 20
	// maxDirectBody is the largest body sent from the caller's goroutine.
	// It fits in the socket buffers, so an upstream that answers early
	// without reading it cannot leave the write blocked; larger bodies go
	// through http.Transport, which reads the answer while it writes.
	maxDirectBody = 64 << 10
	// earlyAnswerWait is how long a failed write waits for an answer the
	// upstream may have sent before it stopped reading (413, 401, a TLS
	// alert).
	earlyAnswerWait = 250 * time.Millisecond
)

// errHeaderTooLarge is an upstream's header past maxResponseHeaderBytes.
var errHeaderTooLarge = fmt.Errorf("the upstream's response header is larger than %d bytes", maxResponseHeaderBytes)

// limitedConn caps what is read from a connection while a header is read;
// http.Transport does the same under its bufio.Reader.
type limitedConn struct {
	net.Conn
	limit int64 // bytes left to read; <0: no limit
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.limit == 0 {
		return 0, errHeaderTooLarge
	}
	if c.limit > 0 && int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	if c.limit > 0 {
		c.limit -= int64(n)
	}
	return n, err
}

// usable reports whether a request with this header and body can be sent
// directly: together they must fit in the socket buffers (maxDirectBody).
func usable(h http.Header, body []byte) bool {
	n := len(body)
	for k, vv := range h {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
		if n > maxDirectBody {
			return false
		}
	}
	return n <= maxDirectBody
}

// RoundTrip sends req, whose body, if any, is body (req.Body is not read;
// see usable). The caller reads and closes the answer's body as with
// http.Transport.
func (t *directTransport) RoundTrip(req *http.Request, body []byte) (*http.Response, error) {
	if err := checkOutgoing(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	target := req.URL.Scheme + "://" + req.URL.Host
	// Kept connections are the session's own: an upstream may tie what a
	// connection may do to the credentials sent on it before (NTLM,
	// Negotiate), so another session's request must never ride on it.
	key := poolKey{session: upstreamPool(ctx), target: target}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err // nothing sent for a request its client left
		}
		pc, reused, err := t.get(ctx, key, req.URL.Hostname(), attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, retry, err := t.send(pc, req, body)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		// A kept connection the upstream closed while it idled fails
		// before any of the answer comes. http.Transport sends such a
		// request again, on a new connection, when nothing of it was
		// written or when it may be sent twice; so does this.
		if !reused || attempt > 0 || !retry.allowed(req, body) || ctx.Err() != nil {
			err = t.failed(ctx, err)
			if retry.written && ctx.Err() == nil {
				err = &sentError{err: err}
			}
			return nil, err
		}
	}
}

// sentError is a failure after some of the request reached the upstream
// connection: the upstream may have received it, and the agent must not be
// told that nothing was sent.
type sentError struct{ err error }

func (e *sentError) Error() string { return e.err.Error() }
func (e *sentError) Unwrap() error { return e.err }

// retryState is how far a failed request got on its connection.
type retryState struct {
	written  bool // some of it reached the connection
	answered bool // some of an answer came back, or the wait for one timed out
}

func (r retryState) allowed(req *http.Request, body []byte) bool {
	return !r.written || (!r.answered && replayable(req, body))
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

// send writes req on pc and reads the answer's header. On error the caller
// closes pc; retry says whether the request may be sent again.
func (t *directTransport) send(pc *directConn, req *http.Request, body []byte) (resp *http.Response, retry retryState, err error) {
	ctx := req.Context()
	// A request its client leaves ends its connection, which unblocks
	// whatever is reading or writing it.
	stop := context.AfterFunc(ctx, func() { pc.conn.Close() })
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if err := ctx.Err(); err != nil {
		// Cancelled since RoundTrip looked: the close runs in a goroutine
		// of its own and could lose the race with the write below.
		return nil, retry, err
	}
	if t.headerTimeout > 0 {
		_ = pc.conn.SetDeadline(time.Now().Add(t.headerTimeout))
	}
	pc.out.n = 0
	out := *req
	out.Body, out.GetBody = nil, nil
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	out.ContentLength = int64(len(body))
	werr := out.Write(pc.bw)
	if werr == nil {
		werr = pc.bw.Flush()
	}
	retry.written = pc.out.n > 0
	if werr != nil {
		// The upstream may have answered and closed before taking all of
		// it (413, 401, a TLS alert): that answer, or that error, is the
		// one to give.
		_ = pc.conn.SetReadDeadline(time.Now().Add(earlyAnswerWait))
		resp, rerr := t.readResponse(pc, req, &retry)
		if rerr == nil {
			resp.Close = true
			return t.withBody(pc, resp, stop)
		}
		if isTLSAlert(rerr) {
			return nil, retry, rerr
		}
		return nil, retry, werr
	}
	// The header timeout runs from the end of the write, as in
	// http.Transport.
	if t.headerTimeout > 0 {
		_ = pc.conn.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	resp, err = t.readResponse(pc, req, &retry)
	if err != nil {
		return nil, retry, err
	}
	return t.withBody(pc, resp, stop)
}

// isTLSAlert reports whether err is an alert the upstream sent.
func isTLSAlert(err error) bool {
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:")
}

// readResponse reads the final answer's header, skipping informational
// ones, within maxResponseHeaderBytes.
func (t *directTransport) readResponse(pc *directConn, req *http.Request, retry *retryState) (*http.Response, error) {
	pc.in.limit = maxResponseHeaderBytes - int64(pc.br.Buffered())
	defer func() { pc.in.limit = -1 }()
	if _, err := pc.br.Peek(1); err != nil {
		// Nothing of an answer: an upstream that closed the connection
		// (EOF, a reset) may not have seen the request. A timeout is not
		// that: it may still be acting on it.
		var ne net.Error
		retry.answered = errors.As(err, &ne) && ne.Timeout()
		return nil, err
	}
	retry.answered = true
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			resp.Body.Close()
			return nil, errUnexpectedSwitch
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			if n >= max1xx {
				return nil, errors.New("net/http: too many 1xx informational responses")
			}
			continue
		}
		return resp, nil
	}
}

// failed is err, or the context's error alone when the request's client
// left: the I/O error is then only the connection being closed for it.
func (t *directTransport) failed(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// withBody gives resp a body that returns pc to the pool once read to its
// end, and closes it if the caller stops before.
func (t *directTransport) withBody(pc *directConn, resp *http.Response, stop func() bool) (*http.Response, retryState, error) {
	// The body is read at the client's pace, as with http.Transport: no
	// deadline but the request's context.
	_ = pc.conn.SetDeadline(time.Time{})
	keep := !resp.Close && !resp.Request.Close && resp.Request.Method != http.MethodConnect
	if resp.Body == http.NoBody {
		t.done(pc, keep, stop)
		return resp, retryState{}, nil
	}
	resp.Body = &directBody{t: t, pc: pc, body: resp.Body, keep: keep, stop: stop}
	return resp, retryState{}, nil
}

// done ends a request on pc: back to the pool if it may be kept.
func (t *directTransport) done(pc *directConn, keep bool, stop func() bool) {
	if !stop() || !keep || pc.unsolicited() {
		// Cancelled (closed for it), asked to close, or the upstream sent
		// more than the answer: not reusable.
		pc.conn.Close()
		return
	}
	t.put(pc)
}

// unsolicited reports whether the connection holds bytes past the answer
// just read, or has ended: in br, or inside TLS (a record read along with
// the answer's last one), where the socket peek of alive cannot see them.
// A read with its deadline already passed returns what is buffered without
// waiting; crypto/tls does not keep a timeout as a broken connection.
func (pc *directConn) unsolicited() bool {
	if pc.br.Buffered() > 0 {
		return true
	}
	if !pc.tls {
		return false
	}
	_ = pc.conn.SetReadDeadline(time.Unix(1, 0))
	_, err := pc.br.Peek(1)
	_ = pc.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
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

// get returns an idle connection kept under key, or a new one to its
// target (always, if fresh).
func (t *directTransport) get(ctx context.Context, key poolKey, host string, fresh bool) (pc *directConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0 && !fresh; list = t.idle[key] {
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

// connect dials key's target and, for https, verifies the upstream's
// certificate for host; the connection is kept under key.
func (t *directTransport) connect(ctx context.Context, key poolKey, host string) (*directConn, error) {
	scheme, addr, _ := strings.Cut(key.target, "://")
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
	pc := &directConn{key: key, conn: conn, tls: scheme == "https", in: limitedConn{Conn: conn, limit: -1}, out: countingWriter{w: conn}}
	pc.br = bufio.NewReader(&pc.in)
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
