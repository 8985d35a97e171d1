//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package proxy

import (
	"errors"
	"syscall"
)

// canPeekSockets: socketReadable works here.
const canPeekSockets = true

// socketReadable reports, without reading or blocking, whether the socket
// has bytes to read, has ended, or has failed: whether a read would return
// at once.
func socketReadable(rc syscall.RawConn) bool {
	var b [1]byte
	var err error
	cerr := rc.Control(func(fd uintptr) {
		for {
			_, _, err = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	})
	return cerr != nil || !errors.Is(err, syscall.EAGAIN)
}

// openFileLimit is the process's limit on open descriptors (Go raises the
// soft limit to the hard one at start), or 0 when it cannot be read.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
