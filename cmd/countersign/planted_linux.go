package main

import (
	"io/fs"
	"syscall"
)

// inodeAndCtime returns fi's inode number and change time.
func inodeAndCtime(fi fs.FileInfo) (uint64, int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Ctim.Nano()
	}
	return 0, 0
}
