package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/session"
)

const tlsRecordHandshake = 0x16

// aLongTimeAgo is a deadline in the past, used to interrupt a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// serveTunnel terminates TLS for an intercepted CONNECT and serves the
// requests inside it. The handshake runs in its own function so that its
// large frame is off the stack while the connection idles: an idle
// connection's goroutine then fits in a stack the GC can shrink to 8 KiB.
func (s *Server) serveTunnel(t *tunnel, sess *session.Info, host string, port int) {
	conn, sniOK, ok := s.terminateTLS(t.conn, sess, host, port)
	if !ok {
		_ = t.conn.Close()
		s.untrack(t)
		return
	}
	tc := &tunnelConn{t: t, c: s.newClientReader(conn), sess: sess, host: host, port: port, sniOK: sniOK}
	tc.c.largeHead = func() error { return s.largeHead(tc) }
	s.serveHTTP1(tc, nil)
}

// tunnelConn is an intercepted connection after its handshake: what
// serving its requests needs, whichever goroutine serves them.
type tunnelConn struct {
	t     *tunnel
	c     *clientReader
	sess  *session.Info
	host  string
	port  int
	sniOK bool
	// headReserved is what the request's head took of
	// Options.MaxReadingBodies (see largeHead), until it is answered.
	headReserved int64
}

// largeHeadReserve is what a head past h1.LargeHeadBytes takes of
// Options.MaxReadingBodies: twice the head limit, for the bytes read and
// the header values parsed from them. Without it each connection could
// hold a 1 MiB head, thousands of connections together gigabytes (found by
// review).
const largeHeadReserve = 2 * h1.DefaultMaxHeadBytes

// errHeadBudget refuses a large head that would take the bytes being read
// past Options.MaxReadingBodies.
var errHeadBudget = &h1.Error{Status: http.StatusServiceUnavailable, Reason: "countersign is reading too many large request heads at once; retry shortly"}

// largeHead reserves largeHeadReserve for tc's request, whose head grew
// past h1.LargeHeadBytes.
func (s *Server) largeHead(tc *tunnelConn) error {
	if !s.readingBodies.take(tc.sess.ID, largeHeadReserve) {
		return errHeadBudget
	}
	tc.headReserved += largeHeadReserve
	return nil
}

// trimHead brings a large head's reservation down to what its parsed
// request keeps (twice its fields' bytes), once the bytes read for it are
// garbage: the request may wait long for a human or stream its answer
// (found by review: 2 MiB stayed taken for the request's whole life).
func (s *Server) trimHead(tc *tunnelConn, req *http.Request) {
	if tc.headReserved == 0 {
		return
	}
	n := int64(len(req.Method) + len(req.RequestURI) + len(req.Host))
	for k, vs := range req.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	if keep := 2 * n; keep < tc.headReserved {
		s.readingBodies.give(tc.sess.ID, tc.headReserved-keep)
		tc.headReserved = keep
	}
}

// giveHead gives back what the answered request's head took.
func (s *Server) giveHead(tc *tunnelConn) {
	if tc.headReserved > 0 {
		s.readingBodies.give(tc.sess.ID, tc.headReserved)
		tc.headReserved = 0
	}
}

// endTunnel releases the connection once its last request is answered.
func (s *Server) endTunnel(tc *tunnelConn) {
	s.giveHead(tc)
	tc.c.release()
	_ = tc.t.conn.Close()
	s.untrack(tc.t)
}

