package session

import "golang.org/x/sys/unix"

// ownProcessGroup reports whether the isolated child gets a process group
// of its own: when countersign has no controlling terminal (CI, cron, a
// service, ssh without a terminal). A signal the child sends to its group
// (kill(0, SIGKILL)) then stops at the session's edge, and countersign
// records the session's end and checks for planted configuration, which
// the child could otherwise prevent by killing it (found by review).
//
// With a terminal, the child stays in countersign's group, the shell's
// job: the terminal's signals (^C, ^Z, window changes) and reads of
// /dev/tty work as for any command, including in wrapper scripts and
// pipelines. Moving the child to a group of its own there meant relaying
// job control between two groups, which review showed a child could turn
// into a stopped or hung session. A person is at that terminal to see
// countersign killed.
func ownProcessGroup() bool {
	// Non-blocking: a serial line without carrier would block the open.
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return true // ENXIO: no controlling terminal
	}
	unix.Close(fd)
	return false
}
