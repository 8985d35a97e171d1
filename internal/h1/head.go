package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/countersign/countersign/internal/hostport"
)

// Reasons shared by several checks (and by tests).
const (
	reasonH2        = "HTTP/2 is not supported inside intercepted tunnels"
	reasonH2C       = "h2c upgrade is not supported"
	reasonCLTE      = "Content-Length together with Transfer-Encoding"
	reasonBareLF    = "bare LF line ending"
	reasonBareCR    = "bare CR in line"
	reasonObsFold   = "obsolete line folding"
	reasonHeadLarge = "request head too large"
)

// readFields are the fields that the proxy, its classifiers or its
// approvals read. Servers behind CGI-style gateways read "X_Amz_Target"
// as X-Amz-Target: spelt with underscores, these fields are refused, as
// countersign would decide without the value the server acts on.
var readFields = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Connection": true, "Upgrade": true, "Expect": true, "Content-Type": true, "Content-Encoding": true,
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
	"X-Amz-Target": true, "X-Amz-Copy-Source": true, "X-Amz-Region-Set": true, "X-Amz-Security-Token": true,
	"X-Amz-Date": true, "X-Amz-Content-Sha256": true, "Smithy-Protocol": true,
	"Mcp-Session-Id": true, "Mcp-Protocol-Version": true, "Mcp-Method": true, "Mcp-Name": true, "Git-Protocol": true,
}

// checkUnderscores refuses a header that servers mapping '_' to '-' would
// read as another: one of readFields, or one that the request also sends
// spelt otherwise ("X_Team" with "X-Team"), where countersign and the
// server could each take a different value.
func checkUnderscores(hd http.Header) error {
	seen := map[string]string{}
	for key := range hd {
		if strings.IndexByte(key, '_') < 0 {
			continue
		}
		alias := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(key, "_", "-"))
		if readFields[alias] {
			return refuse(http.StatusBadRequest, fmt.Sprintf("header %s: an underscore where countersign reads %s (servers that map '_' to '-' would act on it); send %s", key, alias, alias))
		}
		if _, dup := hd[alias]; dup {
			return refuse(http.StatusBadRequest, fmt.Sprintf("headers %s and %s differ only in '_' and '-': servers that map one to the other would see two values", key, alias))
		}
		if other, dup := seen[alias]; dup {
			return refuse(http.StatusBadRequest, fmt.Sprintf("headers %s and %s differ only in '_' and '-': servers that map one to the other would see two values", other, key))
		}
		seen[alias] = key
	}
	return nil
}

// errLineTooLong is readLine's internal signal that a line exceeded its limit.
var errLineTooLong = errors.New("h1: line too long")

// largeHead calls Limits.LargeHead once, when a head's bytes pass
// LargeHeadBytes, whichever line they are in. at is what the line being
// read may hold before that.
type largeHead struct {
	at int
	fn func() error
}

func (l *largeHead) reached() error {
	l.at = math.MaxInt
	return l.fn()
}

// consumed moves the mark past a line of n bytes.
func (l *largeHead) consumed(n int) {
	if l != nil && l.at != math.MaxInt {
		l.at -= n
	}
}

// readLine reads one CRLF-terminated line of at most limit bytes (CRLF
// included) and returns it without the CRLF, and the number of bytes
// consumed. The line may alias br's buffer or *scratch and is valid until the
// next read. Errors: errLineTooLong; an *Error for a bare LF or CR; io.EOF if
// br was at EOF before the first byte; io.ErrUnexpectedEOF if it ended inside
// the line; otherwise br's error.
func readLine(br *bufio.Reader, limit int, scratch *[]byte, large *largeHead) ([]byte, int, error) {
	var acc []byte
	n := 0
	for {
		frag, err := br.ReadSlice('\n')
		n += len(frag)
		if n > limit {
			return nil, n, errLineTooLong
		}
		if large != nil && n > large.at {
			if err := large.reached(); err != nil {
				return nil, n, err
			}
		}
		switch err {
		case nil:
			line := frag
			if acc != nil {
				acc = append(acc, frag...)
				*scratch = acc[:0]
				line = acc
			}
			if len(line) < 2 || line[len(line)-2] != '\r' {
				return nil, n, refuse(http.StatusBadRequest, reasonBareLF)
			}
			line = line[:len(line)-2]
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, n, refuse(http.StatusBadRequest, reasonBareCR)
			}
			return line, n, nil
		case bufio.ErrBufferFull:
			if acc == nil {
				acc = (*scratch)[:0]
			}
			if cap(acc)-len(acc) < len(frag) {
				// Double (append grows large slices by only 1.25x, which
				// allocates several times the line), but not past limit.
				grown := make([]byte, len(acc), max(min(2*cap(acc), limit), len(acc)+len(frag)))
				copy(grown, acc)
				acc = grown
			}
			acc = append(acc, frag...)
		case io.EOF:
			if n == 0 {
				return nil, 0, io.EOF
			}
			return nil, n, io.ErrUnexpectedEOF
		default:
			return nil, n, err
		}
	}
}

