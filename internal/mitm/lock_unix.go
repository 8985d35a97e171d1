//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package mitm

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir/.ca.lock, waiting for
// another process that holds it, and returns its release. Two sessions
// started at once on a fresh state_dir then agree on one CA instead of one
// failing half-way (or being told to delete the other's key).
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// Not through a link planted in a shared directory (found by review:
	// it made countersign create the file the link named).
	f, err := os.OpenFile(filepath.Join(dir, ".ca.lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if lockErr = syscall.Flock(int(fd), syscall.LOCK_EX); lockErr != syscall.EINTR {
				return
			}
		}
	}); err != nil || lockErr != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %v", dir, firstErr(err, lockErr))
	}
	return func() { f.Close() }, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// foreignOwner reports whether fi is owned by another user than the one
// countersign runs as: a CA key planted by someone else in a shared
// directory would be that user's key (found by review).
func foreignOwner(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Geteuid()
}
