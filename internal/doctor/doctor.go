// Package doctor checks that the clients an agent uses go through
// countersign and trust its CA (`countersign doctor`). Each client fetches a
// made-up host under Domain with the session's environment; the proxy in
// front routes those hosts, and only those, to a local probe server. What
// the probe server and the audit log saw, not the client's exit code, says
// whether the client used the proxy and trusted the CA: a client may fail
// for reasons of its own after both worked.
package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Domain is the parent of every probe host. .invalid never resolves, so a
// client that ignores the proxy fails to look the host up instead of
// reaching anything.
const Domain = "doctor.countersign.invalid"

// Host is the probe host of the named client.
func Host(client string) string { return client + "." + Domain }

// Client is one client to check.
type Client struct {
	Name string
	// Command runs the client against url (https://Host(Name)/) from the
	// scratch directory dir.
	Command func(url, dir string) []string
	// Env is added to the session environment (fake credentials, a scratch
	// configuration), given dir.
	Env func(dir string) []string
	// NoProxyHint explains what to do when the client does not use the
	// proxy.
	NoProxyHint string
	// NoTrustHint explains what to do when it does not trust the CA.
	NoTrustHint string
}

// Clients are the clients SPEC section 2 names, in the order reported.
var Clients = []Client{
	{
		Name:        "curl",
		Command:     func(u, _ string) []string { return []string{"curl", "-sS", "-o", "/dev/null", u} },
		NoProxyHint: "check ~/.curlrc for `noproxy` or `proxy` settings",
		NoTrustHint: "check ~/.curlrc for `cacert` or `capath` settings, which override CURL_CA_BUNDLE",
	},
	{
		Name:        "git",
		Command:     func(u, _ string) []string { return []string{"git", "ls-remote", u + "probe.git"} },
		Env:         func(string) []string { return []string{"GIT_TERMINAL_PROMPT=0"} },
		NoProxyHint: "check `git config --show-origin --get-regexp 'http.*proxy'`: a configured proxy overrides the environment",
		NoTrustHint: "check `git config --show-origin --get-regexp 'http.*ssl'`: http.sslCAInfo overrides GIT_SSL_CAINFO",
	},
	{
		Name: "aws",
		Command: func(u, _ string) []string {
			return []string{"aws", "sts", "get-caller-identity", "--endpoint-url", strings.TrimSuffix(u, "/"), "--region", "us-east-1", "--output", "text"}
		},
		Env: func(string) []string {
			return []string{"AWS_ACCESS_KEY_ID=AKIADOCTORPROBE00000", "AWS_SECRET_ACCESS_KEY=countersign-doctor", "AWS_SESSION_TOKEN=", "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1"}
		},
		NoProxyHint: "check ~/.aws/config for a `proxy` or endpoint setting",
		NoTrustHint: "check ~/.aws/config for `ca_bundle`, which overrides AWS_CA_BUNDLE",
	},
	{
		Name: "kubectl",
		Command: func(u, dir string) []string {
			return []string{"kubectl", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "--server", u, "--token", "countersign-doctor", "--request-timeout", "20s", "get", "--raw", "/version"}
		},
		NoProxyHint: "a kubeconfig `proxy-url` overrides HTTPS_PROXY",
		NoTrustHint: "kubectl trusts the kubeconfig's certificate-authority for a cluster instead of SSL_CERT_FILE: add the countersign CA to it, or use `countersign run --isolate`",
	},
	{
		Name: "gh",
		Command: func(_, _ string) []string {
			return []string{"gh", "api", "--hostname", Host("gh"), "/meta"}
		},
		Env: func(dir string) []string {
			return []string{"GH_CONFIG_DIR=" + filepath.Join(dir, "gh"), "GH_ENTERPRISE_TOKEN=countersign-doctor", "GH_PROMPT_DISABLED=1", "GH_NO_UPDATE_NOTIFIER=1"}
		},
		NoProxyHint: "gh reads HTTPS_PROXY; check for a wrapper that clears it",
		NoTrustHint: "gh reads SSL_CERT_FILE; check for a wrapper that clears it",
	},
	{
		Name: "node",
		Command: func(u, _ string) []string {
			return []string{"node", "-e", `fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), e => { console.error(String(e.cause || e)); process.exit(1) })`, u}
		},
		NoProxyHint: "Node's fetch reads HTTPS_PROXY from Node 24 on (NODE_USE_ENV_PROXY=1, which countersign sets); with an older Node the agent must use a proxy agent, or run it with `countersign run --isolate` so that nothing leaves except through the proxy",
		NoTrustHint: "Node adds NODE_EXTRA_CA_CERTS to its roots; check that nothing unsets it",
	},
	{
		Name: "python",
		Command: func(u, _ string) []string {
			return []string{"python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read()", u}
		},
		NoProxyHint: "urllib and requests read HTTPS_PROXY; check for code that sets its own proxies or trust_env=False",
		NoTrustHint: "requests reads REQUESTS_CA_BUNDLE and ssl reads SSL_CERT_FILE; check for code that passes its own `verify=` or SSL context",
	},
	{
		Name: "go",
		Command: func(_, _ string) []string {
			return []string{"go", "list", "-m", "-json", Domain + "/probe@v1.0.0"}
		},
		Env: func(dir string) []string {
			return []string{"GOPROXY=https://" + Host("go") + "/mod", "GOSUMDB=off", "GONOPROXY=", "GOPRIVATE=", "GONOSUMDB=", "GOFLAGS=", "GOTOOLCHAIN=local", "GOMODCACHE=" + filepath.Join(dir, "gomod")}
		},
		NoProxyHint: "Go reads HTTPS_PROXY; check `go env GOPROXY GONOPROXY` and GOFLAGS",
		NoTrustHint: "Go reads SSL_CERT_FILE; check for an SSL_CERT_DIR set after countersign's environment",
	},
}

