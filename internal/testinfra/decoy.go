package testinfra

import (
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// Decoy is a TCP or UDP listener that a test expects never to be reached
// (isolation tests put them where an escaping agent would go). Hits counts
// accepted connections or received datagrams. A TCP decoy answers each
// connection with a tiny HTTP response, "decoy", so a control request can
// tell that it was reached.
type Decoy struct {
	Addr string
	Hits atomic.Int64
}

// StartDecoy listens on addr ("host:0" for any port) with network "tcp" or
// "udp" until the test ends.
func StartDecoy(t testing.TB, network, addr string) *Decoy {
	t.Helper()
	d := &Decoy{}
	done := make(chan struct{})
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("UDP decoy on %s: %v", addr, err)
		}
		d.Addr = pc.LocalAddr().String()
		go func() {
			defer close(done)
			buf := make([]byte, 512)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				d.Hits.Add(1)
			}
		}()
		t.Cleanup(func() { pc.Close(); <-done })
		return d
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP decoy on %s: %v", addr, err)
	}
	d.Addr = ln.Addr().String()
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.Hits.Add(1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\ndecoy")
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return d
}

// MachineAddrs returns this machine's non-loopback, non-link-local
// addresses: where a decoy catches an agent that reaches the host's own
// network. It fails the test when there are none.
func MachineAddrs(t testing.TB) []netip.Addr {
	t.Helper()
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if ad := p.Addr().Unmap(); !ad.IsLoopback() && !ad.IsLinkLocalUnicast() {
			out = append(out, ad)
		}
	}
	if len(out) == 0 {
		t.Fatal("this machine has no non-loopback address to put a decoy on")
	}
	return out
}
