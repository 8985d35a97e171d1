//go:build !unix

package testinfra

import "net"

// RefusingAddr returns a loopback TCP address nothing listens on. Without
// Unix sockets to hold the port, this is a closed listener's port, which
// another listener may take later; the Unix version reserves it.
func RefusingAddr() (addr string, release func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	return addr, func() {}, nil
}
