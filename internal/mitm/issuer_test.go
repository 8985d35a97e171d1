package mitm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/elazarl/goproxy"
)

var noAddr netip.Addr

// clock is a settable time source safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestLeafVerifies(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())

	tests := []struct {
		name   string
		give   string
		verify string // name to verify against
	}{
		{name: "DNS name", give: "api.github.com", verify: "api.github.com"},
		{name: "upper case DNS name", give: "EC2.us-east-1.AmazonAWS.com", verify: "ec2.us-east-1.amazonaws.com"},
		{name: "IPv4", give: "192.0.2.10", verify: "192.0.2.10"},
		{name: "IPv6", give: "2001:db8::1", verify: "2001:db8::1"},
		{name: "single label", give: "localhost", verify: "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := iss.Certificate(tt.give)
			if err != nil {
				t.Fatalf("Certificate(%q): %v", tt.give, err)
			}
			leaf := cert.Leaf
			if leaf == nil {
				t.Fatalf("Certificate(%q).Leaf = nil", tt.give)
			}
			if len(cert.Certificate) != 2 || !ca.Certificate().Equal(mustParse(t, cert.Certificate[1])) {
				t.Errorf("chain has %d certificates, want leaf + CA", len(cert.Certificate))
			}
			_, err = leaf.Verify(x509.VerifyOptions{
				DNSName:     tt.verify,
				Roots:       roots,
				CurrentTime: testNow,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				t.Errorf("Verify(%q): %v", tt.verify, err)
			}
			if ip := net.ParseIP(tt.verify); ip != nil {
				if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 0 {
					t.Errorf("SANs = IP %v DNS %v, want one IP SAN", leaf.IPAddresses, leaf.DNSNames)
				}
			} else if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tt.verify || len(leaf.IPAddresses) != 0 {
				t.Errorf("SANs = DNS %v IP %v, want DNS [%s]", leaf.DNSNames, leaf.IPAddresses, tt.verify)
			}
			if leaf.IsCA {
				t.Errorf("leaf IsCA = true")
			}
			if k, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("leaf key = %T, want ECDSA P-256", cert.PrivateKey)
			}
			if want := testNow.Add(-time.Hour); !leaf.NotBefore.Equal(want) {
				t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
			}
			if want := testNow.Add(DefaultValidity); !leaf.NotAfter.Equal(want) {
				t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
			}
		})
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLeafHandshake checks the leaf with a real TLS client that trusts only
// the CA.
func TestLeafHandshake(t *testing.T) {
	ca, _, _ := newTestCA(t, time.Now)
	iss := NewIssuer(ca, IssuerOptions{})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM())

	clientConn, serverConn := net.Pipe()
	server := tls.Server(serverConn, &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return iss.Certificate(hello.ServerName)
		},
	})
	client := tls.Client(clientConn, &tls.Config{ServerName: "registry.npmjs.org", RootCAs: roots})
	ctx := t.Context()
	errc := make(chan error, 1)
	go func() {
		defer server.Close()
		err := server.HandshakeContext(ctx)
		if err == nil {
			// Read until the client's close_notify: net.Pipe is unbuffered.
			_, err = io.Copy(io.Discard, server)
		}
		errc <- err
	}()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Errorf("client handshake: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("client close: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("server: %v", err)
	}
}

func TestCertificateRefusesInvalidHosts(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})
	tests := []struct {
		name string
		give string
	}{
		{"empty", ""},
		{"wildcard", "*.example.com"},
		{"star inside", "a*b.example.com"},
		{"trailing dot", "example.com."},
		{"empty label", "a..example.com"},
		{"leading dot", ".example.com"},
		{"leading hyphen", "-a.example.com"},
		{"trailing hyphen", "a-.example.com"},
		{"space", "exa mple.com"},
		{"NUL", "example.com\x00.evil"},
		{"unicode", "bücher.example"},
		{"with port", "example.com:443"},
		{"bracketed IPv6", "[::1]"},
		{"IPv6 zone", "fe80::1%eth0"},
		{"short IPv4", "1.2.3"},
		{"IPv4 leading zero", "010.1.1.1"},
		{"IPv4 out of range", "256.1.1.1"},
		{"label too long", strings.Repeat("a", 64) + ".com"},
		{"name too long", strings.Repeat("a.", 127)},
		{"254 bytes", strings.Repeat("abcdefghi.", 25) + "com4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := iss.Certificate(tt.give)
			if !errors.Is(err, ErrInvalidHost) {
				t.Errorf("Certificate(%q) = %v, %v; want ErrInvalidHost", tt.give, cert, err)
			}
		})
	}
	if n := iss.signs.Load(); n != 0 {
		t.Errorf("signed %d certificates for invalid hosts, want 0", n)
	}
	long := strings.Repeat("abcdefghi.", 25) + "com"
	if _, err := iss.Certificate(long); err != nil {
		t.Errorf("Certificate(253-byte name): %v", err)
	}
}

