//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

// alive cannot peek at the socket here; a connection the upstream closed
// fails on use and the request is sent again when it may be.
func (pc *directConn) alive() bool { return true }
