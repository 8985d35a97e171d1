//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"io/fs"
	"syscall"
)

// inodeAndCtime returns fi's inode number and change time.
func inodeAndCtime(fi fs.FileInfo) (uint64, int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), st.Ctimespec.Nano()
	}
	return 0, 0
}
