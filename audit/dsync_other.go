//go:build !linux

package audit

import "os"

const oDSync = os.O_SYNC

// journalSupported is false where the journal's gain was never measured:
// the log is synced by fsync.
const journalSupported = false

// oDirect keeps the journal's writes out of the page cache.
const oDirect = 0