func errHeadTooLarge() *Error {
	return refuse(http.StatusRequestHeaderFieldsTooLarge, reasonHeadLarge)
}

// head is a validated request head.
type head struct {
	method        string
	target        string
	minor         int // 0 or 1
	url           *url.URL
	absolute      bool
	header        http.Header
	chunked       bool
	contentLength int64 // 0 when there is no body, -1 when chunked
}

// ValidateHead checks that head begins with a complete request head that
// obeys the same rules as Reader.ReadRequest, with one difference: a CONNECT
// request in authority-form ("CONNECT host:port HTTP/1.1", port required,
// no body) is accepted, since this is meant for the proxy's outer listener.
// Bytes after the head (a body, a pipelined request) are ignored. It returns
// nil, an *Error, or io.ErrUnexpectedEOF when head ends before the head does
// (and is still within the limits).
func ValidateHead(head []byte, lim Limits) error {
	br := bufio.NewReaderSize(bytes.NewReader(head), 4096)
	_, err := readHead(br, lim.withDefaults(), true)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readHead reads and validates one request head from br. lim must have its
// defaults filled in.
func readHead(br *bufio.Reader, lim Limits, allowConnect bool) (*head, error) {
	var scratch []byte
	budget := lim.MaxHeadBytes
	var mark largeHead // on the stack: readLine keeps no pointer to it
	var large *largeHead
	if lim.LargeHead != nil && budget > LargeHeadBytes {
		mark = largeHead{at: LargeHeadBytes, fn: lim.LargeHead}
		large = &mark
	}

	line, n, err := readLine(br, budget, &scratch, large)
	switch {
	case err == errLineTooLong:
		return nil, errHeadTooLarge()
	case err != nil:
		return nil, err
	}
	budget -= n
	large.consumed(n)
	h, err := parseRequestLine(line, allowConnect)
	if err != nil {
		return nil, err
	}

	h.header = make(http.Header)
	var single []string
	fields := 0
	underscores := false
	for {
		line, n, err := readLine(br, budget, &scratch, large)
		switch {
		case err == errLineTooLong:
			return nil, errHeadTooLarge()
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		budget -= n
		large.consumed(n)
		if len(line) == 0 {
			break
		}
		if fields++; fields > lim.MaxHeaders {
			return nil, refuse(http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
		}
		name, value, err := parseField(line)
		if err != nil {
			return nil, err
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		underscores = underscores || strings.IndexByte(key, '_') >= 0
		if vs, ok := h.header[key]; ok {
			h.header[key] = append(vs, string(value))
			continue
		}
		// Most fields appear once: their one-value lists share a backing
		// array instead of an allocation each (as net/textproto does).
		if len(single) == 0 {
			single = make([]string, 8)
		}
		vs := single[:1:1]
		single = single[1:]
		vs[0] = string(value)
		h.header[key] = vs
	}
	if underscores {
		if err := checkUnderscores(h.header); err != nil {
			return nil, err
		}
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// parseField splits a header or trailer field line into a token name and a
// value with surrounding whitespace trimmed.
func parseField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, refuse(http.StatusBadRequest, reasonObsFold)
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return nil, nil, refuse(http.StatusBadRequest, "header line without a colon")
	}
	name = line[:colon]
	if !isToken(name) {
		return nil, nil, refuse(http.StatusBadRequest, "invalid header field name")
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return nil, nil, refuse(http.StatusBadRequest, "control character in header field value")
		}
	}
	return name, value, nil
}

func parseRequestLine(line []byte, allowConnect bool) (*head, error) {
	if string(line) == "PRI * HTTP/2.0" {
		return nil, refuse(http.StatusHTTPVersionNotSupported, reasonH2)
	}
	malformed := refuse(http.StatusBadRequest, "malformed request line")
	method, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return nil, malformed
	}
	target, version, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return nil, malformed
	}
	h := &head{}
	switch v := string(version); {
	case v == "HTTP/1.1":
		h.minor = 1
	case v == "HTTP/1.0":
		h.minor = 0
	case v == "HTTP/2.0":
		return nil, refuse(http.StatusHTTPVersionNotSupported, reasonH2)
	case len(v) == 8 && strings.HasPrefix(v, "HTTP/") && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return nil, refuse(http.StatusHTTPVersionNotSupported, "HTTP version not supported")
	default:
		return nil, refuse(http.StatusBadRequest, "malformed HTTP version")
	}
	if !isToken(method) {
		return nil, refuse(http.StatusBadRequest, "invalid method")
	}
	h.method = string(method)
	if h.method == "TRACE" || h.method == "TRACK" {
		// The upstream would echo the request back, headers included.
		return nil, refuse(http.StatusMethodNotAllowed, "TRACE is not forwarded: it echoes the request, credentials included")
	}
	if len(target) == 0 {
		return nil, malformed
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return nil, refuse(http.StatusBadRequest, "invalid byte in request-target")
		}
		if c == '#' {
			return nil, refuse(http.StatusBadRequest, "fragment in request-target")
		}
	}
	h.target = string(target)
	badTarget := refuse(http.StatusBadRequest, "invalid request-target")
	switch {
	case h.target == "*":
		return nil, refuse(http.StatusBadRequest, "asterisk-form request-target is not supported")
	case h.method == http.MethodConnect:
		if !allowConnect {
			return nil, refuse(http.StatusBadRequest, "CONNECT is not supported inside intercepted tunnels")
		}
		if !validAuthority(h.target, true) {
			return nil, refuse(http.StatusBadRequest, "CONNECT needs an authority-form host:port target")
		}
		h.url = &url.URL{Host: h.target}
	case h.target[0] == '/':
		u, err := url.ParseRequestURI(h.target)
		if err != nil {
			return nil, badTarget
		}
		h.url = u
	case hasPrefixFold(h.target, "http://") || hasPrefixFold(h.target, "https://"):
		u, err := url.ParseRequestURI(h.target)
		if err != nil || u.Opaque != "" {
			return nil, badTarget
		}
		if u.User != nil {
			return nil, refuse(http.StatusBadRequest, "userinfo in request-target")
		}
		if !validAuthority(u.Host, false) {
			return nil, badTarget
		}
		h.url, h.absolute = u, true
	default:
		return nil, refuse(http.StatusBadRequest, "request-target must be origin-form or absolute-form")
	}
	if h.method != http.MethodConnect {
		if e := checkPath(rawPathOf(h.target, h.absolute)); e != nil {
			return nil, e
		}
	}
	return h, nil
}

