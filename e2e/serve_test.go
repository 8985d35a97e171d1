//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

var servingLine = regexp.MustCompile(`countersign: proxy on (\S+), approvals on (\S+)`)

// approvePosts holds every POST for a human.
const approvePosts = `package countersign

approve contains "posting needs a human" if input.request.method == "POST"
`

// agentClient is the serve configuration for startServe: one proxy client,
// ci-agent, whose password startServe passes in AGENT_PASSWORD.
const agentClient = `listen: 127.0.0.1:0
clients:
  - name: ci-agent
    password: ${AGENT_PASSWORD}
`

// startServe starts `countersign serve` and returns the proxy address.
func startServe(t *testing.T, w *world) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	c, addrs, rest := startServeAddrs(t, w)
	return c, addrs[0], rest
}

// startServeAddrs is startServe, returning the proxy address and the
// approval URL.
func startServeAddrs(t *testing.T, w *world) (*exec.Cmd, [2]string, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	c := w.cmd(ctx, "serve")
	c.Env = append(c.Env, "AGENT_PASSWORD=s3cret-agent-pw")
	m, log, stderr := startUntil(t, c, servingLine)
	if m == nil {
		t.Fatalf("serve did not start:\n%s", log)
	}
	rest := &bytes.Buffer{}
	go func() { _, _ = io.Copy(rest, stderr) }()
	return c, [2]string{m[1], m[2]}, rest
}

func curl(t *testing.T, w *world, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--cacert", filepath.Join(w.stateDir, "ca.pem")}, args...)...)
	return runCmd(t, c)
}

