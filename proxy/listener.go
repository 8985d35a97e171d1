package proxy

import (
	"bytes"
	"container/list"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/h1"
	"go.uber.org/zap"
)

// strictListener checks the first request head on every proxy connection
// with the strict reader's rules before net/http parses it: net/http would
// silently normalise ambiguous framing (Content-Length with
// Transfer-Encoding, duplicate Content-Length), and SPEC 10.2 requires
// refusing it. A connection carries one checked head: plain-HTTP answers
// close the connection, and a CONNECT turns the rest into a tunnel.
//
// It also caps concurrent connections (Options.MaxConns), as
// netutil.LimitListener does, so that its connections wrap the accepted
// socket directly: a held request waits on that socket (clientWatch).
//
// A connection takes its slot before its client has authenticated, and a
// client that sends nothing keeps it until the header timeout: without
// more, anyone who can reach the port could hold every slot by opening
// connections faster than the timeout frees them. So when a connection
// arrives and every slot is taken, the oldest connection not yet bound to
// a session (bindSession) is closed to make room, once it has had
// Options.AuthGrace to authenticate. Clients send their CONNECT as soon as
// they connect, and are bound once it authenticates, so a flood of idle
// connections displaces its own: to keep every slot it would have to open
// as many connections as are not bound every AuthGrace, and bound ones may
// hold at most seven eighths of the slots (maxBound): 2,048 or more a
// second by default, instead of 546 (all the slots every header timeout).
// The grace keeps a burst of clients over the cap from closing one
// another before they can authenticate.
type strictListener struct {
	net.Listener
	s *Server

	slots     chan struct{} // one per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu      sync.Mutex
	unbound list.List // of *strictConn not yet bound, oldest first
}

func newStrictListener(ln net.Listener, s *Server, max int) *strictListener {
	return &strictListener{Listener: ln, s: s, slots: make(chan struct{}, max), done: make(chan struct{})}
}

// Accept waits for a connection, then for a free slot, making one if it
// must by closing the oldest connection not yet bound to a session. When
// every slot is bound, the connection waits, unread, for one to free.
func (l *strictListener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := l.takeSlot(); err != nil {
		c.Close()
		return nil, err
	}
	sc := &strictConn{Conn: c, s: l.s, l: l, accepted: time.Now()}
	l.mu.Lock()
	sc.unbound = l.unbound.PushBack(sc)
	l.mu.Unlock()
	return sc, nil
}

// takeSlot waits for a free slot, closing the oldest unbound connection
// once its grace is over.
func (l *strictListener) takeSlot() error {
	for {
		select {
		case l.slots <- struct{}{}:
			return nil
		default:
		}
		wait := l.evictOldest()
		if wait == 0 {
			continue // its Close gave its slot back
		}
		if err := l.waitSlot(wait); err != errNoSlotYet {
			return err
		}
	}
}

var errNoSlotYet = errors.New("no slot yet")

// waitSlot waits for a free slot for up to wait, or without end when
// wait is negative.
func (l *strictListener) waitSlot(wait time.Duration) error {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-timeout:
		return errNoSlotYet
	case <-l.done:
		return net.ErrClosed
	}
}

// evictOldest closes the oldest connection not yet bound to a session if
// its grace is over, and reports 0; its Close frees its slot. Otherwise it
// reports how long until that grace is over, or -1 when every connection
// is bound.
func (l *strictListener) evictOldest() time.Duration {
	l.mu.Lock()
	e := l.unbound.Front()
	if e == nil {
		l.mu.Unlock()
		return -1
	}
	old := e.Value.(*strictConn)
	if wait := l.s.opts.AuthGrace - time.Since(old.accepted); wait > 0 {
		l.mu.Unlock()
		return wait
	}
	l.unbound.Remove(e)
	old.unbound = nil
	l.mu.Unlock()
	if n := l.s.evicted.Add(1); n == 1 || n%1000 == 0 {
		l.s.logger.Warn("every connection slot is taken: closing the oldest connections whose clients have not authenticated",
			zap.Int64("closed_so_far", n), zap.Int("max_conns", cap(l.slots)))
	}
	old.Close()
	return 0
}

// bound takes c off the connections that may be evicted. It reports false
// when c was evicted already.
func (l *strictListener) bound(c *strictConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.unbound == nil {
		return false
	}
	l.unbound.Remove(c.unbound)
	c.unbound = nil
	return true
}

