package proxy

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// parkedConns holds the connections of requests held for approval while
// nothing happens on them, so that such a request costs no goroutine (and
// no goroutine stack) for the minutes a human may take: with thousands
// held, the stacks would be most of the proxy's memory. A parked connection
// is resumed on a new goroutine when the broker wakes it (decided, hold run
// out, shutdown) or when its client's socket becomes readable, which one
// goroutine checks for every parked connection at each tick: the client
// left (the resumed hold then sees the end and abandons the approval) or
// sent bytes.
type parkedConns struct {
	every time.Duration

	mu      sync.Mutex
	conns   map[*parked]struct{}
	running bool // the sweeping goroutine runs while conns is not empty
}

// parked is one parked connection.
type parked struct {
	sock   syscall.RawConn
	resume func()
	fired  atomic.Bool
}

// fire resumes the connection, once.
func (p *parked) fire() {
	if p.fired.CompareAndSwap(false, true) {
		go p.resume()
	}
}

// add parks p until it is fired.
func (pc *parkedConns) add(p *parked) {
	pc.mu.Lock()
	if pc.conns == nil {
		pc.conns = map[*parked]struct{}{}
	}
	pc.conns[p] = struct{}{}
	start := !pc.running
	pc.running = true
	pc.mu.Unlock()
	if start {
		go pc.sweep()
	}
}

// count is how many connections are parked and not yet resumed.
func (pc *parkedConns) count() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	n := 0
	for p := range pc.conns {
		if !p.fired.Load() {
			n++
		}
	}
	return n
}

// sweep fires the parked connections whose sockets are readable, and ends
// when none is left.
func (pc *parkedConns) sweep() {
	tick := time.NewTicker(pc.every)
	defer tick.Stop()
	var batch []*parked
	for range tick.C {
		batch = batch[:0]
		pc.mu.Lock()
		for p := range pc.conns {
			if p.fired.Load() {
				delete(pc.conns, p)
				continue
			}
			batch = append(batch, p)
		}
		if len(pc.conns) == 0 {
			pc.running = false
			pc.mu.Unlock()
			return
		}
		pc.mu.Unlock()
		for _, p := range batch {
			if socketReadable(p.sock) {
				p.fire()
			}
		}
		clear(batch)
	}
}
