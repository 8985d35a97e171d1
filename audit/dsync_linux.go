//go:build linux

package audit

import "syscall"

// oDSync makes each write to the journal durable before it returns, without
// the metadata an fsync commits.
const oDSync = syscall.O_DSYNC

// journalSupported reports whether the journal's write pattern has been
// measured to beat an fsync of the log here.
const journalSupported = true

// oDirect keeps the journal's writes out of the page cache.
const oDirect = syscall.O_DIRECT
