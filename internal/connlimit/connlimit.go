// Package connlimit caps the connections an http.Server holds. When the cap
// is reached, a newcomer closes the oldest connection that has been idle
// (no request yet, or between two requests) for longer than a grace, and
// is itself closed when none has: connections opened and left idle cannot
// keep clients out for long, nor use up the process's file descriptors.
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
	max   int
	grace time.Duration

	mu   sync.Mutex
	open int
	idle list.List // of *conn, longest idle first
}

// New caps ln at max connections; a connection idle for grace may be
// closed for a newcomer.
func New(ln net.Listener, max int, grace time.Duration) *Listener {
	return &Listener{Listener: ln, max: max, grace: grace}
}

type conn struct {
	net.Conn
	l         *Listener
	idleSince time.Time     // l.mu
	el        *list.Element // in l.idle while idle; l.mu
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
// the longest idle one past its grace if it must; it counts the newcomer.
func (l *Listener) makeRoom() bool {
	l.mu.Lock()
	if l.open >= l.max {
		e := l.idle.Front()
		if e == nil || time.Since(e.Value.(*conn).idleSince) < l.grace {
			l.mu.Unlock()
			return false
		}
		victim := e.Value.(*conn)
		l.idle.Remove(e)
		victim.el = nil
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

// wrap is Accept's second half: the connection, counted, starts idle.
func (l *Listener) wrap(c net.Conn) *conn {
	cc := &conn{Conn: c, l: l, idleSince: time.Now()}
	l.mu.Lock()
	cc.el = l.idle.PushBack(cc)
	l.mu.Unlock()
	return cc
}

// ConnState records which connections are idle: set it as the server's
// http.Server.ConnState.
func (l *Listener) ConnState(c net.Conn, state http.ConnState) {
	cc, ok := c.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateActive, http.StateHijacked:
		if cc.el != nil {
			l.idle.Remove(cc.el)
			cc.el = nil
		}
	case http.StateIdle:
		if cc.el == nil && !cc.closed {
			cc.idleSince = time.Now()
			cc.el = l.idle.PushBack(cc)
		}
	}
}

// Close closes the connection and gives its place back, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		if c.el != nil {
			c.l.idle.Remove(c.el)
			c.el = nil
		}
		c.closed = true
		c.l.open--
	})
	return err
}
