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
	authBurst  = 10
	authRefill = 6 * time.Second
	// A source's tries under all names together.
	authSourceBurst  = 50
	authSourceRefill = time.Second
	// authTrust is how long a name that authenticated from a source is
	// not charged to the source's budget.
	authTrust    = time.Hour
	authLogEvery = 10 * time.Second
	// authMaxKeys bounds the guard's memory (see makeRoom).
	authMaxKeys = 16384
	// authEvict is how many entries a full guard drops at once.
	authEvict = 256
	// authMaxUser bounds the part of a client name kept in a key.
	authMaxUser = 64
)

type authKey struct {
	src  netip.Prefix
	user string
	// source marks the source's own bucket (all names together).
	source bool
}

type authBucket struct {
	tokens       float64
	last         time.Time
	trustedUntil time.Time
}

func newAuthGuard(now func() time.Time) *authGuard {
	if now == nil {
		now = time.Now
	}
	return &authGuard{now: now, buckets: make(map[authKey]*authBucket)}
}

// authKeyFor is the guard's key for a client at remoteAddr claiming user.
func authKeyFor(remoteAddr, user string) authKey {
	if len(user) > authMaxUser {
		user = user[:authMaxUser]
	}
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

// refill brings b up to date at now: one token every per, at most burst.
func (b *authBucket) refill(now time.Time, burst float64, per time.Duration) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+float64(d)/float64(per))
	}
	b.last = now
}

// take reserves one try of a password for k, from k's bucket and from its
// source's, and reports false (counted) when either has none left: the try
// is refused unchecked. Reserving before the password is compared keeps
// concurrent tries from all passing on the last token (found by review); a
// success gives the tokens back. The source's bucket bounds the tries
// under every name together, whether the name is a client's or not, so
// that the answers do not tell which names exist (found by review).
func (g *authGuard) take(k authKey) (ok, sourceCharged bool) {
	now := g.now()
	src := authKey{src: k.src, source: true}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.bucket(k, authBurst, now)
	b.refill(now, authBurst, authRefill)
	// A name that authenticated from here lately is not charged to the
	// source: other clients at a shared address (behind NAT, several on
	// one host) cannot keep it out by guessing under other names (found
	// by review). Only its password earns that.
	var bs *authBucket
	if !now.Before(b.trustedUntil) {
		bs = g.bucket(src, authSourceBurst, now)
		bs.refill(now, authSourceBurst, authSourceRefill)
	}
	if b.tokens < 1 || bs != nil && bs.tokens < 1 {
		g.throttled.Add(1)
		return false, false
	}
	b.tokens--
	if bs != nil {
		bs.tokens--
	}
	return true, bs != nil
}

// bucket returns k's bucket, made full. Caller holds g.mu.
func (g *authGuard) bucket(k authKey, burst float64, now time.Time) *authBucket {
	b, ok := g.buckets[k]
	if !ok {
		g.makeRoom()
		b = &authBucket{tokens: burst, last: now}
		g.buckets[k] = b
	}
	return b
}

// succeeded gives back the tries k took (the source's only if take charged
// it), and trusts k (its source's budget no longer charged) for authTrust.
func (g *authGuard) succeeded(k authKey, sourceCharged bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.buckets[k]; ok {
		b.tokens = min(b.tokens+1, authBurst)
		b.trustedUntil = now.Add(authTrust)
	}
	if !sourceCharged {
		return
	}
	if b, ok := g.buckets[authKey{src: k.src, source: true}]; ok {
		b.tokens = min(b.tokens+1, authSourceBurst)
	}
}

// failed counts a wrong password (its try stays taken). It reports
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
// whose own bucket is dropped must first make authEvict new keys, which
// its source's bucket allows only so fast.
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
