package proxy

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/hostport"
)

// handlePlain serves plain-HTTP proxy requests (absolute-form, not CONNECT)
// through the same pipeline. It always returns a response, so goproxy's own
// transport is never used, and it always closes the connection afterwards:
// every head on a proxy connection has been checked by strictListener.
func (s *Server) handlePlain(req *http.Request, gctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	sess, refusal := s.authenticate(req)
	if refusal != nil {
		return req, refusal
	}
	if err := s.bindSession(req, sess.ID); err != nil {
		return req, s.tooManyConns(req, sess, err)
	}
	id := newRequestID()
	if req.URL.Scheme != "http" {
		s.auditRefusal(sess, &exchange{session: sess, id: id, scheme: req.URL.Scheme}, http.StatusBadRequest, "a "+req.URL.Scheme+":// URL without CONNECT")
		return req, plainResponse(req, http.StatusBadRequest, "countersign: only http:// URLs can be proxied without CONNECT; use CONNECT for https.")
	}
	host, port, err := hostport.Split(req.URL.Host, 80)
	if err != nil {
		ex := &exchange{session: sess, id: id, scheme: "http"}
		s.auditRefusal(sess, ex, http.StatusBadRequest, "bad host in request URL")
		return req, plainResponse(req, http.StatusBadRequest, "countersign: the request URL's host is not valid; refused.")
	}
	h1.RemoveHopByHop(req.Header)
	var body *plainBody
	if c, ok := req.Context().Value(connKey{}).(net.Conn); ok && req.Body != nil && req.Body != http.NoBody {
		body = &plainBody{ReadCloser: req.Body, conn: c, idle: s.opts.IdleTimeout, now: s.opts.Now}
		req.Body = body
	}
	ex := &exchange{req: req, scheme: "http", host: host, port: port, session: sess, id: id}
	resp := s.handle(req.Context(), ex)
	if body != nil {
		body.handled()
	}
	resp.Header.Set("Connection", "close")
	resp.Request = req
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &noTrailers{ReadCloser: resp.Body, resp: resp}
	}
	if c, ok := req.Context().Value(connKey{}).(net.Conn); ok && s.opts.IdleTimeout > 0 {
		// goproxy writes the answer with no deadline of its own.
		_ = c.SetWriteDeadline(s.opts.Now().Add(s.opts.IdleTimeout))
		if resp.Body != nil && resp.Body != http.NoBody {
			resp.Body = &pacedBody{ReadCloser: resp.Body, conn: c, idle: s.opts.IdleTimeout, now: s.opts.Now}
		}
	}
	return req, resp
}

// pacedBody gives each write of a plain-HTTP answer to the client a
// deadline of idle, as deadlineWriter does inside tunnels: goproxy copies
// the answer's body to the client, so the deadline is moved after each read
// of it, before the write of what was read. A client that stops reading is
// cut off rather than holding its connection, a slot and the upstream
// connection for ever (found by review); a slow upstream is not cut off.
type pacedBody struct {
	io.ReadCloser
	conn net.Conn
	idle time.Duration
	now  func() time.Time
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	_ = b.conn.SetWriteDeadline(b.now().Add(b.idle))
	return n, err
}

// noTrailers keeps an upstream's trailers from the client, as inside
// tunnels: reading a chunked body to its end fills resp.Trailer, and
// goproxy forwards what it finds there once it has closed the body.
type noTrailers struct {
	io.ReadCloser
	resp *http.Response
}

func (b *noTrailers) Close() error {
	err := b.ReadCloser.Close()
	b.resp.Trailer = nil
	return err
}

// connKey is the request context key of the proxy connection a plain-HTTP
// request came on (http.Server.ConnContext).
type connKey struct{}

// plainBody bounds the reads of a plain-HTTP request's body by the idle
// timeout, as idleDeadlineBody does inside tunnels: net/http clears the
// connection's deadline once the head is read, so a client that stalled in
// its body held the connection, and a slot, for good (found by review).
// Once the body has ended the deadline is cleared again: net/http then
// reads on in the background only to notice the client leaving (which
// cancels a held request), and a deadline there would cancel it instead.
type plainBody struct {
	io.ReadCloser
	conn net.Conn
	idle time.Duration
	now  func() time.Time

	mu    sync.Mutex
	ended bool
}

func (b *plainBody) Read(p []byte) (int, error) {
	_ = b.conn.SetReadDeadline(b.now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.mu.Lock()
		b.ended = true
		b.mu.Unlock()
		_ = b.conn.SetReadDeadline(time.Time{})
	}
	return n, err
}

// handled is called once the request is answered: a body not read to its
// end is then drained by net/http (after the answer is written), which gets
// the idle timeout to finish.
func (b *plainBody) handled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		_ = b.conn.SetReadDeadline(b.now().Add(b.idle))
	}
}
