package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/internal/wirebytes"
)

// attackPolicy is the policy the attack corpus runs under: three rules that
// the attacks try to get around, everything else allowed.
const attackPolicy = `package countersign

deny contains {"id": "A-HOST", "msg": "denied.test is off limits"} if input.request.host == "denied.test"

deny contains {"id": "A-PATH", "msg": "deleting acme/shop is not allowed"} if {
	input.request.method == "DELETE"
	input.request.path == "/repos/acme/shop"
}

deny contains {"id": "A-UPLOAD", "msg": "uploads are not allowed"} if {
	input.request.method == "PUT"
	startswith(input.request.path, "/uploads/")
}

deny contains {"id": "A-ROOT", "msg": "the root of root.test is off limits"} if {
	input.request.host == "root.test"
	input.request.path == "/"
}
`

// attack is one case of proxy/testdata/attacks (see its README).
type attack struct {
	file, name string
	line       int
	via        string // tls, raw, proxy
	connect    string
	sni        string
	alpn       []string
	status     int // 0: none (the TLS handshake fails); -1: see check
	audit      string
	upstream   int
	absent     string
	closes     bool
	reason     string
	body       string // with upstream 1, the body the upstream must receive
	send       []segment
}

// segment is literal bytes, or unit repeated n times.
type segment struct {
	lit  []byte
	unit []byte
	n    int
}

func loadAttackCorpus(t testing.TB) []*attack {
	t.Helper()
	files, err := filepath.Glob("testdata/attacks/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no attack corpus in testdata/attacks: %v", err)
	}
	var out []*attack
	for _, f := range files {
		out = append(out, parseAttackFile(t, f)...)
	}
	return out
}

func parseAttackFile(t testing.TB, path string) []*attack {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*attack
	var cur *attack
	fail := func(n int, format string, args ...any) {
		t.Helper()
		t.Fatalf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "### "):
			cur = &attack{file: filepath.Base(path), name: strings.TrimSpace(line[4:]), line: n,
				via: "tls", connect: "api.github.com:443", status: -1}
			out = append(out, cur)
		case line == "" || strings.HasPrefix(line, "#"):
		case cur == nil:
			fail(n, "%q before the first case", line)
		case strings.HasPrefix(line, "> "):
			segs, err := parseSend(line[2:])
			if err != nil {
				fail(n, "%v", err)
			}
			cur.send = append(cur.send, segs...)
		default:
			key, val, ok := strings.Cut(line, ":")
			if !ok {
				fail(n, "want \"key: value\" or \"> bytes\", got %q", line)
			}
			val = strings.TrimSpace(val)
			switch key {
			case "via":
				if val != "tls" && val != "raw" && val != "proxy" {
					fail(n, "via %q: want tls, raw or proxy", val)
				}
				cur.via = val
			case "connect":
				cur.connect = val
			case "sni":
				cur.sni = val
			case "alpn":
				cur.alpn = strings.Split(val, ",")
			case "status":
				if val == "none" {
					cur.status = 0
					break
				}
				s, err := strconv.Atoi(val)
				if err != nil || s < 100 || s > 599 {
					fail(n, "status %q: want an HTTP status or none", val)
				}
				cur.status = s
			case "audit":
				cur.audit = val
			case "upstream":
				if val != "0" && val != "1" {
					fail(n, "upstream %q: want 0 or 1", val)
				}
				cur.upstream = int(val[0] - '0')
			case "absent":
				cur.absent = val
			case "closes":
				cur.closes = val == "yes"
			case "reason":
				cur.reason = val
			default:
				fail(n, "unknown key %q", key)
			}
		}
	}
	for _, c := range out {
		switch {
		case c.status < 0:
			t.Fatalf("%s:%d: case %s has no status", path, c.line, c.name)
		case c.audit == "":
			t.Fatalf("%s:%d: case %s has no audit expectation: every refusal is audited", path, c.line, c.name)
		case len(c.send) == 0:
			t.Fatalf("%s:%d: case %s sends nothing", path, c.line, c.name)
		}
	}
	return out
}

