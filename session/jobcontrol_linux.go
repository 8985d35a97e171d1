package session

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The isolated child runs in a process group of its own (the init
// process's), so that a signal it sends to its group (kill(0, SIGKILL))
// does not reach countersign, which must outlive it to record the session's
// end and check for planted configuration (found by review). On a terminal
// that group is put in the foreground, and job control is relayed: when the
// child stops (^Z), countersign takes the terminal back and stops itself,
// as the shell expects of its job; when continued (fg), it gives the
// terminal back and continues the child.

// terminalOf returns the descriptor of stdin when it is countersign's
// controlling terminal, or -1, and whether countersign's process group is
// in its foreground.
func terminalOf(stdin io.Reader) (fd int, foreground bool) {
	f, ok := stdin.(*os.File)
	if !ok {
		return -1, false
	}
	fd = int(f.Fd())
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return -1, false
	}
	return fd, pg == unix.Getpgrp()
}

// setForeground makes pgrp the terminal's foreground process group. A
// process outside the foreground group may do so while it ignores SIGTTOU.
func setForeground(tty, pgrp int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, pgrp)
}

// watchStops reads the init process's reports that the child stopped, until
// the init process ends, and suspends countersign for each.
func (i *Isolated) watchStops(ctrl *net.UnixConn) {
	defer close(i.watched)
	defer ctrl.Close()
	buf := make([]byte, 4096)
	for {
		n, err := ctrl.Read(buf)
		if err != nil || n == 0 {
			return
		}
		var m ctrlMsg
		if json.Unmarshal(buf[:n], &m) == nil && m.Type == "stopped" {
			i.suspend(syscall.Signal(m.Code))
		}
	}
}

// suspend stops countersign while the child is stopped (by sig), and
// continues the child when countersign is continued: with the terminal
// when countersign's job has it (fg), without it otherwise (bg), as a
// shell's job would. The shell takes the terminal back when countersign
// stops, and gives it to countersign's group on fg, sometimes only after
// it has continued countersign: the child, continued without it, then
// stops on its first read, and is given the terminal and continued again.
// When countersign's group cannot be stopped (an orphaned group ignores
// ^Z), the kill returns at once and the child continues.
func (i *Isolated) suspend(sig syscall.Signal) {
	own := unix.Getpgrp()
	child := i.cmd.Process.Pid // the init process leads the child's group
	fg, err := unix.IoctlGetInt(i.tty, unix.TIOCGPGRP)
	if err == nil && fg == own && (sig == unix.SIGTTIN || sig == unix.SIGTTOU) {
		setForeground(i.tty, child)
		_ = unix.Kill(-child, unix.SIGCONT)
		return
	}
	stopJob()
	if fg, err := unix.IoctlGetInt(i.tty, unix.TIOCGPGRP); err == nil && fg == own {
		setForeground(i.tty, child)
	}
	_ = unix.Kill(-child, unix.SIGCONT)
}

// stopJob stops countersign as ^Z would, and returns once it is continued.
// The child must not be continued before countersign has stopped: a
// signal to this thread stops it before the system call returns, where
// one to the process or its group is taken by any thread, and later. The
// rest of countersign's job (a pipeline's other commands) is left
// running: it waits on countersign's output. An orphaned group ignores
// the signal.
func stopJob() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGTSTP)
}

// restoreTerminal gives the terminal back to countersign's group once the
// child's group has ended, if it still holds it.
func (i *Isolated) restoreTerminal() {
	if i.tty < 0 {
		return
	}
	if pg, err := unix.IoctlGetInt(i.tty, unix.TIOCGPGRP); err == nil && pg == i.cmd.Process.Pid {
		setForeground(i.tty, unix.Getpgrp())
	}
}
