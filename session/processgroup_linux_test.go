package session

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runOnStdinCommand runs an isolated `sh -c SCRIPT` on this process's
// stdin, stdout and stderr, as `countersign run --isolate` does, and
// prints "exit N" once it has ended.
const runOnStdinCommand = "__isolate-run-on-stdin"

func runOnStdin(script string) int {
	proxy := newFakeProxy()
	defer proxy.Close()
	iso, err := StartIsolated(context.Background(), IsolateOptions{
		Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		ProxyAddr: proxy.Listener.Addr().String(), ListenPort: int(netip.MustParseAddrPort(proxy.Listener.Addr().String()).Port()),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Exe: "/proc/self/exe", InitArgs: []string{InitCommand},
	}, nil)
	if err != nil {
		fmt.Println("start:", err)
		return 3
	}
	code, err := iso.Wait()
	fmt.Printf("exit %d %v\n", code, err)
	if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		fmt.Printf("terminal back %v\n", pg == unix.Getpgrp())
	}
	return 0
}

// helperOnStdin starts this test binary as runOnStdinCommand.
func helperOnStdin(t *testing.T, script string, stdin, out *os.File, attr *syscall.SysProcAttr) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", runOnStdinCommand, script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// Without a terminal, the isolated child cannot signal countersign through
// its process group (found by review: kill(0, SIGKILL) ended `run` before
// it recorded the session's end and looked for planted configuration). The
// helper stands for countersign.
func TestIsolatedChildCannotSignalCountersign(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	// A session of its own: no controlling terminal, as under CI.
	cmd := helperOnStdin(t, "kill -KILL 0", devnull, pw, &syscall.SysProcAttr{Setsid: true})
	pw.Close()
	out, _ := io.ReadAll(pr)
	err = cmd.Wait()
	if err != nil || !strings.Contains(string(out), "exit 137") {
		t.Fatalf("countersign's stand-in: %v, said %q; want it alive, reporting the child's exit 137", err, out)
	}
}

// On a terminal, the isolated child is part of the shell's job, and job
// control works as for any command of an interactive shell (a real bash
// here, on a terminal of its own), also when countersign runs under a
// wrapper script or in a pipeline: ^Z stops the job, fg continues it with
// the terminal the child's again (it reads a line from it), and the
// terminal is countersign's when the child ends.
func TestIsolatedChildOnATerminalKeepsJobControl(t *testing.T) {
	for name, line := range map[string]string{
		"alone":    "%s %s 'echo R$((40+2)); read line; echo read $line'\n",
		"wrapped":  `sh -c "%s %s 'echo R\$((40+2)); read line; echo read \$line'"` + "\n",
		"pipeline": "%s %s 'echo R$((40+2)); read line; echo read $line' | cat\n",
	} {
		t.Run(name, func(t *testing.T) { jobControl(t, line) })
	}
}

func jobControl(t *testing.T, line string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	master, slave, err := newPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	said := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(said(), what); {
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the terminal; it shows %q", what, said())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	type_ := func(s string) {
		t.Helper()
		if _, err := io.WriteString(master, s); err != nil {
			t.Fatal(err)
		}
	}
	shell := exec.Command("bash", "--norc", "--noprofile", "--noediting", "-i")
	shell.Env = []string{"PATH=/usr/bin:/bin", "PS1=$ ", "TERM=dumb"}
	shell.Stdin, shell.Stdout, shell.Stderr = slave, slave, slave
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	defer func() { _ = shell.Process.Kill(); _ = shell.Wait() }()

	type_(fmt.Sprintf(line, exe, runOnStdinCommand))
	waitFor("R42")
	type_("\x1a") // ^Z, to the terminal's foreground group: the child's
	waitFor("Stopped")
	// The shell's prompt after its report, then fg: the shell gives the
	// job the terminal and continues it.
	for deadline := time.Now().Add(30 * time.Second); !strings.HasSuffix(said(), "$ "); {
		if time.Now().After(deadline) {
			t.Fatalf("no prompt after the stop; the terminal shows %q", said())
		}
		time.Sleep(10 * time.Millisecond)
	}
	echoed := strings.Count(said(), runOnStdinCommand)
	type_("fg\n")
	// fg names the job before it continues it; typed after that, the
	// line waits in the terminal for the child, not for the shell. Under
	// load, bash taking the terminal back after the stop has been seen to
	// drop the first byte typed (CI: "bash: g: command not found"), the
	// shell's doing, not countersign's: fg is typed again then.
	retyped := false
	for deadline := time.Now().Add(30 * time.Second); strings.Count(said(), runOnStdinCommand) == echoed; {
		if time.Now().After(deadline) {
			t.Fatalf("fg did not name the job; the terminal shows %q", said())
		}
		if !retyped && strings.Contains(said(), "command not found") && strings.HasSuffix(said(), "$ ") {
			type_("fg\n")
			retyped = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	type_("typed\n")
	waitFor("read typed")
	waitFor("terminal back")
	type_("exit\n")
	done := make(chan error, 1)
	go func() { done <- shell.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the shell did not exit; the terminal shows %q", said())
	}
	master.Close()
	<-read
	if s := said(); !strings.Contains(s, "exit 0 <nil>") || !strings.Contains(s, "terminal back true") {
		t.Errorf("the terminal shows %q; want the child's exit 0 and the terminal back", s)
	}
}

// keyringCommand puts a key in a session keyring of its own, then runs an
// isolated readKeyCommand and prints what it said.
const keyringCommand = "__isolate-keyring"

// readKeyCommand looks for that key in its session keyring.
const readKeyCommand = "__isolate-read-key"

func keyringHelper() int {
	runtime.LockOSThread() // never unlocked: the keyring is this thread's, and the child's
	if _, err := unix.KeyctlJoinSessionKeyring("countersign-test"); err != nil {
		fmt.Println("no keyrings here:", err)
	} else if _, err := unix.AddKey("user", "countersign-test-secret", []byte("kerberos-ticket-or-token"), unix.KEY_SPEC_SESSION_KEYRING); err != nil {
		fmt.Println("add key:", err)
		return 3
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return 3
	}
	proxy := newFakeProxy()
	defer proxy.Close()
	var out bytes.Buffer
	iso, err := StartIsolated(context.Background(), IsolateOptions{
		Args: []string{exe, readKeyCommand}, CommandPath: exe, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		ProxyAddr: proxy.Listener.Addr().String(), ListenPort: int(netip.MustParseAddrPort(proxy.Listener.Addr().String()).Port()),
		Stdout: &out, Stderr: &out, Exe: "/proc/self/exe", InitArgs: []string{InitCommand},
	}, nil)
	if err != nil {
		fmt.Println("start:", err)
		return 3
	}
	code, err := iso.Wait()
	fmt.Printf("child (exit %d %v): %s", code, err, out.String())
	return 0
}

func readKey() int {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, "user", "countersign-test-secret", 0)
	if err != nil {
		fmt.Println("search:", err)
		return 0
	}
	buf := make([]byte, 256)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		fmt.Println("read:", err)
		return 0
	}
	fmt.Printf("read the key: %s\n", buf[:n])
	return 0
}

