//go:build !linux

package audit

import (
	"io/fs"
	"os"
)

const oDSync = os.O_SYNC

// journalSupported is false where the journal's gain was never measured:
// the log is synced by fsync.
const journalSupported = false

// oDirect keeps the journal's writes out of the page cache.
const oDirect = 0

// links is 1 where the journal is not used.
func links(fs.FileInfo) uint64 { return 1 }
