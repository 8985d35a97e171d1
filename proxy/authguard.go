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
	// authMaxKeys bounds the guard's memory. Past it, an arbitrary entry
	// makes room: to get its own bucket dropped a guesser must fail that
	// many times under other names, which slows it more than the bucket.
	authMaxKeys = 16384
	// authMaxUser bounds the part of a client name kept in a key.
	authMaxUser = 64
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

// key is the guard's key for a client at remoteAddr claiming user.
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

// refill brings b up to date at now.
func (b *authBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(authBurst, b.tokens+float64(d)/float64(authRefill))
	}
	b.last = now
}

// allowed reports whether k may try a password now.
func (g *authGuard) allowed(k authKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.buckets[k]
	if !ok {
		return true
	}
	b.refill(g.now())
	if b.tokens >= 1 {
		return true
	}
	g.throttled.Add(1)
	return false
}

// failed records a wrong password from k. It reports whether the caller
// should log it (rate-limited).
func (g *authGuard) failed(k authKey) bool {
	g.failures.Add(1)
	now := g.now()
	g.mu.Lock()
	b, ok := g.buckets[k]
	if !ok {
		g.makeRoom(now)
		b = &authBucket{tokens: authBurst, last: now}
		g.buckets[k] = b
	}
	b.refill(now)
	b.tokens = max(b.tokens-1, 0)
	g.mu.Unlock()
	last := g.lastLog.Load()
	return now.UnixNano()-last >= int64(authLogEvery) && g.lastLog.CompareAndSwap(last, now.UnixNano())
}

// makeRoom keeps the guard under authMaxKeys entries. Caller holds g.mu.
func (g *authGuard) makeRoom(now time.Time) {
	if len(g.buckets) < authMaxKeys {
		return
	}
	for k, b := range g.buckets {
		if b.refill(now); b.tokens >= authBurst {
			delete(g.buckets, k)
		}
	}
	for k := range g.buckets {
		if len(g.buckets) < authMaxKeys {
			break
		}
		delete(g.buckets, k)
	}
}
