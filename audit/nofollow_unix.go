//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package audit

import "syscall"

// noFollow makes opening an existing log fail on a symbolic link (ELOOP).
const noFollow = syscall.O_NOFOLLOW