// terminateTLS answers the CONNECT and completes the client's TLS
// handshake. It reports false when the connection is to be closed (every
// failure is already audited or answered).
func (s *Server) terminateTLS(raw net.Conn, sess *session.Info, host string, port int) (conn *tls.Conn, sniOK, ok bool) {
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return nil, false, false
	}
	_ = raw.SetDeadline(s.opts.Now().Add(s.opts.HandshakeTimeout))
	br := bufio.NewReaderSize(raw, 512)
	first, err := br.Peek(1)
	if err != nil {
		if isTimeout(err) {
			s.auditHandshakeFailure(sess, host, port, nil, err)
		}
		return nil, false, false
	}
	if first[0] != tlsRecordHandshake {
		// Plain bytes (HTTP, h2c, anything) after CONNECT to an intercepted
		// host: we will not relay what we cannot read as TLS (SPEC 10.3).
		ex := &exchange{session: sess, id: newRequestID(), scheme: "https", host: host, port: port}
		s.auditRefusal(sess, ex, http.StatusBadRequest, "the client sent non-TLS bytes after CONNECT to an intercepted host")
		writeRaw(raw, http.StatusBadRequest, "countersign: expected a TLS handshake after CONNECT to "+hostport.Join(host, port)+"; refused.")
		return nil, false, false
	}

	pc := &prefixConn{Conn: raw, r: br, host: host, session: sess.ID}
	conn = tls.Server(pc, s.tlsConfig)
	hsCtx, cancel := context.WithTimeout(context.Background(), s.opts.HandshakeTimeout)
	err = conn.HandshakeContext(hsCtx)
	cancel()
	if err != nil {
		if pc.certErr != nil {
			s.logger.Error("leaf certificate", zap.String("host", host), zap.Error(pc.certErr))
		} else {
			s.logger.Debug("client TLS handshake failed (does the client trust the countersign CA?)",
				zap.String("host", host), zap.String("session", sess.ID), zap.Error(err))
		}
		s.auditHandshakeFailure(sess, host, port, pc.offered, err)
		return nil, false, false
	}
	pc.offered = nil
	_ = raw.SetDeadline(time.Time{})
	sniOK = true
	if sni := conn.ConnectionState().ServerName; sni != "" {
		c, err := hostport.Canonical(sni)
		sniOK = err == nil && c == host
	}
	return conn, sniOK, true
}

// prefixConn reads through a bufio.Reader that may hold bytes already
// peeked. It also carries what the shared TLS configuration's callbacks
// learn of this connection's handshake (see newTLSConfig).
type prefixConn struct {
	net.Conn
	r *bufio.Reader

	host    string   // the CONNECT target, whose certificate is presented
	session string   // the session's ID: its leaves are its own
	offered []string // ALPN protocols the client offered
	certErr error    // the leaf certificate could not be issued
}

// newTLSConfig is the TLS configuration of every intercepted connection.
// One configuration serves them all (a configuration per connection cost
// a kilobyte each, kept for the connection's life); what differs per
// connection is on its prefixConn, which the callbacks find as the
// ClientHello's connection.
func (s *Server) newTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// HTTP/2 interception stays off until it has per-stream policy: a
		// client that offers only h2 fails the handshake (SPEC 10.3).
		NextProtos: []string{"http/1.1"},
		// No session resumption: a ticket would be shared by every host
		// intercepted, and a per-connection configuration never resumed
		// either; issuing tickets nobody can use costs each handshake.
		SessionTicketsDisabled: true,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if pc, ok := hello.Conn.(*prefixConn); ok {
				pc.offered = hello.SupportedProtos
			}
			return nil, nil
		},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			pc, ok := hello.Conn.(*prefixConn)
			if !ok {
				return nil, errors.New("countersign: TLS handshake on an unknown connection")
			}
			c, err := s.opts.Issuer.CertificateFor(pc.session, pc.host)
			pc.certErr = err
			return c, err
		},
	}
}

// socket returns the client's socket to wait on without reading, or nil if
// this layer or one below still holds bytes read from it.
func (c *prefixConn) socket() syscall.RawConn {
	if c.r != nil && c.r.Buffered() > 0 {
		return nil
	}
	inner := c.Conn
	if sc, ok := inner.(*strictConn); ok {
		if !sc.through.Load() {
			return nil
		}
		inner = sc.Conn
	}
	sys, ok := inner.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sys.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		// The peeked bytes are consumed: drop the buffer, an idle
		// connection keeps no more memory than it needs.
		c.r = nil
	}
	return c.Conn.Read(p)
}

// writers pools the buffered writers responses are written with: a
// kept-alive connection holds one only while it writes.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

func getWriter(w io.Writer) *bufio.Writer {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writers.Put(bw)
}

