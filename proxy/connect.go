package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/termtext"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// handleConnect is the catch-all CONNECT handler: every CONNECT is
// authenticated, its target canonicalised, and then either intercepted (our
// own TLS termination and request loop) or, for hosts outside inspect.mitm,
// tunnelled only if the policy allows that host:port as a tunnel.
func (s *Server) handleConnect(target string, gctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	req := gctx.Req
	sess, refusal := s.authenticate(req)
	if refusal != nil {
		gctx.Resp = refusal
		return reject, target
	}
	if err := s.bindSession(req, sess.ID); err != nil {
		gctx.Resp = s.tooManyConns(req, sess, err)
		return reject, target
	}
	host, port, err := hostport.Split(target, 0)
	if err != nil {
		ex := &exchange{session: sess, id: newRequestID(), scheme: "https"}
		s.auditRefusal(sess, ex, http.StatusBadRequest, "bad CONNECT target "+strconv.Quote(target))
		gctx.Resp = plainResponse(req, http.StatusBadRequest, "countersign: the CONNECT target "+strconv.Quote(target)+" is not a valid host:port; refused.")
		return reject, target
	}
	if s.intercepted(host) {
		return &goproxy.ConnectAction{
			Action: goproxy.ConnectHijack,
			Hijack: func(_ *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
				release(client)
				// A goroutine of its own, so net/http's connection goroutine
				// (and the buffers it still holds) ends with the hijack
				// instead of living as long as the tunnel. Shutdown waits for
				// it through s.tunnels.
				t := s.track(client)
				if t == nil {
					client.Close()
					return
				}
				go s.serveTunnel(t, sess, host, port)
			},
		}, target
	}
	return s.decideTunnel(gctx, sess, host, port), target
}

// tooManyConns refuses, audited, a request whose connection bindSession
// would not count: its session holds its share of connections
// (Options.MaxConnsPerSession), authenticated clients hold every slot
// they may, or the connection was closed for a newcomer.
func (s *Server) tooManyConns(req *http.Request, sess *session.Info, err error) *http.Response {
	var reason string
	switch {
	case errors.Is(err, errSessionShare):
		reason = fmt.Sprintf("this session holds %d connections to countersign, its share; close some (idle keep-alive connections) and retry", s.opts.MaxConnsPerSession)
	case errors.Is(err, errAllBound):
		reason = fmt.Sprintf("countersign's clients hold %d connections, as many as it keeps for authenticated clients; close some (idle keep-alive connections) and retry", s.maxBound())
	default:
		reason = "every connection slot was taken, and this connection was closed for a newcomer before its request was read; retry"
	}
	s.auditRefusal(sess, &exchange{session: sess, id: newRequestID(), scheme: req.URL.Scheme}, http.StatusServiceUnavailable, reason)
	s.stats.of(sess.ID).denied.Add(1)
	return plainResponse(req, http.StatusServiceUnavailable, "countersign: "+reason+".")
}

// reject makes goproxy write gctx.Resp and close the connection.
var reject = &goproxy.ConnectAction{Action: goproxy.ConnectReject}

func (s *Server) intercepted(host string) bool {
	for _, p := range s.opts.MITM {
		switch {
		case p == "*":
			return true
		case strings.HasPrefix(p, "*."):
			if strings.HasSuffix(host, p[1:]) {
				return true
			}
		case p == host:
			return true
		}
	}
	return false
}

