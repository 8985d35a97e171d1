//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "io/fs"

// inodeAndCtime is not known here: size, time and mode are compared.
func inodeAndCtime(fs.FileInfo) (uint64, int64) { return 0, 0 }
