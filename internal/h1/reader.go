// Package h1 reads HTTP/1.x requests strictly, for use inside intercepted
// TLS tunnels (SPEC 10.2–10.4).
//
// Go's net/http server normalises ambiguous framing: it drops Content-Length
// when Transfer-Encoding is present, merges identical duplicate
// Content-Length fields and accepts obsolete line folding. A proxy that
// normalises can be made to disagree with the upstream about where a request
// ends (request smuggling), so Reader refuses every ambiguous head with an
// *Error and never returns a request for it. After an *Error the connection
// is out of sync and must be closed once the error response is written.
//
// What Reader accepts: a request line "METHOD SP request-target SP
// HTTP/1.0|HTTP/1.1" in origin-form or absolute-form (http or https); CRLF
// line endings only; header fields "name: value" with token names and values
// free of control characters other than HTAB; at most one Content-Length (a
// single decimal number) or exactly one "Transfer-Encoding: chunked" (HTTP/1.1
// only), never both; exactly one non-empty Host on HTTP/1.1 (at most one on
// HTTP/1.0); no h2c upgrade; no TRACE or TRACK; no request path that servers
// read in more than one way (dot-segments, "//", ";", backslashes, encoded
// control bytes: see checkPath). Everything else is refused.
package h1

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Default limits, used for zero fields of Limits.
const (
	DefaultMaxHeadBytes = 1 << 20
	DefaultMaxHeaders   = 500
)

const (
	// drainLimit is how much unread body Close discards to keep the
	// connection reusable.
	drainLimit = 256 << 10
	// maxTrailerBytes bounds the trailer section of a chunked body, which is
	// read and discarded.
	maxTrailerBytes = 64 << 10
	// maxChunkLine bounds a chunk-size line, extensions included.
	maxChunkLine = 4096
)

// Limits bounds what Reader reads for one request head.
type Limits struct {
	// MaxHeadBytes bounds the request line plus header section, line endings
	// included. Zero means DefaultMaxHeadBytes.
	MaxHeadBytes int
	// MaxHeaders bounds the number of header fields (and of trailer fields).
	// Zero means DefaultMaxHeaders.
	MaxHeaders int
	// LargeHead, when set, is called once per head that grows past
	// LargeHeadBytes, before more of it is buffered: the caller may count
	// it against a memory budget shared by many connections. An error it
	// returns refuses the head and is returned by ReadRequest as it is.
	LargeHead func() error
}

// LargeHeadBytes is the size past which a head is large (Limits.LargeHead):
// every ordinary client's heads are far smaller.
const LargeHeadBytes = 64 << 10

func (l Limits) withDefaults() Limits {
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	return l
}

// Error is a request refused by the strict reader. Status is the HTTP status
// to answer with (400, 405, 421, 431, 501 or 505) and Reason is text that is safe
// to show the client. The connection must be closed after the response.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return "h1: " + strconv.Itoa(e.Status) + " " + e.Reason
}

func refuse(status int, reason string) *Error {
	return &Error{Status: status, Reason: reason}
}

// ErrNotReusable is returned by ReadRequest when the connection is no longer
// in sync: a previous request was refused, failed, or had a body that was
// neither read to the end nor drainable by Close.
var ErrNotReusable = errors.New("h1: connection cannot be reused")

// Reader reads successive requests from one client connection. It is not
// safe for concurrent use, except that a request's Body may be read and
// closed from another goroutine (as http.Transport does) while the owner
// calls Reusable.
type Reader struct {
	br     *bufio.Reader
	lim    Limits
	body   *body // body of the last request returned, if it had one
	broken atomic.Bool
}

// NewReader returns a Reader that reads requests from br. Zero fields of lim
// take their defaults. Reader never reads past the end of a request's body,
// so br may hold the start of the next pipelined request.
func NewReader(br *bufio.Reader, lim Limits) *Reader {
	return &Reader{br: br, lim: lim.withDefaults()}
}

// ReadRequest reads and validates the next request head and returns the
// request. Its Body reads exactly the framed body from the same
// bufio.Reader: Content-Length bytes, or the decoded chunked body (trailers
// are read and discarded, never returned); it is http.NoBody when there is
// no body. A body that ends early yields io.ErrUnexpectedEOF and bad chunking
// yields an *Error. Body.Close discards up to 256 KiB of unread body.
//
// The request is shaped like one from http.ReadRequest: the Host header is
// moved to req.Host (for absolute-form, req.Host is the target's authority,
// which has been checked to agree with any Host header), Transfer-Encoding
// moves to req.TransferEncoding and ContentLength is -1 for chunked bodies;
// the Trailer field of a chunked request is dropped with the trailers.
// req.Close reflects "Connection: close" and HTTP/1.0 semantics. The request
// carries a background context. Callers must answer "Expect: 100-continue"
// themselves before reading the body.
//
// Errors: io.EOF when the connection closed cleanly before any byte of a new
// request; io.ErrUnexpectedEOF when it closed inside a head; *Error for a
// refused head (answer Status, then close); ErrNotReusable when the previous
// request left the connection out of sync; otherwise the read error. Any
// error ends the connection: later calls return ErrNotReusable.
//
// ReadRequest closes the previous request's body first, if it is still open.
func (r *Reader) ReadRequest() (*http.Request, error) {
	if b := r.body; b != nil {
		r.body = nil
		_ = b.Close() // Close reports nothing; the state is in b.
		if !b.finished() {
			r.broken.Store(true)
		}
	}
	if r.broken.Load() {
		return nil, ErrNotReusable
	}
	h, err := readHead(r.br, r.lim, false)
	if err != nil {
		r.broken.Store(true)
		return nil, err
	}
	req := h.request()
	if h.chunked || h.contentLength > 0 {
		b := &body{
			br:      r.br,
			owner:   r,
			chunked: h.chunked,
			n:       h.contentLength,
			maxHdrs: r.lim.MaxHeaders,
		}
		if h.chunked {
			b.n = 0
		}
		r.body = b
		req.Body = b
	}
	return req, nil
}

// Reusable reports whether another request can be read from the connection:
// no error has occurred and the last request's body, if any, has been read
// to its end (by the caller or by Body.Close). Callers must also honour
// req.Close.
func (r *Reader) Reusable() bool {
	if r.broken.Load() {
		return false
	}
	if b := r.body; b != nil && !b.finished() {
		return false
	}
	return true
}
