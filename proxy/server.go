// Package proxy is countersign's intercepting proxy: goproxy accepts proxy
// requests and CONNECTs, every tunnel is terminated with a leaf certificate
// from the local CA, and each request inside it goes through the pipeline:
// classify, evaluate the policy, record the decision durably in the audit
// log, then forward, deny in the API's own terms, or hold for a human.
//
// goproxy's permissive defaults are replaced throughout: its transport
// (which skips certificate verification and reads proxy variables), its
// built-in CA, its HTTP/1 parser inside tunnels (which normalises ambiguous
// framing instead of refusing it) and its error pages (which leak internal
// errors to the client).
package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// Decider evaluates the policy. *policy.Engine satisfies it.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) policy.Decision
}

// Auditor writes audit records. *audit.Log satisfies it. Record returns only
// once the record is durable; RecordAsync does not wait for the disk;
// RecordDeferred lets the record wait (briefly) to share the next write.
type Auditor interface {
	Record(ev *audit.Event) error
	RecordAsync(ev *audit.Event) error
	RecordDeferred(ev *audit.Event) error
}

// Authenticator maps proxy credentials to a session. *session.Registry
// satisfies it.
type Authenticator interface {
	Authenticate(username, password string, present bool) (*session.Info, bool)
}

// Options configures a Server. Issuer, Decider, Audit, Approvals, Sessions and
// Classifier are required.
type Options struct {
	Issuer     *mitm.Issuer
	Decider    Decider
	Audit      Auditor
	Approvals  *approval.Broker
	Sessions   Authenticator
	Classifier *action.Classifier

	// RootCAs verify upstream TLS (system roots plus upstream.ca_files).
	RootCAs *x509.CertPool
	// UpstreamTimeout bounds dialing, the TLS handshake and waiting for
	// response headers (default 60s).
	UpstreamTimeout time.Duration
	// Guard refuses loopback, private, link-local and metadata addresses
	// unless allowed.
	Guard hostport.Guard
	// Resolve pins host[:port] to addresses, like curl --resolve.
	Resolve map[string]string
	// Resolver looks up names (default net.DefaultResolver).
	Resolver Resolver
	// OwnAddrs returns countersign's listener addresses; the proxy never
	// forwards to them.
	OwnAddrs func() []netip.AddrPort
	// OwnHosts are host or host:port names of countersign itself (the
	// approval page's public host).
	OwnHosts []string

	// BodyLimit is how much of a body the policy sees (default 1 MiB).
	BodyLimit int64
	// MITM lists host globs that are intercepted; others are tunnelled if
	// the policy allows the tunnel (default: all).
	MITM []string
	// Shadow forwards everything, recording what would have been denied.
	Shadow bool
	// Hold is the default approval hold (default 120s).
	Hold time.Duration
	// RecordInput adds the full policy input to decision records, for replay.
	RecordInput bool
	// ClientCertMessage explains, for a host, why a server that wants a TLS
	// client certificate cannot be reached through interception.
	ClientCertMessage func(host string) string

	// HandshakeTimeout bounds the TLS handshake inside a tunnel (default 10s).
	HandshakeTimeout time.Duration
	// HeaderTimeout bounds reading a request head (default 30s).
	HeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request (default 120s).
	IdleTimeout time.Duration
	// MaxConns caps concurrent client connections (default 16384, enough for
	// 10,000 requests held for approval at once). Authenticated ones may
	// hold seven eighths of them; the rest stay for connections that have
	// not authenticated yet (see strictListener).
	MaxConns int
	// MaxConnsPerSession caps the connections one session may hold once
	// authenticated (default three quarters of MaxConns, above the 10,000
	// held requests the default MaxConns allows for): under serve, one agent that opens
	// connections until the cap cannot leave the others none.
	MaxConnsPerSession int
	// AuthGrace is how long a new connection may go without authenticating
	// before, with every slot taken, a newcomer may have it closed
	// (default 1s): see strictListener.
	AuthGrace time.Duration
	// HeldSweep is how often the sockets of held requests are checked for
	// a client that left (default 1s): a held request costs no goroutine,
	// so nothing reads its socket between checks.
	HeldSweep time.Duration
	// MaxHeldBodies caps the bytes of request bodies kept while their
	// requests wait for a human (default 512 MiB): each may be as large as
	// inspect.body_limit, and 10,000 of them would not fit in memory.
	MaxHeldBodies int64
	// MaxReadingBodies caps the bytes of request bodies being read and
	// decided, past the first 64 KiB of each (default 256 MiB, or four
	// times BodyLimit when that is more): without
	// it, every connection could hold inspect.body_limit, trickling a
	// byte now and then (found by review). A body that would pass it is
	// refused with 503; each session may always read MaxReadingBodies/32.
	MaxReadingBodies int64

	Now func() time.Time
}

