package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

// upstream is the local HTTPS server every target ends at. It counts TLS
// handshakes (one per ClientHello) so the harness can tell how many upstream
// connections a proxy opened for its client connections.
type upstream struct {
	addr       string
	ca         *testinfra.CA
	handshakes atomic.Int64
	srv        *http.Server
}

// smallBody is the 1 KiB response of SPEC 11.
var smallBody = strings.Repeat("x", 1024)

// binaryFiller is what /download streams and binary uploads send, over and
// over: pseudo-random bytes, as in an archive or an image (the policy
// input carries no body for them).
var binaryFiller = func() []byte {
	b := make([]byte, 64<<10)
	r := rand.New(rand.NewChaCha8([32]byte{'c', 's'}))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// textFiller is the body of text uploads: valid UTF-8, so the policy input
// carries it as a string (and the audit log records it).
var textFiller = []byte(strings.Repeat("countersign bench payload 0123456789abcdef\n", 1560)[:64<<10])

func startUpstream(ca *testinfra.CA) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String(), ca: ca}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bench", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, smallBody)
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "n must be a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.Copy(w, io.LimitReader(repeatReader{binaryFiller}, n))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%d\n", n)
	})
	u.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
		// HTTP/1.1 only, for every target alike (mitmproxy would otherwise
		// speak HTTP/2 upstream while countersign and goproxy do not).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				u.handshakes.Add(1)
				return nil, nil
			},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				name := hello.ServerName
				if name == "" {
					name = "127.0.0.1"
				}
				return ca.Leaf(name)
			},
		},
	}
	go func() { _ = u.srv.ServeTLS(ln, "", "") }()
	return u, nil
}

func (u *upstream) close() { _ = u.srv.Close() }

// repeatReader yields its bytes over and over, forever.
type repeatReader struct{ b []byte }

func (r repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.b)
	}
	return n, nil
}
