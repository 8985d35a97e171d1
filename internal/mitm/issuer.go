package mitm

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultMaxEntries is the leaf cache size when IssuerOptions.MaxEntries
	// is not positive.
	DefaultMaxEntries = 10000
	// DefaultValidity is the leaf lifetime when IssuerOptions.Validity is not
	// positive.
	DefaultValidity = 30 * 24 * time.Hour
	// MaxValidity is the longest leaf lifetime clients accept (CA/Browser
	// Forum limit, enforced by Apple and Chrome even for private CAs).
	MaxValidity = 397 * 24 * time.Hour

	// refreshBefore is how long before expiry a cached leaf is replaced.
	refreshBefore = 24 * time.Hour
	// maxHostLen is the longest DNS name (RFC 1035 without the trailing dot).
	maxHostLen = 253
)

// ErrInvalidHost reports a host name that the Issuer will not put in a
// certificate: empty, too long, a wildcard, or not a DNS name or IP literal.
var ErrInvalidHost = errors.New("invalid host for certificate")

// IssuerOptions configures an Issuer. The zero value gives the defaults.
type IssuerOptions struct {
	// MaxEntries bounds the cache; the least recently used leaf is evicted
	// beyond it. Default DefaultMaxEntries.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Validity is the leaf lifetime, capped at MaxValidity and at the CA's own
	// expiry. Default DefaultValidity.
	Validity time.Duration
}

// Issuer signs leaf certificates with a CA and caches them per host. It is
// safe for concurrent use; concurrent requests for one host share a single
// signing.
type Issuer struct {
	ca         *CA
	maxEntries int
	now        func() time.Time
	validity   time.Duration
	refresh    time.Duration

	mu       sync.Mutex
	entries  map[cacheKey]*list.Element // values are *entry
	lru      list.List                  // front is most recently used
	inflight map[cacheKey]*call

	// signs counts leaves made; beforeSign, when set, runs before each
	// signing. Both exist for tests.
	signs      atomic.Int64
	beforeSign func()
}

// cacheKey separates leaves this Issuer signed from those that a goproxy
// generator made through Fetch, which have different contents, and the
// leaves of one partition (CertificateFor) from another's.
type cacheKey struct {
	host      string
	partition string
	external  bool
}

type entry struct {
	key  cacheKey
	cert *tls.Certificate
	// notAfter is copied from cert.Leaf; final is true when it is capped by
	// the CA's own expiry, so a newer leaf would expire no later.
	notAfter time.Time
	final    bool
}

type call struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// NewIssuer returns an Issuer that signs with ca.
func NewIssuer(ca *CA, opts IssuerOptions) *Issuer {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Validity <= 0 {
		opts.Validity = DefaultValidity
	}
	opts.Validity = min(opts.Validity, MaxValidity)
	return &Issuer{
		ca:         ca,
		maxEntries: opts.MaxEntries,
		now:        opts.Now,
		validity:   opts.Validity,
		refresh:    min(refreshBefore, opts.Validity/2),
		entries:    make(map[cacheKey]*list.Element),
		inflight:   make(map[cacheKey]*call),
	}
}

// Certificate returns a leaf certificate for host (a DNS name or an IP
// literal, without port or brackets), signed by the CA, with the CA
// certificate in its chain and Leaf set. Host names are compared without
// regard to case. The same *tls.Certificate is returned for a host until it
// is evicted or comes within a day (or half its validity, if shorter) of
// expiry; callers must not modify it.
// The error wraps ErrInvalidHost for a name that cannot be certified.
func (i *Issuer) Certificate(host string) (*tls.Certificate, error) {
	return i.CertificateFor("", host)
}

// CertificateFor is Certificate with a cache of its own for each partition.
// A leaf shows when it was made (NotBefore) and, by being there, that the
// host was visited before: a proxy shared by several clients gives each
// client (partition) leaves of its own, so that none learns from them what
// another visited, or when.
func (i *Issuer) CertificateFor(partition, host string) (*tls.Certificate, error) {
	h, ip, err := canonicalHost(host)
	if err != nil {
		return nil, err
	}
	return i.get(cacheKey{host: h, partition: partition}, ip, nil)
}

// Fetch implements goproxy's CertStorage so that a plain goproxy set-up (the
// benchmark baseline) can share this cache: it returns the cached leaf for
// hostname, calling gen to make one on a miss. Leaves from gen are kept apart
// from those Certificate signs. A nil gen means the Issuer's own signing.
func (i *Issuer) Fetch(hostname string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	if gen == nil {
		return i.Certificate(hostname)
	}
	h, _, err := canonicalHost(hostname)
	if err != nil {
		return nil, err
	}
	return i.get(cacheKey{host: h, external: true}, netip.Addr{}, gen)
}

// generate runs a CertStorage generator and makes sure its result has Leaf.
func (i *Issuer) generate(gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	i.signs.Add(1)
	cert, err := gen()
	if err != nil {
		return nil, err
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("certificate generator returned no certificate")
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse generated certificate: %w", err)
		}
	}
	return cert, nil
}