// Server is the proxy.
type Server struct {
	opts Options
	// conns counts each session's authenticated connections
	// (Options.MaxConnsPerSession).
	conns connCounts
	// evicted counts connections closed before authenticating to make
	// room for a newcomer (strictListener).
	evicted atomic.Int64
	// auth slows down password guessing (authGuard).
	auth      *authGuard
	logger    *zap.Logger
	transport *http.Transport // configuration of the transports below
	// transports forwards what the direct path does not: an http.Transport
	// per session (see sessionTransports).
	transports *sessionTransports
	// direct forwards requests whose body is all in memory without
	// http.Transport's goroutines (direct.go).
	direct    *directTransport
	gp        *goproxy.ProxyHttpServer
	http      *http.Server
	stats     stats
	certHosts sync.Map // upstream hosts that asked for a client certificate

	tunnelDialer *dialer

	mu        sync.Mutex
	tunnelSet map[*tunnel]struct{} // hijacked connections, which http.Server no longer tracks
	closing   bool
	tunnels   sync.WaitGroup
	listener  net.Listener

	// readers pools the 4 KiB request readers of intercepted connections:
	// a kept-alive connection holds one only while a request is in flight.
	readers sync.Pool
	// bodies recycles the buffers of large request bodies (bodybuf.go).
	bodies bodyPool
	// heldBodies counts the bytes of the bodies of held requests (see
	// Options.MaxHeldBodies).
	heldBodies byteBudget
	// readingBodies counts the bytes of bodies being read (see
	// Options.MaxReadingBodies).
	readingBodies byteBudget
	// ownHosts are Options.OwnHosts' hosts, canonical (canonicalHosts).
	ownHosts []string
	// parked are the connections of requests held for approval.
	parked parkedConns
	// tlsConfig serves every intercepted connection's handshake.
	tlsConfig *tls.Config
	// credKey keys the hashes that name a request's credentials in
	// approvals (see credential).
	credKey []byte
	// inflating bounds how many compressed bodies inflate at once: a br
	// or zstd decoder takes what the stream's window asks, up to about 20
	// MiB for a hostile 40-byte body, so thousands of concurrent ones must
	// not all decode together. Inflating is quick (the output stops at
	// inspect.body_limit), so the others wait their turn.
	inflating chan struct{}
}

// New returns a Server; call Serve to accept connections.
func New(opts Options, logger *zap.Logger) (*Server, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Issuer == nil || opts.Decider == nil || opts.Audit == nil || opts.Approvals == nil || opts.Sessions == nil || opts.Classifier == nil {
		return nil, errors.New("proxy: Issuer, Decider, Audit, Approvals, Sessions and Classifier are required")
	}
	if opts.RootCAs == nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("proxy: load system roots: %w", err)
		}
		opts.RootCAs = pool
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 60 * time.Second
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = 1 << 20
	}
	if len(opts.MITM) == 0 {
		opts.MITM = []string{"*"}
	}
	opts.MITM = canonicalPatterns(opts.MITM)
	if opts.Hold <= 0 {
		opts.Hold = 120 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = defaultMaxConns(openFileLimit(), logger)
	}
	if opts.MaxConnsPerSession <= 0 {
		opts.MaxConnsPerSession = max(opts.MaxConns-opts.MaxConns/4, 1)
	}
	if opts.AuthGrace <= 0 {
		opts.AuthGrace = time.Second
	}
	if opts.HeldSweep <= 0 {
		opts.HeldSweep = time.Second
	}
	if opts.MaxHeldBodies <= 0 {
		opts.MaxHeldBodies = 512 << 20
	}
	if opts.MaxReadingBodies <= 0 {
		// Room for four bodies at a raised inspect.body_limit.
		opts.MaxReadingBodies = max(256<<20, 4*opts.BodyLimit)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	credKey, err := opts.Issuer.DeriveKey("credential binding")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s := &Server{
		opts:      opts,
		logger:    logger.Named("proxy"),
		tunnelSet: map[*tunnel]struct{}{},
		credKey:   credKey,
		inflating: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		auth:      newAuthGuard(opts.Now),
	}
	s.readers.New = func() any { return bufio.NewReaderSize(nil, 4096) }
	s.parked.every = opts.HeldSweep
	s.tlsConfig = s.newTLSConfig()
	s.heldBodies = byteBudget{max: opts.MaxHeldBodies, floor: opts.MaxHeldBodies / heldFloorShare}
	s.ownHosts = canonicalHosts(opts.OwnHosts)
	s.readingBodies = byteBudget{max: opts.MaxReadingBodies, floor: opts.MaxReadingBodies / heldFloorShare}
	s.opts.Decider = recoverDecider{d: opts.Decider, logger: s.logger}
	d := &dialer{guard: opts.Guard, resolver: opts.Resolver, resolve: opts.Resolve, own: opts.OwnAddrs, timeout: opts.UpstreamTimeout}
	s.transport = newTransport(d, opts.RootCAs, opts.UpstreamTimeout)
	s.transport.TLSClientConfig.GetClientCertificate = s.noteClientCertRequest
	s.direct = newDirectTransport(s.transport)
	s.transports = newSessionTransports(s.transport)
	s.tunnelDialer = d
	s.gp = s.newGoproxy()
	s.http = &http.Server{
		Handler:           s.gp,
		ReadHeaderTimeout: opts.HeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		// A plain-HTTP connection carries one head, checked by the
		// strict listener at maxHead; net/http's limit says the same.
		MaxHeaderBytes: maxHead,
		ErrorLog:       zap.NewStdLog(s.logger.Named("http")),
		// A plain-HTTP request's body reads need the connection's
		// deadline (see plainBody).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		// No HTTP/2 on the proxy port: an empty map disables it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	// One request per proxy connection: strictListener checks only the first
	// head on a connection, so a second one (after a 400 from the
	// non-proxy handler, say) must never be read by net/http. CONNECTs take
	// the connection over, and plain-HTTP answers close it anyway.
	s.http.SetKeepAlivesEnabled(false)
	return s, nil
}

// newGoproxy builds the goproxy front end with every unsafe default replaced.
func (s *Server) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Verbose = false
	gp.Logger = zap.NewStdLog(s.logger.Named("goproxy"))
	gp.AllowHTTP2 = false
	gp.KeepAcceptEncoding = true
	gp.KeepDestinationHeaders = false
	// Nothing may be sent by goproxy's own transport or dialers: every
	// forward goes through the pipeline, which returns the response itself.
	gp.Tr = &http.Transport{Proxy: nil, DialContext: refuseDial}
	gp.ConnectDial = nil
	gp.ConnectDialWithReq = func(*http.Request, string, string) (net.Conn, error) {
		return nil, errors.New("countersign: goproxy may not dial")
	}
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintln(w, "countersign: this is a proxy; point HTTP_PROXY and HTTPS_PROXY at it (countersign run does this for you).")
	})
	gp.OnRequest().HandleConnectFunc(s.handleConnect)
	gp.OnRequest().DoFunc(s.handlePlain)
	return gp
}