// Verdict is what a check found.
type Verdict int

const (
	// Ran: the client ran; Judge gives the verdict.
	Ran Verdict = iota
	// NotInstalled: the client is not on PATH.
	NotInstalled
	// OK: the client reached its probe through the proxy.
	OK
	// NoTrust: the client came through the proxy but refused the CA.
	NoTrust
	// NoProxy: the proxy never saw the client.
	NoProxy
)

func (v Verdict) String() string {
	switch v {
	case Ran:
		return "ran"
	case NotInstalled:
		return "skipped"
	case OK:
		return "ok"
	default:
		return "FAIL"
	}
}

// Result is the check of one client.
type Result struct {
	Client  Client
	Verdict Verdict
	// Output is the end of what the client printed.
	Output string
	// Err is how the client's command ended (nil: exit status 0).
	Err error
}

// Message explains the verdict in a sentence.
func (r Result) Message() string {
	switch r.Verdict {
	case Ran:
		return "ran, not judged yet"
	case NotInstalled:
		return "not on PATH; skipped"
	case OK:
		return "uses the proxy and trusts the countersign CA"
	case NoTrust:
		return "goes through the proxy but does not trust the countersign CA; hint: " + r.Client.NoTrustHint
	default:
		return "does not use the proxy; hint: " + r.Client.NoProxyHint
	}
}

// Observed is what the proxy side saw for a probe host.
type Observed struct {
	// Reached: the probe server answered a request for the host.
	Reached bool
	// HandshakeFailed: the proxy recorded a failed TLS handshake with the
	// client for the host.
	HandshakeFailed bool
}

// Judge turns what the proxy saw into a verdict.
func Judge(o Observed) Verdict {
	switch {
	case o.Reached:
		return OK
	case o.HandshakeFailed:
		return NoTrust
	default:
		return NoProxy
	}
}

// Run runs one client: its command with env (the session environment)
// plus the client's own variables, from a scratch directory under dir,
// bounded by ctx. The verdict is NotInstalled, or left for Judge once the
// proxy side is known; Output keeps the end of what the client printed.
func Run(ctx context.Context, c Client, env []string, dir string) Result {
	r := Result{Client: c}
	scratch := filepath.Join(dir, c.Name)
	args := c.Command("https://"+Host(c.Name)+"/", scratch)
	if _, err := exec.LookPath(args[0]); err != nil {
		r.Verdict = NotInstalled
		return r
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		r.Err = err
		return r
	}
	// An empty kubeconfig, so that kubectl's own cannot redirect it.
	if err := os.WriteFile(filepath.Join(scratch, "kubeconfig"), nil, 0o600); err != nil {
		r.Err = err
		return r
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = scratch
	cmd.Env = slices.Clip(env)
	if c.Env != nil {
		cmd.Env = append(cmd.Env, c.Env(scratch)...)
	}
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	r.Err = cmd.Run()
	r.Output = out.String()
	return r
}

// tail keeps the last 2 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2048 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-2048:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Probe is the local HTTPS server the probe hosts are routed to. It
// answers each client with something it accepts and records which hosts it
// served.
type Probe struct {
	// Addr is its 127.0.0.1 address.
	Addr string
	// CertPEM is its self-signed certificate, which the proxy must trust
	// upstream.
	CertPEM []byte

	srv     *http.Server
	mu      sync.Mutex
	reached map[string]bool
}

// StartProbe starts the probe server; Close stops it.
func StartProbe() (*Probe, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "countersign doctor probe"},
		DNSNames:     []string{"*." + Domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Its own root: the proxy trusts exactly this certificate.
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("probe certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("probe listener: %w", err)
	}
	p := &Probe{
		Addr:    ln.Addr().String(),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		reached: map[string]bool{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	tlsLn := tls.NewListener(ln, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	go func() { _ = p.srv.Serve(tlsLn) }()
	return p, nil
}

// Close stops the probe server.
func (p *Probe) Close() error { return p.srv.Close() }

// Reached reports whether a request for host was served.
func (p *Probe) Reached(host string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reached[host]
}

// ServeHTTP answers every client with a minimal reply it accepts.
func (p *Probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	p.mu.Lock()
	p.reached[strings.ToLower(host)] = true
	p.mu.Unlock()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	switch {
	case strings.HasSuffix(r.URL.Path, "/info/refs"):
		// An empty repository, in git's smart HTTP protocol.
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		_, _ = io.WriteString(w, "001e# service=git-upload-pack\n0000"+"0000")
	case strings.HasSuffix(r.URL.Path, ".info"):
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Version":"v1.0.0","Time":"2026-01-01T00:00:00Z"}`)
	case strings.HasSuffix(r.URL.Path, ".mod"):
		_, _ = io.WriteString(w, "module "+Domain+"/probe\n")
	case r.Method == http.MethodPost && strings.HasPrefix(r.Host, "aws."):
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::000000000000:user/countersign-doctor</Arn><UserId>AIDADOCTORPROBE</UserId><Account>000000000000</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>countersign-doctor</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	case r.URL.Path == "/version":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"major":"1","minor":"32","gitVersion":"v1.32.0"}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}\n")
	}
}