// clientReader is the read side of a kept-alive client connection. Its
// 4 KiB bufio.Reader comes from the server's pool when a request starts and
// goes back once the connection is idle with nothing buffered, so an idle
// connection (there may be thousands) keeps one byte of read-ahead instead.
type clientReader struct {
	conn  net.Conn
	pool  *sync.Pool
	br    *bufio.Reader // nil while idle
	rd    *h1.Reader    // reads from br; nil while idle
	ahead [1]byte       // the first byte of the next request, read while idle
	has   bool
	out   deadlineWriter // every write to the client goes through it
	// largeHead is h1.Limits.LargeHead for the requests read.
	largeHead func() error
}

func (s *Server) newClientReader(conn net.Conn) *clientReader {
	return &clientReader{conn: conn, pool: &s.readers, out: deadlineWriter{conn: conn, idle: s.opts.IdleTimeout, now: s.opts.Now}}
}

// deadlineWriter writes to the client with a deadline of idle from each
// write: a client that stops reading an answer is cut off, rather than
// holding its connection, an upstream connection and a slot for ever.
type deadlineWriter struct {
	conn net.Conn
	idle time.Duration
	now  func() time.Time
	set  time.Time // when the deadline was last moved
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.idle > 0 {
		// Moved at most every idle/8: a 10 MiB answer is 640 writes, and
		// the deadline stays at least 7/8 of idle ahead of each.
		if now := w.now(); now.Sub(w.set) >= w.idle/8 {
			_ = w.conn.SetWriteDeadline(now.Add(w.idle))
			w.set = now
		}
	}
	return w.conn.Write(p)
}

// Read serves the byte read while idle, then the connection.
func (c *clientReader) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0] = c.ahead[0]
		c.has = false
		return 1, nil
	}
	return c.conn.Read(p)
}