func TestCertificateCached(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})

	first, err := iss.Certificate("github.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"github.com", "GitHub.com", "GITHUB.COM"} {
		got, err := iss.Certificate(host)
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			t.Errorf("Certificate(%q) = %p, want cached %p", host, got, first)
		}
	}
	other, err := iss.Certificate("api.github.com")
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Errorf("Certificate(api.github.com) returned github.com's certificate")
	}
	if n := iss.signs.Load(); n != 2 {
		t.Errorf("signed %d certificates, want 2", n)
	}
}

func TestCertificateConcurrentSignsOnce(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	synctest.Test(t, func(t *testing.T) {
		iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})
		release := make(chan struct{})
		iss.beforeSign = func() { <-release }

		const n = 100
		certs := make([]*tls.Certificate, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() { certs[k], errs[k] = iss.Certificate("sts.amazonaws.com") })
		}
		// Every caller is now either signing (held at beforeSign) or
		// waiting for that signing.
		synctest.Wait()
		close(release)
		wg.Wait()

		for k := range n {
			if errs[k] != nil {
				t.Fatalf("caller %d: %v", k, errs[k])
			}
			if certs[k] != certs[0] {
				t.Fatalf("caller %d got %p, caller 0 got %p; want one shared certificate", k, certs[k], certs[0])
			}
		}
		if got := iss.signs.Load(); got != 1 {
			t.Errorf("signed %d times for %d concurrent callers, want 1", got, n)
		}
	})
}

func TestCertificateLRUEviction(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow, MaxEntries: 2})
	get := func(host string) *tls.Certificate {
		t.Helper()
		c, err := iss.Certificate(host)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := get("a.example"), get("b.example")
	if get("a.example") != a { // a is now the most recently used
		t.Fatal("a.example not cached")
	}
	get("c.example") // evicts b
	if got := iss.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	if get("a.example") != a {
		t.Errorf("a.example was evicted, want b.example evicted")
	}
	if get("b.example") == b {
		t.Errorf("b.example still cached, want it evicted")
	}
	if got := iss.signs.Load(); got != 4 {
		t.Errorf("signed %d certificates, want 4", got)
	}
}

func TestCertificateRefreshesBeforeExpiry(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	clk := &clock{t: testNow}
	iss := NewIssuer(ca, IssuerOptions{Now: clk.Now, Validity: 7 * 24 * time.Hour})

	first, err := iss.Certificate("example.com")
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(testNow.Add(6*24*time.Hour - time.Second)) // 1 day + 1 s before expiry
	if got, _ := iss.Certificate("example.com"); got != first {
		t.Errorf("certificate replaced more than a day before expiry")
	}
	clk.Set(testNow.Add(6 * 24 * time.Hour))
	second, err := iss.Certificate("example.com")
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("certificate not replaced a day before expiry")
	}
	if !second.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Errorf("new NotAfter %v is not after old %v", second.Leaf.NotAfter, first.Leaf.NotAfter)
	}
	if got, _ := iss.Certificate("example.com"); got != second {
		t.Errorf("refreshed certificate not cached")
	}
}

// TestCertificateServesCurrentWhileRefreshing checks that callers are not
// held up by a refresh while the old leaf is still valid.
func TestCertificateServesCurrentWhileRefreshing(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	synctest.Test(t, func(t *testing.T) {
		clk := &clock{t: testNow}
		iss := NewIssuer(ca, IssuerOptions{Now: clk.Now})
		old, err := iss.Certificate("example.com")
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(old.Leaf.NotAfter.Add(-time.Hour))
		release := make(chan struct{})
		iss.beforeSign = func() { <-release }
		done := make(chan *tls.Certificate)
		go func() {
			c, _ := iss.Certificate("example.com")
			done <- c
		}()
		synctest.Wait() // the refresh is held at beforeSign
		if got, _ := iss.Certificate("example.com"); got != old {
			t.Errorf("during refresh got %p, want current %p", got, old)
		}
		close(release)
		if fresh := <-done; fresh == old {
			t.Errorf("refresh returned the old certificate")
		}
	})
}

