package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// authGuard slows down guessing of proxy passwords. Under serve the proxy
// listens on a network and clients' passwords are chosen by people: each
// source address (an IPv6 /64) may fail to authenticate as one client name
// authBurst times, then once per authRefill; past that its attempts for
// that name are refused without the password being compared, so that a
// guess tells nothing. A correct password from elsewhere is not affected,
// and one from the same address is once the bucket refills.
type authGuard struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[authKey]*authBucket

	// failures counts wrong credentials; throttled, attempts refused
	// unchecked.
	failures  atomic.Int64
	throttled atomic.Int64
	// lastLog is when a failure was last logged (unix nanoseconds): at
	// most one line per authLogEvery, so that a flood does not flood the
	// log.
	lastLog atomic.Int64
}

const (
	authBurst    = 10
	authRefill   = 6 * time.Second
	authLogEvery = 10 * time.Second
	// authMaxKeys bounds the guard's memory (see makeRoom).
	authMaxKeys = 16384
	// authEvict is how many entries a full guard drops at once.
	authEvict = 256
)

type authKey struct {
	src  netip.Prefix
	user string
}

type authBucket struct {
	tokens float64
	last   time.Time
}

func newAuthGuard(now func() time.Time) *authGuard {
	if now == nil {
		now = time.Now
	}
	return &authGuard{now: now, buckets: make(map[authKey]*authBucket)}
}

// authKeyFor is the guard's key for a client at remoteAddr claiming user,
// a known client's name or "" for any other: names that are no client's
// would otherwise each make a key of their own.
func authKeyFor(remoteAddr, user string) authKey {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return authKey{user: user}
	}
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return authKey{src: p, user: user}
}

// refill brings b up to date at now.
func (b *authBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(authBurst, b.tokens+float64(d)/float64(authRefill))
	}
	b.last = now
}

// take reserves one try of a password for k, and reports false (counted)
// when k has none left: the try is refused unchecked. Reserving before the
// password is compared keeps concurrent tries from all passing on the last
// token (found by review); a success gives the token back.
func (g *authGuard) take(k authKey) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.buckets[k]
	if !ok {
		g.makeRoom()
		b = &authBucket{tokens: authBurst, last: now}
		g.buckets[k] = b
	}
	b.refill(now)
	if b.tokens < 1 {
		g.throttled.Add(1)
		return false
	}
	b.tokens--
	return true
}

// succeeded gives back the try k took.
func (g *authGuard) succeeded(k authKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.buckets[k]; ok {
		b.tokens = min(b.tokens+1, authBurst)
	}
}

// failed counts a wrong password from k (its try stays taken). It reports
// whether the caller should log it (rate-limited).
func (g *authGuard) failed() bool {
	g.failures.Add(1)
	now := g.now().UnixNano()
	last := g.lastLog.Load()
	return now-last >= int64(authLogEvery) && g.lastLog.CompareAndSwap(last, now)
}

// makeRoom keeps the guard under authMaxKeys entries by dropping
// authEvict arbitrary ones (map order) when it is full: constant work per
// new key, whatever the map holds (found by review: a sweep of the whole
// map under the lock cost 640 µs per failure once it was full). A guesser
// whose own bucket is dropped must first make authEvict new keys fail:
// unknown client names from one source are one key (authKeyFor).
// Caller holds g.mu.
func (g *authGuard) makeRoom() {
	if len(g.buckets) < authMaxKeys {
		return
	}
	n := 0
	for k := range g.buckets {
		delete(g.buckets, k)
		if n++; n == authEvict {
			break
		}
	}
}
