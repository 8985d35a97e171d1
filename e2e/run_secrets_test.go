//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttachedRunKeepsItsProxyCredential: the agent's own client password in
// `run --proxy`, written plain or percent-encoded, is not a secret to take
// away from it: with or without --isolate the agent keeps HTTPS_PROXY
// (found by review: under --isolate, the encoded form lost it).
func TestAttachedRunKeepsItsProxyCredential(t *testing.T) {
	w := newWorld(t, approvePosts, agentClient)
	const pw = "pa+ss~word-0123"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := w.cmd(ctx, "serve")
	c.Env = append(c.Env, "AGENT_PASSWORD="+pw)
	m, log, _ := startUntil(t, c, servingLine)
	if m == nil {
		t.Fatalf("serve: %s", log)
	}
	for _, enc := range []string{pw, "pa%2Bss%7Eword-0123"} {
		for _, iso := range [][]string{nil, {"--isolate"}} {
			args := append([]string{"run"}, iso...)
			args = append(args, "--proxy", "http://ci-agent:"+enc+"@"+m[1], "--", "sh", "-c", "env | grep '^HTTPS_PROXY=' ; exit 0")
			rc := w.cmd(ctx, args...)
			rc.Env = append(rc.Env, "AGENT_PASSWORD="+pw)
			r := runCmd(t, rc)
			if !strings.Contains(r.stdout, "HTTPS_PROXY=http://ci-agent:") {
				t.Errorf("run %v --proxy with the password as %s: the agent has no HTTPS_PROXY (exit %d)\nstderr: %s", iso, enc, r.code, r.stderr)
			}
		}
	}
}

// TestRunOutlivesSIGQUIT: ^\ reaches the terminal's whole foreground
// group, countersign included. It must end the agent, not countersign:
// Go's default for SIGQUIT is to dump and exit, which would leave the
// agent without its proxy and the session without its end record (found
// by review, with TIOCSTI as the way an agent would type it).
func TestRunOutlivesSIGQUIT(t *testing.T) {
	w := newWorld(t, approvePosts, "")
	for _, iso := range [][]string{nil, {"--isolate"}} {
		args := append([]string{"run"}, iso...)
		// The agent signals its process group, as the terminal would,
		// ignoring the signal itself; then it goes on.
		args = append(args, "--", "sh", "-c", "trap '' QUIT; kill -QUIT 0; echo after-quit; exit 7")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		c := w.cmd(ctx, args...)
		// A group of its own, standing for the terminal's foreground
		// group: the test's is not to be signalled.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r := runCmd(t, c)
		cancel()
		if r.code != 7 || !strings.Contains(r.stdout, "after-quit") || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("run %v: exit %d, stdout %q, stderr %.400s; want the agent's own exit 7", iso, r.code, r.stdout, r.stderr)
		}
	}
}

// TestAgentCannotReadCountersignsProcess: without --isolate the agent runs
// as countersign's user, and a process of the same user may read another's
// environment from /proc and, where Yama does not stop it, ptrace it and
// read its memory: secrets, the CA key. countersign is not dumpable, so
// neither is open to the agent. Root reads everything, so as root the test
// runs countersign as nobody.
func TestAgentCannotReadCountersignsProcess(t *testing.T) {
	// The agent's own environment is read by the shell that redirects it,
	// a process the agent started: the control, that a process of that
	// user can read one that is dumpable.
	const script = `echo "parent: $(cat /proc/$PPID/comm)"
echo "own: $(tr '\0' '\n' < /proc/$$/environ | grep -c '^E2E_MARKER=')"
echo "environ: $(cat /proc/$PPID/environ 2>&1 | tr '\0' '\n')"
echo "mem: $(head -c 1 /proc/$PPID/mem 2>&1)"
exit 0`
	r := runUnprivileged(t, "run", "--", "sh", "-c", script)
	if r.code != 0 || !strings.Contains(r.stdout, "parent: countersign") || !strings.Contains(r.stdout, "own: 1") {
		t.Fatalf("exit %d: the agent's checks did not run as planned:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "in-countersigns-environment") {
		t.Errorf("the agent read countersign's environment:\n%s", r.stdout)
	}
	checks := []string{"environ"}
	// Where Yama allows tracing only of descendants, countersign (the
	// agent's parent) is out of reach whether or not it is dumpable.
	if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err != nil || strings.TrimSpace(string(b)) == "0" {
		checks = append(checks, "mem")
	}
	for _, f := range checks {
		if !regexp.MustCompile(`(?m)^` + f + `: .*/proc/\d+/` + f + `.*Permission denied`).MatchString(r.stdout) {
			t.Errorf("opening countersign's /proc/PID/%s was not refused:\n%s", f, r.stdout)
		}
	}
}

// TestIsolatedRunAsAnUnprivilegedUser: a countersign that is not dumpable
// forks children that are not either until they exec, and a user other
// than root cannot write such a child's user-namespace maps: --isolate
// failed for every user but root (found by review; CI runs as root).
func TestIsolatedRunAsAnUnprivilegedUser(t *testing.T) {
	// countersign never makes itself dumpable: the init process maps its
	// user into the namespace (to itself) on its own.
	r := runUnprivileged(t, "run", "--isolate", "--", "sh", "-c", "echo inside-as-$(id -u):$(id -g)")
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534
	}
	if want := fmt.Sprintf("inside-as-%d:%d", uid, gid); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("run --isolate as an unprivileged user: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// runUnprivileged runs countersign with args, in a home of its own, with
// E2E_MARKER in its environment: as nobody when the test runs as root.
func runUnprivileged(t *testing.T, args ...string) result {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir = home
	c.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "E2E_MARKER=in-countersigns-environment"}
	if os.Geteuid() == 0 {
		const nobody = 65534
		for _, d := range []string{filepath.Dir(home), filepath.Dir(bin)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(home, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	return runCmd(t, c)
}