// authenticate returns the session of req's proxy credentials, or the
// response that refuses it: 407, or 429 for a source that has failed too
// often as that client (authGuard).
func (s *Server) authenticate(req *http.Request) (*session.Info, *http.Response) {
	user, pass, present := proxyCredentials(req.Header.Get("Proxy-Authorization"))
	if !present {
		if sess, ok := s.opts.Sessions.Authenticate(user, pass, false); ok {
			return sess, nil
		}
		return nil, proxyAuthRequired(req)
	}
	k := authKeyFor(req.RemoteAddr, user)
	ok, charged := s.auth.take(k)
	if !ok {
		resp := plainResponse(req, http.StatusTooManyRequests,
			"countersign: too many wrong proxy passwords from this address for this client; the password was not checked. Wait a minute, then use the password from the countersign config.")
		resp.Header.Set("Retry-After", strconv.Itoa(int(authRefill/time.Second)))
		return nil, resp
	}
	sess, ok := s.opts.Sessions.Authenticate(user, pass, true)
	if ok {
		s.auth.succeeded(k, charged)
		return sess, nil
	}
	if s.auth.failed() {
		s.logger.Warn("wrong proxy credentials (logged at most every 10s; countersign_proxy_auth_failures_total counts them all)",
			zap.String("client", termtext.Line(user, 64)), zap.String("remote", req.RemoteAddr),
			zap.Int64("failures_so_far", s.auth.failures.Load()), zap.Int64("refused_unchecked_so_far", s.auth.throttled.Load()))
	}
	return nil, proxyAuthRequired(req)
}

func proxyCredentials(h string) (user, pass string, present bool) {
	if h == "" {
		return "", "", false
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", true
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", true
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", true
	}
	return user, pass, true
}

func proxyAuthRequired(req *http.Request) *http.Response {
	resp := plainResponse(req, http.StatusProxyAuthRequired,
		"countersign: proxy credentials required; run the agent under `countersign run`, or put the credentials from the countersign config in the proxy URL.")
	resp.Header.Set("Proxy-Authenticate", `Basic realm="countersign"`)
	return resp
}

func plainResponse(req *http.Request, status int, msg string) *http.Response {
	body := msg + "\n"
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Close:         true,
		Request:       req,
	}
}

// decideTunnel asks the policy about an opaque tunnel (request.tunnel = true;
// only host and port are known) and splices it only on allow.
func (s *Server) decideTunnel(gctx *goproxy.ProxyCtx, sess *session.Info, host string, port int) *goproxy.ConnectAction {
	req := gctx.Req
	id := newRequestID()
	ar := &action.Request{Method: http.MethodConnect, Scheme: "tcp", Host: host, Port: port, Tunnel: true, Header: http.Header{}, BodySize: -1}
	act := s.opts.Classifier.Classify(ar)
	in := policy.NewInput(ar, act, sess, s.opts.Now())
	d := s.opts.Decider.Decide(req.Context(), in)
	if reason, ok := s.selfTarget(host, port); ok {
		d.Verdict, d.Reasons = policy.VerdictDeny, []policy.Reason{{ID: "SELF", Message: reason}}
	}
	ex := &exchange{req: &http.Request{Method: http.MethodConnect, URL: req.URL, Header: http.Header{}}, scheme: "tcp", host: host, port: port, session: sess, id: id}
	decision := d.Verdict.String()
	if d.Verdict == policy.VerdictApprove {
		// A tunnel cannot wait for a human: nobody could see what it carries.
		decision = "deny"
	}
	if err := s.opts.Audit.Record(s.decisionEvent(sess, ex, in, d, decision)); err != nil {
		s.logger.Error("audit write failed; refusing tunnel", zap.Error(err))
		gctx.Resp = plainResponse(req, http.StatusServiceUnavailable, "countersign: the audit log cannot be written, so nothing is forwarded.")
		return reject
	}
	cnt := s.stats.of(sess.ID)
	if d.Verdict != policy.VerdictAllow {
		cnt.denied.Add(1)
		msg := "countersign: tunnel to " + hostport.Join(host, port) + " refused: " + strings.Join(d.Messages(), "; ")
		gctx.Resp = plainResponse(req, http.StatusForbidden, msg)
		gctx.Resp.Header.Set(headerDecision, "deny")
		gctx.Resp.Header.Set(headerRequest, id)
		return reject
	}
	cnt.allowed.Add(1)
	return &goproxy.ConnectAction{
		Action: goproxy.ConnectHijack,
		Hijack: func(_ *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
			release(client)
			s.splice(client, sess, id, host, port)
		},
	}
}