func TestServeRequiresCredentialsAndShutsDownGracefully(t *testing.T) {
	w := newWorld(t, approvePosts, agentClient)
	serve, addr, logs := startServe(t, w)

	r := curl(t, w, "-o", "/dev/null", "-w", "%{http_code}", "--proxy", "http://"+addr, "https://api.github.com/repos/acme/shop")
	if !strings.Contains(r.stdout+r.stderr, "407") {
		t.Errorf("without proxy credentials: %q %q, want 407", r.stdout, r.stderr)
	}
	r = curl(t, w, "--proxy", "http://ci-agent:wrong@"+addr, "https://api.github.com/repos/acme/shop")
	if r.code == 0 {
		t.Errorf("wrong password accepted: %q", r.stdout)
	}
	r = curl(t, w, "--proxy", "http://ci-agent:s3cret-agent-pw@"+addr, "https://api.github.com/repos/acme/shop")
	if r.code != 0 || !strings.Contains(r.stdout, "acme/shop") {
		t.Fatalf("with credentials: code %d %q %q", r.code, r.stdout, r.stderr)
	}

	// A held request gets an answer when serve shuts down.
	held := make(chan result, 1)
	go func() {
		held <- curl(t, w, "--proxy", "http://ci-agent:s3cret-agent-pw@"+addr, "-X", "POST", "-d", "x=1", "https://example.test/things")
	}()
	waitForPending(t, w)
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-held:
		if !strings.Contains(r.stdout, "countersign: shutting down") {
			t.Errorf("held request at shutdown got %q %q", r.stdout, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("held request not answered within 30s of SIGTERM")
	}
	if err := serve.Wait(); err != nil {
		t.Errorf("serve exit: %v\n%s", err, logs.String())
	}
	if n := w.up.Count("POST", ""); n != 0 {
		t.Errorf("upstream saw %d POSTs", n)
	}
	verify := w.run("audit", "verify", w.auditPath)
	if verify.code != 0 {
		t.Errorf("audit verify after shutdown: %s%s", verify.stdout, verify.stderr)
	}
}

// waitForPending polls `countersign approvals list` (bounded) until one
// approval is pending.
func waitForPending(t *testing.T, w *world) {
	t.Helper()
	for i := 0; i < 100; i++ {
		r := w.run("approvals", "list")
		if r.code == 0 && strings.Contains(r.stdout, "ap-") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := w.run("approvals", "list")
	t.Fatalf("no approval became pending: %d %s %s", r.code, r.stdout, r.stderr)
}

func TestServeRefusesOpenListenerWithoutClients(t *testing.T) {
	w := newWorld(t, denyDeletes, "listen: 0.0.0.0:0\n")
	r := w.run("serve")
	if r.code != 2 || !strings.Contains(r.stderr, "no clients are configured") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
}

func TestBadInputGetsAClearAnswer(t *testing.T) {
	tests := []struct {
		name   string
		config string // appended to the world's config
		policy string
		setup  func(w *world)
		args   []string
		want   []string // substrings of stderr
	}{
		{
			name:   "unknown key",
			config: "approval_hold: 30s\n",
			args:   []string{"run", "--", "true"},
			want:   []string{"countersign.yaml:", "approval_hold", "unknown key"},
		},
		{
			name:   "bad duration",
			config: "inspect:\n  body_limit: 1MiB\nlog:\n  level: info\nkubernetes:\n  hosts: []\nstate: \"\"\n",
			args:   []string{"run", "--", "true"},
		},
		{
			name:   "rego syntax error",
			policy: "package countersign\n\ndeny contains \"x\" if {\n  input.request.method ==\n}\n",
			args:   []string{"run", "--", "true"},
			want:   []string{"policy.rego:", "rego_parse_error"},
		},
		{
			name: "unreadable CA key",
			setup: func(w *world) {
				mustWrite(w.t, filepath.Join(w.stateDir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
				mustWrite(w.t, filepath.Join(w.stateDir, "ca-key.pem"), "not a key")
			},
			args: []string{"run", "--", "true"},
			want: []string{"ca-key.pem"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.policy
			if pol == "" {
				pol = denyDeletes
			}
			w := newWorld(t, pol, tt.config)
			if tt.setup != nil {
				tt.setup(w)
			}
			r := w.run(tt.args...)
			if tt.name == "bad duration" {
				// Overwrite the hold with an invalid duration.
				b, _ := os.ReadFile(w.config)
				mustWrite(t, w.config, strings.Replace(string(b), "hold: 60s", "hold: two minutes", 1))
				r = w.run(tt.args...)
				tt.want = []string{"countersign.yaml:", "approval.hold", "two minutes"}
			}
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not name %q:\n%s", s, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "panic") {
				t.Errorf("panic:\n%s", r.stderr)
			}
		})
	}
}

var pendingAnswer = regexp.MustCompile(`approval pending as (ap-[a-z0-9]+)`)

func TestPendingApprovalSurvivesServeRestart(t *testing.T) {
	w := newWorld(t, approvePosts, agentClient)
	// A short hold: the first request is answered "pending" quickly.
	b, _ := os.ReadFile(w.config)
	mustWrite(t, w.config, strings.Replace(string(b), "hold: 60s", "hold: 1s", 1))

	post := func(addr string) result {
		return curl(t, w, "--proxy", "http://ci-agent:s3cret-agent-pw@"+addr, "-X", "POST", "-d", "x=1", "https://example.test/things")
	}
	serve, addr, _ := startServe(t, w)
	r := post(addr)
	m := pendingAnswer.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("first POST: %q %q, want an approval pending answer", r.stdout, r.stderr)
	}
	id := m[1]
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve exit: %v", err)
	}

	_, addr, _ = startServe(t, w)
	list := w.run("approvals", "list")
	if !strings.Contains(list.stdout, id) {
		t.Fatalf("pending approval %s lost across the restart:\n%s%s", id, list.stdout, list.stderr)
	}
	if r := w.run("approvals", "approve", id); r.code != 0 {
		t.Fatalf("approve after restart: %s%s", r.stdout, r.stderr)
	}
	r = post(addr)
	if r.code != 0 || !strings.Contains(r.stdout, `"method":"POST"`) {
		t.Fatalf("retry after approval: %q %q", r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", "/things"); n != 1 {
		t.Fatalf("upstream saw %d POSTs, want 1", n)
	}
	r = post(addr)
	if !pendingAnswer.MatchString(r.stdout) || strings.Contains(r.stdout, id) {
		t.Errorf("second retry was admitted or reused the grant: %q", r.stdout)
	}
	if n := w.up.Count("POST", "/things"); n != 1 {
		t.Errorf("upstream saw %d POSTs after the second retry, want 1", n)
	}
}

// A team runs several serve replicas on one PostgreSQL database: a request
// held on one replica is approved on another and answered, and its approval
// admits that one request, no more.
func TestServeReplicasShareApprovals(t *testing.T) {
	a := newWorld(t, approvePosts, agentClient+"state: ${STATE_URL}\n")
	a.env = []string{"STATE_URL=" + testPG.Database(t)}
	// Replica b: the same configuration, its own state_dir and audit log,
	// and the CA of replica a (clients trust one CA).
	b := *a
	b.stateDir = filepath.Join(a.dir, "state-b")
	b.auditPath = filepath.Join(b.stateDir, "audit.jsonl")
	b.config = filepath.Join(a.dir, "countersign-b.yaml")
	conf, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	confB := strings.ReplaceAll(string(conf), a.stateDir, b.stateDir) +
		fmt.Sprintf("ca: {cert: %s, key: %s}\n", filepath.Join(a.stateDir, "ca.pem"), filepath.Join(a.stateDir, "ca-key.pem"))
	mustWrite(t, b.config, confB)

	_, addrA, _ := startServe(t, a)
	_, addrB, _ := startServe(t, &b)
	post := func(addr string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			ch <- curl(t, a, "--proxy", "http://ci-agent:s3cret-agent-pw@"+addr, "-X", "POST", "-d", "x=1", "https://example.test/things")
		}()
		return ch
	}

	held := post(addrA)
	// Replica b lists the approval replica a opened, and approves it.
	id := waitForPendingID(t, &b, "")
	if r := b.run("approvals", "approve", id); r.code != 0 {
		t.Fatalf("approve on replica b: %s%s", r.stdout, r.stderr)
	}
	select {
	case r := <-held:
		if r.code != 0 || !strings.Contains(r.stdout, `"method":"POST"`) {
			t.Fatalf("the request held on replica a, approved on b: %q %q", r.stdout, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request held on replica a was not answered 30s after replica b approved it")
	}
	if n := a.up.Count("POST", "/things"); n != 1 {
		t.Fatalf("upstream saw %d POSTs, want 1", n)
	}

	// The approval was used: the same request through replica b is held
	// for a new approval, not admitted.
	again := post(addrB)
	next := waitForPendingID(t, a, id) // fails the test if the retry is not held
	if n := a.up.Count("POST", "/things"); n != 1 {
		t.Errorf("upstream saw %d POSTs after the retry, want 1", n)
	}
	if r := a.run("approvals", "deny", next, "--reason", "once was enough"); r.code != 0 {
		t.Fatalf("deny on replica a: %s%s", r.stdout, r.stderr)
	}
	select {
	case r := <-again:
		if !strings.Contains(r.stdout, "once was enough") {
			t.Errorf("the denied retry got %q %q", r.stdout, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retry held on replica b was not answered 30s after replica a denied it")
	}

	// The agent cannot reach the shared database through the proxy: whoever
	// writes to it can approve.
	dbURL, err := url.Parse(strings.TrimPrefix(a.env[0], "STATE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	r := curl(t, a, "-o", "/dev/null", "-w", "%{http_code}", "--proxy", "http://ci-agent:s3cret-agent-pw@"+addrA, "http://"+dbURL.Host+"/")
	if r.stdout != "403" {
		t.Errorf("a request to the state database through the proxy: %q %q, want 403", r.stdout, r.stderr)
	}

	// Each replica's audit log records its part and verifies.
	if log := a.auditLog(); !strings.Contains(log, "used by the held request") {
		t.Errorf("replica a's audit log does not say its held request took the grant:\n%s", log)
	}
	if log := b.auditLog(); !strings.Contains(log, "approved by") {
		t.Errorf("replica b's audit log does not record the approval:\n%s", log)
	}
	for _, w := range []*world{a, &b} {
		if r := w.run("audit", "verify", w.auditPath); r.code != 0 {
			t.Errorf("audit verify %s: %s%s", w.auditPath, r.stdout, r.stderr)
		}
	}
}

// waitForPendingID polls `countersign approvals list` (bounded) until an
// approval other than skip is pending, and returns its id.
func waitForPendingID(t *testing.T, w *world, skip string) string {
	t.Helper()
	idRE := regexp.MustCompile(`\bap-[0-9A-Za-z_-]+`)
	var last result
	for range 200 {
		last = w.run("approvals", "list")
		for _, id := range idRE.FindAllString(last.stdout, -1) {
			if id != skip {
				return id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no approval became pending: %d %s %s", last.code, last.stdout, last.stderr)
	return ""
}

// When the shared database goes away, a request that needs a human is
// refused (503, nothing sent, audited) and the proxy keeps serving what
// the policy allows.
func TestServeFailsClosedWhenTheSharedStoreIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg, err := testinfra.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	w := newWorld(t, approvePosts, agentClient+"state: ${STATE_URL}\n")
	w.env = []string{"STATE_URL=" + pg.NewDatabase(t)}
	_, addrs, _ := startServeAddrs(t, w)
	addr := addrs[0]
	if code, body := get(t, addrs[1]+"/healthz"); code != 200 || !strings.Contains(body, `"state":"ok"`) {
		t.Errorf("/healthz with the database up: %d %s", code, body)
	}
	pg.Stop()
	if _, body := get(t, addrs[1]+"/healthz"); !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, `"state":"error: `) {
		t.Errorf("/healthz with the database down: %s", body)
	}

	proxy := "http://ci-agent:s3cret-agent-pw@" + addr
	r := curl(t, w, "-w", "\n%{http_code}", "--proxy", proxy, "-X", "POST", "-d", "x=1", "https://example.test/things")
	if !strings.HasSuffix(r.stdout, "\n503") || !strings.Contains(r.stdout, "approval store failed") {
		t.Errorf("a POST needing approval with the store down: %q %q, want 503 naming the store", r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", ""); n != 0 {
		t.Errorf("upstream saw %d POSTs", n)
	}
	r = curl(t, w, "-w", "\n%{http_code}", "--proxy", proxy, "https://example.test/things")
	if !strings.HasSuffix(r.stdout, "\n200") {
		t.Errorf("an allowed GET with the store down: %q %q, want 200", r.stdout, r.stderr)
	}
	refused := 0
	for _, line := range strings.Split(w.auditLog(), "\n") {
		if strings.Contains(line, `"decision":"deny"`) && strings.Contains(line, "not held: this request needs approval, but no approval could be opened") {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d audit records of the refused POST, want 1:\n%s", refused, w.auditLog())
	}
	if r := w.run("audit", "verify", w.auditPath); r.code != 0 {
		t.Errorf("audit verify: %s%s", r.stdout, r.stderr)
	}
}

// state is serve's: run says it keeps this session's approvals in memory
// instead of silently ignoring the setting, and does not print the
// database password.
func TestRunSaysSharedStateIsServes(t *testing.T) {
	w := newWorld(t, approvePosts, "state: postgres://countersign:db-pw-not-shown@127.0.0.1:1/countersign\n")
	r := w.run("run", "--", "true")
	if r.code != 0 {
		t.Fatalf("run -- true: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "keeps its approvals in memory") || !strings.Contains(r.stderr, "--proxy") {
		t.Errorf("run with state set does not say the state is ignored: %q", r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "db-pw-not-shown") {
		t.Errorf("run printed the database password: %q", r.stderr)
	}
}
