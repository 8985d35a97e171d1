// Package mitm holds the local certificate authority that countersign uses to
// intercept TLS, and the Issuer that signs and caches the per-host leaf
// certificates presented to agents.
//
// The CA key never leaves state_dir: it is written 0600, and Load refuses a key
// file that other users can read. Leaves use ECDSA P-256 (an RSA leaf costs
// ~400 times as much to make) and are cached, which also keeps the certificate
// for a host stable across connections.
package mitm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

const (
	pemTypeCert = "CERTIFICATE"
	pemTypeKey  = "PRIVATE KEY"

	caValidityYears = 10

	// clockSkew backdates NotBefore so that a peer whose clock runs a little
	// behind still accepts a freshly made certificate.
	clockSkew = time.Hour
)

// ErrKeyMismatch reports a CA key that does not belong to the CA certificate.
var ErrKeyMismatch = errors.New("CA key does not match CA certificate")

// InsecureKeyError reports a CA key file that users other than its owner can
// access. Load refuses such a key: anyone who can read it can impersonate
// every HTTPS site to the agents that trust the CA.
type InsecureKeyError struct {
	Path string
	Mode fs.FileMode
}

func (e *InsecureKeyError) Error() string {
	return fmt.Sprintf("CA key %s is accessible by other users (mode %#o): run `chmod 600 %s`",
		e.Path, e.Mode.Perm(), e.Path)
}

// CA is the local certificate authority. It is safe for concurrent use and
// immutable after Load or LoadOrCreate returns it.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// LoadOrCreate loads the CA from certPath and keyPath, or creates a new
// ECDSA P-256 CA there when neither file exists; created reports which. It
// never overwrites a file: when only one of the two exists it returns an
// error that says how to recover. now is the clock (nil means time.Now); it
// dates a new CA and rejects an expired one.
func LoadOrCreate(certPath, keyPath string, now func() time.Time) (ca *CA, created bool, err error) {
	if now == nil {
		now = time.Now
	}
	// The lock is taken only when the CA may have to be made: a CA that
	// exists loads even from a directory the user cannot write.
	if ok, err := bothExist(certPath, keyPath); err != nil || !ok {
		// A directory where the lock cannot be made is one where the CA
		// cannot be either: the checks below then say what is wrong (half a
		// CA, say) better than the lock's error would.
		if unlock, err := lockDir(filepath.Dir(keyPath)); err == nil {
			defer unlock()
		}
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, fmt.Errorf("check CA certificate: %w", err)
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, fmt.Errorf("check CA key: %w", err)
	}
	switch {
	case certExists && keyExists:
		ca, err := Load(certPath, keyPath)
		if err != nil {
			return nil, false, err
		}
		if t := now(); t.After(ca.cert.NotAfter) {
			return nil, false, fmt.Errorf("CA certificate %s expired on %s: delete %s and %s to create a new CA, then make your clients trust it again",
				certPath, ca.cert.NotAfter.Format(time.DateOnly), certPath, keyPath)
		}
		return ca, false, nil
	case certExists:
		return nil, false, fmt.Errorf("CA certificate %s exists but its key %s does not: restore the key, or delete %s to create a new CA (clients must then trust the new one)",
			certPath, keyPath, certPath)
	case keyExists:
		return nil, false, fmt.Errorf("CA key %s exists but its certificate %s does not: restore the certificate, or delete %s to create a new CA (clients must then trust the new one)",
			keyPath, certPath, keyPath)
	}
	ca, err = create(certPath, keyPath, now())
	if err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func bothExist(a, b string) (bool, error) {
	ok, err := exists(a)
	if err != nil || !ok {
		return false, err
	}
	return exists(b)
}

// Load reads an existing CA. The key file must hold one PEM block, PKCS#8
// "PRIVATE KEY" (or SEC 1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY" for a CA
// made elsewhere), must not be accessible by group or others, and must match
// the certificate, which must be a CA certificate.
func Load(certPath, keyPath string) (*CA, error) {
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", certPath, err)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("load CA %s with key %s: %w", certPath, keyPath, ErrKeyMismatch)
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: cert.Raw})}, nil
}

// Certificate returns the parsed CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate PEM-encoded, for clients to trust. The
// slice is a copy.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// TLSCertificate returns the CA as a tls.Certificate (with Leaf set), the form
// goproxy's TLSConfigFromCA takes for the baseline benchmark.
func (ca *CA) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{ca.cert.Raw}, PrivateKey: ca.key, Leaf: ca.cert}
}

func create(certPath, keyPath string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"countersign"},
			CommonName:   fmt.Sprintf("countersign local CA (%s %s)", host, now.UTC().Format(time.DateOnly)),
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: pemTypeKey, Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: der})

	// The key goes first: a crash in between leaves a key without a
	// certificate, which LoadOrCreate reports rather than silently replacing.
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write CA key: %w", err)
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		if rmErr := os.Remove(keyPath); rmErr != nil {
			return nil, fmt.Errorf("write CA certificate: %w (and remove %s: %v)", err, keyPath, rmErr)
		}
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, certPEM: certPEM}, nil
}

func loadKey(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	// Windows has no Unix permission bits; its ACLs are the user's business.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, &InsecureKeyError{Path: path, Mode: fi.Mode()}
	}
	if foreignOwner(fi) {
		return nil, fmt.Errorf("read CA key %s: it belongs to another user, who could then read all intercepted traffic; remove it (and its certificate) and run `countersign ca init`, or name your own in ca.key", path)
	}
	data, err := readAll(f)
	if err != nil {
		return nil, fmt.Errorf("read CA key %s: %w", path, err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse CA key %s: %w", path, err)
	}
	return key, nil
}

// maxPEMSize bounds what Load reads: a CA key or certificate is a few KiB.
const maxPEMSize = 1 << 20

func readAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPEMSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMSize {
		return nil, fmt.Errorf("more than %d bytes, too large for a PEM key", maxPEMSize)
	}
	return data, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemTypeKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemTypeKey)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key has %d bits, want at least 2048", k.N.BitLen())
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T, want ECDSA or RSA", key)
	}
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemTypeCert {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemTypeCert)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("not a CA certificate (basic constraints CA:FALSE)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("key usage does not allow signing certificates")
	}
	return cert, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// writeNew writes data to path atomically with the given mode, creating the
// parent directory 0700 if needed. It fails if path already exists: the file
// is written under a temporary name and hard-linked into place, which, unlike
// rename, never replaces an existing file.
func writeNew(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.Remove(tmp.Name()); err == nil && rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = rmErr
		}
	}()
	// CreateTemp makes the file 0600; Chmod (unlike the umask-filtered
	// create mode) sets exactly the mode asked for.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared while the CA was being created: %w", path, err)
		}
		// Some file systems have no hard links; fall back to rename after
		// checking again that nothing is there.
		if ok, statErr := exists(path); statErr != nil || ok {
			return fmt.Errorf("link %s: %w", path, err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// syncDir makes the new directory entry durable. Not every platform can
// fsync a directory; there it is skipped.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// DeriveKey derives a 32-byte key for purpose from the CA's private key
// (HKDF-SHA256). Every proxy that holds the CA (replicas share it, so that
// agents trust one certificate) derives the same key, and it survives
// restarts, yet nobody without the CA key can compute it.
func (c *CA) DeriveKey(purpose string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("derive a key from the CA key: %w", err)
	}
	return hkdf.Key(sha256.New, der, nil, "countersign "+purpose, 32)
}
