//go:build !linux

package audit

import "os"

const oDSync = os.O_SYNC

// journalSupported is false where the journal's gain was never measured:
// the log is synced by fsync.
const journalSupported = false
