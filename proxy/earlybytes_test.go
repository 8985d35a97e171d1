package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/audit"
)

// gateAuditor holds the first decision record until the test opens the
// gate, so that the test can act while a CONNECT is being decided.
type gateAuditor struct {
	log     *audit.Log
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gateAuditor) Record(ev *audit.Event) error {
	if ev.Type == "decision" {
		g.once.Do(func() {
			close(g.entered)
			<-g.gate
		})
	}
	return g.log.Record(ev)
}

func (g *gateAuditor) RecordAsync(ev *audit.Event) error    { return g.Record(ev) }
func (g *gateAuditor) RecordDeferred(ev *audit.Event) error { return g.Record(ev) }

// TestBytesSentBeforeTheTunnelIsOpenArriveWhole: a client that sends its
// first bytes before the 200 of its CONNECT (with the head alone in the
// first read) loses none of them: net/http's background read took the
// first byte into a buffer the hijack threw away (found by review).
func TestBytesSentBeforeTheTunnelIsOpenArriveWhole(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	got := make(chan string, 1)
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 7)
		n, _ := io.ReadFull(c, b)
		got <- string(b[:n])
	}()
	g := &gateAuditor{entered: make(chan struct{}), gate: make(chan struct{})}
	h := newHarness(t, harnessOptions{policy: "package countersign\n\nallow if true\n",
		auditor: func(l *audit.Log) Auditor { g.log = l; return g },
		configure: func(o *Options) {
			o.MITM = []string{"api.github.com"}
			o.Resolve["early.test:443"] = target.Addr().String()
		}})
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT early.test:443 HTTP/1.1\r\nHost: early.test:443\r\nProxy-Authorization: Basic %s\r\n\r\n", basic(h.sess.ID, h.password))
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the CONNECT was not decided")
	}
	// The CONNECT is being decided; net/http reads on in the background.
	// (A whole line: an opaque tunnel refuses a text line left unfinished.)
	if _, err := io.WriteString(c, "hello\r\n"); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	select {
	case s := <-got:
		if s != "hello\r\n" {
			t.Errorf("the target received %q, want %q", s, "hello\r\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the target received nothing")
	}
}

// TestBytesSentBeforeTheTunnelIsOpenAreBounded: a client that keeps
// sending while its CONNECT is decided (the decision waits on the disk)
// gets an error past maxEarly, which closes its connection, rather than
// its bytes held without end (found by review: 48–96 MiB of heap for one
// connection).
func TestBytesSentBeforeTheTunnelIsOpenAreBounded(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	l := &strictListener{slots: make(chan struct{}, 1)}
	l.slots <- struct{}{} // the slot this connection gives back
	c := &strictConn{Conn: server, l: l, checked: true, connect: true}
	defer c.Close()
	go func() {
		// Blocks once the proxy stops reading; the deferred Close ends it.
		_, _ = client.Write(make([]byte, 4<<20))
	}()
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1024))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errEarlyBytes) {
			t.Fatalf("Read = %v, want errEarlyBytes", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still holds the early bytes")
	}
	c.mu.Lock()
	held := len(c.extra)
	c.mu.Unlock()
	if held > maxEarly+512 {
		t.Errorf("held %d bytes, want at most %d", held, maxEarly+512)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, errEarlyBytes) {
		t.Errorf("the next Read = %v, want errEarlyBytes again", err)
	}
}