// splice relays bytes between the client and an allowed tunnel target.
func (s *Server) splice(client net.Conn, sess *session.Info, id, host string, port int) {
	t := s.track(client)
	if t == nil {
		client.Close()
		return
	}
	defer s.untrack(t)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.UpstreamTimeout)
	up, err := s.tunnelDialer.DialContext(ctx, "tcp", hostport.Join(host, port))
	cancel()
	if err != nil {
		status, msg := upstreamFailure(host, err)
		_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "forward", RequestID: id, Session: sessionRef(sess), Decision: "allow", Error: err.Error(), Detail: "tunnel not opened: " + msg})
		_, _ = fmt.Fprintf(client, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\ncountersign: %s\n",
			status, http.StatusText(status), len(msg)+14, msg)
		return
	}
	defer up.Close()
	s.mu.Lock()
	t.up = up
	s.mu.Unlock()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	t.idle.Store(false)
	start := s.opts.Now()
	var wg sync.WaitGroup
	var sent, received int64
	// Once one side has ended its half, the other has the idle timeout
	// between reads to end its own: a target (or client) that stays silent
	// would otherwise keep the tunnel, its goroutines and its slot for
	// ever (found by review).
	fromClient := &halfClosed{Conn: client, idle: s.opts.IdleTimeout, now: s.opts.Now}
	fromUp := &halfClosed{Conn: up, idle: s.opts.IdleTimeout, now: s.opts.Now}
	wg.Add(2)
	go func() {
		defer wg.Done()
		first, refusal := spliceCheck(client, host, s.opts.HandshakeTimeout)
		if refusal != "" {
			ex := &exchange{session: sess, id: id, scheme: "tcp", host: host, port: port}
			s.auditRefusal(sess, ex, http.StatusForbidden, refusal)
			s.logger.Info("opaque tunnel refused", zap.String("host", host), zap.String("reason", refusal))
			// Both ends: the other copy ends with them.
			_ = client.Close()
			_ = up.Close()
			return
		}
		if len(first) > 0 {
			if _, err := up.Write(first); err != nil {
				_ = client.Close()
				return
			}
		}
		n, _ := io.Copy(up, fromClient)
		sent = int64(len(first)) + n
		closeWrite(up)
		fromUp.otherEnded()
	}()
	go func() {
		defer wg.Done()
		received, _ = io.Copy(client, fromUp)
		closeWrite(client)
		fromClient.otherEnded()
	}()
	wg.Wait()
	_ = s.opts.Audit.RecordDeferred(&audit.Event{Type: "response", RequestID: id, Session: sessionRef(sess), Decision: "allow",
		UpstreamMillis: s.opts.Now().Sub(start).Milliseconds(), Detail: "tunnel closed",
		Fields: map[string]any{"bytes_sent": sent, "bytes_received": received}})
}

// halfClosed reads a tunnel's side with no deadline until the other side
// has ended, then with a deadline of idle from each read.
type halfClosed struct {
	net.Conn
	idle  time.Duration
	now   func() time.Time
	ended atomic.Bool
}

func (h *halfClosed) Read(p []byte) (int, error) {
	if h.ended.Load() && h.idle > 0 {
		_ = h.Conn.SetReadDeadline(h.now().Add(h.idle))
	}
	return h.Conn.Read(p)
}

// otherEnded starts the deadlines, the read under way included.
func (h *halfClosed) otherEnded() {
	h.ended.Store(true)
	if h.idle > 0 {
		_ = h.Conn.SetReadDeadline(h.now().Add(h.idle))
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// tunnel is one hijacked client connection.
type tunnel struct {
	conn net.Conn
	idle atomic.Bool
	up   net.Conn // an opaque tunnel's target, once dialled; under Server.mu
}

// track registers a hijacked connection so Shutdown can find it. It returns
// nil when the server is shutting down or at its connection cap.
func (s *Server) track(c net.Conn) *tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	t := &tunnel{conn: c}
	t.idle.Store(true)
	s.tunnelSet[t] = struct{}{}
	s.tunnels.Add(1)
	return t
}

func (s *Server) untrack(t *tunnel) {
	s.mu.Lock()
	delete(s.tunnelSet, t)
	s.mu.Unlock()
	s.tunnels.Done()
}

func (s *Server) closeIdleTunnels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tunnelSet {
		if t.idle.Load() {
			_ = t.conn.SetReadDeadline(time.Now())
		}
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
