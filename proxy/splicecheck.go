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

// httpRequestLine matches an HTTP/1 request line (any case, any spacing,
// any method, CONNECT's too) or the HTTP/2 preface, once leading blank
// lines are skipped as HTTP servers skip them.
var httpRequestLine = regexp.MustCompile(`(?i)^\S+[ \t]+\S+[ \t]+HTTP/[0-9]`)

// maxFirstLine bounds the first line read from a tunnel's client.
const maxFirstLine = 4096

// plainFirstLine reads the first line of a protocol other than TLS, whose
// first byte is first, and refuses it if it is, or could become, an HTTP
// request line in any form a server takes (blank lines first, any case,
// several blanks, HTTP/0.9, the PROXY protocol): a front end on a shared
// address routes plain HTTP by its Host header, whatever the tunnel's host
// (found by reviews). It fails closed: a line left unfinished (the client
// pausing, or past maxFirstLine) is refused, but for git's daemon
// protocol. A binary protocol passes: a first byte that cannot start text,
// or a control byte in its first binaryPrefix bytes; PostgreSQL's
// SSLRequest is refused (see pgSSLRequest). Complete lines that are not
// HTTP (SSH's banner, SMTP's EHLO) pass. The bytes read are returned, to
// be relayed first.
func plainFirstLine(client net.Conn, first byte, timeout time.Duration) ([]byte, string) {
	if binaryStart(first) {
		if first != 0 {
			return []byte{first}, ""
		}
		// Perhaps PostgreSQL's SSLRequest: its eight bytes come at once.
		_ = client.SetReadDeadline(time.Now().Add(timeout))
		rest := make([]byte, len(pgSSLRequest)-1)
		n, _ := io.ReadFull(client, rest)
		read := append([]byte{first}, rest[:n]...)
		if pgTLSRequest(read) {
			return nil, refusePGTLS
		}
		return read, ""
	}
	_ = client.SetReadDeadline(time.Now().Add(timeout))
	read := []byte{first}
	b := make([]byte, 1)
	for len(read) < maxFirstLine {
		switch {
		case bytes.HasPrefix(read, proxyV2Signature):
			// The PROXY protocol's binary header, after which a front end
			// that takes it reads an HTTP request.
			return nil, refusePlainHTTP
		case bytes.HasPrefix(proxyV2Signature, read):
			// Still its start (blank lines so far): read on.
		default:
			line := bytes.TrimLeft(read, "\r\n \t")
			if n := bytes.IndexByte(line, '\n'); n >= 0 {
				if httpLine(line[:n]) {
					return nil, refusePlainHTTP
				}
				return read, ""
			}
			if c := read[len(read)-1]; len(read) <= binaryPrefix && (c < 0x20 && c != '\r' && c != '\n' && c != '\t' || c == 0x7f) {
				// A control byte in the first few bytes: a binary
				// protocol's length or type (a database's message,
				// AMQP's header). Later, the line is read to its end
				// whatever it holds: some servers take control bytes in
				// a request line (nginx before 1.21.1; found by review).
				return read, ""
			}
			if read[len(read)-1] == 0 && gitDaemonRequest.Match(read) {
				return read, ""
			}
		}
		if _, err := io.ReadFull(client, b); err != nil {
			break
		}
		read = append(read, b[0])
	}
	// Unfinished: the client paused, went away or sent a line too long;
	// but git's daemon protocol (a pkt-line with NULs and no newline,
	// then a wait) names no server in a way a front end routes by.
	if gitDaemonRequest.Match(read) {
		return read, ""
	}
	return nil, refusePlainHTTP
}

// binaryPrefix is how far into a tunnel's first bytes a control byte marks
// a binary protocol (a length, a type, AMQP's "AMQP\x00").
const binaryPrefix = 5

// pgSSLRequest and the GSSAPI request open PostgreSQL's TLS: the
// ClientHello comes after the server's answer, past what countersign reads,
// and a shared front end (Neon's) picks the database by its server name
// (found by review). Such a tunnel is refused; PostgreSQL 17 clients can
// send the ClientHello first (sslnegotiation=direct), which is checked.
var (
	pgSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	pgGSSEncReq  = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}
	refusePGTLS  = "PostgreSQL's SSLRequest inside an opaque tunnel: the TLS that follows names its server past what countersign checks, and a shared front end picks the database by it; connect with sslnegotiation=direct (PostgreSQL 17), or have the host intercepted"
)

// pgTLSRequest reports whether b starts with PostgreSQL's SSLRequest or
// GSSENCRequest code, whatever the length before it says (a padded
// request is answered too; found by review).
func pgTLSRequest(b []byte) bool {
	return len(b) >= 8 && (bytes.Equal(b[4:8], pgSSLRequest[4:]) || bytes.Equal(b[4:8], pgGSSEncReq[4:]))
}

// proxyV2Signature starts the PROXY protocol's binary header, after which
// a front end that takes it from clients reads an HTTP request.
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// binaryStart reports whether a protocol's first byte cannot start a line
// of text, nor an HTTP method (memcached's binary protocol starts 0x80).
func binaryStart(b byte) bool {
	return b < 0x20 && b != '\r' && b != '\n' && b != '\t' || b >= 0x7f
}

// httpLine reports whether a complete first line is an HTTP request line,
// however spaced (nginx takes spaces inside the target too), an HTTP/0.9
// one (a method and a path or an absolute URL, whose host nginx routes
// by), or the PROXY protocol's, after which a front end that takes it
// reads an HTTP request (found by review).
func httpLine(line []byte) bool {
	line = bytes.TrimRight(line, "\r")
	return httpRequestLine.Match(line) || bytes.Contains(bytes.ToUpper(line), []byte(" HTTP/")) ||
		http09Line.Match(line) || bytes.HasPrefix(line, []byte("PROXY "))
}

var gitDaemonRequest = regexp.MustCompile(`^[0-9a-f]{4}git-(upload-pack|receive-pack|upload-archive) [^\x00 ]*\x00`)

var http09Line = regexp.MustCompile(`(?i)^\S+[ \t]+(/|\*|[a-z][a-z0-9+.-]*://)\S*[ \t]*$`)

const refusePlainHTTP = "plain HTTP inside an opaque tunnel, whose Host header could name another site on a shared address; send http:// requests to the proxy as plain HTTP, where they are decided"

// errSeen stops the handshake once the ClientHello has been read.
var errSeen = errors.New("client hello read")

// spliceCheck reads the client's first bytes from client (within timeout)
// and returns them, to be relayed first, or the reason the tunnel to host
// is refused.
func spliceCheck(client net.Conn, host string, timeout time.Duration) (first []byte, refusal string) {
	// The first byte may come late (a client that waits for the server):
	// whenever it comes, it is checked before anything is relayed.
	head := make([]byte, 1)
	if _, err := io.ReadFull(client, head); err != nil {
		return nil, ""
	}
	defer client.SetReadDeadline(time.Time{})
	if head[0] != tlsRecordHandshake {
		return plainFirstLine(client, head[0], timeout)
	}
	_ = client.SetReadDeadline(time.Now().Add(timeout))
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
