//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair from /dev/ptmx, closed when the test
// ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}); err != nil || ioErr != nil {
		t.Fatalf("unlock the terminal: %v %v", err, ioErr)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal's other end: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// countersign writes nothing into the terminal it runs in but its own
// lines. bubbletea v1 (for `approvals watch`) asked every terminal for its
// background colour from an init function, whatever the command: the
// query landed in the agent's terminal, its answer was read from the
// user's keyboard input, and a terminal that does not answer held `run`
// up for five seconds.
func TestRunDoesNotQueryTheTerminal(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	master, slave := openPTY(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := w.cmd(ctx, "run", "--", "true")
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	// The terminal is countersign's controlling terminal, with countersign
	// in its foreground, as in a shell: only then does a query get sent.
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the master reads EIO once countersign's copies close
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, master)
		close(copied)
	}()
	if err := c.Wait(); err != nil {
		t.Fatalf("countersign run: %v\n%q", err, out.String())
	}
	<-copied
	got := out.String()
	if !strings.Contains(got, "countersign: session") {
		t.Fatalf("the terminal did not show the session summary: %q", got)
	}
	for _, q := range []string{"\x1b]", "\x1b[6n", "\x1b[c", "\x1b[>"} {
		if strings.Contains(got, q) {
			t.Errorf("countersign wrote the terminal query %q into the terminal: %q", q, got)
		}
	}
}

// A policy the agent writes where the next `countersign run` in the same
// directory looks for one is named when the session ends, and recorded.
func TestRunNamesConfigFilesChangedDuringTheSession(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	if r := w.run("run", "--", "true"); r.code != 0 || strings.Contains(r.stderr, "while the session ran") {
		t.Fatalf("a session that changed nothing: code %d\n%s", r.code, r.stderr)
	}
	r := w.run("run", "--", "sh", "-c", `printf 'package countersign\nallow := true\n' > policies/agent.rego`)
	if r.code != 0 {
		t.Fatalf("code %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "while the session ran") || !strings.Contains(r.stderr, `"policies/agent.rego" (new)`) {
		t.Errorf("the end of the session does not name the new policy file:\n%s", r.stderr)
	}
	if !strings.Contains(w.auditLog(), `"changed_config_files":["\"policies/agent.rego\" (new)"]`) {
		t.Errorf("the session's end record does not name it:\n%s", w.auditLog())
	}
}
