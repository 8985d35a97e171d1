package connlimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, max int, grace time.Duration, h http.Handler) (*Listener, string) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, max, grace)
	srv := &http.Server{Handler: l.Handler(h), ConnState: l.ConnState, ConnContext: l.ConnContext}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l, inner.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits (bounded) for the server to close c.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c) // a 503 first, for a newcomer turned away
	return err == nil || !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Connections left idle do not keep a client out: past the cap, a
// newcomer closes the longest idle one once its grace is over.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	_, addr := serve(t, 4, 20*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	var idle []net.Conn
	for range 4 {
		idle = append(idle, dial(t, addr))
	}
	servedWithin(t, addr, 10*time.Second)
	if !closedByServer(idle[0]) {
		t.Error("the longest idle connection is still open")
	}
}

// With every connection busy, a newcomer is closed rather than held, and
// the busy ones are not touched.
func TestBusyConnectionsAreKept(t *testing.T) {
	release := make(chan struct{})
	l, addr := serve(t, 2, time.Hour, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = io.WriteString(w, "ok")
	}))
	defer close(release)
	var busy []net.Conn
	for range 2 {
		c := dial(t, addr)
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		busy = append(busy, c)
	}
	// Both requests are being served.
	l.waitFor(t, "the requests never became busy", func() bool { return l.idle.Len()+l.waiting.Len() == 0 })
	if !closedByServer(dial(t, addr)) {
		t.Error("a connection past the cap was kept with every connection busy")
	}
	for i, c := range busy {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Errorf("busy connection %d was closed: %v", i, err)
		}
	}
}

// A request whose body never comes keeps its connection active until the
// read timeout: past the cap, it is closed for a newcomer once it has been
// active for five graces (found by review: 17 such connections a second
// kept every client out).
func TestStalledRequestsMakeRoom(t *testing.T) {
	_, addr := serve(t, 2, 10*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	var stalled []net.Conn
	for range 2 {
		c := dial(t, addr)
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		stalled = append(stalled, c)
	}
	servedWithin(t, addr, 10*time.Second)
	// Which of the two became active first is the server's race.
	closed := 0
	for _, c := range stalled {
		if closedByServer(c) {
			closed++
		}
	}
	if closed == 0 {
		t.Error("no stalled request's connection was closed")
	}
}

// A request whose body has been read is never cut, however long its
// handler runs: it may be applying a decision, and its client would not
// learn whether it was (found by review).
func TestHandlersWithTheirRequestReadAreNotCut(t *testing.T) {
	release := make(chan struct{})
	read := make(chan struct{}, 1)
	_, addr := serve(t, 1, time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		read <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "decided")
	}))
	c := dial(t, addr)
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\napprove")
	<-read
	// Well past five graces, a newcomer finds no room and is told so.
	time.Sleep(20 * time.Millisecond)
	n := dial(t, addr)
	_ = n.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(n)
	if string(b) == "" || !strings.HasPrefix(string(b), "HTTP/1.1 503") {
		t.Errorf("the newcomer got %q, want a 503", b)
	}
	close(release)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request being handled lost its answer: %v", err)
	}
	resp.Body.Close()
}

// A head that takes its time is not idle: it is cut only after five
// graces, as a stalled body is.
func TestSlowHeadsAreNotIdle(t *testing.T) {
	l, addr := serve(t, 1, time.Hour, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
	l.waitFor(t, "the connection sending its head is not counted as waiting", func() bool { return l.waiting.Len() == 1 })
}

// waitFor polls cond, under l.mu, for up to 10 s.
func (l *Listener) waitFor(t *testing.T, failure string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(failure)
		}
		time.Sleep(time.Millisecond)
	}
}

// servedWithin retries a GET (bounded) until it is answered 200: a
// newcomer is turned away until a connection is past its grace.
func servedWithin(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(d)
	for {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status) // turned away: no room yet
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request served past the cap: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An answer its client never reads blocks the server's write until the
// write timeout: past the cap, such a connection is cut after five graces
// (found by review: two of them kept approvers out for two minutes).
func TestUnreadAnswersMakeRoom(t *testing.T) {
	_, addr := serve(t, 1, 10*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, 64<<20))
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	c := dial(t, addr)
	_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	servedWithin(t, addr, 10*time.Second)
	if !closedByServer(c) {
		t.Error("the connection whose answer is not read is still open")
	}
}
