package session

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

// echoServer answers each line with "echo: line" and, at the client's
// end of stream, says "bye" and closes: it needs half-close to work.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					io.WriteString(c, "echo: "+sc.Text()+"\n")
				}
				io.WriteString(c, "bye\n")
			})
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

func TestForwarderRelaysBothWaysWithHalfClose(t *testing.T) {
	target := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := StartForwarder(ln, target.Addr().String(), nil)
	defer f.Close()

	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "one\ntwo\n")
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "echo: one\necho: two\nbye\n" {
			t.Errorf("through the forwarder: %q, %v", got, err)
		}
	}
}

func TestForwarderCloseEndsOpenRelays(t *testing.T) {
	target := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := StartForwarder(ln, target.Addr().String(), nil)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("relay: %q, %v", line, err)
	}
	// An idle relay is open now; Close must end it and return.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Logf("after Close: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the forwarder still accepts after Close")
	}
}

func TestForwarderDropsClientsWhenTheProxyIsDown(t *testing.T) {
	addr, release, err := testinfra.RefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := StartForwarder(ln, addr, nil)
	defer f.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("got %q from a forwarder whose proxy is down", got)
	}
}

func TestCheckDirect(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	closedAddr, release, err := testinfra.RefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	if err := checkDirect(t.Context(), []string{closedAddr}, nil); err != nil {
		t.Errorf("a refused connection failed the check: %v", err)
	}
	err = checkDirect(t.Context(), []string{closedAddr, open.Addr().String()}, []string{"127.0.0.1:53"})
	if err == nil || !strings.Contains(err.Error(), "direct TCP connection to "+open.Addr().String()+" succeeded") ||
		!strings.Contains(err.Error(), "UDP to 127.0.0.1:53 is routable") {
		t.Errorf("checkDirect with a way out = %v", err)
	}
}

func TestCheckProxy(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"countersign", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "countersign: this is a proxy; point HTTP_PROXY at it", http.StatusBadRequest)
		}, ""},
		{"another server", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, "not a countersign proxy (HTTP 200)"},
		{"another proxy's 400", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad request", http.StatusBadRequest)
		}, "not a countersign proxy (HTTP 400)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			err := checkProxy(t.Context(), srv.Listener.Addr().String())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkProxy = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Nothing listening.
	addr, release, err := testinfra.RefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := checkProxy(t.Context(), addr); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("checkProxy with nothing listening = %v", err)
	}
	// A server that accepts and never answers: bounded by the context.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := checkProxy(ctx, silent.Addr().String()); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("checkProxy against a silent server = %v", err)
	}
}

func TestCheckHidden(t *testing.T) {
	dir := t.TempDir()
	emptyDir := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "full")
	for _, d := range []string{emptyDir, full} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(full, "ca-key.pem")
	if err := os.WriteFile(key, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkHidden([]string{emptyDir, filepath.Join(dir, "gone"), os.DevNull}); err != nil {
		t.Errorf("hidden paths reported visible: %v", err)
	}
	for _, p := range []string{full, key} {
		if err := checkHidden([]string{p}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("checkHidden(%s) = %v, want it reported", p, err)
		}
	}
}
