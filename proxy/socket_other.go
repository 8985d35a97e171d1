//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package proxy

import "syscall"

// canPeekSockets: a held request waits on a goroutine of its own here.
const canPeekSockets = false

func socketReadable(syscall.RawConn) bool { return true }

// openFileLimit is not known here.
func openFileLimit() uint64 { return 0 }