// closed frees c's slot, once c is closed.
func (l *strictListener) closed(c *strictConn) {
	l.mu.Lock()
	if c.unbound != nil {
		l.unbound.Remove(c.unbound)
		c.unbound = nil
	}
	l.mu.Unlock()
	<-l.slots
}

func (l *strictListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// maxHead bounds the first head on a proxy connection. It is read before
// the client has authenticated, so it is much smaller than the limit inside
// tunnels: a CONNECT head is tiny, and plain-HTTP proxying is rare.
const maxHead = 64 << 10

type strictConn struct {
	net.Conn
	s *Server

	l         *strictListener
	accepted  time.Time // by the monotonic clock: AuthGrace is real time
	closeOnce sync.Once
	// session is the session whose connection this is, once bound
	// (bindSession); its count goes down when the connection closes.
	session atomic.Pointer[string]
	// unbound is c's place among the listener's connections that may be
	// evicted, nil once bound, evicted or closed; l.mu guards it.
	unbound *list.Element

	mu      sync.Mutex
	checked bool
	head    []byte // validated head bytes not yet handed to net/http
	extra   []byte // bytes read past the head, handed out after it
	err     error
	// connect is set when the head is a CONNECT: what the client sent
	// after it (a ClientHello in the same segment) belongs to the tunnel,
	// and is kept from net/http until released is set at the hijack.
	// net/http reads past a CONNECT only to notice a closed connection,
	// and goproxy's hijack drops what net/http read.
	connect  bool
	released atomic.Bool
	// through is set once the checked head and the bytes after it are
	// handed out: from then on reads go straight to the connection, without
	// the lock (a tunnel's every read passes here).
	through atomic.Bool
}

var errRefused = errors.New("countersign: request refused")

// maxEarly bounds the bytes a client may send after a CONNECT head before
// its answer: the TLS ClientHello of a client that does not wait for the
// 200 (at most 16 KiB of record, with room to spare).
const maxEarly = 64 << 10

var errEarlyBytes = errors.New("countersign: more than 64 KiB sent after a CONNECT before its answer")

// release hands the bytes held after a CONNECT head to the next reader:
// the tunnel, once net/http has let go of the connection.
func release(c net.Conn) {
	if sc, ok := c.(*strictConn); ok {
		sc.released.Store(true)
	}
}

// Write releases the held bytes too: an answer written here means the
// CONNECT was refused (407, 403), not hijacked, and net/http reads the
// client's next request, which they begin.
func (c *strictConn) Write(p []byte) (int, error) {
	if !c.released.Load() {
		c.released.Store(true)
	}
	return c.Conn.Write(p)
}

// Close closes the connection and frees its slot, once.
func (c *strictConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.closed(c)
		if id := c.session.Swap(nil); id != nil {
			c.s.conns.done(*id)
		}
	})
	return err
}

// connCounts counts authenticated connections, by session and in all.
type connCounts struct {
	mu    sync.Mutex
	by    map[string]int
	total int
}

// Reasons bindSession refuses a connection.
var (
	errSessionShare = errors.New("session holds its share of connections")
	errAllBound     = errors.New("every connection slot for authenticated clients is taken")
	errEvicted      = errors.New("connection closed to make room before it authenticated")
)

// take counts one more connection for session unless it holds perSession
// or all sessions together hold total.
func (cc *connCounts) take(session string, perSession, total int) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.by[session] >= perSession {
		return errSessionShare
	}
	if cc.total >= total {
		return errAllBound
	}
	if cc.by == nil {
		cc.by = map[string]int{}
	}
	cc.by[session]++
	cc.total++
	return nil
}

func (cc *connCounts) done(session string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.total--
	if cc.by[session]--; cc.by[session] <= 0 {
		delete(cc.by, session)
	}
}

// maxBound is how many connection slots authenticated connections may hold
// together: an eighth of Options.MaxConns stays for connections that have
// not authenticated yet, so that connections left idle before
// authenticating can always be closed for a newcomer (strictListener),
// however many are authenticated.
func (s *Server) maxBound() int {
	return max(s.opts.MaxConns-s.opts.MaxConns/8, 1)
}

