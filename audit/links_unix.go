//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package audit

import (
	"io/fs"
	"syscall"
)

// links returns the number of hard links to the file fi describes: a log
// with other names is refused (see openFile) on every Unix, not only where
// the journal is used (found by review: on macOS and the BSDs it read 1).
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
