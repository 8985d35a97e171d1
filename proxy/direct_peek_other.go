//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

// canPeek: alive cannot look at an idle connection's socket here, so
// connections are not kept (newDirectTransport).
const canPeek = false

// alive cannot peek at the socket here; a connection the upstream closed
// fails on use and the request is sent again when it may be.
func (pc *directConn) alive() bool { return true }
