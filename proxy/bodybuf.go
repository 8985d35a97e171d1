package proxy

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Request bodies are buffered whole (up to inspect.body_limit) so the policy
// and the audit log see every byte before any is forwarded. A fresh buffer
// for a large body is expensive: Go zeroes it, and the pages it lands on
// are often ones the runtime has returned to the kernel, which faults them
// in again one by one. A 1 MiB allocation measured ~0.3 ms here, a sixth of
// what bare interception spends moving the whole MiB. Large bodies
// therefore reuse buffers.
//
// A reused buffer must never be visible to two requests: a request whose
// bytes showed up in another's upstream request would be a leak between
// sessions. Each pooled buffer is reference-counted. The request that read
// it holds one reference until it is done deciding; the body it hands the
// upstream transport holds another until the transport closes it (which
// may happen after RoundTrip returned). A request held for approval keeps
// its body past both, so it takes a copy of its own. The body handed on is
// cut to its length, so nobody can reslice into a previous body's bytes,
// and a buffer is cleared before it is kept, so bodies (credentials among
// them) do not linger in free buffers.

const (
	// minPooledBody is the smallest body kept in a reused buffer; below it
	// Go's size-classed allocator is cheap.
	minPooledBody = 64 << 10
	// maxPooledBody bounds the buffers kept for reuse. Larger declared
	// bodies (inspect.body_limit may be up to 1 GiB) get a buffer of their own.
	maxPooledBody = 8 << 20
	// bodyClasses is the number of capacities: four per doubling (64, 80,
	// 96, 112, 128, 160 KiB, …) up to 8 MiB, so a buffer is never more
	// than a quarter larger than its body.
	bodyClasses = 29
)

// bodyPool keeps free buffers of bodyClasses capacities from
// minPooledBody to maxPooledBody, at most maxKeptBodies bytes of them; the
// rest are left to the garbage collector. Free buffers are reused last
// freed, first out.
type bodyPool struct {
	mu   sync.Mutex
	free [bodyClasses][][]byte
	kept int // bytes in free
}

// maxKeptBodies bounds the memory that free buffers keep after a burst of
// uploads.
const maxKeptBodies = 16 << 20

// classSize is the capacity of the buffers of class c.
func classSize(c int) int {
	return minPooledBody << (c / 4) * (4 + c%4) / 4
}

// class returns the index of the smallest class that holds n bytes, and
// false when n is outside the pooled range.
func (p *bodyPool) class(n int) (int, bool) {
	if n < minPooledBody || n > maxPooledBody {
		return 0, false
	}
	for c := range bodyClasses {
		if classSize(c) >= n {
			return c, true
		}
	}
	return 0, false
}

// get returns an empty buffer with room for n bytes, reused when one is
// free, and nil when n is outside the pooled range or p is nil.
func (p *bodyPool) get(n int) *bodyBuf {
	c, ok := p.class(n)
	if !ok || p == nil {
		return nil
	}
	var b []byte
	p.mu.Lock()
	if f := p.free[c]; len(f) > 0 {
		b = f[len(f)-1]
		f[len(f)-1] = nil
		p.free[c] = f[:len(f)-1]
		p.kept -= cap(b)
	}
	p.mu.Unlock()
	if b == nil {
		b = make([]byte, 0, classSize(c))
	}
	bb := &bodyBuf{b: b, pool: p, class: c}
	bb.refs.Store(1)
	return bb
}

// put clears b and keeps it for reuse if there is room.
func (p *bodyPool) put(c int, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kept+cap(b) > maxKeptBodies {
		return
	}
	// The whole capacity: the length was set when the first bytes were
	// copied in, and the body was read past it.
	clear(b[:cap(b)])
	p.free[c] = append(p.free[c], b[:0])
	p.kept += cap(b)
}

// bodyBuf is one pooled buffer and its references.
type bodyBuf struct {
	b     []byte
	pool  *bodyPool
	class int
	refs  atomic.Int32
}

// release drops a reference; the last one returns the buffer to the pool.
// It is safe on a nil bodyBuf.
func (bb *bodyBuf) release() {
	if bb == nil {
		return
	}
	switch n := bb.refs.Add(-1); {
	case n > 0:
	case n == 0:
		b := bb.b
		bb.b = nil
		bb.pool.put(bb.class, b)
	default:
		panic("proxy: body buffer released more often than referenced")
	}
}

// reader returns the upstream request body: prefix (which lives in bb)
// then rest. It holds a reference to bb until it is closed, and never
// touches bb after Close, even when Read and Close race (HTTP/2 transports
// close a body from another goroutine on a reset).
func (bb *bodyBuf) reader(prefix []byte, rest io.Reader) io.ReadCloser {
	if bb.refs.Add(1) <= 1 {
		panic("proxy: body buffer referenced after its release")
	}
	return &bufBody{bb: bb, r: bytes.NewReader(prefix), rest: rest}
}

type bufBody struct {
	mu   sync.Mutex
	bb   *bodyBuf // nil once closed
	r    *bytes.Reader
	rest io.Reader
}

var errBodyClosed = errors.New("proxy: request body read after close")

func (b *bufBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.bb == nil {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	if b.r.Len() > 0 {
		n, err := b.r.Read(p)
		b.mu.Unlock()
		return n, err
	}
	rest := b.rest
	b.mu.Unlock()
	if rest == nil {
		return 0, io.EOF
	}
	// The remainder streams from the client, not from the buffer: reading
	// it outside the lock lets Close (and the buffer's release) proceed.
	return rest.Read(p)
}

func (b *bufBody) Close() error {
	b.mu.Lock()
	bb := b.bb
	b.bb = nil
	b.r = nil
	b.mu.Unlock()
	bb.release()
	return nil
}