// The isolated child has a session keyring of its own: the keys in
// countersign's (Kerberos caches, tokens stored with keyctl) are out of its
// reach (found by review: it read and could replace them).
func TestIsolatedChildHasItsOwnSessionKeyring(t *testing.T) {
	out, err := exec.Command("/proc/self/exe", keyringCommand).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child (exit 0") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "kerberos-ticket-or-token") || !strings.Contains(string(out), "search:") {
		t.Errorf("the isolated child's look for countersign's key: %s", out)
	}
}

// interruptCommand starts an isolated `sh -c SCRIPT`, sends it the signal
// named (INT or TERM) as `run` passes on a CI runner's, and prints what it
// said.
const interruptCommand = "__isolate-interrupt"

func interruptHelper(sig syscall.Signal, script string) int {
	proxy := newFakeProxy()
	defer proxy.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return 3
	}
	iso, err := StartIsolated(context.Background(), IsolateOptions{
		Args: []string{"sh", "-c", script},
		Env:  []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		ProxyAddr: proxy.Listener.Addr().String(), ListenPort: int(netip.MustParseAddrPort(proxy.Listener.Addr().String()).Port()),
		Stdout: pw, Stderr: pw, Exe: "/proc/self/exe", InitArgs: []string{InitCommand},
	}, nil)
	pw.Close()
	if err != nil {
		fmt.Println("start:", err)
		return 3
	}
	br := bufio.NewReader(pr)
	if line, _ := br.ReadString('\n'); line != "ready\n" {
		fmt.Printf("child said %q\n", line)
		return 3
	}
	if err := iso.Signal(sig); err != nil {
		fmt.Println("signal:", err)
		return 3
	}
	code, err := iso.Wait()
	rest, _ := io.ReadAll(br)
	fmt.Printf("own group %v, exit %d %v: %s", iso.InOwnGroup(), code, err, rest)
	return 0
}

// Without a terminal, SIGINT passed on by `run` (a CI runner cancelling the
// job signals its process group, which no longer holds the child) reaches
// the child itself, not only the init process, which keeps SIGINT for
// terminals.
func TestIsolatedChildInItsOwnGroupGetsInterrupts(t *testing.T) {
	run := func(sig, script string) string {
		cmd := exec.Command("/proc/self/exe", interruptCommand, sig, script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run("INT", `trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 1; done`); !strings.Contains(out, "own group true, exit 3 <nil>: got INT") {
		t.Errorf("SIGINT: %s", out)
	}
	// SIGTERM reaches the agent under a shell that does not pass it on
	// (found by review), once. The outer shell waits for it rather than
	// dying first: when the session's first process ends, its namespace
	// goes, and the agent's answer with it (a flake in CI).
	// The agent's trap ends it: a signal that reaches a forked child
	// before it execs is lost (dash), so nothing waits on one here.
	out := run("TERM", `trap 'wait' TERM; sh -c 'trap "echo got TERM; exit 4" TERM; echo ready; while :; do sleep 1; done' & wait; wait`)
	if !strings.Contains(out, "own group true") || strings.Count(out, "got TERM") != 1 {
		t.Errorf("SIGTERM to an agent under sh -c: %s", out)
	}
}