// parseSend decodes one "> " line: escapes, and {repeat N:unit}.
func parseSend(s string) ([]segment, error) {
	var out []segment
	for s != "" {
		i := strings.Index(s, "{repeat ")
		if i < 0 {
			b, err := wirebytes.Unescape(s)
			if err != nil {
				return nil, err
			}
			out = append(out, segment{lit: b})
			break
		}
		if i > 0 {
			b, err := wirebytes.Unescape(s[:i])
			if err != nil {
				return nil, err
			}
			out = append(out, segment{lit: b})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, errors.New("unterminated {repeat")
		}
		spec := s[i+len("{repeat ") : i+end]
		count, unit, ok := strings.Cut(spec, ":")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("bad {repeat %s}: want {repeat N:unit}", spec)
		}
		u, err := wirebytes.Unescape(unit)
		if err != nil {
			return nil, err
		}
		out = append(out, segment{unit: u, n: n})
		s = s[i+end+1:]
	}
	return out, nil
}

// reader streams the case's bytes with its placeholders filled in.
func (a *attack) reader(vars map[string]string) io.Reader {
	var rs []io.Reader
	fill := func(b []byte) []byte {
		for k, v := range vars {
			b = bytes.ReplaceAll(b, []byte(k), []byte(v))
		}
		return b
	}
	for _, s := range a.send {
		if s.unit == nil {
			rs = append(rs, bytes.NewReader(fill(s.lit)))
			continue
		}
		rs = append(rs, &repeatReader{unit: fill(s.unit), left: int64(len(s.unit)) * int64(s.n)})
	}
	return io.MultiReader(rs...)
}

type repeatReader struct {
	unit []byte
	off  int
	left int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:min(len(p), n+int(min(r.left, int64(len(r.unit)-r.off))))], r.unit[r.off:])
		n += c
		r.off = (r.off + c) % len(r.unit)
		r.left -= int64(c)
	}
	return n, nil
}

// staticResolver answers a few names and refuses the rest: tests never ask
// real DNS.
type staticResolver map[string]string

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
}

// attackHarness is a harness whose upstream traffic is counted.
type attackHarness struct {
	*harness
	// counter and plainCounter count every byte the proxy sends upstream,
	// over TLS and as plain http://.
	counter, plainCounter *testinfra.Relay
	health                *http.Client // kept alive across cases: one handshake, not one per check
}

func (ah *attackHarness) upstreamBytes() int64 {
	return ah.counter.Sent() + ah.plainCounter.Sent()
}

func newAttackHarness(t *testing.T) *attackHarness {
	t.Helper()
	ah := &attackHarness{}
	h := newHarness(t, harnessOptions{policy: attackPolicy, configure: func(o *Options) {
		upstream, plain := o.Resolve["example.test:443"], o.Resolve["example.test:80"]
		var err error
		if ah.counter, err = testinfra.StartRelay(upstream); err != nil {
			t.Fatal(err)
		}
		if ah.plainCounter, err = testinfra.StartRelay(plain); err != nil {
			t.Fatal(err)
		}
		o.Resolve = map[string]string{}
		for _, host := range []string{"api.github.com", "example.test", "denied.test", "ec2.us-east-1.amazonaws.com"} {
			o.Resolve[host+":443"] = ah.counter.Addr()
			o.Resolve[host+":80"] = ah.plainCounter.Addr()
		}
		o.Resolve["self.test"] = "127.0.0.1"
		o.Resolver = staticResolver{"metadata.google.internal": "169.254.169.254"}
	}})
	t.Cleanup(ah.counter.Close)
	t.Cleanup(ah.plainCounter.Close)
	ah.harness = h
	ah.health = h.client()
	// Make sure no case can make the proxy dial anything outside loopback:
	// every address the corpus names must be one the guard refuses.
	for _, a := range []string{"169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "fd00:ec2::254",
		"169.254.170.2", "10.0.0.1", "::ffff:10.0.0.1", "169.254.1.1", "0.0.0.0"} {
		if err := h.srv.opts.Guard.Check(netip.MustParseAddr(a)); err == nil {
			t.Fatalf("the harness guard allows %s; refusing to run attacks that could reach it", a)
		}
	}
	return ah
}

func (h *attackHarness) vars() map[string]string {
	_, port, _ := net.SplitHostPort(h.addr)
	return map[string]string{"{auth}": basic(h.sess.ID, h.password), "{selfport}": port}
}

// outcome is what a case got back.
type outcome struct {
	status    int    // 0 when there was no HTTP answer
	body      string // of the first answer
	handshake error  // TLS handshake error, for status none
	closed    bool   // the proxy closed the connection after the answer
}