// wait blocks until the client sends the first byte of its next request,
// or the read fails (the caller's deadline, the client closing).
func (c *clientReader) wait() error {
	if c.br != nil {
		_, err := c.br.Peek(1)
		return err
	}
	if c.has {
		return nil
	}
	n, err := c.conn.Read(c.ahead[:])
	if n == 1 {
		c.has = true
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// buffered reports whether bytes read from the connection wait here.
func (c *clientReader) buffered() bool {
	return c.has || (c.br != nil && c.br.Buffered() > 0)
}

// reader returns the buffered reader and the request reader, taking a
// buffer from the pool if the connection was idle.
func (c *clientReader) reader() (*bufio.Reader, *h1.Reader) {
	if c.br == nil {
		c.br = c.pool.Get().(*bufio.Reader)
		c.br.Reset(c)
		c.rd = h1.NewReader(c.br, h1.Limits{LargeHead: c.largeHead})
	}
	return c.br, c.rd
}

// idle returns the buffer to the pool unless it holds bytes of a pipelined
// request. The caller has checked that the last request's body was read to
// its end (the request reader is reusable), so nothing reads from the
// buffer any more; a fresh request reader takes over with the next buffer.
func (c *clientReader) idle() {
	if c.br == nil || c.br.Buffered() > 0 {
		return
	}
	c.br.Reset(nil)
	c.pool.Put(c.br)
	c.br, c.rd = nil, nil
}

// release returns the buffer to the pool when the connection ends, unless
// the last request's body may still be read from it (a body not read to its
// end, say by a transport still sending it upstream): then it is left to the
// garbage collector, as sharing it with another connection could hand that
// connection's bytes to this request.
func (c *clientReader) release() {
	if c.br == nil {
		return
	}
	if c.rd.Reusable() {
		c.br.Reset(nil)
		c.pool.Put(c.br)
	}
	c.br, c.rd = nil, nil
}

// serveHTTP1 reads requests with the strict reader and answers each through
// the pipeline, keeping the connection alive while both sides allow it. The
// loop itself keeps a small frame: it is on the stack of every idle
// connection, and the work of one request is in serveRequest.
//
// A request held for approval parks the connection (see park); it is
// resumed on a new goroutine, which finishes the held request (held) and
// goes on serving the connection.
func (s *Server) serveHTTP1(tc *tunnelConn, held func() bool) {
	parked := false
	defer func() {
		if v := recover(); v != nil {
			// A fault in serving one connection closes that connection,
			// not the process with every other session's held requests
			// (found by review: net/http recovers the plain-HTTP path,
			// nothing recovered tunnels). Nothing more of the request is
			// sent: its client connection is gone.
			s.logger.Error("serving an intercepted connection panicked; closing it",
				zap.String("session", tc.sess.ID), zap.String("host", tc.host), zap.String("panic", fmt.Sprint(v)), zap.StackSkip("stack", 1))
			parked = false
		}
		if !parked {
			s.endTunnel(tc)
		}
	}()
	c := tc.c
	if held != nil {
		ok := held()
		s.giveHead(tc)
		if !ok {
			return
		}
		c.idle()
	}
	for {
		tc.t.idle.Store(true)
		if s.isClosing() {
			return
		}
		_ = c.conn.SetReadDeadline(s.opts.Now().Add(s.opts.IdleTimeout))
		if err := c.wait(); err != nil {
			return
		}
		tc.t.idle.Store(false)
		keep, h := s.serveRequest(tc)
		if h != nil {
			// A held request keeps its head's reservation until answered.
			parked = true
			s.park(tc, h)
			return
		}
		s.giveHead(tc)
		if !keep {
			return
		}
		c.idle()
	}
}

// heldRequest is a request held for approval: the function that waits for
// the outcome, answers and reports whether the connection goes on, and the
// watch on its client.
type heldRequest struct {
	finish func() bool
	watch  *clientWatch
}

// park leaves a held request's connection without a goroutine until the
// hold is woken (decided, run out, shut down) or the client's socket is
// readable, and then resumes serving it on a new goroutine. The goroutine
// that decided the request returns: its stack grew for policy evaluation
// and the approval store and would not shrink while it waited. The request
// reader goes back to the pool too if the request was read to its end.
// Where the socket cannot be watched without reading (a layer above it
// holds bytes read from it, or the system cannot peek), a goroutine waits
// instead.
func (s *Server) park(tc *tunnelConn, h *heldRequest) {
	c := tc.c
	if c.rd != nil && c.rd.Reusable() {
		c.idle()
	}
	resume := func() { s.serveHTTP1(tc, h.finish) }
	var sock syscall.RawConn
	if canPeekSockets && h.watch != nil && !c.buffered() {
		sock = socketOf(c.conn)
	}
	if sock == nil {
		go resume()
		return
	}
	p := &parked{sock: sock, resume: resume}
	if h.watch.park(p.fire) {
		s.parked.add(p)
	}
}

// serveRequest reads one request from the connection and answers it. It
// reports whether the connection can carry another request, or returns the
// request held for approval, which the caller must finish.
func (s *Server) serveRequest(tc *tunnelConn) (keep bool, held *heldRequest) {
	c, sess, scheme, host, port := tc.c, tc.sess, "https", tc.host, tc.port
	conn := c.conn
	_, rd := c.reader()
	_ = conn.SetReadDeadline(s.opts.Now().Add(s.opts.HeaderTimeout))
	req, err := rd.ReadRequest()
	if err != nil {
		var he *h1.Error
		if errors.As(err, &he) {
			ex := &exchange{session: sess, id: newRequestID(), scheme: scheme, host: host, port: port}
			s.auditRefusal(sess, ex, he.Status, he.Reason)
			s.stats.of(sess.ID).denied.Add(1)
			writeRaw(&c.out, he.Status, "countersign: "+he.Reason+"; refused.")
		}
		return false, nil
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.trimHead(tc, req)
	if req.Body != http.NoBody {
		req.Body = &idleDeadlineBody{ReadCloser: req.Body, conn: conn, idle: s.opts.IdleTimeout, now: s.opts.Now}
	} else {
		// Nothing more to read for this request: the buffer goes back to
		// the pool now rather than after the answer (a request may wait
		// long for its decision, or for a human).
		c.idle()
	}

	id := newRequestID()
	rh, rp, herr := hostport.Split(req.Host, defaultPort(scheme))
	if herr != nil || rh != host || rp != port || !tc.sniOK {
		ex := &exchange{req: req, session: sess, id: id, scheme: scheme, host: host, port: port}
		what := fmt.Sprintf("the request's Host %q does not match the CONNECT target %s", req.Host, hostport.Join(host, port))
		if !tc.sniOK {
			what = fmt.Sprintf("the TLS server name does not match the CONNECT target %s", hostport.Join(host, port))
		}
		s.auditRefusal(sess, ex, http.StatusMisdirectedRequest, what)
		s.stats.of(sess.ID).denied.Add(1)
		writeRaw(&c.out, http.StatusMisdirectedRequest, "countersign: "+what+"; refused.")
		return false, nil
	}
	closeAfter := req.Close
	upgrade := upgradeProtocol(req.Header)
	h1.RemoveHopByHop(req.Header)

	var cw *clientWatch
	ex := &exchange{
		req: req, scheme: scheme, host: host, port: port, session: sess, id: id, upgrade: upgrade,
		watch: func() *clientWatch {
			cw = &clientWatch{c: c}
			return cw
		},
	}
	// continued is set only for a client that waits for "100 Continue":
	// other requests (nearly all) allocate nothing for it.
	var continued *atomic.Bool
	if expectsContinue(req) {
		continued = new(atomic.Bool)
		ex.beforeBody = func() error {
			continued.Store(true)
			if _, err := io.WriteString(&c.out, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return err
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	// What passes after a 101 is not decided; its size and length are at
	// least on record, as for an opaque tunnel.
	upgraded := func(sent, received int64, elapsed time.Duration) {
		_ = s.opts.Audit.RecordDeferred(&audit.Event{Type: "response", RequestID: id, ApprovalID: ex.approvalID, Session: sessionRef(sess),
			UpstreamMillis: elapsed.Milliseconds(), Detail: "upgraded connection closed",
			Fields: map[string]any{"protocol": upgrade, "bytes_sent": sent, "bytes_received": received}})
	}
	resp, wait := s.process(ctx, ex)
	if wait != nil {
		return false, &heldRequest{watch: cw, finish: func() bool {
			defer cancel()
			resp := wait()
			heldBack(req, continued)
			return s.answer(c, rd, req, upgrade, closeAfter, resp, upgraded)
		}}
	}
	defer cancel()
	heldBack(req, continued)
	return s.answer(c, rd, req, upgrade, closeAfter, resp, upgraded), nil
}

// heldBack drops the body of a request whose client waits for "100
// Continue" (continued is not nil) and was answered without it: that
// client holds its body back, so the answer goes at once and the
// connection ends, rather than drain a body that is not coming (found by
// review: a refusal waited for the idle timeout first).
func heldBack(req *http.Request, continued *atomic.Bool) {
	if continued != nil && !continued.Load() {
		req.Body = http.NoBody
	}
}

// answer writes resp, the answer to req (read by rd), to the client and
// reports whether the connection can carry another request (not if the
// client asked to close it: closeAfter). After an allowed upgrade it
// relays both ways and calls upgraded with the bytes moved.
func (s *Server) answer(c *clientReader, rd *h1.Reader, req *http.Request, upgrade string, closeAfter bool, resp *http.Response,
	upgraded func(sent, received int64, elapsed time.Duration)) bool {
	conn := c.conn
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade != "" {
		// An allowed upgrade: from here on the connection carries the
		// new protocol in both directions, decided at the upgrade request
		// (SPEC 10.3). The client's bytes come from the request reader's
		// buffer, or from c if a hold returned the buffer to the pool.
		var in io.Reader = c
		if c.br != nil {
			in = c.br
		}
		bw := getWriter(&c.out)
		start := time.Now()
		sent, received, spliced := s.spliceUpgraded(conn, &c.out, in, bw, resp)
		putWriter(bw)
		if spliced {
			upgraded(sent, received, time.Since(start))
		}
		// The transport may still be reading a request body from br (an
		// upstream can switch protocols before the body ends). The
		// connection is over: closing it ends any such read at once, and
		// the body's Close waits for it, so release (which pools only a
		// reader whose body is finished) sees its final state.
		_ = conn.Close()
		_ = req.Body.Close()
		return false
	}
	// Finish (or give up on) the request body before answering, so that
	// we know whether the connection can carry another request.
	_ = req.Body.Close()
	keep := !closeAfter && rd.Reusable() && !s.isClosing()
	// An HTTP/1.0 client cannot read chunked framing: an answer of
	// unknown length ends with the connection instead.
	http10 := req.ProtoMajor == 1 && req.ProtoMinor == 0
	if http10 && resp.ContentLength < 0 {
		keep = false
	}
	bw := getWriter(&c.out)
	err := writeResponse(bw, resp, req.Method, !keep, !http10)
	putWriter(bw)
	if http10 && resp.ContentLength < 0 {
		// A close-delimited answer is complete only if TLS ends with
		// close_notify: send it after a whole answer; after a failed one
		// cut the connection under TLS, so the client sees a truncated
		// answer, not a whole one.
		if tc, ok := conn.(*tls.Conn); ok {
			if err == nil {
				_ = tc.CloseWrite()
			} else {
				_ = tc.NetConn().Close()
			}
		}
	}
	resp.Body.Close()
	return err == nil && keep
}

// upgradeProtocol returns the protocol an HTTP/1.1 upgrade request asks
// for, or "". h2c never gets here: the strict reader refuses it.
func upgradeProtocol(h http.Header) string {
	up := strings.TrimSpace(h.Get("Upgrade"))
	if up == "" {
		return ""
	}
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return up
			}
		}
	}
	return ""
}

// spliceUpgraded writes the 101 response and relays bytes both ways until
// either side closes. It returns the bytes relayed each way, and whether
// the relay started.
func (s *Server) spliceUpgraded(conn net.Conn, out io.Writer, br io.Reader, bw *bufio.Writer, resp *http.Response) (sent, received int64, spliced bool) {
	upstream, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		writeRaw(out, http.StatusBadGateway, "countersign: the upstream switched protocols but the connection cannot be relayed.")
		return 0, 0, false
	}
	defer upstream.Close()
	if _, err := fmt.Fprintf(bw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols)); err != nil {
		return 0, 0, false
	}
	if err := resp.Header.Write(bw); err != nil {
		return 0, 0, false
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return 0, 0, false
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, false
	}
	_ = conn.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() {
		// br may hold bytes the client sent right after the upgrade request.
		sent, _ = io.Copy(upstream, br)
		_ = upstream.Close()
		done <- struct{}{}
	}()
	go func() {
		// An upgraded connection may idle as long as it likes, but a
		// write the client does not take within the idle timeout ends it.
		received, _ = io.Copy(out, upstream)
		_ = conn.Close()
		done <- struct{}{}
	}()
	<-done
	_ = conn.Close()
	_ = upstream.Close()
	<-done
	return sent, received, true
}

func defaultPort(scheme string) int {
	if scheme == "http" {
		return 80
	}
	return 443
}

func expectsContinue(req *http.Request) bool {
	for _, v := range req.Header.Values("Expect") {
		if strings.EqualFold(strings.TrimSpace(v), "100-continue") {
			return true
		}
	}
	return false
}

// clientWatch lets a held request notice its client leaving (see
// approval.Hold.Wait and park). watch reads at most one byte ahead into the
// client's reader (a pipelined request stays buffered there), and wake
// interrupts that read from another goroutine through the read deadline,
// or resumes a parked connection.
type clientWatch struct {
	c *clientReader

	mu     sync.Mutex
	woken  bool   // wake was called: watch must not block
	done   bool   // the hold is over: wake must leave the deadline alone
	resume func() // resumes the parked connection
}

// watch blocks until the client goes away (true), sends more bytes or is
// woken (false).
func (w *clientWatch) watch() bool {
	w.mu.Lock()
	if w.woken {
		w.mu.Unlock()
		return false
	}
	// No deadline but wake's: a body read may have left an idle one.
	_ = w.c.conn.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	if err := w.c.wait(); err != nil {
		var ne net.Error
		return !errors.As(err, &ne) || !ne.Timeout()
	}
	return false
}

// park makes wake call resume; it reports false, and calls resume itself,
// if wake was called already.
func (w *clientWatch) park(resume func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.woken {
		resume()
		return false
	}
	w.resume = resume
	return true
}

func (w *clientWatch) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.woken = true
	if !w.done {
		_ = w.c.conn.SetReadDeadline(aLongTimeAgo)
	}
	if w.resume != nil {
		w.resume()
	}
}