// validate applies the rules that need the whole header section.
func (h *head) validate() error {
	hosts := h.header["Host"]
	switch {
	case len(hosts) > 1:
		return refuse(http.StatusBadRequest, "duplicate Host header")
	case len(hosts) == 0 && h.minor == 1:
		return refuse(http.StatusBadRequest, "missing Host header")
	case len(hosts) == 1 && hosts[0] == "":
		return refuse(http.StatusBadRequest, "empty Host header")
	case len(hosts) == 1 && !validAuthority(hosts[0], false):
		return refuse(http.StatusBadRequest, "invalid Host header")
	}
	if h.absolute && len(hosts) == 1 && !sameAuthority(h.url.Scheme, h.url.Host, hosts[0]) {
		return refuse(http.StatusMisdirectedRequest, "Host header does not match the request target")
	}

	cls, tes := h.header["Content-Length"], h.header["Transfer-Encoding"]
	if len(cls) > 0 && len(tes) > 0 {
		return refuse(http.StatusBadRequest, reasonCLTE)
	}
	if len(tes) > 0 {
		switch {
		case h.minor == 0:
			return refuse(http.StatusBadRequest, "Transfer-Encoding in an HTTP/1.0 request")
		case len(tes) > 1:
			return refuse(http.StatusBadRequest, "more than one Transfer-Encoding field")
		case strings.EqualFold(tes[0], "chunked"):
			h.chunked, h.contentLength = true, -1
		case isTokenList(tes[0]):
			return refuse(http.StatusNotImplemented, "Transfer-Encoding other than chunked is not supported")
		default:
			return refuse(http.StatusBadRequest, "invalid Transfer-Encoding")
		}
	}
	if len(cls) > 0 {
		if len(cls) > 1 {
			return refuse(http.StatusBadRequest, "more than one Content-Length field")
		}
		n, ok := parseContentLength(cls[0])
		if !ok {
			return refuse(http.StatusBadRequest, "invalid Content-Length")
		}
		h.contentLength = n
	}
	if h.method == http.MethodConnect && (h.chunked || h.contentLength != 0) {
		return refuse(http.StatusBadRequest, "CONNECT request with a body")
	}

	for _, v := range h.header["Trailer"] {
		for _, p := range strings.Split(v, ",") {
			switch textproto.CanonicalMIMEHeaderKey(textproto.TrimString(p)) {
			case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
				return refuse(http.StatusBadRequest, "framing field declared as a trailer")
			}
		}
	}
	for _, v := range h.header["Upgrade"] {
		for _, p := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(textproto.TrimString(p), "/")
			if strings.EqualFold(name, "h2c") {
				return refuse(http.StatusBadRequest, reasonH2C)
			}
		}
	}
	return nil
}

