package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/hostport"
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// refusedError is returned by the dialer when the destination is not allowed:
// one of countersign's own listeners, or an address the guard refuses. It is
// a policy outcome (403), not an upstream failure (502).
type refusedError struct {
	host string
	msg  string
}

func (e *refusedError) Error() string { return e.msg }

// dialer resolves a name once, checks every address, and dials only an
// address it checked (SPEC 10.5): a name that resolves to a private address
// cannot slip past the guard through a second lookup.
type dialer struct {
	guard    hostport.Guard
	resolver Resolver
	// resolve pins "host:port" or "host" to an address ("127.0.0.1:8443" or
	// "127.0.0.1"), like curl --resolve.
	resolve map[string]string
	own     func() []netip.AddrPort
	timeout time.Duration
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", addr)
	}
	targets, err := d.lookup(ctx, host, port)
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	nd.Timeout = d.timeout
	var firstErr error
	for _, t := range targets {
		if d.isOwn(t) {
			return nil, &refusedError{host: host, msg: fmt.Sprintf("%s is countersign's own listener; an agent may not call it through the proxy", hostport.Join(host, port))}
		}
		if err := d.guard.Check(t.Addr()); err != nil {
			var be *hostport.BlockedError
			if errors.As(err, &be) {
				return nil, &refusedError{host: host, msg: fmt.Sprintf("%s resolves to %s, which is %s; list it in upstream.allow_addresses if this is intended", host, t.Addr(), be.Class)}
			}
			return nil, &refusedError{host: host, msg: err.Error()}
		}
		c, err := nd.DialContext(ctx, "tcp", t.String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no address for %s", host)
	}
	return nil, firstErr
}

func (d *dialer) lookup(ctx context.Context, host string, port int) ([]netip.AddrPort, error) {
	if pinned, ok := d.resolve[hostport.Join(host, port)]; ok {
		return parsePinned(pinned, port)
	}
	if pinned, ok := d.resolve[host]; ok {
		return parsePinned(pinned, port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
	}
	addrs, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out, nil
}

func parsePinned(s string, port int) ([]netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return []netip.AddrPort{ap}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, fmt.Errorf("upstream.resolve entry %q is not an address", s)
	}
	return []netip.AddrPort{netip.AddrPortFrom(a, uint16(port))}, nil
}

// isOwn reports whether t is one of countersign's listeners. A listener on an
// unspecified address (0.0.0.0, ::) owns its port on every local address.
func (d *dialer) isOwn(t netip.AddrPort) bool {
	if d.own == nil {
		return false
	}
	for _, o := range d.own() {
		if o.Port() != t.Port() {
			continue
		}
		if t.Addr().IsUnspecified() {
			// 0.0.0.0 and :: reach the local host's listeners.
			return true
		}
		switch {
		case o.Addr() == t.Addr():
			return true
		case o.Addr().IsLoopback() && t.Addr().IsLoopback():
			// 127.0.0.2 reaches a listener on 127.0.0.1 on some systems.
			return true
		case o.Addr().IsUnspecified() && isLocalAddr(t.Addr()):
			return true
		}
	}
	return false
}

func isLocalAddr(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// newTransport returns the upstream transport: verified TLS with the given
// roots, no proxy from the environment, our dialer, no transparent
// decompression (what the client asked for is what is sent) and a pool sized
// for many agent connections to few API hosts.
func newTransport(d *dialer, roots *x509.CertPool, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:       nil,
		DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// HTTP/1.1 upstream: one framing model end to end. An empty map
		// (not nil) disables the transport's automatic HTTP/2.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// upstreamSessionKey carries the session a request is forwarded for: kept
// upstream connections are reused only within it.
type upstreamSessionKey struct{}

// upstreamPool is the name of the kept connections a forwarded request may
// use: its session's.
func upstreamPool(ctx context.Context) string {
	id, _ := ctx.Value(upstreamSessionKey{}).(string)
	return id
}

// maxSessionTransports bounds the transports kept for sessions. Past it,
// the least recently used is dropped to make room: its idle connections are
// closed, and those of requests still under way on it close after the
// transport's idle timeout. Its session gets a fresh one when it comes back.
const maxSessionTransports = 256

// sessionTransports keeps an http.Transport per session. An upstream may
// bind what a connection is allowed to do to credentials sent on it before
// (NTLM and Negotiate authenticate the connection, not the request), so a
// connection that one session's request opened must never carry another
// session's: http.Transport pools by host alone.
type sessionTransports struct {
	base *http.Transport // configured; cloned for each session

	mu    sync.Mutex
	m     map[string]*sessionTransport
	clock uint64 // counts uses, for the least recently used
}

type sessionTransport struct {
	t    *http.Transport
	used uint64
}

func newSessionTransports(base *http.Transport) *sessionTransports {
	return &sessionTransports{base: base, m: map[string]*sessionTransport{}}
}

// get returns the transport of the request's session.
func (st *sessionTransports) get(ctx context.Context) *http.Transport {
	id := upstreamPool(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.clock++
	if e, ok := st.m[id]; ok {
		e.used = st.clock
		return e.t
	}
	if len(st.m) >= maxSessionTransports {
		oldest := ""
		for other, e := range st.m {
			if oldest == "" || e.used < st.m[oldest].used {
				oldest = other
			}
		}
		st.m[oldest].t.CloseIdleConnections()
		delete(st.m, oldest)
	}
	e := &sessionTransport{t: st.base.Clone(), used: st.clock}
	st.m[id] = e
	return e.t
}

// CloseIdleConnections closes every session's idle connections.
func (st *sessionTransports) CloseIdleConnections() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, e := range st.m {
		e.t.CloseIdleConnections()
	}
	st.base.CloseIdleConnections()
}