// get returns the cached leaf for key, or makes one: with gen when it is not
// nil, else by signing for key.host (whose address is ip for an IP literal).
func (i *Issuer) get(key cacheKey, ip netip.Addr, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	i.mu.Lock()
	var current *tls.Certificate // still valid, but due for refresh
	if el, ok := i.entries[key]; ok {
		e := el.Value.(*entry)
		now := i.now()
		if !i.stale(e, now) {
			i.lru.MoveToFront(el)
			i.mu.Unlock()
			return e.cert, nil
		}
		if now.Before(e.notAfter) {
			current = e.cert
		}
	}
	if c, ok := i.inflight[key]; ok {
		i.mu.Unlock()
		if current != nil {
			return current, nil
		}
		<-c.done
		return c.cert, c.err
	}
	c := &call{done: make(chan struct{})}
	i.inflight[key] = c
	i.mu.Unlock()

	func() {
		// Waiters must be released even if signing panics.
		defer func() {
			if r := recover(); r != nil {
				c.cert, c.err = nil, fmt.Errorf("make certificate for %s: panic: %v", key.host, r)
			}
		}()
		if gen != nil {
			c.cert, c.err = i.generate(gen)
		} else {
			c.cert, c.err = i.sign(key.host, ip)
		}
	}()

	i.mu.Lock()
	delete(i.inflight, key)
	if c.err == nil {
		i.store(key, c.cert)
	}
	i.mu.Unlock()
	close(c.done)
	return c.cert, c.err
}

// stale reports whether e must be replaced. A leaf whose expiry is capped by
// the CA's is kept until it actually expires: a new one would be no better.
func (i *Issuer) stale(e *entry, now time.Time) bool {
	if !now.Before(e.notAfter) {
		return true
	}
	return !e.final && !now.Before(e.notAfter.Add(-i.refresh))
}

// store adds or replaces the entry for key and evicts beyond maxEntries.
// i.mu must be held.
func (i *Issuer) store(key cacheKey, cert *tls.Certificate) {
	e := &entry{
		key:      key,
		cert:     cert,
		notAfter: cert.Leaf.NotAfter,
		final:    !cert.Leaf.NotAfter.Before(i.ca.cert.NotAfter),
	}
	if el, ok := i.entries[key]; ok {
		el.Value = e
		i.lru.MoveToFront(el)
		return
	}
	i.entries[key] = i.lru.PushFront(e)
	for i.lru.Len() > i.maxEntries {
		oldest := i.lru.Back()
		i.lru.Remove(oldest)
		delete(i.entries, oldest.Value.(*entry).key)
	}
}

// Len returns the number of cached leaves.
func (i *Issuer) Len() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lru.Len()
}

func (i *Issuer) sign(host string, ip netip.Addr) (*tls.Certificate, error) {
	if i.beforeSign != nil {
		i.beforeSign()
	}
	i.signs.Add(1)
	now := i.now()
	caCert := i.ca.cert
	if !now.Before(caCert.NotAfter) {
		return nil, fmt.Errorf("sign certificate for %s: CA certificate expired on %s", host, caCert.NotAfter.Format(time.DateOnly))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", host, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"countersign"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              minTime(now.Add(i.validity), caCert.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	// The subject CN is informational (clients match the SAN); X.509 caps it
	// at 64 characters.
	if len(host) <= 64 {
		tmpl.Subject.CommonName = host
	}
	if ip.IsValid() {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), i.ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate for %s: %w", host, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, caCert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// mayBeIP reports whether host looks like an IP literal: it has a colon, or
// only digits and dots. Such a host must parse as an IP (so "1.2.3" and
// "01.2.3.4" are refused rather than certified as DNS names).
func mayBeIP(host string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	for j := 0; j < len(host); j++ {
		if c := host[j]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// canonicalHost lower-cases host and checks that it is an IP literal or a
// plausible DNS name. It returns the parsed address for an IP literal.
func canonicalHost(host string) (string, netip.Addr, error) {
	if host == "" {
		return "", netip.Addr{}, fmt.Errorf("%w: empty name", ErrInvalidHost)
	}
	if len(host) > maxHostLen {
		return "", netip.Addr{}, fmt.Errorf("%w: name is %d bytes, longer than %d", ErrInvalidHost, len(host), maxHostLen)
	}
	if mayBeIP(host) {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("%w: %w", ErrInvalidHost, err)
		}
		if ip.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%w: %q has an IPv6 zone", ErrInvalidHost, host)
		}
		return ip.String(), ip, nil
	}
	labelLen, upper := 0, false
	for j := 0; j < len(host); j++ {
		switch c := host[j]; {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		case c == '-':
			if labelLen == 0 || j+1 == len(host) || host[j+1] == '.' {
				return "", netip.Addr{}, fmt.Errorf("%w: %q has a label that starts or ends with '-'", ErrInvalidHost, host)
			}
		case c == '.':
			if labelLen == 0 {
				return "", netip.Addr{}, fmt.Errorf("%w: %q has an empty label", ErrInvalidHost, host)
			}
			labelLen = 0
			continue
		case c == '*':
			return "", netip.Addr{}, fmt.Errorf("%w: %q is a wildcard", ErrInvalidHost, host)
		default:
			return "", netip.Addr{}, fmt.Errorf("%w: %q contains byte %#x (IDNA names must be in xn-- form)", ErrInvalidHost, host, c)
		}
		labelLen++
		if labelLen > 63 {
			return "", netip.Addr{}, fmt.Errorf("%w: %q has a label longer than 63 bytes", ErrInvalidHost, host)
		}
	}
	if labelLen == 0 {
		return "", netip.Addr{}, fmt.Errorf("%w: %q ends with '.'", ErrInvalidHost, host)
	}
	if upper {
		host = strings.ToLower(host)
	}
	return host, netip.Addr{}, nil
}

// DeriveKey derives a key for purpose from the issuing CA's key (see
// CA.DeriveKey).
func (i *Issuer) DeriveKey(purpose string) ([]byte, error) { return i.ca.DeriveKey(purpose) }