// finish ends the watch: a late wake no longer touches the connection.
func (w *clientWatch) finish() {
	w.mu.Lock()
	w.done = true
	w.resume = nil
	w.mu.Unlock()
	_ = w.c.conn.SetReadDeadline(time.Time{})
}

// socketOf returns the client's socket under an intercepted connection, to
// watch without reading, or nil if some layer between it and TLS still
// holds bytes read from it. Bytes TLS itself has read but not yet returned
// are not seen: they are bytes the client sent while held, found when it
// leaves or the hold ends and the watch reads.
func socketOf(conn net.Conn) syscall.RawConn {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil
	}
	pc, ok := tc.NetConn().(*prefixConn)
	if !ok {
		return nil
	}
	return pc.socket()
}

// idleDeadlineBody extends the connection's read deadline before each read
// of a request body: a client may upload slowly, but not stall forever.
type idleDeadlineBody struct {
	io.ReadCloser
	conn net.Conn
	idle time.Duration
	now  func() time.Time
}

func (b *idleDeadlineBody) Read(p []byte) (int, error) {
	_ = b.conn.SetReadDeadline(b.now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

// Close drains what the client still sends of the body (so that the
// connection can carry the next request) under the same deadline: found by
// review, a refused request whose body never came held its connection, and
// a slot, for good.
func (b *idleDeadlineBody) Close() error {
	_ = b.conn.SetReadDeadline(b.now().Add(b.idle))
	return b.ReadCloser.Close()
}

// writeRaw writes a complete plain-text response and is used when the
// connection ends right after (refusals).
func writeRaw(w io.Writer, status int, msg string) {
	body := msg + "\n"
	_, _ = fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n%s: deny\r\n\r\n%s",
		status, http.StatusText(status), len(body), headerDecision, body)
}

// writeResponse writes resp to the client connection. The framing is ours:
// Content-Length when the length is known, chunked otherwise, nothing for
// HEAD, 1xx, 204 and 304. Upstream trailers are never forwarded. The writer
// is flushed after the head and after each body read, so streamed responses
// (watch, server-sent events) reach the client as they arrive.
func writeResponse(bw *bufio.Writer, resp *http.Response, method string, closeConn, chunkOK bool) error {
	status := resp.StatusCode
	text := http.StatusText(status)
	if _, after, ok := strings.Cut(resp.Status, " "); ok && after != "" {
		text = after
	}
	if _, err := fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", status, sanitizeReason(text)); err != nil {
		return err
	}
	h := resp.Header
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Del("Connection")
	bodyless := method == http.MethodHead || status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified
	chunked := false
	switch {
	case bodyless:
		if resp.ContentLength > 0 && status != http.StatusNoContent && status/100 != 1 {
			h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
	case resp.ContentLength >= 0:
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	case chunkOK:
		h.Set("Transfer-Encoding", "chunked")
		chunked = true
	default:
		// No framing: the body ends with the connection (closeConn).
	}
	if closeConn {
		h.Set("Connection", "close")
	}
	if err := h.Write(bw); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if bodyless || resp.Body == nil {
		return bw.Flush()
	}
	if resp.ContentLength >= 0 {
		// A known length: the buffer batches head and body into full TLS
		// records (a small answer goes out in one write) and flushes as it
		// fills.
		if _, err := io.CopyN(bw, resp.Body, resp.ContentLength); err != nil {
			// The upstream body broke or ended early: send what came and end
			// the connection, so the client sees a truncated response, never
			// a complete one.
			_ = bw.Flush()
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		return bw.Flush()
	}

	// Unknown length (watches, server-sent events, streamed output): the
	// head goes out at once and every read of the body is flushed, so the
	// client sees data as it arrives.
	if err := bw.Flush(); err != nil {
		return err
	}
	var w io.Writer = bw // close-delimited, for an HTTP/1.0 client
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(bw)
		w = cw
	}
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The upstream body broke mid-way: end the connection so the
			// client sees a truncated response rather than a complete one.
			return rerr
		}
	}
	if !chunked {
		return bw.Flush()
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// copyBuffers are the read buffers of streamed response bodies.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

func sanitizeReason(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
