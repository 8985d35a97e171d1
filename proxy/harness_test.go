package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// http.Transport keeps idle upstream connections' readers until
		// CloseIdleConnections; the harness closes them, but the runtime may
		// still be unwinding.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// allowAll is a policy that allows everything.
const allowAll = `package countersign
`

type harness struct {
	t        testing.TB
	srv      *Server
	addr     string
	ca       *mitm.CA
	up       *testinfra.Upstream
	log      *audit.Log
	logPath  string
	broker   *approval.Broker
	engine   *policy.Engine
	sess     *session.Info
	password string
	notes    chan approval.Notification
}

type chanNotifier chan approval.Notification

func (c chanNotifier) Notify(_ context.Context, n approval.Notification) {
	select {
	case c <- n:
	default:
	}
}

type harnessOptions struct {
	policy string // Rego source of package countersign
	// auditor, when set, wraps the real audit log.
	auditor   func(*audit.Log) Auditor
	configure func(*Options)
	// session, when set, adjusts the agent session before the proxy starts.
	session func(*session.Info)
	hold    time.Duration
	// store, when set, is the approval store instead of one in memory.
	store approval.Store
	// evalTimeout is policy.eval_timeout. The default is generous: on a
	// loaded machine under the race detector a decision can wait longer
	// than the production default (250ms) for a CPU, and would then fail
	// closed for reasons that have nothing to do with the test.
	evalTimeout time.Duration
}

