//go:build e2e

// Package e2e drives the real countersign binary with real clients (curl,
// git, python3, the AWS CLI) against local TLS fakes of the APIs they call.
// Run it with `make e2e` (or `go test -tags e2e ./e2e/`); `make deps`
// installs the clients.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

var bin, goClient string

func TestMain(m *testing.M) {
	var missing []string
	// Every client the suite drives; a missing one fails the run (make deps
	// installs them), it never skips a test.
	for _, tool := range []string{"curl", "git", "python3", "aws", "node", "gh", "kubectl", "chromium"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: missing %s; run `make deps` (as root it installs them)\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "countersign-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "countersign")
	build := exec.Command("go", "build", "-o", bin, "../cmd/countersign")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build countersign:", err)
		os.Exit(1)
	}
	goClient = filepath.Join(dir, "goclient")
	build = exec.Command("go", "build", "-o", goClient, "./testdata/goclient")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the Go test client:", err)
		os.Exit(1)
	}
	code := m.Run()
	testPG.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testPG is the suite's PostgreSQL server, for serve's shared state.
var testPG testinfra.LazyPostgres

// world is one test's countersign configuration and fake upstreams.
type world struct {
	t         *testing.T
	dir       string
	config    string
	stateDir  string
	auditPath string
	up        *testinfra.Upstream
	gitRoot   string
	// env is added to the environment of every countersign command.
	env []string
}

// newWorld writes a config and policy for one test and starts the fakes.
// api.github.com, ec2.us-east-1.amazonaws.com, git.example.test and
// example.test (and extraHosts) resolve, through the proxy, to the fake
// upstream, which serves every name with a certificate from its own CA.
func newWorld(t *testing.T, policy string, extraConfig string, extraHosts ...string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.stateDir = filepath.Join(w.dir, "state")
	w.auditPath = filepath.Join(w.stateDir, "audit.jsonl")
	w.gitRoot = filepath.Join(w.dir, "git")
	if _, err := testinfra.NewBareRepo(w.gitRoot, "repo.git"); err != nil {
		t.Fatal(err)
	}
	git, err := testinfra.GitHTTP(w.gitRoot)
	if err != nil {
		t.Fatal(err)
	}
	apis := testinfra.FakeAPIs()
	ca, err := testinfra.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	w.up, err = testinfra.StartUpstream(ca, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "git.example.test") {
			git.ServeHTTP(rw, r)
			return
		}
		apis.ServeHTTP(rw, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.up.Close() })
	caFile := filepath.Join(w.dir, "upstream-ca.pem")
	mustWrite(t, caFile, string(ca.CertPEM()))
	polDir := filepath.Join(w.dir, "policies")
	mustWrite(t, filepath.Join(polDir, "policy.rego"), policy)
	if err := os.MkdirAll(filepath.Join(w.dir, "home"), 0o700); err != nil {
		t.Fatal(err)
	}

	var resolve strings.Builder
	for _, h := range append([]string{"api.github.com", "ec2.us-east-1.amazonaws.com", "git.example.test", "example.test"}, extraHosts...) {
		fmt.Fprintf(&resolve, "    %q: %q\n", h+":443", w.up.Addr)
	}
	w.config = filepath.Join(w.dir, "countersign.yaml")
	mustWrite(t, w.config, fmt.Sprintf(`state_dir: %s
audit:
  path: %s
upstream:
  ca_files: [%s]
  allow_addresses: ["127.0.0.0/8"]
  resolve:
%spolicy:
  paths: [%s]
approval:
  hold: 60s
%s`, w.stateDir, w.auditPath, caFile, resolve.String(), polDir, extraConfig))
	return w
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cmd returns `countersign --config <world> args...` with a clean HOME and
// fake AWS credentials, so nothing of the machine's own setup leaks in.
func (w *world) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, bin, append([]string{"--config", w.config}, args...)...)
	c.Dir = w.dir
	env := []string{
		"HOME=" + filepath.Join(w.dir, "home"),
		"PATH=" + os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1",
	}
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	c.Env = append(append(env, testinfra.GitIdentity()...), w.env...)
	c.WaitDelay = 5 * time.Second
	return c
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs countersign to completion (bounded by a minute).
func (w *world) run(args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), time.Minute)
	defer cancel()
	return runCmd(w.t, w.cmd(ctx, args...))
}

