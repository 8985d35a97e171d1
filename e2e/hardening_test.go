//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startServeURLs is startServe that also returns the approval listener's
// base URL.
func startServeURLs(t *testing.T, w *world) (proxyAddr, approvals string, pid int) {
	t.Helper()
	c, addr, _ := startServe(t, w)
	b, err := os.ReadDir(filepath.Join(w.stateDir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	want := "serve-" + strconv.Itoa(c.Process.Pid) + ".json"
	for _, e := range b {
		if e.Name() != want {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(w.stateDir, "run", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		return addr, d.URL, c.Process.Pid
	}
	t.Fatalf("no discovery file %s", want)
	return "", "", 0
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthzAndMetricsOnTheApprovalListener(t *testing.T) {
	w := newWorld(t, denyDeletes+"\n"+strings.TrimPrefix(approvePosts, "package countersign\n"), "listen: 127.0.0.1:0\n")
	addr, approvals, _ := startServeURLs(t, w)
	client := proxyClient(t, w, addr)
	for _, m := range []string{"GET", "GET", "DELETE"} {
		req, _ := http.NewRequestWithContext(t.Context(), m, "https://api.github.com/repos/acme/shop", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	code, body := get(t, approvals+"/healthz")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, body = get(t, approvals+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, re := range []string{
		`countersign_decisions_total\{provider="\w+",verdict="allow"\} 2`,
		`countersign_decisions_total\{provider="\w+",verdict="deny"\} 1`,
		`countersign_policy_eval_seconds_count 3`,
		`countersign_audit_write_seconds_count\{mode="sync"\} \d+`,
		`countersign_approvals_pending 0`,
		`countersign_requests_held 0`,
		`countersign_proxy_tunnels_open \d+`,
		`countersign_upstream_errors_total 0`,
		`process_resident_memory_bytes \S+`,
	} {
		if !regexp.MustCompile(`(?m)^` + re + `$`).MatchString(body) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}

	// The agent cannot read them through the proxy: the approval listener
	// is countersign's own.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", approvals+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "countersign:") {
		t.Errorf("/metrics through the proxy: %d %q, want 403", resp.StatusCode, b)
	}

	// While a request is held, the gauges say so; when its client gives
	// up, it is no longer held but its approval still waits for a human.
	ctx, cancel := context.WithCancel(t.Context())
	held := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.github.com/repos/acme/shop/issues", strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	waitMetrics := func(lines ...string) {
		t.Helper()
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			_, body = get(t, approvals+"/metrics")
			missing := false
			for _, l := range lines {
				if !regexp.MustCompile(`(?m)^` + l + `$`).MatchString(body) {
					missing = true
				}
			}
			if !missing {
				return
			}
		}
		t.Fatalf("/metrics never showed %q; last:\n%s", lines, body)
	}
	waitMetrics(`countersign_requests_held 1`, `countersign_approvals_pending 1`)
	cancel()
	if err := <-held; err == nil {
		t.Errorf("the held request was answered before its client gave up")
	}
	waitMetrics(`countersign_requests_held 0`, `countersign_approvals_pending 1`)
}

func TestMissingPolicyFileStopsServe(t *testing.T) {
	w := newWorld(t, denyDeletes, "listen: 127.0.0.1:0\n")
	missing := filepath.Join(w.dir, "policies", "policy.rego")
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Dir(missing)); err != nil {
		t.Fatal(err)
	}
	r := w.run("serve")
	if r.code != 2 || !strings.Contains(r.stderr, filepath.Dir(missing)) {
		t.Fatalf("serve with a missing policy: code %d, stderr %q; want exit 2 naming %s", r.code, r.stderr, filepath.Dir(missing))
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// rss returns the resident set of a process, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// TestThousandIdleTunnelsStayBounded opens 1,000 intercepted tunnels (CONNECT
// and TLS handshake done) that then sit idle, and measures what they cost
// the real serve process. SPEC 11 budgets 48 KiB per idle intercepted
// connection (make bench measures it); this test allows 96 KiB so it
// catches a leak, not noise.
func TestThousandIdleTunnelsStayBounded(t *testing.T) {
	w := newWorld(t, denyDeletes, "listen: 127.0.0.1:0\n")
	addr, _, pid := startServeURLs(t, w)
	n := 1000 * soakScale(t)
	pem, err := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	// Warm up (one tunnel, leaf certificate issued) before the baseline.
	client := proxyClient(t, w, addr)
	if resp, err := client.Get("https://api.github.com/repos/acme/shop"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	before := rss(t, pid)

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprint(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT %d: %v %v", i, resp, err)
		}
		tc := tls.Client(c, &tls.Config{ServerName: "api.github.com", RootCAs: roots})
		if err := tc.HandshakeContext(t.Context()); err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Time{})
		conns[len(conns)-1] = tc
	}
	after := rss(t, pid)
	per := (after - before) / int64(n)
	t.Logf("%d idle intercepted tunnels: RSS %d → %d MiB, %d KiB per tunnel", n, before>>20, after>>20, per>>10)
	if per > 96<<10 {
		t.Errorf("%d KiB per idle tunnel, want at most 96 KiB (SPEC 11 budget: 48 KiB)", per>>10)
	}

	// All of them gone, the proxy still answers.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if resp, err := client.Get("https://api.github.com/repos/acme/shop"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after closing the idle tunnels: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestApprovalListenerCapsConnections: whoever can reach the approval
// listener may open connections to it and leave them idle. Past its cap a
// newcomer closes the longest idle one, so they keep neither approvers
// out nor the process's file descriptors, and the proxy goes on serving
// (found by review: there was no cap, then one that idle connections
// filled).
func TestApprovalListenerCapsConnections(t *testing.T) {
	w := newWorld(t, denyDeletes, "listen: 127.0.0.1:0\n")
	addr, approvals, _ := startServeURLs(t, w)
	host := strings.TrimPrefix(approvals, "http://")
	const capped = 512 // maxApprovalConns
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range capped + 20 {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// Served once the idle ones' second of grace is over, well before the
	// header timeout (10 s) would have closed them.
	served := false
	for deadline := time.Now().Add(5 * time.Second); !served && time.Now().Before(deadline); {
		resp, err := (&http.Client{Timeout: time.Second}).Get(approvals + "/healthz")
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		served = resp.StatusCode == 200
		resp.Body.Close()
	}
	if !served {
		t.Fatal("/healthz was never served with the approval listener full of idle connections")
	}
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Errorf("the longest idle connection is still open: %v", err)
	}
	client := proxyClient(t, w, addr)
	resp, err := client.Get("https://api.github.com/repos/acme/shop")
	if err != nil {
		t.Fatalf("the proxy with the approval listener full: %v", err)
	}
	resp.Body.Close()
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
