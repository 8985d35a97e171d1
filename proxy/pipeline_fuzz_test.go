package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/audit"
)

// scriptConn is a client connection that sends a fixed script and then
// half-closes: reads return the script, then io.EOF. Writes are kept.
type scriptConn struct {
	r  *bytes.Reader
	mu sync.Mutex
	w  bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}
func (c *scriptConn) Close() error        { return nil }
func (c *scriptConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// corpusSeeds are the literal request bytes of the attack corpus.
func corpusSeeds(tb testing.TB, via string) [][]byte {
	var out [][]byte
	for _, a := range loadAttackCorpus(tb) {
		if a.via != via {
			continue
		}
		var b []byte
		for _, s := range a.send {
			if s.unit != nil {
				if len(s.unit)*s.n > 64<<10 {
					continue
				}
				b = append(b, bytes.Repeat(s.unit, s.n)...)
				continue
			}
			b = append(b, s.lit...)
		}
		out = append(out, b)
	}
	return out
}

// FuzzTunnelRequests feeds arbitrary bytes to the request loop of an
// intercepted tunnel (what a client sends after the TLS handshake), with a
// real policy, audit log and upstream behind it. Whatever the bytes: no
// panic, the loop ends when the client does, every answer is an HTTP/1.1
// response, and nothing reaches the upstream without an allow decision in
// the audit log.
func FuzzTunnelRequests(f *testing.F) {
	for _, s := range corpusSeeds(f, "tls") {
		f.Add(s)
	}
	f.Add([]byte("GET /repos/acme/shop HTTP/1.1\r\nHost: api.github.com\r\n\r\nPOST /x HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 2\r\n\r\nhi"))
	h := newHarness(f, harnessOptions{policy: attackPolicy})
	f.Fuzz(func(t *testing.T, data []byte) {
		upBefore := len(h.up.Requests())
		recBefore := logSize(t, h.logPath)
		conn := &scriptConn{r: bytes.NewReader(data)}
		tun := h.srv.track(conn)
		if tun == nil {
			t.Fatal("proxy is shutting down")
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c := h.srv.newClientReader(conn)
			h.srv.serveHTTP1(&tunnelConn{t: tun, c: c, sess: h.sess, host: "api.github.com", port: 443, sniOK: true}, nil)
			// A held request goes on in a goroutine of its own; the
			// connection ends when its tunnel is untracked.
			h.srv.tunnels.Wait()
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("the request loop did not end after the client did: %q\n%s", data, buf[:runtime.Stack(buf, true)])
		}
		checkAnswers(t, conn.w.Bytes())
		checkDecided(t, h, upBefore, recBefore)
	})
}

// FuzzProxyPort sends arbitrary bytes to the proxy port (plain proxy
// requests and CONNECTs) over TCP. Whatever the bytes: the answer, if any,
// is an HTTP/1.x response, nothing reaches the upstream without an allow
// decision, and the proxy keeps serving.
func FuzzProxyPort(f *testing.F) {
	for _, s := range corpusSeeds(f, "proxy") {
		f.Add(s)
	}
	f.Add([]byte("GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n"))
	f.Add([]byte("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n"))
	h := newHarness(f, harnessOptions{policy: attackPolicy, configure: shortTimeouts})
	f.Fuzz(func(t *testing.T, data []byte) {
		upBefore := len(h.up.Requests())
		recBefore := logSize(t, h.logPath)
		// Let the fuzzer reach the authenticated paths.
		data = bytes.ReplaceAll(data, []byte("{auth}"), []byte(basic(h.sess.ID, h.password)))
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = c.Write(data)
			closeWrite(c)
		}()
		out, _ := io.ReadAll(c)
		// net/http answers an HTTP/1.0 request in HTTP/1.0 (a 407 to one,
		// say), as RFC 9110 allows.
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) && !bytes.HasPrefix(out, []byte("HTTP/1.0 ")) {
			t.Fatalf("answer is not an HTTP/1.x response: %q", out[:min(len(out), 200)])
		}
		checkDecided(t, h, upBefore, recBefore)
		checkServing(t, h)
	})
}

// checkServing checks that the proxy still accepts a new CONNECT.
func checkServing(t *testing.T, h *harness) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the proxy no longer accepts connections: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("the proxy no longer serves: a new CONNECT got %q, %v", line, err)
	}
}

// checkAnswers parses out as consecutive HTTP/1.1 responses.
func checkAnswers(t *testing.T, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
		t.Fatalf("answer is not an HTTP/1.1 response: %q", out[:min(len(out), 200)])
	}
	br := bufio.NewReader(bytes.NewReader(out))
	line, _ := br.ReadString('\n')
	if !strings.HasSuffix(line, "\r\n") || len(line) < len("HTTP/1.1 200 \r\n") {
		t.Fatalf("bad status line %q", line)
	}
}

// checkDecided checks that every request the upstream received since
// upBefore is matched by an allow decision recorded since the audit log
// had logBefore bytes.
func checkDecided(t *testing.T, h *harness, upBefore int, logBefore int64) {
	t.Helper()
	sent := len(h.up.Requests()) - upBefore
	allowed := 0
	for _, r := range readRecords(t, h.logPath, logBefore) {
		if r.Type == "decision" && r.Decision == "allow" {
			allowed++
		}
	}
	if sent > allowed {
		t.Fatalf("the upstream received %d requests but only %d were allowed", sent, allowed)
	}
}

func logSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// readRecords reads the audit log back from offset on, for t
// (harness.records reports to the harness's own T, which a fuzz target may
// not use).
//
// The log is appended to while it is read. offset came from a Stat that
// may have caught a batch half written (the kernel grows the file a page
// at a time), so a line that starts before offset is skipped; and a last
// line without its newline is still being written, so it is left for the
// next read.
func readRecords(t *testing.T, path string, offset int64) []*audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := max(offset-1, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, start, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	if offset > 0 && len(b) > 0 {
		if b[0] == '\n' {
			b = b[1:]
		} else if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		} else {
			b = nil
		}
	}
	return parseRecords(t, b)
}

// parseRecords parses the complete lines of b, a stretch of the audit log
// that starts at a line.
func parseRecords(t *testing.T, b []byte) []*audit.Record {
	t.Helper()
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []*audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("parse audit record %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}
