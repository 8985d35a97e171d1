//go:build unix

package testinfra

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestRefusingAddr(t *testing.T) {
	addr, release, err := RefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = net.DialTimeout("tcp", addr, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s = %v, want connection refused", addr, err)
	}
	// The port stays reserved: nobody may listen on it meanwhile.
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("listen on the reserved %s succeeded", addr)
	}
}
