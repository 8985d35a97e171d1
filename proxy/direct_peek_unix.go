//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import "syscall"

// canPeek: alive can look at an idle connection's socket.
const canPeek = true

// alive reports whether an idle connection may still carry a request: the
// upstream has neither closed it nor sent anything (a close_notify, stray
// bytes) since its last answer. One non-blocking peek at the socket, where
// http.Transport keeps a goroutine reading every idle connection.
func (pc *directConn) alive() bool {
	if pc.raw == nil {
		return true
	}
	var rerr error
	var b [1]byte
	err := pc.raw.Read(func(fd uintptr) bool {
		// 0 bytes and no error is the upstream's close; any byte is
		// more than an idle connection should hold.
		_, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	return err == nil && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
}