// request builds the *http.Request for a validated head. Body is
// http.NoBody; the caller replaces it when the request has a body.
func (h *head) request() *http.Request {
	req := &http.Request{
		Method:        h.method,
		URL:           h.url,
		Proto:         "HTTP/1." + strconv.Itoa(h.minor),
		ProtoMajor:    1,
		ProtoMinor:    h.minor,
		Header:        h.header,
		Body:          http.NoBody,
		ContentLength: h.contentLength,
		RequestURI:    h.target,
	}
	req.Host = h.url.Host
	if req.Host == "" {
		if hosts := h.header["Host"]; len(hosts) == 1 {
			req.Host = hosts[0]
		}
	}
	delete(req.Header, "Host")
	if h.chunked {
		req.TransferEncoding = []string{"chunked"}
		delete(req.Header, "Transfer-Encoding")
		// Trailers are read and discarded, never forwarded (SPEC 10.2).
		delete(req.Header, "Trailer")
	}
	conn := req.Header["Connection"]
	req.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	if h.minor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive") {
		req.Close = true
	}
	return req
}

// validAuthority reports whether s is host[:port] with a reg-name of
// letters, digits, '-', '.', '_' and '~', or a bracketed IPv6 address without
// zone, and an optional port of 1–65535 (required if requirePort).
// Canonicalisation (IDNA, numeric forms) is left to the hostport package.
func validAuthority(s string, requirePort bool) bool {
	host, port, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if host == "" {
			return false
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
				return false
			}
		}
	}
	if !hasPort {
		return !requirePort
	}
	if port == "" || len(port) > 5 {
		return false
	}
	p := 0
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
		p = p*10 + int(port[i]-'0')
	}
	return p >= 1 && p <= 65535
}

// sameAuthority reports whether two authorities name the same host and port,
// comparing canonical forms (default port from scheme) when both
// canonicalise, and case-insensitively otherwise.
func sameAuthority(scheme, a, b string) bool {
	def := 0
	switch strings.ToLower(scheme) {
	case "http":
		def = 80
	case "https":
		def = 443
	}
	ha, pa, errA := hostport.Split(a, def)
	hb, pb, errB := hostport.Split(b, def)
	if errA == nil && errB == nil {
		return ha == hb && pa == pb
	}
	return strings.EqualFold(a, b)
}

// parseContentLength accepts 1*DIGIT that fits in an int64.
func parseContentLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// isTokenList reports whether s is a comma-separated list of tokens (with
// optional whitespace), such as "gzip, chunked".
func isTokenList(s string) bool {
	for _, p := range strings.Split(s, ",") {
		if !isToken([]byte(textproto.TrimString(p))) {
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
