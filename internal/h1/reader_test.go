package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/wirebytes"
)

func newTestReader(s string, lim Limits) *Reader {
	return NewReader(bufio.NewReader(strings.NewReader(s)), lim)
}

// readAll reads one request and its whole body, returning the first error.
func readAll(raw string, lim Limits) (*http.Request, []byte, error) {
	r := newTestReader(raw, lim)
	req, err := r.ReadRequest()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(req.Body)
	return req, b, err
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

type refusalTest struct {
	name       string
	give       string
	lim        Limits
	wantStatus int
	wantReason string // checked when not empty
	tunnelOnly bool   // ValidateHead accepts it (CONNECT)
}

var refusalTests = []refusalTest{
	// Request line.
	{name: "http09", give: "GET /\r\n\r\n", wantStatus: 400},
	{name: "trailing space after version", give: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "double space", give: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "space in target", give: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "tab separator", give: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "method not a token", give: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400, wantReason: "invalid method"},
	{name: "empty method", give: " / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "lower-case version", give: "GET / http/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "version 1.10", give: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "version 1.2", give: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", wantStatus: 505},
	{name: "version 0.9", give: "GET / HTTP/0.9\r\nHost: a\r\n\r\n", wantStatus: 505},
	{name: "version 3.0", give: "GET / HTTP/3.0\r\nHost: a\r\n\r\n", wantStatus: 505},
	{name: "version 2.0", give: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", wantStatus: 505, wantReason: reasonH2},
	{name: "h2 preface", give: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", wantStatus: 505, wantReason: reasonH2},
	{name: "DEL in target", give: "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "non-ASCII target", give: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "fragment", give: "GET /#x HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "bad escape", give: "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "asterisk-form", give: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "authority-form CONNECT", give: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", wantStatus: 400, tunnelOnly: true},
	{name: "authority-form GET", give: "GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "relative target", give: "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "ftp absolute-form", give: "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "absolute-form without host", give: "GET https:///p HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "absolute-form userinfo", give: "GET https://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "absolute-form bad port", give: "GET https://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "absolute-form Host mismatch", give: "GET https://a/ HTTP/1.1\r\nHost: b\r\n\r\n", wantStatus: 421},
	{name: "absolute-form port mismatch", give: "GET https://a/ HTTP/1.1\r\nHost: a:8443\r\n\r\n", wantStatus: 421},
	{name: "leading CRLF", give: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},

	// Line endings.
	{name: "bare LF after request line", give: "GET / HTTP/1.1\nHost: a\r\n\r\n", wantStatus: 400, wantReason: reasonBareLF},
	{name: "bare LF after field", give: "GET / HTTP/1.1\r\nHost: a\n\r\n", wantStatus: 400, wantReason: reasonBareLF},
	{name: "bare LF ends head", give: "GET / HTTP/1.1\r\nHost: a\r\n\n", wantStatus: 400, wantReason: reasonBareLF},
	{name: "bare CR in field", give: "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", wantStatus: 400, wantReason: reasonBareCR},
	{name: "CR CR LF", give: "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", wantStatus: 400, wantReason: reasonBareCR},
	{name: "bare CR ends request line", give: "GET / HTTP/1.1\rHost: a\r\n\r\n", wantStatus: 400},

	// Field syntax.
	{name: "obs-fold", give: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", wantStatus: 400, wantReason: reasonObsFold},
	{name: "obs-fold tab", give: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", wantStatus: 400, wantReason: reasonObsFold},
	{name: "space before first field", give: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", wantStatus: 400, wantReason: reasonObsFold},
	{name: "space before colon", give: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", wantStatus: 400},
	{name: "tab before colon", give: "GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", wantStatus: 400},
	{name: "space in name", give: "GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", wantStatus: 400},
	{name: "NUL in name", give: "GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n", wantStatus: 400},
	{name: "0x80 in name", give: "GET / HTTP/1.1\r\nHost: a\r\nX\x80: b\r\n\r\n", wantStatus: 400},
	{name: "empty name", give: "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", wantStatus: 400},
	{name: "no colon", give: "GET / HTTP/1.1\r\nHost: a\r\nX b\r\n\r\n", wantStatus: 400},
	{name: "NUL in value", give: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x00c\r\n\r\n", wantStatus: 400},
	{name: "SOH in value", give: "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", wantStatus: 400},
	{name: "DEL in value", give: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f\r\n\r\n", wantStatus: 400},
	{name: "vertical tab in value", give: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x0bc\r\n\r\n", wantStatus: 400},

	// Framing.
	{name: "CL and TE", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400, wantReason: reasonCLTE},
	{name: "TE and CL", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", wantStatus: 400, wantReason: reasonCLTE},
	{name: "duplicate identical CL", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", wantStatus: 400},
	{name: "duplicate different CL", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", wantStatus: 400},
	{name: "CL list", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", wantStatus: 400},
	{name: "CL plus", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", wantStatus: 400},
	{name: "CL minus", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", wantStatus: 400},
	{name: "CL hex", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", wantStatus: 400},
	{name: "CL empty", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", wantStatus: 400},
	{name: "CL inner space", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", wantStatus: 400},
	{name: "CL overflow", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", wantStatus: 400},
	{name: "CL huge overflow", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", wantStatus: 400},
	{name: "TE gzip, chunked", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", wantStatus: 501},
	{name: "TE chunked, chunked", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", wantStatus: 501},
	{name: "TE xchunked", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", wantStatus: 501},
	{name: "TE two fields", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
	{name: "TE chunked then x", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", wantStatus: 400},
	{name: "TE quoted", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", wantStatus: 400},
	{name: "TE with parameter", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", wantStatus: 400},
	{name: "TE empty", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", wantStatus: 400},
	{name: "Content-Length declared as trailer", give: "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X, content-length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
	{name: "TE on HTTP/1.0", give: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},

	// Host.
	{name: "duplicate Host", give: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", wantStatus: 400},
	{name: "duplicate identical Host", give: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", wantStatus: 400},
	{name: "missing Host", give: "GET / HTTP/1.1\r\n\r\n", wantStatus: 400},
	{name: "empty Host", give: "GET / HTTP/1.1\r\nHost:\r\n\r\n", wantStatus: 400},
	{name: "empty Host on 1.0", give: "GET / HTTP/1.0\r\nHost: \r\n\r\n", wantStatus: 400},
	{name: "Host userinfo", give: "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", wantStatus: 400},
	{name: "Host with space", give: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", wantStatus: 400},
	{name: "Host port 0", give: "GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", wantStatus: 400},
	{name: "Host empty port", give: "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", wantStatus: 400},
	{name: "Host IPv6 zone", give: "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", wantStatus: 400},
	{name: "Host unbracketed IPv6", give: "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", wantStatus: 400},

	// Upgrade.
	{name: "h2c", give: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", wantStatus: 400, wantReason: reasonH2C},
	{name: "h2c in list", give: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo/2, H2C\r\n\r\n", wantStatus: 400, wantReason: reasonH2C},
	{name: "h2c second field", give: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n", wantStatus: 400, wantReason: reasonH2C},

	// Limits.
	{name: "too many fields", give: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim: Limits{MaxHeaders: 3}, wantStatus: 431},
	{name: "head too large", give: "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("x", 100) + "\r\n\r\n", lim: Limits{MaxHeadBytes: 64}, wantStatus: 431},
	{name: "request line too large", give: "GET /" + strings.Repeat("x", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n", lim: Limits{MaxHeadBytes: 64}, wantStatus: 431},
	{name: "head one byte too large", give: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", lim: Limits{MaxHeadBytes: 26}, wantStatus: 431},
}

func TestReadRequestRefusals(t *testing.T) {
	for _, tt := range refusalTests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(tt.give, tt.lim)
			req, err := r.ReadRequest()
			if req != nil {
				t.Fatalf("ReadRequest(%q) returned a request, want status %d", tt.give, tt.wantStatus)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ReadRequest(%q) error = %v, want *Error with status %d", tt.give, err, tt.wantStatus)
			}
			if e.Status != tt.wantStatus {
				t.Errorf("ReadRequest(%q) status = %d (%s), want %d", tt.give, e.Status, e.Reason, tt.wantStatus)
			}
			if tt.wantReason != "" && e.Reason != tt.wantReason {
				t.Errorf("ReadRequest(%q) reason = %q, want %q", tt.give, e.Reason, tt.wantReason)
			}
			if r.Reusable() {
				t.Errorf("Reusable() = true after a refusal")
			}
			if _, err := r.ReadRequest(); err != ErrNotReusable {
				t.Errorf("second ReadRequest error = %v, want ErrNotReusable", err)
			}
			// ValidateHead applies the same rules to the same bytes.
			if tt.tunnelOnly {
				return
			}
			if err := ValidateHead([]byte(tt.give), tt.lim); statusOf(err) != tt.wantStatus {
				t.Errorf("ValidateHead(%q) = %v, want status %d", tt.give, err, tt.wantStatus)
			}
		})
	}
}

// summary is the part of a request the tests compare.
type summary struct {
	Method           string
	RequestURI       string
	Host             string
	URL              string
	Proto            string
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	Header           http.Header
	Body             string
}

func summarise(t *testing.T, req *http.Request) summary {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if err := req.Body.Close(); err != nil {
		t.Fatalf("close body: %v", err)
	}
	return summary{
		Method:           req.Method,
		RequestURI:       req.RequestURI,
		Host:             req.Host,
		URL:              req.URL.String(),
		Proto:            req.Proto,
		ContentLength:    req.ContentLength,
		TransferEncoding: req.TransferEncoding,
		Close:            req.Close,
		Header:           req.Header,
		Body:             string(b),
	}
}

func TestReadRequestPipelined(t *testing.T) {
	raw := "POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: Example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"3\r\nabc\r\n4;ext=\"1\"\r\ndefg\r\n0\r\nX-Sum: 7\r\n\r\n" +
		"GET /c?q=1 HTTP/1.1\r\nhost: example.com:443\r\nx-multi: 1\r\nX-Multi: 2\r\nConnection: close\r\n\r\n"
	want := []summary{{
		Method: "POST", RequestURI: "/a", Host: "example.com", URL: "/a", Proto: "HTTP/1.1",
		ContentLength: 5,
		Header:        http.Header{"Content-Length": {"5"}},
		Body:          "hello",
	}, {
		Method: "POST", RequestURI: "/b", Host: "Example.com", URL: "/b", Proto: "HTTP/1.1",
		ContentLength: -1, TransferEncoding: []string{"chunked"},
		Header: http.Header{},
		Body:   "abcdefg",
	}, {
		Method: "GET", RequestURI: "/c?q=1", Host: "example.com:443", URL: "/c?q=1", Proto: "HTTP/1.1",
		Close:  true,
		Header: http.Header{"X-Multi": {"1", "2"}, "Connection": {"close"}},
	}}
	for _, bufSize := range []int{16, 4096} {
		t.Run(strconv.Itoa(bufSize), func(t *testing.T) {
			r := NewReader(bufio.NewReaderSize(strings.NewReader(raw), bufSize), Limits{})
			for i, w := range want {
				req, err := r.ReadRequest()
				if err != nil {
					t.Fatalf("ReadRequest #%d: %v", i, err)
				}
				if diff := cmp.Diff(w, summarise(t, req)); diff != "" {
					t.Errorf("request #%d mismatch (-want +got):\n%s", i, diff)
				}
				if !r.Reusable() {
					t.Errorf("Reusable() = false after request #%d", i)
				}
			}
			if _, err := r.ReadRequest(); err != io.EOF {
				t.Errorf("ReadRequest at end = %v, want io.EOF", err)
			}
		})
	}
}

// TestReadRequestUnreadBodies checks that ReadRequest drains bodies the
// caller did not read, so pipelining survives a handler that ignores them.
func TestReadRequestUnreadBodies(t *testing.T) {
	raw := "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: a\r\n\r\n"
	r := newTestReader(raw, Limits{})
	var got []string
	for {
		req, err := r.ReadRequest()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadRequest: %v", err)
		}
		got = append(got, req.RequestURI)
	}
	if diff := cmp.Diff([]string{"/a", "/b", "/c"}, got); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
}

func TestReadRequestForms(t *testing.T) {
	tests := []struct {
		name string
		give string
		want summary
	}{{
		name: "HTTP/1.0 without Host",
		give: "GET /x HTTP/1.0\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "/x", URL: "/x", Proto: "HTTP/1.0", Close: true, Header: http.Header{}},
	}, {
		name: "HTTP/1.0 keep-alive",
		give: "GET /x HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "/x", URL: "/x", Host: "a", Proto: "HTTP/1.0", Header: http.Header{"Connection": {"Keep-Alive"}}},
	}, {
		name: "HTTP/1.0 with body",
		give: "POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
		want: summary{Method: "POST", RequestURI: "/x", URL: "/x", Proto: "HTTP/1.0", Close: true, ContentLength: 2, Header: http.Header{"Content-Length": {"2"}}, Body: "hi"},
	}, {
		name: "absolute-form",
		give: "GET https://Example.com/p?q=1 HTTP/1.1\r\nHost: example.com.:443\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "https://Example.com/p?q=1", URL: "https://Example.com/p?q=1", Host: "Example.com", Proto: "HTTP/1.1", Header: http.Header{}},
	}, {
		name: "absolute-form HTTP/1.0 without Host",
		give: "GET http://a.example:8080/ HTTP/1.0\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "http://a.example:8080/", URL: "http://a.example:8080/", Host: "a.example:8080", Proto: "HTTP/1.0", Close: true, Header: http.Header{}},
	}, {
		name: "OWS trimmed, tab kept inside, obs-text kept",
		give: "GET / HTTP/1.1\r\nHost:\ta \r\nX-A: \t b\tc \t\r\nX-B: caf\xc3\xa9\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "/", URL: "/", Host: "a", Proto: "HTTP/1.1", Header: http.Header{"X-A": {"b\tc"}, "X-B": {"caf\xc3\xa9"}}},
	}, {
		name: "zero Content-Length",
		give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		want: summary{Method: "POST", RequestURI: "/", URL: "/", Host: "a", Proto: "HTTP/1.1", Header: http.Header{"Content-Length": {"0"}}},
	}, {
		name: "IPv6 Host",
		give: "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "/", URL: "/", Host: "[::1]:8443", Proto: "HTTP/1.1", Header: http.Header{}},
	}, {
		name: "WebSocket upgrade",
		give: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: summary{Method: "GET", RequestURI: "/ws", URL: "/ws", Host: "a", Proto: "HTTP/1.1", Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := newTestReader(tt.give, Limits{}).ReadRequest()
			if err != nil {
				t.Fatalf("ReadRequest(%q): %v", tt.give, err)
			}
			if diff := cmp.Diff(tt.want, summarise(t, req)); diff != "" {
				t.Errorf("ReadRequest(%q) mismatch (-want +got):\n%s", tt.give, diff)
			}
			if err := ValidateHead([]byte(tt.give), Limits{}); err != nil {
				t.Errorf("ValidateHead(%q) = %v, want nil", tt.give, err)
			}
		})
	}
}

func TestReadRequestNoBodyIsNoBody(t *testing.T) {
	req, err := newTestReader("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Limits{}).ReadRequest()
	if err != nil {
		t.Fatal(err)
	}
	if req.Body != http.NoBody {
		t.Errorf("Body = %T, want http.NoBody", req.Body)
	}
}

func TestReadRequestEOF(t *testing.T) {
	tests := []struct {
		name string
		give string
		want error
	}{
		{name: "nothing", give: "", want: io.EOF},
		{name: "inside request line", give: "GET / HT", want: io.ErrUnexpectedEOF},
		{name: "inside headers", give: "GET / HTTP/1.1\r\nHost: a\r\n", want: io.ErrUnexpectedEOF},
		{name: "after CR", give: "GET / HTTP/1.1\r", want: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestReader(tt.give, Limits{}).ReadRequest()
			if err != tt.want {
				t.Errorf("ReadRequest(%q) error = %v, want %v", tt.give, err, tt.want)
			}
		})
	}
}

func TestBodyErrors(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantErr    error // compared with errors.Is when set
		wantStatus int   // *Error status when set
	}{
		{name: "short CL body", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", wantErr: io.ErrUnexpectedEOF},
		{name: "chunk data cut", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", wantErr: io.ErrUnexpectedEOF},
		{name: "no last chunk", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", wantErr: io.ErrUnexpectedEOF},
		{name: "trailers cut", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", wantErr: io.ErrUnexpectedEOF},
		{name: "bare LF chunk size", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "no CRLF after data", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", wantStatus: 400},
		{name: "17 hex digits", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "size beyond int64", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "empty size", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "long chunk line", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "extension flood", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("x", 1000)+"\r\nx\r\n", 40) + "0\r\n\r\n", wantStatus: 400},
		{name: "trailer too large", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", 70) + "\r\n", wantStatus: 431},
		{name: "trailer NUL", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x00\r\n\r\n", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(tt.give, Limits{})
			req, err := r.ReadRequest()
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			_, err = io.ReadAll(req.Body)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("read body error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantStatus != 0 && statusOf(err) != tt.wantStatus {
				t.Errorf("read body error = %v, want *Error with status %d", err, tt.wantStatus)
			}
			if r.Reusable() {
				t.Errorf("Reusable() = true after a body error")
			}
			if _, err := r.ReadRequest(); err != ErrNotReusable {
				t.Errorf("next ReadRequest error = %v, want ErrNotReusable", err)
			}
		})
	}
}

func TestBodyClose(t *testing.T) {
	big := strings.Repeat("x", drainLimit+1)
	tests := []struct {
		name         string
		give         string
		wantReusable bool
	}{
		{name: "small CL body", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", wantReusable: true},
		{name: "small chunked body", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", wantReusable: true},
		{name: "CL body at drain limit", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(drainLimit) + "\r\n\r\n" + big[:drainLimit], wantReusable: true},
		{name: "CL body over drain limit", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, wantReusable: false},
		{name: "chunked body at drain limit", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(drainLimit, 16) + "\r\n" + big[:drainLimit] + "\r\n0\r\nX: y\r\n\r\n", wantReusable: true},
		{name: "chunked body over drain limit", give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n", wantReusable: false},
		{name: "truncated body", give: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", wantReusable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(tt.give, Limits{})
			req, err := r.ReadRequest()
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			if r.Reusable() {
				t.Errorf("Reusable() = true before the body was read")
			}
			if err := req.Body.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if got := r.Reusable(); got != tt.wantReusable {
				t.Errorf("Reusable() after Close = %v, want %v", got, tt.wantReusable)
			}
			if _, err := req.Body.Read(make([]byte, 1)); err != http.ErrBodyReadAfterClose {
				t.Errorf("Read after Close = %v, want http.ErrBodyReadAfterClose", err)
			}
			wantNext := error(io.EOF)
			if !tt.wantReusable {
				wantNext = ErrNotReusable
			}
			if _, err := r.ReadRequest(); err != wantNext {
				t.Errorf("next ReadRequest = %v, want %v", err, wantNext)
			}
		})
	}
}

// TestBodyConcurrentClose reads a body in one goroutine while another closes
// it and reads the next request, as http.Transport and the proxy loop do.
// Run with -race.
func TestBodyConcurrentClose(t *testing.T) {
	raw := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000) +
		"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
	for range 20 {
		r := newTestReader(raw, Limits{})
		req, err := r.ReadRequest()
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			buf := make([]byte, 100)
			for {
				if _, err := req.Body.Read(buf); err != nil {
					return
				}
			}
		})
		next, err := r.ReadRequest()
		wg.Wait()
		if err != nil {
			t.Fatalf("ReadRequest after concurrent read: %v", err)
		}
		if next.RequestURI != "/next" {
			t.Fatalf("next request = %q, want /next", next.RequestURI)
		}
	}
}

// genReader yields prefix, then filler bytes (filler(i) for the i-th) up to
// total bytes, then suffix, without holding the filler in memory, and counts
// what was read in off.
type genReader struct {
	prefix, suffix string
	filler         func(i int64) byte
	total          int64
	off            int64
}

func (g *genReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case g.off < int64(len(g.prefix)):
			c := copy(p[n:], g.prefix[g.off:])
			n += c
			g.off += int64(c)
		case g.off < g.total:
			p[n] = g.filler(g.off - int64(len(g.prefix)))
			n++
			g.off++
		case g.off < g.total+int64(len(g.suffix)):
			c := copy(p[n:], g.suffix[g.off-g.total:])
			n += c
			g.off += int64(c)
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

// field128 is a 128-byte header field line.
var field128 = "X-A: " + strings.Repeat("b", 121) + "\r\n"

func TestHugeHeadIsBounded(t *testing.T) {
	const total = 48 << 20
	tests := []struct {
		name string
		lim  Limits
		gen  *genReader
	}{{
		name: "one 48 MiB field",
		gen: &genReader{
			prefix: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ",
			filler: func(int64) byte { return 'a' },
			total:  total,
			suffix: "\r\n\r\n",
		},
	}, {
		name: "48 MiB of fields",
		lim:  Limits{MaxHeaders: 1 << 30},
		gen: &genReader{
			prefix: "GET / HTTP/1.1\r\nHost: a\r\n",
			filler: func(i int64) byte { return field128[i%int64(len(field128))] },
			total:  total,
			suffix: "\r\n",
		},
	}, {
		name: "48 MiB request line",
		gen: &genReader{
			prefix: "GET /",
			filler: func(int64) byte { return 'a' },
			total:  total,
			suffix: " HTTP/1.1\r\nHost: a\r\n\r\n",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := NewReader(bufio.NewReader(tt.gen), tt.lim)
			_, err := r.ReadRequest()
			runtime.ReadMemStats(&after)
			if got := statusOf(err); got != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("ReadRequest error = %v, want status 431", err)
			}
			if max := int64(DefaultMaxHeadBytes + 64<<10); tt.gen.off > max {
				t.Errorf("read %d bytes of the head, want at most %d", tt.gen.off, max)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("read %d bytes, allocated %d bytes", tt.gen.off, alloc)
			if alloc > 8<<20 {
				t.Errorf("allocated %d bytes reading a 48 MiB head, want < 8 MiB", alloc)
			}
		})
	}
}

func TestValidateHead(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantErr    error
		wantStatus int
	}{
		{name: "CONNECT", give: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"},
		{name: "CONNECT IPv6", give: "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"},
		{name: "CONNECT then TLS bytes", give: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n\x16\x03\x01"},
		{name: "absolute-form proxy request", give: "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"},
		{name: "CONNECT without port", give: "CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n", wantStatus: 400},
		{name: "CONNECT with path", give: "CONNECT a.example:443/x HTTP/1.1\r\nHost: a.example\r\n\r\n", wantStatus: 400},
		{name: "CONNECT with body", give: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nContent-Length: 5\r\n\r\nhello", wantStatus: 400},
		{name: "CONNECT with chunked body", give: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "incomplete", give: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.exa", wantErr: io.ErrUnexpectedEOF},
		{name: "empty", give: "", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateHead([]byte(tt.give), Limits{})
			switch {
			case tt.wantErr != nil:
				if err != tt.wantErr {
					t.Errorf("ValidateHead(%q) = %v, want %v", tt.give, err, tt.wantErr)
				}
			case tt.wantStatus != 0:
				if statusOf(err) != tt.wantStatus {
					t.Errorf("ValidateHead(%q) = %v, want status %d", tt.give, err, tt.wantStatus)
				}
			case err != nil:
				t.Errorf("ValidateHead(%q) = %v, want nil", tt.give, err)
			}
		})
	}
}

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Secret", "x-other"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Connection":    {"keep-alive"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Te":                  {"trailers"},
		"Trailer":             {"X-Sum"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Secret":            {"1"},
		"X-Other":             {"2"},
		"Authorization":       {"Bearer t"},
		"Content-Length":      {"5"},
	}
	RemoveHopByHop(h)
	want := http.Header{"Authorization": {"Bearer t"}, "Content-Length": {"5"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("RemoveHopByHop mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorText(t *testing.T) {
	err := error(&Error{Status: 400, Reason: reasonCLTE})
	if got, want := err.Error(), "h1: 400 "+reasonCLTE; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// attackCase is one case from testdata/attacks.txt.
type attackCase struct {
	name string
	want string // status code, "eof" or "ok"
	raw  []byte
}

func loadAttacks(tb testing.TB) []attackCase {
	tb.Helper()
	data, err := os.ReadFile("testdata/attacks.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var cases []attackCase
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "### "):
			f := strings.Fields(strings.TrimPrefix(line, "### "))
			if len(f) != 2 {
				tb.Fatalf("attacks.txt:%d: want \"### name want\", got %q", i+1, line)
			}
			cases = append(cases, attackCase{name: f[0], want: f[1]})
		case line == "" || strings.HasPrefix(line, "#"):
		case len(cases) == 0:
			tb.Fatalf("attacks.txt:%d: request bytes before the first case", i+1)
		default:
			b, err := wirebytes.Unescape(line)
			if err != nil {
				tb.Fatalf("attacks.txt:%d: %v", i+1, err)
			}
			c := &cases[len(cases)-1]
			c.raw = append(c.raw, b...)
		}
	}
	return cases
}

func TestAttackCorpus(t *testing.T) {
	cases := loadAttacks(t)
	if len(cases) < 50 {
		t.Fatalf("loaded %d attack cases, want at least 50", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readAll(string(c.raw), Limits{})
			switch c.want {
			case "ok":
				if err != nil {
					t.Errorf("reading %q: %v, want success", c.raw, err)
				}
			case "eof":
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("reading %q: %v, want io.ErrUnexpectedEOF", c.raw, err)
				}
			default:
				want, convErr := strconv.Atoi(c.want)
				if convErr != nil {
					t.Fatalf("bad want %q", c.want)
				}
				if got := statusOf(err); got != want {
					t.Errorf("reading %q: %v, want *Error with status %d", c.raw, err, want)
				}
			}
		})
	}
}

// TestSmuggledRequestStaysBody checks that a request hidden in a valid
// chunked body stays body bytes and the real next request is read intact.
func TestSmuggledRequestStaysBody(t *testing.T) {
	inner := "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	raw := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(inner)), 16) + "\r\n" + inner + "\r\n0\r\n\r\n" +
		"GET /real HTTP/1.1\r\nHost: a\r\n\r\n"
	r := newTestReader(raw, Limits{})
	req, err := r.ReadRequest()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil || string(b) != inner {
		t.Fatalf("body = %q, %v; want %q", b, err, inner)
	}
	next, err := r.ReadRequest()
	if err != nil || next.RequestURI != "/real" {
		t.Fatalf("next request = %v, %v; want /real", next, err)
	}
}

func BenchmarkReadRequest(b *testing.B) {
	one := "POST /v1/things?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n" +
		"Accept: application/json\r\nAuthorization: Bearer abc\r\nContent-Type: application/json\r\n" +
		"Content-Length: 13\r\n\r\n{\"a\":\"hello\"}"
	raw := strings.Repeat(one, 100)
	sr := strings.NewReader(raw)
	br := bufio.NewReader(sr)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for i := 0; b.Loop(); i++ {
		if i%100 == 0 {
			sr.Reset(raw)
			br.Reset(sr)
		}
		r := NewReader(br, Limits{})
		req, err := r.ReadRequest()
		if err != nil {
			b.Fatal(err)
		}
		if err := req.Body.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// LargeHead is called once per head, when the head's bytes pass
// LargeHeadBytes, whether in one long line or over many lines, before the
// rest is read; its error refuses the head.
func TestLargeHead(t *testing.T) {
	long := strings.Repeat("a", LargeHeadBytes)
	many := strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", LargeHeadBytes/1000)
	cases := []struct {
		name  string
		head  string
		calls int
	}{
		{"small", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", LargeHeadBytes-100) + "\r\n\r\n", 0},
		{"one long line", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + long + "\r\n\r\n", 1},
		{"many lines", "GET / HTTP/1.1\r\nHost: a\r\n" + many + many + "\r\n", 1},
		{"long target", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			rd := NewReader(bufio.NewReader(strings.NewReader(c.head+"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")), Limits{LargeHead: func() error { calls++; return nil }})
			if _, err := rd.ReadRequest(); err != nil {
				t.Fatal(err)
			}
			if calls != c.calls {
				t.Errorf("LargeHead called %d times, want %d", calls, c.calls)
			}
			// The count starts again with the next head.
			if _, err := rd.ReadRequest(); err != nil || calls != c.calls {
				t.Errorf("next head: err %v, calls %d, want %d", err, calls, c.calls)
			}
		})
	}

	refused := &Error{Status: 503, Reason: "busy"}
	src := &countingReader{r: strings.NewReader("GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 1<<20-100) + "\r\n\r\n")}
	rd := NewReader(bufio.NewReader(src), Limits{LargeHead: func() error { return refused }})
	if _, err := rd.ReadRequest(); err != refused {
		t.Fatalf("err %v, want LargeHead's", err)
	}
	if src.n > LargeHeadBytes+8192 {
		t.Errorf("%d bytes read before the refusal, want little past %d", src.n, LargeHeadBytes)
	}
}