// newHarness starts a real proxy with a real policy engine, audit log and
// approval broker in front of a fake TLS upstream that answers for
// api.github.com, ec2.us-east-1.amazonaws.com and example.test.
func newHarness(t testing.TB, ho harnessOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t}

	var err error
	h.ca, _, err = mitm.LoadOrCreate(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := testinfra.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	h.up, err = testinfra.StartUpstream(upCA, testinfra.FakeAPIs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.up.Close() })
	// Plain http:// requests through the proxy go to the same upstream, so
	// that one forwarded by mistake is seen there.
	plainUp, err := h.up.StartPlain()
	if err != nil {
		t.Fatal(err)
	}

	if ho.policy == "" {
		ho.policy = allowAll
	}
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "policy.rego"), []byte(ho.policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if ho.evalTimeout == 0 {
		ho.evalTimeout = 10 * time.Second
	}
	h.engine, err = policy.New(t.Context(), policy.Options{Source: policy.Source{Paths: []string{polDir}}, EvalTimeout: ho.evalTimeout}, nil)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}

	h.logPath = filepath.Join(dir, "audit.jsonl")
	h.log, err = audit.Open(audit.Options{Path: h.logPath, Fsync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var aud Auditor = h.log
	if ho.auditor != nil {
		aud = ho.auditor(h.log)
	}
	h.notes = make(chan approval.Notification, 64)
	store := ho.store
	if store == nil {
		store = approval.NewMemoryStore()
	}
	h.broker, err = approval.NewBroker(approval.Options{Store: store, Auditor: aud, Notifiers: []approval.Notifier{chanNotifier(h.notes)}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	h.sess = &session.Info{ID: "s-test", Name: "alice/test", User: "alice", Command: "test"}
	if ho.session != nil {
		ho.session(h.sess)
	}
	h.password = "pw-" + strings.Repeat("x", 20)
	reg := session.NewRegistry(nil, session.Credential{Username: h.sess.ID, Password: h.password, Session: h.sess})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	hold := ho.hold
	if hold == 0 {
		hold = 30 * time.Second
	}
	opts := Options{
		Issuer:     mitm.NewIssuer(h.ca, mitm.IssuerOptions{}),
		Decider:    h.engine,
		Audit:      aud,
		Approvals:  h.broker,
		Sessions:   reg,
		Classifier: action.NewClassifier(),
		RootCAs:    upCA.Pool(),
		HeldSweep:  20 * time.Millisecond,
		Guard:      hostport.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Resolve:    upstreamResolve(h.up, plainUp, "api.github.com", "ec2.us-east-1.amazonaws.com", "example.test"),
		OwnAddrs: func() []netip.AddrPort {
			return []netip.AddrPort{netip.MustParseAddrPort(h.addr)}
		},
		Hold:             hold,
		HandshakeTimeout: 5 * time.Second,
		HeaderTimeout:    5 * time.Second,
		UpstreamTimeout:  10 * time.Second,
		RecordInput:      true,
	}
	if ho.configure != nil {
		ho.configure(&opts)
	}
	h.srv, err = New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.broker.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := h.log.Close(); err != nil {
			t.Errorf("close audit log: %v", err)
		}
	})
	return h
}

func (h *harness) proxyURL(withCreds bool) *url.URL {
	u := &url.URL{Scheme: "http", Host: h.addr}
	if withCreds {
		u.User = url.UserPassword(h.sess.ID, h.password)
	}
	return u
}

// client is an agent's HTTP client: proxied, trusting the countersign CA.
func (h *harness) client() *http.Client {
	return h.clientAs(h.sess.ID, h.password)
}

// clientAs is client with other proxy credentials (another session's).
func (h *harness) clientAs(user, password string) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.Certificate())
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: h.addr, User: url.UserPassword(user, password)}),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (h *harness) do(method, target, body string, header ...string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// tunnel opens an authenticated CONNECT to target and returns the raw
// connection after the 200, with a reader over it.
func (h *harness) tunnel(target string) (net.Conn, *bufio.Reader) {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	auth := base64.StdEncoding.EncodeToString([]byte(h.sess.ID + ":" + h.password))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		h.t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	return c, br
}

// tlsTunnel opens a CONNECT and completes TLS with serverName as SNI.
func (h *harness) tlsTunnel(target, serverName string) (*tls.Conn, *bufio.Reader) {
	h.t.Helper()
	c, br := h.tunnel(target)
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.Certificate())
	cfg := &tls.Config{ServerName: serverName, RootCAs: roots}
	if host, _, _ := net.SplitHostPort(target); host != serverName {
		// The leaf is for the CONNECT host; a mismatching client must not
		// be stopped by its own verification for this test.
		cfg.InsecureSkipVerify = true
	}
	tc := tls.Client(&bufConn{Conn: c, r: br}, cfg)
	if err := tc.HandshakeContext(h.t.Context()); err != nil {
		h.t.Fatalf("TLS handshake: %v", err)
	}
	return tc, bufio.NewReader(tc)
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// records reads the audit log back.
func (h *harness) records() []*audit.Record {
	h.t.Helper()
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	// A last line without its newline is still being written.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []*audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			h.t.Fatalf("parse audit record %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// decisions returns the audit log's decision records.
// responseOf waits for the response record of the request that
// X-Countersign-Request names in resp: outcomes are written with the next
// record, or a few milliseconds later.
func (h *harness) responseOf(resp *http.Response) *audit.Record {
	h.t.Helper()
	id := resp.Header.Get("X-Countersign-Request")
	if id == "" {
		h.t.Fatalf("the answer (%d) names no request", resp.StatusCode)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for _, r := range h.records() {
			if r.Type == "response" && r.RequestID == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no response record for request %s", id)
		}
	}
}

// upgradeClosed waits for the record of an upgraded connection's end.
func (h *harness) upgradeClosed() *audit.Record {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, r := range h.records() {
			if r.Type == "response" && r.Detail == "upgraded connection closed" {
				return r
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatal("no record of the upgraded connection closing")
		}
	}
}

func (h *harness) decisions() []*audit.Record {
	var out []*audit.Record
	for _, r := range h.records() {
		if r.Type == "decision" {
			out = append(out, r)
		}
	}
	return out
}

// waitPending waits (bounded) for the next approval request.
func (h *harness) waitPending() *approval.Record {
	h.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case n := <-h.notes:
			if n.Event == "requested" {
				return n.Record
			}
		case <-timeout.C:
			h.t.Fatal("no approval was requested within 10s")
			return nil
		}
	}
}

// upstreamResolve points each host's port 443 at up and port 80 at plain.
func upstreamResolve(up *testinfra.Upstream, plain string, hosts ...string) map[string]string {
	m := up.Resolve(hosts...)
	for _, h := range hosts {
		m[h+":80"] = plain
	}
	return m
}