// run sends one case and reads the first answer.
func (h *attackHarness) run(t *testing.T, a *attack) outcome {
	t.Helper()
	vars := h.vars()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var conn net.Conn = c
	if a.via != "proxy" {
		target := fill(a.connect, vars)
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, vars["{auth}"])
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT %s: %v", target, err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return outcome{status: resp.StatusCode, body: string(b)}
		}
		conn = &bufConn{Conn: c, r: br}
		if a.via == "tls" {
			host, _, _ := net.SplitHostPort(target)
			sni := a.sni
			switch sni {
			case "":
				sni = strings.TrimSuffix(host, ".")
			case "-":
				sni = ""
			}
			alpn := a.alpn
			if alpn == nil {
				alpn = []string{"http/1.1"}
			}
			roots := x509.NewCertPool()
			roots.AddCert(h.ca.Certificate())
			// The leaf names the canonical CONNECT host; a client whose SNI
			// disagrees on purpose must not be stopped by its own check.
			tc := tls.Client(conn, &tls.Config{ServerName: sni, RootCAs: roots, NextProtos: alpn, InsecureSkipVerify: true})
			if err := tc.HandshakeContext(t.Context()); err != nil {
				return outcome{handshake: err}
			}
			conn = tc
		}
		br = bufio.NewReader(conn)
	}

	writeDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, a.reader(vars))
		writeDone <- err
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		<-writeDone
		return outcome{closed: true}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := outcome{status: resp.StatusCode, body: string(body)}
	if a.closes {
		// Nothing else may come: no second answer to a smuggled request.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		extra, err := br.ReadByte()
		out.closed = err != nil && !isTimeout(err)
		if err == nil {
			t.Errorf("after the answer the proxy sent more: %q…", []byte{extra})
		}
	}
	c.Close()
	<-writeDone
	return out
}

func fill(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// check runs one case and verifies the invariants: documented status, no
// upstream bytes (or exactly the one request expected), an audit record,
// and a proxy that still serves an ordinary request.
func (h *attackHarness) check(t *testing.T, a *attack) {
	t.Helper()
	beforeBytes := h.upstreamBytes()
	beforeReqs := len(h.up.Requests())
	logBefore := logSize(t, h.logPath)

	got := h.run(t, a)

	if a.status == -1 {
		// A generated case: refused, or forwarded with its framing intact
		// (the mutated field is just another header next to a
		// Content-Length).
		c := *a
		switch got.status {
		case http.StatusOK:
			c.status, c.upstream, c.audit, c.body = 200, 1, "allow", "0\r\n\r\n"
		case http.StatusBadRequest, http.StatusNotImplemented:
			c.status = got.status
		default:
			t.Errorf("answer %d %q, want 400 or 501, or 200 with the framing intact", got.status, got.body)
		}
		a = &c
	}

	switch {
	case a.status == 0 && got.handshake == nil:
		t.Errorf("TLS handshake succeeded (answer %d), want it refused", got.status)
	case a.status != 0 && got.status != a.status:
		t.Errorf("answer %d %q (handshake error %v), want %d", got.status, got.body, got.handshake, a.status)
	}
	if a.status >= 400 && got.status == a.status && !strings.HasPrefix(got.body, "countersign:") && !strings.Contains(got.body, "countersign:") {
		t.Errorf("refusal body %q does not come from countersign", got.body)
	}
	if a.reason != "" && !strings.Contains(got.body, a.reason) {
		t.Errorf("answer body %q does not mention %q", got.body, a.reason)
	}
	if a.closes && !got.closed {
		t.Errorf("the connection stayed open after the refusal")
	}

	reqs := h.up.Requests()[beforeReqs:]
	sent := h.upstreamBytes() - beforeBytes
	switch a.upstream {
	case 0:
		if sent != 0 || len(reqs) != 0 {
			t.Errorf("the upstream received %d bytes (%d requests), want none", sent, len(reqs))
		}
	case 1:
		if len(reqs) != 1 {
			t.Fatalf("the upstream received %d requests, want 1", len(reqs))
		}
		if a.absent != "" && len(reqs[0].Header.Values(a.absent))+len(reqs[0].Trailer.Values(a.absent)) > 0 {
			t.Errorf("the upstream received %s: header %q, trailer %q", a.absent, reqs[0].Header.Values(a.absent), reqs[0].Trailer.Values(a.absent))
		}
		if a.body != "" && string(reqs[0].Body) != a.body {
			t.Errorf("the upstream received the body %q, want %q", reqs[0].Body, a.body)
		}
	}

	// Refusals are recorded before the answer is written, but a failed TLS
	// handshake is recorded after the client has seen it fail: poll,
	// bounded.
	recs := readRecords(t, h.logPath, logBefore)
	for deadline := time.Now().Add(5 * time.Second); !auditHas(recs, a.audit) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		recs = readRecords(t, h.logPath, logBefore)
	}
	if !auditHas(recs, a.audit) {
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%s/%s%v err=%q", r.Type, r.Decision, r.RuleIDs, r.Error))
		}
		t.Errorf("no audit record %q among the new records %v", a.audit, got)
	}

	// The proxy is still healthy.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://api.github.com/repos/acme/shop", nil)
	resp, err := h.health.Do(req)
	if err != nil {
		t.Fatalf("after the attack an ordinary request failed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "acme/shop") {
		t.Fatalf("after the attack an ordinary request got %d %q", resp.StatusCode, body)
	}
	// And it still accepts connections (the request above reused one).
	checkServing(t, h.harness)
}

