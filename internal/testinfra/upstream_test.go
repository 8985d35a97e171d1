package testinfra

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The upstream records trailers, so a test can tell that none arrived; and
// its plain port records into the same list.
func TestUpstreamRecordsTrailersOverPlainHTTP(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	up, err := StartUpstream(ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	addr, err := up.StartPlain()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Smuggled: yes\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := up.Requests()
	if len(reqs) != 1 || string(reqs[0].Body) != "abc" || reqs[0].Trailer.Get("X-Smuggled") != "yes" {
		t.Fatalf("recorded %+v, want one request with body abc and the trailer", reqs)
	}
}
