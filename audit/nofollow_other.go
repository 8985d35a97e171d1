//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package audit

// noFollow is 0 where O_NOFOLLOW is not available: a link is followed.
const noFollow = 0