// auditHas reports whether recs hold the expected record: "allow", "blocked"
// (a forward record with an error) or a deny decision with that rule id.
func auditHas(recs []*audit.Record, want string) bool {
	for _, r := range recs {
		switch want {
		case "allow":
			if r.Type == "decision" && r.Decision == "allow" {
				return true
			}
		case "blocked":
			if r.Type == "forward" && r.Error != "" {
				return true
			}
		default:
			if r.Type == "decision" && r.Decision == "deny" && slices.Contains(r.RuleIDs, want) {
				return true
			}
		}
	}
	return false
}

func TestAttackCorpus(t *testing.T) {
	cases := loadAttackCorpus(t)
	if len(cases) < 150 {
		t.Fatalf("loaded %d attack cases, want at least 150", len(cases))
	}
	h := newAttackHarness(t)
	seen := map[string]bool{}
	for _, a := range cases {
		if seen[a.name] {
			t.Fatalf("%s:%d: duplicate case name %s", a.file, a.line, a.name)
		}
		seen[a.name] = true
		t.Run(strings.TrimSuffix(a.file, ".txt")+"/"+a.name, func(t *testing.T) { h.check(t, a) })
	}
	t.Run("smuggler-bytes", func(t *testing.T) {
		for _, a := range smugglerByteCases(smugglerBytes()) {
			t.Run(a.name, func(t *testing.T) { h.check(t, a) })
		}
	})
}

// smugglerBytes are the bytes smugglerByteCases tries in each position: in
// `make test` the ones with a history, with COUNTERSIGN_SOAK all 256.
func smugglerBytes() []byte {
	if os.Getenv("COUNTERSIGN_SOAK") != "" {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		return all
	}
	return []byte{0x00, 0x01, 0x09, 0x0b, 0x0c, 0x0d, 0x1f, 0x20, 0x2c, 0x3b, 0x7f, 0x80, 0x85, 0xa0, 0xff}
}

// smugglerByteCases are smuggler.py's "special character" families: byte b
// before the name, between name and colon, before the value and after it,
// each with a Content-Length. Whatever b is, the proxy never sends a body
// framed differently from how it decided on it: the request is refused
// (400 or 501, nothing sent) when the field is malformed or is a
// Transfer-Encoding next to a Content-Length; when b leaves a field that
// is just another header (a name the server would not read as
// Transfer-Encoding), the request is forwarded with its Content-Length
// framing intact and the upstream receives exactly those 5 bytes.
func smugglerByteCases(bs []byte) []*attack {
	var out []*attack
	for _, b := range bs {
		for _, pos := range []struct{ name, field string }{
			{"name-prefix", string(b) + "Transfer-Encoding: chunked"},
			{"name-suffix", "Transfer-Encoding" + string(b) + ": chunked"},
			{"value-prefix", "Transfer-Encoding:" + string(b) + "chunked"},
			{"value-suffix", "Transfer-Encoding: chunked" + string(b)},
			{"value-middle", "Transfer-Encoding: chun" + string(b) + "ked"},
		} {
			raw := "POST /things HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n" + pos.field + "\r\n\r\n0\r\n\r\n"
			out = append(out, &attack{
				name: fmt.Sprintf("%s-%02x", pos.name, b), via: "tls", connect: "example.test:443",
				status: -1, audit: "PROTOCOL", send: []segment{{lit: []byte(raw)}},
			})
		}
	}
	return out
}