func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("countersign: goproxy may not dial")
}

// Serve accepts proxy clients on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	err := s.http.Serve(newStrictListener(ln, s, s.opts.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight requests finish until ctx is done,
// then closes every connection. Held requests are answered by closing the
// approval broker before calling Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)

	// Tunnels are hijacked, so http.Server does not track them: wait for
	// them (they end at their next idle point) until ctx is done, then close.
	done := make(chan struct{})
	go func() {
		s.tunnels.Wait()
		close(done)
	}()
	s.closeIdleTunnels()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for t := range s.tunnelSet {
			_ = t.conn.Close()
			if t.up != nil {
				// An opaque tunnel's relay also waits on its target.
				_ = t.up.Close()
			}
		}
		s.mu.Unlock()
		<-done
	}
	s.transports.CloseIdleConnections()
	s.direct.CloseIdleConnections()
	return err
}

func newRequestID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "r-" + hex.EncodeToString(b)
}

// canonicalPatterns writes inspect.mitm's patterns as CONNECT hosts are
// written (lower case, no trailing dot, IDNs as A-labels), so that a host
// meant to be intercepted is (found by review: "Example.Test" left
// example.test an opaque tunnel). A pattern that is no host name is kept
// lower-cased: it matches nothing a client can name.
func canonicalPatterns(patterns []string) []string {
	out := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if p == "*" {
			out = append(out, p)
			continue
		}
		wild, rest := "", p
		if r, ok := strings.CutPrefix(p, "*."); ok {
			wild, rest = "*.", r
		}
		if c, err := hostport.Canonical(rest); err == nil {
			out = append(out, wild+c)
		} else {
			out = append(out, strings.ToLower(p))
		}
	}
	return out
}

// defaultMaxConns is MaxConns's default: 16384, or less when the open-file
// limit would run out first (noted by review: at a limit of 4,096 one
// session's share of the slots used every descriptor, and the others'
// connections, upstream dials and the approval listener failed with
// EMFILE). An eighth of the limit, at least 1,024, is kept for upstream
// connections (pooled per session and host), the approval listener and
// files. A held request or an intercepted connection holds one descriptor;
// an opaque tunnel holds two, so a limit this low still lets tunnels alone
// run out (warned about).
func defaultMaxConns(fileLimit uint64, logger *zap.Logger) int {
	const want, floor = 16384, 64
	if fileLimit == 0 {
		return want
	}
	reserve := max(fileLimit/8, 1024)
	if fileLimit >= want+reserve {
		return want
	}
	n := floor
	if fileLimit > floor+reserve {
		n = int(fileLimit - reserve)
	}
	if logger != nil {
		logger.Warn("the open-file limit caps the proxy's connections below 16384; raise it (ulimit -n, LimitNOFILE=) for 10,000 held approvals",
			zap.Uint64("open_file_limit", fileLimit), zap.Int("max_conns", n))
	}
	return n
}