// bindSession counts the connection of req, once authenticated, against
// its session's share (Options.MaxConnsPerSession) and the slots for
// authenticated connections (maxBound) until it closes, and keeps it from
// being closed for a newcomer. It returns why not when it cannot: the
// caller refuses the request and the connection closes. A connection not
// from the proxy listener (tests) is not counted.
func (s *Server) bindSession(req *http.Request, session string) error {
	c, ok := req.Context().Value(connKey{}).(*strictConn)
	if !ok {
		return nil
	}
	if cur := c.session.Load(); cur != nil {
		return nil // counted already: one head per connection
	}
	if err := s.conns.take(session, s.opts.MaxConnsPerSession, s.maxBound()); err != nil {
		return err
	}
	id := session
	if !c.session.CompareAndSwap(nil, &id) {
		s.conns.done(session)
		return nil
	}
	if !c.l.bound(c) {
		// Closed for a newcomer just before: its Close may have come
		// before the count, so it is given back here unless Close took
		// it (found by review: the session's share leaked otherwise).
		if c.session.CompareAndSwap(&id, nil) {
			s.conns.done(session)
		}
		return errEvicted
	}
	return nil
}

func (c *strictConn) Read(p []byte) (int, error) {
	if c.through.Load() {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.checked {
		c.checked = true
		c.err = c.readHead()
	}
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	for c.connect && !c.released.Load() {
		// Read on behind the held bytes, in order, until net/http gives
		// up its read (the hijack sets a past deadline) or the client
		// leaves. With none held yet too: net/http's background read
		// would otherwise take the first byte a client sends before the
		// 200 into a buffer that the hijack throws away (found by
		// review).
		var more [512]byte
		n, err := c.Conn.Read(more[:])
		c.extra = append(c.extra, more[:n]...)
		if err != nil {
			return 0, err
		}
		if len(c.extra) > maxEarly {
			// Held while the CONNECT is decided (a policy evaluation
			// and a durable audit record, as long as the disk takes):
			// a client that keeps sending would grow them without end
			// (found by review). A ClientHello is far smaller.
			c.err = errEarlyBytes
			return 0, c.err
		}
	}
	if len(c.extra) > 0 {
		n := copy(p, c.extra)
		c.extra = c.extra[n:]
		if len(c.extra) == 0 {
			c.extra = nil
		}
		return n, nil
	}
	c.through.Store(true)
	return c.Conn.Read(p)
}

// readHead reads up to the end of the first head and validates it.
func (c *strictConn) readHead() error {
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for {
		n, err := c.Conn.Read(chunk)
		buf.Write(chunk[:n])
		if hasBareLF(buf.Bytes(), buf.Len()-n) {
			// A head ended by bare LFs never shows "\r\n\r\n": refuse it now
			// rather than wait for the header timeout.
			if verr := h1.ValidateHead(buf.Bytes(), h1.Limits{}); verr != nil {
				var he *h1.Error
				if errors.As(verr, &he) {
					c.refuse(he.Status, he.Reason)
					return errRefused
				}
			}
		}
		if i := bytes.Index(buf.Bytes(), []byte("\r\n\r\n")); i >= 0 {
			all := buf.Bytes()
			c.head = append([]byte(nil), all[:i+4]...)
			if len(all) > i+4 {
				c.extra = append([]byte(nil), all[i+4:]...)
			}
			if verr := h1.ValidateHead(c.head, h1.Limits{}); verr != nil {
				var he *h1.Error
				if errors.As(verr, &he) {
					c.refuse(he.Status, he.Reason)
				}
				c.head = nil
				return errRefused
			}
			c.connect = bytes.HasPrefix(c.head, []byte("CONNECT "))
			return nil
		}
		if buf.Len() > maxHead {
			c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request head on the proxy connection larger than 64 KiB")
			return errRefused
		}
		if err != nil {
			if buf.Len() > 0 && !errors.Is(err, io.EOF) {
				return err
			}
			if buf.Len() > 0 {
				// Let net/http report the short head; validate what we have
				// so a bare-LF or otherwise malformed head is still refused.
				if verr := h1.ValidateHead(buf.Bytes(), h1.Limits{}); verr != nil {
					var he *h1.Error
					if errors.As(verr, &he) {
						c.refuse(he.Status, he.Reason)
						return errRefused
					}
				}
			}
			return err
		}
	}
}

func (c *strictConn) refuse(status int, reason string) {
	ex := &exchange{id: newRequestID()}
	c.s.auditRefusal(nil, ex, status, reason)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	writeRaw(c.Conn, status, "countersign: "+reason+"; refused.")
}

// hasBareLF reports whether b[from:] holds a '\n' not preceded by '\r'.
func hasBareLF(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}
