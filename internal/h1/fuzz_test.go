package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// countingReader counts the bytes read from it, so that the stream offset of
// a request is known despite bufio's read-ahead.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func addSeeds(f *testing.F) {
	for _, tt := range refusalTests {
		f.Add([]byte(tt.give))
	}
	for _, c := range loadAttacks(f) {
		f.Add(c.raw)
	}
	for _, raw := range clientRequests(f) {
		f.Add(raw)
	}
	f.Add([]byte("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n" +
		"GET https://a/c HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.0\r\n\r\n"))
}

// FuzzReadRequest checks that ReadRequest never panics, fails only with the
// documented errors, and returns only requests whose framing is unambiguous
// and agrees with net/http's reading of the same bytes.
func FuzzReadRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bufSize := 4096
		if len(data)%2 == 1 {
			bufSize = 16 // exercise lines longer than the buffer
		}
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, bufSize)
		r := NewReader(br, Limits{MaxHeadBytes: 8192, MaxHeaders: 64})
		for range 8 {
			start := cr.n - br.Buffered()
			req, err := r.ReadRequest()
			if err != nil {
				checkReadError(t, err)
				return
			}
			body := checkRequest(t, req)
			compareWithNetHTTP(t, data[start:], req, body)
		}
	})
}

func checkReadError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	switch {
	case err == io.EOF, err == io.ErrUnexpectedEOF, err == ErrNotReusable:
	case errors.As(err, &e):
		switch e.Status {
		case 400, 405, 421, 431, 501, 505:
		default:
			t.Fatalf("unexpected status %d (%s)", e.Status, e.Reason)
		}
		if e.Reason == "" {
			t.Fatalf("*Error with status %d has no reason", e.Status)
		}
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

// checkRequest asserts the framing invariants of a returned request and
// returns its body (nil if reading it failed).
func checkRequest(t *testing.T, req *http.Request) []byte {
	t.Helper()
	h := req.Header
	if _, ok := h["Host"]; ok {
		t.Fatalf("Host left in Header: %q", h["Host"])
	}
	if _, ok := h["Transfer-Encoding"]; ok {
		t.Fatalf("Transfer-Encoding left in Header: %q", h["Transfer-Encoding"])
	}
	if req.ProtoMajor != 1 || (req.ProtoMinor != 0 && req.ProtoMinor != 1) {
		t.Fatalf("version %d.%d", req.ProtoMajor, req.ProtoMinor)
	}
	if req.ProtoMinor == 1 && req.Host == "" {
		t.Fatalf("HTTP/1.1 request without Host")
	}
	if !isToken([]byte(req.Method)) || req.Method == http.MethodConnect {
		t.Fatalf("method %q", req.Method)
	}
	if req.URL == nil || req.RequestURI == "" || req.RequestURI == "*" {
		t.Fatalf("URL %v, RequestURI %q", req.URL, req.RequestURI)
	}
	for _, v := range h["Upgrade"] {
		for _, p := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "/")
			if strings.EqualFold(strings.Trim(name, " \t"), "h2c") {
				t.Fatalf("h2c upgrade accepted: %q", v)
			}
		}
	}
	cl := h["Content-Length"]
	switch {
	case req.TransferEncoding != nil:
		if !slices.Equal(req.TransferEncoding, []string{"chunked"}) || req.ContentLength != -1 || len(cl) != 0 || req.ProtoMinor == 0 {
			t.Fatalf("ambiguous chunked framing: TE %q, ContentLength %d, CL %q, minor %d", req.TransferEncoding, req.ContentLength, cl, req.ProtoMinor)
		}
	case len(cl) == 0:
		if req.ContentLength != 0 || req.Body != http.NoBody {
			t.Fatalf("no framing but ContentLength %d, Body %T", req.ContentLength, req.Body)
		}
	case len(cl) == 1:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n != req.ContentLength || n < 0 || strings.ContainsAny(cl[0], "+-") {
			t.Fatalf("Content-Length %q but ContentLength %d", cl[0], req.ContentLength)
		}
	default:
		t.Fatalf("more than one Content-Length: %q", cl)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		checkReadError(t, err)
		return nil
	}
	if req.ContentLength >= 0 && int64(len(body)) != req.ContentLength {
		t.Fatalf("read %d body bytes, ContentLength %d", len(body), req.ContentLength)
	}
	return body
}

// compareWithNetHTTP checks that net/http reads raw (which starts with the
// request that ReadRequest returned as req) the same way: same method,
// target, host, framing and body. Everything ReadRequest accepts must be
// unambiguous, so both readers agree on it.
func compareWithNetHTTP(t *testing.T, raw []byte, req *http.Request, body []byte) {
	t.Helper()
	std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("accepted a request net/http refuses (%v): %q", err, raw)
	}
	if std.Method != req.Method || std.RequestURI != req.RequestURI || std.Host != req.Host ||
		std.ContentLength != req.ContentLength || !slices.Equal(std.TransferEncoding, req.TransferEncoding) ||
		std.Close != req.Close || std.ProtoMinor != req.ProtoMinor || std.URL.String() != req.URL.String() {
		t.Fatalf("net/http reads %q differently:\n std %s %s host=%q cl=%d te=%q close=%v\n ours %s %s host=%q cl=%d te=%q close=%v",
			raw, std.Method, std.RequestURI, std.Host, std.ContentLength, std.TransferEncoding, std.Close,
			req.Method, req.RequestURI, req.Host, req.ContentLength, req.TransferEncoding, req.Close)
	}
	for k, v := range req.Header {
		if !slices.Equal(std.Header[k], v) {
			t.Fatalf("header %q: net/http %q, ours %q", k, std.Header[k], v)
		}
	}
	if !httpguts.ValidHostHeader(req.Host) {
		t.Fatalf("accepted Host %q that httpguts refuses", req.Host)
	}
	if body == nil {
		return
	}
	stdBody, err := io.ReadAll(io.LimitReader(std.Body, 1<<20))
	if err != nil {
		t.Fatalf("net/http fails reading a body we read (%v): %q", err, raw)
	}
	if !bytes.Equal(stdBody, body) {
		t.Fatalf("body: net/http %q, ours %q", stdBody, body)
	}
}

// FuzzChunkedBody checks the chunked decoder against httputil's: whatever it
// accepts, httputil.NewChunkedReader decodes to the same bytes.
func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"3;a=b\r\nabc\r\n4\r\ndefg\r\n0;x\r\nX-T: 1\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"ffffffffffffffff\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &body{
			br:      bufio.NewReaderSize(bytes.NewReader(data), 16),
			owner:   &Reader{},
			chunked: true,
			maxHdrs: DefaultMaxHeaders,
		}
		got, err := io.ReadAll(b)
		if err != nil {
			var e *Error
			if err != io.ErrUnexpectedEOF && !errors.As(err, &e) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		want, err := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(data))))
		if err != nil {
			t.Fatalf("accepted chunked body httputil refuses (%v): %q", err, data)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %q, httputil %q", got, want)
		}
	})
}
