package proxy

import "sync"

// heldFloorShare is the part of Options.MaxHeldBodies that each session
// may always keep, whatever the others keep (16 MiB of the default 512):
// without it, one session's held uploads (or copies of one request held
// many times over) could leave every other session's requests that need
// approval nothing but 503s (found by review). Memory stays bounded: by
// MaxHeldBodies plus the floor for each session.
const heldFloorShare = 32

// heldBudget accounts the bytes of bodies kept while their requests wait
// for a human, in all and per session.
type heldBudget struct {
	max   int64 // Options.MaxHeldBodies
	floor int64

	mu    sync.Mutex
	total int64
	by    map[string]int64 // by session; no entry at zero
}

// take reserves n bytes for a request of session: within the session's
// floor, or within max in all.
func (b *heldBudget) take(session string, n int64) bool {
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
func (b *heldBudget) give(session string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total -= n
	if left := b.by[session] - n; left > 0 {
		b.by[session] = left
	} else {
		delete(b.by, session)
	}
}
