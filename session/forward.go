package session

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Forwarder relays every connection accepted on a listener to one address.
// Under --isolate the listener lives on the child's loopback (handed over by
// the init process) and the address is the real proxy: the only way out.
type Forwarder struct {
	ln     net.Listener
	target string
	logger *zap.Logger
	dialer net.Dialer

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartForwarder accepts on ln and relays to target until Close.
func StartForwarder(ln net.Listener, target string, logger *zap.Logger) *Forwarder {
	if logger == nil {
		logger = zap.NewNop()
	}
	f := &Forwarder{
		ln:     ln,
		target: target,
		logger: logger.Named("forwarder"),
		dialer: net.Dialer{Timeout: 10 * time.Second},
		conns:  map[net.Conn]struct{}{},
	}
	f.wg.Add(1)
	go f.accept()
	return f
}

// Close stops accepting, closes every relayed connection and waits for the
// relays to end.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (f *Forwarder) accept() {
	defer f.wg.Done()
	var delay time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off as net/http does,
			// and stop when Close has been called meanwhile.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.logger.Warn("accept", zap.Error(err), zap.Duration("retry_in", delay))
			time.Sleep(delay)
			if f.isClosed() {
				return
			}
			continue
		}
		delay = 0
		if !f.track(c) {
			_ = c.Close()
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// track registers c for Close; it reports false once Close has begun.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

// relay copies both ways until both directions end. An end of stream in one
// direction is passed on as a half-close, so request bodies terminated by
// the client's shutdown still work.
func (f *Forwarder) relay(client net.Conn) {
	defer f.wg.Done()
	defer f.untrack(client)
	up, err := f.dialer.Dial("tcp", f.target)
	if err != nil {
		f.logger.Warn("dial the proxy", zap.String("proxy", f.target), zap.Error(err))
		return
	}
	if !f.track(up) {
		_ = up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, client)
		closeWrite(up)
	}()
	_, _ = io.Copy(client, up)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
