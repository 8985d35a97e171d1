//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package mitm

import "os"

// lockDir does nothing where flock(2) is not available: two processes
// creating a CA at once there may still collide (LoadOrCreate says so).
func lockDir(string) (func(), error) { return func() {}, nil }

// foreignOwner is false where ownership is not a uid.
func foreignOwner(os.FileInfo) bool { return false }
