package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"github.com/countersign/countersign/internal/hostport"
)

// An opaque tunnel (a host outside inspect.mitm that the policy lets
// through) is dialled to the CONNECT host's address, but what answers on a
// shared address (a CDN's, a cloud front end's) is chosen by the TLS
// ClientHello's server name: CONNECT registry.npmjs.org:443 carrying a
// ClientHello for attacker.workers.dev reached the attacker through
// Cloudflare (found by review). spliceCheck reads the client's first bytes
// before any is relayed and refuses a tunnel whose TLS names another
// server, hides it (Encrypted Client Hello), or that carries plain HTTP,
// whose Host header a shared front end routes by in the same way.

// extensionECH is the encrypted_client_hello extension's code point.
const extensionECH = 0xfe0d

// plainHTTP matches the start of an HTTP/1 request line or the HTTP/2
// connection preface.
var plainHTTP = regexp.MustCompile(`^[A-Z]+ [/*hH]`)

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// errSeen stops the handshake once the ClientHello has been read.
var errSeen = errors.New("client hello read")

// spliceCheck reads the client's first bytes from client (within timeout)
// and returns them, to be relayed first, or the reason the tunnel to host
// is refused.
func spliceCheck(client net.Conn, host string, timeout time.Duration) (first []byte, refusal string) {
	// The first byte may come late (a client that waits for the server):
	// whenever it comes, it is checked before anything is relayed.
	head := make([]byte, 1, 18)
	if _, err := io.ReadFull(client, head); err != nil {
		return nil, ""
	}
	_ = client.SetReadDeadline(time.Now().Add(timeout))
	defer client.SetReadDeadline(time.Time{})
	if head[0] != tlsRecordHandshake {
		// Protocols other than TLS (SSH, a database's) name no server, but
		// plain HTTP names one in its Host header. A method is upper-case
		// letters and a space: read until something else comes.
		for len(head) < 17 && isUpper(head[len(head)-1]) {
			b := make([]byte, 1)
			if _, err := io.ReadFull(client, b); err != nil {
				return nil, "the tunnel's first bytes could be an HTTP request line that did not come whole in time"
			}
			head = append(head, b[0])
		}
		if head[len(head)-1] == ' ' && len(head) > 1 {
			// The request target: a path, "*", or an absolute URL. SMTP's
			// "EHLO name" is not HTTP.
			b := make([]byte, 1)
			if _, err := io.ReadFull(client, b); err != nil {
				return nil, "the tunnel's first bytes could be an HTTP request line that did not come whole in time"
			}
			head = append(head, b[0])
		}
		if plainHTTP.Match(head) || len(head) >= 17 && isUpper(head[16]) {
			return nil, "plain HTTP inside an opaque tunnel, whose Host header could name another site on a shared address; send http:// requests to the proxy as plain HTTP, where they are decided"
		}
		return head, ""
	}
	cc := &captureConn{Conn: client, pending: head}
	cc.buf.Write(head)
	var hello *tls.ClientHelloInfo
	srv := tls.Server(cc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = h
		return nil, errSeen
	}})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := srv.HandshakeContext(ctx)
	cancel()
	if hello == nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, "the client sent no complete TLS ClientHello in time"
		}
		return nil, "the client's first bytes are a TLS record but not a ClientHello countersign can read"
	}
	if slices.Contains(hello.Extensions, extensionECH) {
		return nil, "the ClientHello hides the server it is for (Encrypted Client Hello), which could be another site on the same address; connect without ECH"
	}
	if reason := sniMismatch(hello.ServerName, host); reason != "" {
		return nil, reason
	}
	return cc.buf.Bytes(), ""
}

// sniMismatch returns why a ClientHello naming sni may not go through a
// tunnel to host, or "".
func sniMismatch(sni, host string) string {
	if _, err := netip.ParseAddr(host); err == nil {
		if sni == "" {
			return ""
		}
		return "the ClientHello names " + sni + " but the tunnel is to the address " + host + ", which may serve it too; CONNECT to " + sni
	}
	if sni == "" {
		return "the ClientHello names no server, and the address of " + host + " may serve others; send the server name (SNI)"
	}
	if c, err := hostport.Canonical(sni); err != nil || c != host {
		return "the ClientHello names " + sni + ", not " + host + ", the host the tunnel was allowed to; CONNECT to the host you connect to"
	}
	return ""
}

// captureConn records what a TLS server reads from the client and
// discards what it writes (its alert): the client's handshake goes on with
// the real server, to which the recorded bytes are relayed first.
type captureConn struct {
	net.Conn
	buf     bytes.Buffer
	pending []byte // read already, handed to the TLS server first
}

func (c *captureConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}

func (c *captureConn) Write(p []byte) (int, error) { return len(p), nil }

func (c *captureConn) Close() error { return nil }