func TestCertificateCappedByCAExpiry(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	caEnd := ca.Certificate().NotAfter
	clk := &clock{t: caEnd.Add(-12 * time.Hour)}
	iss := NewIssuer(ca, IssuerOptions{Now: clk.Now})

	first, err := iss.Certificate("example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Leaf.NotAfter.Equal(caEnd) {
		t.Errorf("NotAfter = %v, want the CA's %v", first.Leaf.NotAfter, caEnd)
	}
	clk.Set(caEnd.Add(-time.Hour))
	if got, _ := iss.Certificate("example.com"); got != first {
		t.Errorf("leaf capped by the CA's expiry was re-signed: a new one cannot last longer")
	}
	clk.Set(caEnd.Add(time.Second))
	if _, err := iss.Certificate("example.com"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Certificate after CA expiry: error = %v, want CA expired", err)
	}
}

func TestFetch(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})
	own, err := iss.Certificate("example.com")
	if err != nil {
		t.Fatal(err)
	}

	calls := 0
	gen := func() (*tls.Certificate, error) {
		calls++
		c, err := iss.sign("example.com", noAddr)
		if err != nil {
			return nil, err
		}
		c.Leaf = nil // as a generator that does not parse its leaf
		return c, nil
	}
	first, err := iss.Fetch("Example.com", gen)
	if err != nil {
		t.Fatal(err)
	}
	if first == own {
		t.Errorf("Fetch returned the certificate Certificate signed; want generator's")
	}
	if first.Leaf == nil {
		t.Errorf("Fetch did not set Leaf")
	}
	if again, _ := iss.Fetch("example.com", gen); again != first || calls != 1 {
		t.Errorf("second Fetch: same = %v, generator calls = %d; want cached, 1 call", again == first, calls)
	}

	genErr := errors.New("boom")
	failing := func() (*tls.Certificate, error) { calls++; return nil, genErr }
	for range 2 {
		if _, err := iss.Fetch("other.example", failing); !errors.Is(err, genErr) {
			t.Errorf("Fetch with failing generator: error = %v, want %v", err, genErr)
		}
	}
	if calls != 3 {
		t.Errorf("generator calls = %d, want 3 (errors are not cached)", calls)
	}
	if _, err := iss.Fetch("*.example.com", gen); !errors.Is(err, ErrInvalidHost) {
		t.Errorf("Fetch(wildcard) error = %v, want ErrInvalidHost", err)
	}
	if got, err := iss.Fetch("example.com", nil); err != nil || got != own {
		t.Errorf("Fetch with nil generator = %p, %v; want Certificate's %p", got, err, own)
	}
}

func TestCertificateReleasesWaitersOnPanic(t *testing.T) {
	ca, _, _ := newTestCA(t, fixedNow)
	iss := NewIssuer(ca, IssuerOptions{Now: fixedNow})
	if _, err := iss.Fetch("example.com", func() (*tls.Certificate, error) { panic("bug") }); err == nil {
		t.Fatal("Fetch with panicking generator: got nil error")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := iss.Fetch("example.com", func() (*tls.Certificate, error) { return iss.sign("example.com", noAddr) })
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Fetch after a panic: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Fetch after a panic is stuck behind the panicked call")
	}
}

func BenchmarkIssuerCached(b *testing.B) {
	ca, _, _ := newTestCA(b, time.Now)
	iss := NewIssuer(ca, IssuerOptions{})
	if _, err := iss.Certificate("api.github.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := iss.Certificate("api.github.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkIssueLeaf(b *testing.B) {
	ca, _, _ := newTestCA(b, time.Now)
	iss := NewIssuer(ca, IssuerOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.sign("api.github.com", noAddr); err != nil {
			b.Fatal(err)
		}
	}
}

// The goproxy baseline plugs the Issuer in as its certificate store.
var _ goproxy.CertStorage = (*Issuer)(nil)
