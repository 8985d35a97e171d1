// Package testinfra provides local stand-ins for the APIs agents call (AWS,
// GitHub, Kubernetes, any HTTPS host), served over real TLS on loopback with
// a throwaway CA, for countersign's tests and its demo. Nothing here talks to
// the internet.
package testinfra

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// CA is a throwaway certificate authority for fake upstreams.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte

	mu    sync.Mutex
	cache map[string]*tls.Certificate
}

// NewCA creates a CA valid for one day.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "countersign test upstream CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		cache:   map[string]*tls.Certificate{},
	}, nil
}

// CertPEM is the CA certificate, for upstream.ca_files.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Leaf returns a certificate for name (a DNS name or an IP), cached.
func (ca *CA) Leaf(name string) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.cache[name]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(name); err == nil {
		tmpl.IPAddresses = []net.IP{a.AsSlice()}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ca.cache[name] = c
	return c, nil
}

// Recorded is one request an upstream received.
type Recorded struct {
	Method string
	Host   string
	Path   string
	Query  string
	Header http.Header
	// Trailer holds the trailer fields that followed a chunked body.
	Trailer http.Header
	Body    []byte
}

// Upstream is a TLS server on 127.0.0.1 that presents a certificate for
// whatever name the client asks for (SNI), signed by its CA, and records
// every request it receives.
type Upstream struct {
	Addr string // 127.0.0.1:port
	CA   *CA

	srv *http.Server
	ln  net.Listener
	// plain serves the same handler without TLS (StartPlain).
	plain *http.Server

	mu   sync.Mutex
	reqs []Recorded
	wg   sync.WaitGroup
}

// StartUpstream serves handler over TLS on a free loopback port, recording
// every request.
func StartUpstream(ca *CA, handler http.Handler) (*Upstream, error) {
	return start(ca, handler, true)
}

// StartServer is StartUpstream without recording, for benchmarks.
func StartServer(ca *CA, handler http.Handler) (*Upstream, error) {
	return start(ca, handler, false)
}

// StartUpstreamTLS is StartUpstream with a hook to adjust the server's TLS
// configuration (to request client certificates, for example).
func StartUpstreamTLS(ca *CA, handler http.Handler, tune func(*tls.Config)) (*Upstream, error) {
	return start(ca, handler, true, tune)
}

func start(ca *CA, handler http.Handler, record bool, tune ...func(*tls.Config)) (*Upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &Upstream{Addr: ln.Addr().String(), CA: ca, ln: ln}
	if record {
		handler = u.record(handler)
	}
	u.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Handshake failures are expected in tests that check verification.
		ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				name := hello.ServerName
				if name == "" {
					name = "127.0.0.1"
				}
				return ca.Leaf(name)
			},
		},
	}
	for _, f := range tune {
		f(u.srv.TLSConfig)
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = u.srv.ServeTLS(ln, "", "")
	}()
	return u, nil
}

func (u *Upstream) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		u.mu.Lock()
		u.reqs = append(u.reqs, Recorded{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: body})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// Requests returns what the upstream has received so far.
func (u *Upstream) Requests() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Recorded(nil), u.reqs...)
}

// Count returns how many requests matched method and path ("" matches any).
func (u *Upstream) Count(method, path string) int {
	n := 0
	for _, r := range u.Requests() {
		if (method == "" || r.Method == method) && (path == "" || r.Path == path) {
			n++
		}
	}
	return n
}

// StartPlain serves the same handler, recording into the same list, over
// plain HTTP on another loopback port, and returns that port's address:
// the upstream of plain http:// requests through a proxy.
func (u *Upstream) StartPlain() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	u.plain = &http.Server{Handler: u.srv.Handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	u.wg.Go(func() { _ = u.plain.Serve(ln) })
	return ln.Addr().String(), nil
}

// Close stops the server and waits for it.
func (u *Upstream) Close() error {
	err := u.srv.Close()
	if u.plain != nil {
		_ = u.plain.Close()
	}
	u.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Resolve returns an upstream.resolve map pointing each host:443 at u.
func (u *Upstream) Resolve(hosts ...string) map[string]string {
	m := make(map[string]string, len(hosts))
	for _, h := range hosts {
		m[h+":443"] = u.Addr
	}
	return m
}

// String describes the upstream.
func (u *Upstream) String() string { return fmt.Sprintf("fake upstream at %s", u.Addr) }
