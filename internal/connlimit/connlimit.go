// Package connlimit caps the connections an http.Server holds. When the cap
// is reached, a newcomer closes the
// connection that has been idle (no request yet, or between two requests)
// the longest, once it has been for a grace, or else the one whose
// request has run the longest, once it has for a longer one (a request
// whose body never comes is active until the read timeout); it is itself
// closed when there is none: connections opened and left idle or stalled
// cannot keep clients out for long, nor use up the process's file
// descriptors.
package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listener wraps a net.Listener; its ConnState must be the server's
// http.Server.ConnState, which tells it which connections are idle.
type Listener struct {
	net.Listener
	max                int
	grace, activeGrace time.Duration

	mu     sync.Mutex
	open   int
	idle   list.List // of *conn, longest idle first
	active list.List // of *conn, longest active first
}

// New caps ln at limit connections; one idle for grace, or serving one
// request for five times grace, may be closed for a newcomer.
func New(ln net.Listener, limit int, grace time.Duration) *Listener {
	return &Listener{Listener: ln, max: limit, grace: grace, activeGrace: 5 * grace}
}

type conn struct {
	net.Conn
	l         *Listener
	since     time.Time     // idle or active since; l.mu
	el        *list.Element // in l.idle or l.active; l.mu
	active    bool          // l.mu
	closed    bool          // l.mu
	closeOnce sync.Once
}

// Accept returns the next connection, making room for it if it must.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.makeRoom() {
			return l.wrap(c), nil
		}
		// Every connection is busy, or idle only for a moment.
		c.Close()
	}
}

// makeRoom reports whether there is room for one more connection, closing
// another past its grace if it must; it counts the newcomer.
func (l *Listener) makeRoom() bool {
	l.mu.Lock()
	if l.open >= l.max {
		victim := l.victim()
		if victim == nil {
			l.mu.Unlock()
			return false
		}
		l.unlist(victim)
		l.mu.Unlock()
		victim.Close() // gives its place back
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			return false
		}
	}
	l.open++
	l.mu.Unlock()
	return true
}

// victim is the connection to close for a newcomer, or nil. l.mu is held.
func (l *Listener) victim() *conn {
	if e := l.idle.Front(); e != nil && time.Since(e.Value.(*conn).since) >= l.grace {
		return e.Value.(*conn)
	}
	if e := l.active.Front(); e != nil && time.Since(e.Value.(*conn).since) >= l.activeGrace {
		return e.Value.(*conn)
	}
	return nil
}

// unlist takes c off the idle or active list. l.mu is held.
func (l *Listener) unlist(c *conn) {
	if c.el == nil {
		return
	}
	if c.active {
		l.active.Remove(c.el)
	} else {
		l.idle.Remove(c.el)
	}
	c.el = nil
}

// wrap is Accept's second half: the connection, counted, starts idle.
func (l *Listener) wrap(c net.Conn) *conn {
	cc := &conn{Conn: c, l: l, since: time.Now()}
	l.mu.Lock()
	cc.el = l.idle.PushBack(cc)
	l.mu.Unlock()
	return cc
}

// ConnState records which connections are idle and which serve a request:
// set it as the server's http.Server.ConnState.
func (l *Listener) ConnState(c net.Conn, state http.ConnState) {
	cc, ok := c.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cc.closed {
		return
	}
	switch state {
	case http.StateActive:
		l.unlist(cc)
		cc.active, cc.since = true, time.Now()
		cc.el = l.active.PushBack(cc)
	case http.StateIdle:
		l.unlist(cc)
		cc.active, cc.since = false, time.Now()
		cc.el = l.idle.PushBack(cc)
	case http.StateHijacked:
		l.unlist(cc)
	}
}

// Close closes the connection and gives its place back, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		l := c.l
		l.mu.Lock()
		defer l.mu.Unlock()
		l.unlist(c)
		c.closed = true
		l.open--
	})
	return err
}
