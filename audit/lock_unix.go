//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockTries and lockRetry bound the wait for a lock a verify probe holds.
const (
	lockTries = 5
	lockRetry = 10 * time.Millisecond
)

// lockFile takes an exclusive advisory lock on f, released when f is closed,
// so that a second countersign process cannot interleave its own chain.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var lockErr error
	// `audit verify` holds a shared lock for an instant to ask whether a
	// writer is there (Writing): a start that lands in that instant tries
	// again rather than take the log for in use.
	for try := 0; ; try++ {
		if err := rc.Control(func(fd uintptr) {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		}); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if !errors.Is(lockErr, syscall.EWOULDBLOCK) || try == lockTries-1 {
			break
		}
		time.Sleep(lockRetry)
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return ErrInUse
	}
	if lockErr != nil {
		return fmt.Errorf("lock: %w", lockErr)
	}
	return nil
}

// Writing reports whether a countersign process holds f's log open for
// writing now (its lock), as `audit verify` asks: a log being written may
// end in a line still being appended.
func Writing(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	busy := false
	_ = rc.Control(func(fd uintptr) {
		err := syscall.Flock(int(fd), syscall.LOCK_SH|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			busy = true
			return
		}
		if err == nil {
			_ = syscall.Flock(int(fd), syscall.LOCK_UN)
		}
	})
	return busy
}