// runCmd runs c to completion and returns its output and exit code. A
// command that cannot be run at all fails t.
func runCmd(t *testing.T, c *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	code := exitCode(t, c, c.Run())
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// exitCode is the exit code that err, from c's Run or Wait, stands for: 0
// for nil, the code of an *exec.ExitError. Any other error fails t.
func exitCode(t *testing.T, c *exec.Cmd, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", c, err)
	return 0
}

// startUntil starts c with its standard error piped and reads it until a
// line matches re. It returns the submatches (nil when stderr ended without
// a match), the lines read, and the rest of stderr, which the caller must
// drain. c is killed when the test ends if it is still running.
func startUntil(t *testing.T, c *exec.Cmd, re *regexp.Regexp) (m []string, seen string, rest io.Reader) {
	t.Helper()
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	br := bufio.NewReader(stderr)
	var lines strings.Builder
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			lines.WriteString(line + "\n")
			if m := re.FindStringSubmatch(line); m != nil {
				return m, lines.String(), br
			}
		}
		if err != nil {
			return nil, lines.String(), br
		}
	}
}

func (w *world) auditLog() string {
	b, err := os.ReadFile(w.auditPath)
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

const denyDeletes = `package countersign

deny contains {"id": "E2E-001", "msg": "deleting repositories is not allowed"} if input.request.method == "DELETE"

deny contains {"id": "E2E-002", "msg": "pushing is not allowed in this test"} if endswith(input.request.path, "/git-receive-pack")
`

func TestCurlAllowedRequestArrives(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	r := w.run("run", "--", "curl", "-sS", "https://api.github.com/repos/acme/shop")
	if r.code != 0 || !strings.Contains(r.stdout, `"full_name":"acme/shop"`) {
		t.Fatalf("curl through countersign: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("GET", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d GETs, want 1", n)
	}
	if !strings.Contains(r.stderr, "allowed 1 · denied 0") {
		t.Errorf("session summary missing or wrong:\n%s", r.stderr)
	}
}

func TestCurlDeniedRequestShowsReasonAndNeverArrives(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	r := w.run("run", "--", "curl", "-sS", "-X", "DELETE", "https://api.github.com/repos/acme/shop")
	if !strings.Contains(r.stdout, "countersign: denied by policy E2E-001: deleting repositories is not allowed") {
		t.Fatalf("curl did not show the reason:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

var pendingLine = regexp.MustCompile(`countersign: approval (ap-[a-z0-9]+) pending`)

// heldDelete is `countersign run -- curl -X DELETE …/repos/acme/shop` held
// for approval: its world, the running command, curl's output, the match of
// the stderr line that announced the hold, and the rest of stderr (the
// caller drains it).
type heldDelete struct {
	w      *world
	c      *exec.Cmd
	out    *bytes.Buffer
	m      []string
	stderr io.Reader
}

// startHeldDelete starts the run under a policy that holds DELETEs (rule
// ruleID), waits for a stderr line matching announce, and checks that
// nothing reached the upstream meanwhile.
func startHeldDelete(t *testing.T, ruleID string, announce *regexp.Regexp) *heldDelete {
	t.Helper()
	policy := `package countersign

approve contains {"id": "` + ruleID + `", "msg": "deleting a repository needs a human"} if input.request.method == "DELETE"
`
	w := newWorld(t, policy, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	c := w.cmd(ctx, "run", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "https://api.github.com/repos/acme/shop")
	h := &heldDelete{w: w, c: c, out: &bytes.Buffer{}}
	c.Stdout = h.out
	m, seen, stderr := startUntil(t, c, announce)
	if m == nil {
		t.Fatalf("no hold announced on stderr (want %s):\n%s", announce, seen)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests while held", n)
	}
	h.m, h.stderr = m, stderr
	return h
}

func TestHeldRequestCompletesAfterCLIApproval(t *testing.T) {
	h := startHeldDelete(t, "E2E-003", pendingLine)
	w, c, out := h.w, h.c, h.out
	stderr := h.stderr
	id := h.m[1]
	go io.Copy(io.Discard, stderr)

	list := w.run("approvals", "list")
	if list.code != 0 || !strings.Contains(list.stdout, id) {
		t.Fatalf("approvals list: code %d\n%s%s", list.code, list.stdout, list.stderr)
	}
	show := w.run("approvals", "show", id)
	if show.code != 0 || !strings.Contains(show.stdout, "deleting a repository needs a human") {
		t.Fatalf("approvals show: code %d\n%s%s", show.code, show.stdout, show.stderr)
	}
	approve := w.run("approvals", "approve", id, "--for", "30m")
	if approve.code != 0 || !strings.Contains(approve.stdout, "approved") || !strings.Contains(approve.stdout, "scoped grant for 30m0s") {
		t.Fatalf("approvals approve: code %d\n%s%s", approve.code, approve.stdout, approve.stderr)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("countersign run: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "204" {
		t.Errorf("curl got HTTP %s, want the upstream's 204", got)
	}
	if n := w.up.Count("DELETE", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d DELETEs, want exactly 1", n)
	}
	again := w.run("approvals", "approve", id, "--server", "http://127.0.0.1:1")
	if again.code == 0 {
		t.Errorf("approving against a dead server succeeded")
	}
}

func TestExitCodePassesThrough(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	r := w.run("run", "--", "sh", "-c", "exit 7")
	if r.code != 7 {
		t.Fatalf("exit code %d, want 7 (stderr %s)", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "ended, exit code 7") || !strings.Contains(r.stderr, "audit log: "+w.auditPath) {
		t.Errorf("summary:\n%s", r.stderr)
	}
}

func TestAuditVerifyDetectsEditsAndDeletions(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	w.run("run", "--", "curl", "-sS", "https://api.github.com/repos/acme/shop")
	w.run("run", "--", "curl", "-sS", "-X", "DELETE", "https://api.github.com/repos/acme/shop")
	ok := w.run("audit", "verify", w.auditPath)
	if ok.code != 0 || !strings.Contains(ok.stdout, "chain intact") {
		t.Fatalf("verify on an untouched log: code %d\n%s%s", ok.code, ok.stdout, ok.stderr)
	}
	orig, err := os.ReadFile(w.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d audit lines", len(lines))
	}
	_, anchor, found := strings.Cut(ok.stdout, "--expect ")
	anchor, _, _ = strings.Cut(anchor, " ")
	if !found || !strings.HasPrefix(anchor, fmt.Sprintf("%d:", len(lines)-1)) {
		t.Fatalf("verify does not print the anchor of its last record:\n%s", ok.stdout)
	}
	if r := w.run("audit", "verify", "--expect", anchor, w.auditPath); r.code != 0 {
		t.Errorf("verify --expect %s on the same log: code %d\n%s", anchor, r.code, r.stderr)
	}

	// The last record cut off: the chain alone cannot tell, the anchor can.
	mustWrite(t, w.auditPath, strings.Join(lines[:len(lines)-2], ""))
	if r := w.run("audit", "verify", w.auditPath); r.code != 0 {
		t.Errorf("verify without --expect after cutting the end: code %d, %s", r.code, r.stderr)
	}
	if r := w.run("audit", "verify", "--expect", anchor, w.auditPath); r.code != 1 || !strings.Contains(r.stderr, "cut off") {
		t.Errorf("verify --expect after cutting the end: code %d, stderr %q", r.code, r.stderr)
	}
	if r := w.run("audit", "verify", "--expect", "3:abc", w.auditPath); r.code != 2 || !strings.Contains(r.stderr, "--expect") {
		t.Errorf("verify --expect 3:abc: code %d, stderr %q; want a usage error naming --expect", r.code, r.stderr)
	}

	// A one-byte edit in line 3.
	edited := []byte(string(orig))
	off := len(lines[0]) + len(lines[1]) + strings.Index(lines[2], `"event":"`) + len(`"event":"`)
	edited[off] ^= 0x20
	mustWrite(t, w.auditPath, string(edited))
	r := w.run("audit", "verify", w.auditPath)
	if r.code != 1 || !strings.Contains(r.stderr, ":3:") {
		t.Errorf("verify after a one-byte edit in line 3: code %d, stderr %q", r.code, r.stderr)
	}

	// A deleted line 2.
	mustWrite(t, w.auditPath, lines[0]+strings.Join(lines[2:], ""))
	r = w.run("audit", "verify", w.auditPath)
	if r.code != 1 || !strings.Contains(r.stderr, ":2:") {
		t.Errorf("verify after deleting line 2: code %d, stderr %q", r.code, r.stderr)
	}
	mustWrite(t, w.auditPath, string(orig))

	tail := w.run("audit", "tail", "--decision", "deny", w.auditPath)
	if tail.code != 0 || !strings.Contains(tail.stdout, "DELETE https://api.github.com/repos/acme/shop") || strings.Contains(tail.stdout, "GET https://") {
		t.Errorf("audit tail --decision deny:\n%s%s", tail.stdout, tail.stderr)
	}
}

func TestGitCloneAllowedPushDenied(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	clone := filepath.Join(w.dir, "clone")
	r := w.run("run", "--", "git", "clone", "-q", "https://git.example.test/repo.git", clone)
	if r.code != 0 {
		t.Fatalf("git clone through countersign: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(clone, ".git")); err != nil {
		t.Fatalf("clone missing: %v", err)
	}
	commit := exec.Command("git", "-C", clone, "commit", "-q", "--allow-empty", "-m", "agent change")
	commit.Env = append(os.Environ(), testinfra.GitIdentity()...)
	if out, err := commit.CombinedOutput(); err != nil {
		t.Fatalf("commit: %v %s", err, out)
	}
	r = w.run("run", "--", "git", "-C", clone, "push", "origin", "main")
	if r.code == 0 {
		t.Fatalf("git push succeeded under a policy that denies pushes:\n%s%s", r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", "/repo.git/git-receive-pack"); n != 0 {
		t.Errorf("upstream saw %d receive-pack POSTs, want 0", n)
	}
	if !strings.Contains(w.auditLog(), "E2E-002") {
		t.Errorf("the denied push is not in the audit log")
	}
}

func TestGoAndNodeTrustTheCA(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	g := w.run("run", "--", goClient, "https://api.github.com/repos/acme/shop")
	if g.code != 0 || !strings.Contains(g.stdout, "200 ") || !strings.Contains(g.stdout, "acme/shop") {
		t.Fatalf("Go client through countersign: code %d\n%s%s", g.code, g.stdout, g.stderr)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "nodeclient.js"))
	if err != nil {
		t.Fatal(err)
	}
	n := w.run("run", "--", "node", script)
	if n.code != 0 || !strings.Contains(n.stdout, "acme/shop") {
		t.Fatalf("node through countersign: code %d\n%s%s", n.code, n.stdout, n.stderr)
	}
	if c := w.up.Count("GET", "/repos/acme/shop"); c != 2 {
		t.Errorf("upstream saw %d GETs, want 2", c)
	}
}

func TestPythonAndAWSCLITrustTheCA(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	py := w.run("run", "--", "python3", "-c",
		"import urllib.request; print(urllib.request.urlopen('https://api.github.com/repos/acme/shop').read().decode())")
	if py.code != 0 || !strings.Contains(py.stdout, "acme/shop") {
		t.Fatalf("python3 urllib through countersign: code %d\n%s%s", py.code, py.stdout, py.stderr)
	}
	aws := w.run("run", "--", "aws", "ec2", "describe-instances", "--region", "us-east-1", "--output", "text")
	if aws.code != 0 || !strings.Contains(aws.stdout, "i-0abc") {
		t.Fatalf("aws ec2 describe-instances through countersign: code %d\n%s%s", aws.code, aws.stdout, aws.stderr)
	}
	if n := w.up.Count("POST", "/"); n != 1 {
		t.Errorf("EC2 fake saw %d calls, want 1", n)
	}
	// The AWS credentials never reach the audit log.
	if strings.Contains(w.auditLog(), "wJalrXUtnFEMI") {
		t.Error("the AWS secret key is in the audit log")
	}
}

func TestConcurrentRunSessionsKeepSeparateChains(t *testing.T) {
	// Both sessions use the default audit path: the first holds the shared
	// log, the second writes its own (one chain, one writer).
	w := newWorld(t, denyDeletes, "")
	b, _ := os.ReadFile(w.config)
	mustWrite(t, w.config, strings.Replace(string(b), "audit:\n  path: "+w.auditPath+"\n", "", 1))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	first := w.cmd(ctx, "run", "--", "sh", "-c", "read line")
	stdin, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until the first session has opened the shared log.
	shared := filepath.Join(w.stateDir, "audit.jsonl")
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(shared); err == nil && strings.Contains(string(b), `"started"`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := w.run("run", "--", "curl", "-sS", "https://api.github.com/repos/acme/shop")
	_, _ = io.WriteString(stdin, "done\n")
	stdin.Close()
	if err := first.Wait(); err != nil {
		t.Fatalf("first session: %v\n%s", err, firstErr.String())
	}
	if second.code != 0 || !strings.Contains(second.stdout, "acme/shop") {
		t.Fatalf("second session: %d\n%s%s", second.code, second.stdout, second.stderr)
	}
	m := regexp.MustCompile(`audit log: (\S+)`).FindStringSubmatch(second.stderr)
	if m == nil || m[1] == shared {
		t.Fatalf("second session's audit log = %v, want its own file", m)
	}
	for _, p := range []string{shared, m[1]} {
		if r := w.run("audit", "verify", p); r.code != 0 {
			t.Errorf("verify %s: %s%s", p, r.stdout, r.stderr)
		}
	}
}

func TestAgentCannotReachTheApprovalListenerThroughTheProxy(t *testing.T) {
	// The agent finds the approval listener's URL in state_dir (without
	// --isolate it can read it) and tries to use it through the proxy.
	w := newWorld(t, denyDeletes, "")
	script := `url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' ` + w.stateDir + `/run/*.json | head -n1); echo "approval listener: $url"; curl -sS "$url/api/v1/approvals"`
	r := w.run("run", "--", "sh", "-c", script)
	if !strings.Contains(r.stdout, "approval listener: http://127.0.0.1:") {
		t.Fatalf("the script did not find the listener:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "countersign:") || !strings.Contains(r.stdout, "own") {
		t.Fatalf("the proxy forwarded to its own approval listener:\n%s%s", r.stdout, r.stderr)
	}
}
