// Package connlimit caps the connections an http.Server holds. When the cap
// is reached, a newcomer closes the connection that has been idle (no
// request yet, or between two requests) the longest, once it has been for
// a grace; or else the one that has waited longest for a request's bytes
// (its head, or a body that never comes, which keeps a connection busy
// until the read timeout), once it has for five graces; or one whose
// answer its client has not read for five graces. A request whose body
// has been read is not cut while its handler runs: it may be applying a
// decision.
// When there is none to close, the newcomer is answered 503 and closed.
// Connections opened and left idle or stalled cannot keep clients out for
// long, nor use up the process's file descriptors.
package connlimit

import (
	"container/list"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener wraps a net.Listener. Its ConnState and ConnContext must be the
// server's, and its Handler must wrap the server's handler: they tell it
// which connections are idle, which wait for a request's bytes and which
// run a handler.
type Listener struct {
	net.Listener
	max                int
	grace, activeGrace time.Duration

	mu      sync.Mutex
	open    int
	idle    list.List // of *conn, longest idle first
	waiting list.List // of *conn reading a request, longest first
	busy    list.List // of *conn running a handler or writing its answer
}

// New caps ln at limit connections; one idle for grace, or waiting for a
// request's bytes for five times grace, may be closed for a newcomer.
func New(ln net.Listener, limit int, grace time.Duration) *Listener {
	return &Listener{Listener: ln, max: limit, grace: grace, activeGrace: 5 * grace}
}

// Connection states, as the listener sees them.
const (
	idle    = iota // no request: new, or between two
	waiting        // a request is arriving: its head, or its body
	busy           // a handler runs with the request read, or its answer is written
	gone           // hijacked or closed
)

type conn struct {
	net.Conn
	l         *Listener
	state     int           // l.mu
	since     time.Time     // in this state since; l.mu
	el        *list.Element // in the list of its state; l.mu
	closed    bool          // l.mu
	closeOnce sync.Once
	// writing is when the write in progress began (UnixNano), 0 if none:
	// a client that does not read its answer blocks it.
	writing atomic.Int64
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
		// Every connection is busy, or idle or waiting only for a moment.
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
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
		l.move(victim, gone) // off the lists: nobody else picks it
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
	if e := l.waiting.Front(); e != nil && time.Since(e.Value.(*conn).since) >= l.activeGrace {
		return e.Value.(*conn)
	}
	// An answer its client does not read blocks the write until the
	// write timeout (found by review).
	stuck := time.Now().Add(-l.activeGrace).UnixNano()
	for e := l.busy.Front(); e != nil; e = e.Next() {
		if w := e.Value.(*conn).writing.Load(); w != 0 && w <= stuck {
			return e.Value.(*conn)
		}
	}
	return nil
}

// move puts c in state, on its list. l.mu is held.
func (l *Listener) move(c *conn, state int) {
	if c.el != nil {
		l.list(c.state).Remove(c.el)
		c.el = nil
	}
	c.state, c.since = state, time.Now()
	if lst := l.list(state); lst != nil && !c.closed {
		c.el = lst.PushBack(c)
	}
}

// list is the list of connections in state, nil for gone.
func (l *Listener) list(state int) *list.List {
	switch state {
	case idle:
		return &l.idle
	case waiting:
		return &l.waiting
	case busy:
		return &l.busy
	}
	return nil
}

// wrap is Accept's second half: the connection, counted, starts idle.
func (l *Listener) wrap(c net.Conn) *conn {
	cc := &conn{Conn: c, l: l}
	l.mu.Lock()
	l.move(cc, idle)
	l.mu.Unlock()
	return cc
}

// Read moves an idle connection to waiting when a request's first bytes
// arrive: a head that takes its time is not idle.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.mu.Lock()
		if c.state == idle && !c.closed {
			c.l.move(c, waiting)
		}
		c.l.mu.Unlock()
	}
	return n, err
}

// Write records how long a write has been waiting for the client.
func (c *conn) Write(p []byte) (int, error) {
	c.writing.Store(time.Now().UnixNano())
	n, err := c.Conn.Write(p)
	c.writing.Store(0)
	return n, err
}

// ConnState records which connections are idle and which have a request:
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
		// The head is read; the body may still be to come (Handler).
		l.move(cc, waiting)
	case http.StateIdle:
		l.move(cc, idle)
	case http.StateHijacked:
		l.move(cc, gone)
	}
}

type connKey struct{}

// ConnContext lets Handler find a request's connection: set it as the
// server's http.Server.ConnContext.
func (l *Listener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Handler wraps h so that a request's connection counts as busy, not to
// be cut while its handler runs, once its body is read (at once when it
// has none): to its end, or to its declared length (a JSON decoder stops
// at the end of its value, before the end of the body).
func (l *Listener) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*conn); ok {
			if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
				l.setBusy(c)
			} else {
				r.Body = &body{ReadCloser: r.Body, left: r.ContentLength, done: func() { l.setBusy(c) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (l *Listener) setBusy(c *conn) {
	l.mu.Lock()
	if !c.closed {
		l.move(c, busy)
	}
	l.mu.Unlock()
}

// body calls done once its end, or its declared length, is read.
type body struct {
	io.ReadCloser
	left int64 // bytes declared and not yet read; -1 when not declared
	done func()
	once sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err == io.EOF || b.left == 0 {
		b.once.Do(b.done)
	}
	return n, err
}

// Close closes the connection and gives its place back, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		l := c.l
		l.mu.Lock()
		defer l.mu.Unlock()
		c.closed = true
		l.move(c, gone) // off the lists
		l.open--
	})
	return err
}
