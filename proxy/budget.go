package proxy

import "sync"

// heldFloorShare is the part of a byteBudget (Options.MaxHeldBodies,
// Options.MaxReadingBodies) that each session
// may always keep, whatever the others keep (16 MiB of the default 512):
// without it, one session's held uploads (or copies of one request held
// many times over) could leave every other session's requests that need
// approval nothing but 503s (found by review). Memory stays bounded: by
// MaxHeldBodies plus the floor for each session.
const heldFloorShare = 32

// byteBudget accounts bytes of request bodies, in all and per session:
// those kept while their requests wait for a human (Options.MaxHeldBodies)
// and those being read (Options.MaxReadingBodies).
type byteBudget struct {
	max   int64
	floor int64 // what each session may always take

	mu    sync.Mutex
	total int64
	by    map[string]int64 // by session; no entry at zero
}

// take reserves n bytes for a request of session: within the session's
// floor, or within max in all.
func (b *byteBudget) take(session string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	mine := b.by[session] + n
	if mine > b.floor && b.total+n > b.max {
		return false
	}
	if b.by == nil {
		b.by = map[string]int64{}
	}
	b.by[session] = mine
	b.total += n
	return true
}

// give returns what take reserved.
func (b *byteBudget) give(session string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total -= n
	if left := b.by[session] - n; left > 0 {
		b.by[session] = left
	} else {
		delete(b.by, session)
	}
}
