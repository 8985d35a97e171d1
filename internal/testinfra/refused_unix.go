//go:build unix

package testinfra

import (
	"fmt"
	"net/netip"
	"syscall"
)

// RefusingAddr reserves a loopback TCP port that nothing listens on: a
// connection to addr is refused for as long as the reservation is held. A
// port found by listening and closing again can be handed to the next
// listener that asks for one — in a test, often the proxy under test — so
// "connection refused" tests built that way fail at random. The socket here
// is bound without SO_REUSEADDR and never listens, so the kernel gives the
// port to nobody else until release.
func RefusingAddr() (addr string, release func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return "", nil, fmt.Errorf("reserve a refusing port: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("reserve a refusing port: bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("reserve a refusing port: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("reserve a refusing port: unexpected address %T", sa)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
	return ap.String(), func() { syscall.Close(fd) }, nil
}
