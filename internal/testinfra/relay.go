package testinfra

import (
	"net"
	"sync"
	"sync/atomic"
)

// Relay is a TCP relay on 127.0.0.1 in front of a server. It counts the
// bytes clients send through it, so that "nothing reached the upstream"
// can mean not one byte. Stall makes the connections relayed so far go
// silent without closing, as after a NAT forgets them or a failover, while
// new connections still get through.
type Relay struct {
	ln       net.Listener
	target   string
	sent     atomic.Int64
	accepted atomic.Int64

	mu      sync.Mutex
	open    map[net.Conn]*atomic.Bool // every relayed socket -> its pair's stall flag
	closed  bool
	workers sync.WaitGroup
}

// StartRelay relays connections on a new loopback port to target.
func StartRelay(target string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, open: map[net.Conn]*atomic.Bool{}}
	r.workers.Go(r.accept)
	return r, nil
}

// Addr is the relay's host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Sent is the number of bytes clients have sent to the target.
func (r *Relay) Sent() int64 { return r.sent.Load() }

// Accepted is the number of connections the relay has accepted.
func (r *Relay) Accepted() int64 { return r.accepted.Load() }

func (r *Relay) accept() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		stalled := new(atomic.Bool)
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		r.open[in], r.open[out] = stalled, stalled
		r.mu.Unlock()
		r.workers.Go(func() { copyUntilStalled(out, in, stalled, &r.sent) })
		r.workers.Go(func() { copyUntilStalled(in, out, stalled, nil) })
	}
}

// copyUntilStalled copies src to dst, counting into count when it is not
// nil, and passes on the end of src as a half-close. Once stalled, it reads
// and drops what src sends.
func copyUntilStalled(dst, src net.Conn, stalled *atomic.Bool, count *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !stalled.Load() {
			if count != nil {
				count.Add(int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && !stalled.Load() {
				_ = cw.CloseWrite()
			}
			return
		}
	}
}

// Stall silences every connection relayed so far.
func (r *Relay) Stall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.open {
		s.Store(true)
	}
}

// Close stops the relay and closes every connection it relays.
func (r *Relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.workers.Wait()
}
