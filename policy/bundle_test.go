package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"go.uber.org/zap"
)

// bundleServer is a local OPA bundle service: it serves one tar.gz with an
// ETag and answers If-None-Match with 304.
type bundleServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	gets   int
}

func newBundleServer(t *testing.T) *bundleServer {
	s := &bundleServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, status := s.body, s.status
		s.gets++
		s.mu.Unlock()
		if r.URL.Path != "/bundles/countersign.tar.gz" {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if strings.Contains(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) serve(body []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status = body, status
}

func (s *bundleServer) url() string { return s.URL + "/bundles/countersign.tar.gz" }

// signer signs bundles with an ECDSA key made for the test.
type signer struct {
	private, public string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return signer{
		private: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
		public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
}

// makeBundle writes a bundle tar.gz with OPA's bundle writer, signed when
// sign is not nil.
func makeBundle(t *testing.T, revision string, modules map[string]string, data map[string]any, sign *signer) []byte {
	t.Helper()
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: revision}, Data: data}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: []byte(modules[name])})
	}
	if sign != nil {
		if err := b.GenerateSignature(bundle.NewSigningConfig(sign.private, "ES256", ""), "default", true); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).UseModulePath(true).DisableFormat(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const bundlePolicy = `package countersign

deny contains "blocked host" if input.request.host in data.acme.blocked
`

func TestBundleFetch(t *testing.T) {
	key, other := newSigner(t), newSigner(t)
	good := map[string]string{"/policy.rego": bundlePolicy}
	tests := []struct {
		name    string
		give    []byte
		verify  *BundleVerification
		wantErr string // substring; "" = success
	}{
		{name: "unsigned", give: makeBundle(t, "r1", good, nil, nil)},
		{name: "signed, verified", give: makeBundle(t, "r1", good, nil, &key), verify: &BundleVerification{Key: key.public, Algorithm: "ES256"}},
		// OPA's reader insists on a key for a signed bundle.
		{name: "signed, no key configured", give: makeBundle(t, "r1", good, nil, &key), wantErr: "verification key not provided"},
		{name: "unsigned but a key is required", give: makeBundle(t, "r1", good, nil, nil), verify: &BundleVerification{Key: key.public, Algorithm: "ES256"}, wantErr: ".signatures.json"},
		{name: "signed with another key", give: makeBundle(t, "r1", good, nil, &other), verify: &BundleVerification{Key: key.public, Algorithm: "ES256"}, wantErr: "verif"},
		{name: "no package countersign", give: makeBundle(t, "r1", map[string]string{"/x.rego": "package other\n\nx := 1\n"}, nil, nil), wantErr: "package countersign"},
		{name: "only a test declares countersign", give: makeBundle(t, "r1", map[string]string{"/x_test.rego": "package countersign\n\ntest_x if true\n"}, nil, nil), wantErr: "package countersign"},
		{name: "not a tarball", give: []byte("<html>login</html>"), wantErr: "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBundleServer(t)
			srv.serve(tt.give, http.StatusOK)
			l, err := NewBundleLoader(BundleOptions{URL: srv.url(), Verification: tt.verify}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			b, err := l.Fetch(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch() = %v, want an error containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), srv.url()) {
					t.Errorf("Fetch() error %q does not name the bundle URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			if b.Revision != "r1" || b.ETag == "" || len(b.Modules) != 1 {
				t.Errorf("Fetch() = revision %q, etag %q, %d modules", b.Revision, b.ETag, len(b.Modules))
			}
		})
	}
}

func TestBundleServiceUnreachable(t *testing.T) {
	srv := newBundleServer(t)
	srv.serve(nil, http.StatusServiceUnavailable)
	l, err := NewBundleLoader(BundleOptions{URL: srv.URL, Resource: "bundles/countersign.tar.gz"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fetch(t.Context()); err == nil || !strings.Contains(err.Error(), "Service Unavailable") {
		t.Fatalf("Fetch() = %v, want the service's status", err)
	}
	if st := l.Status(); st.LastError == nil {
		t.Errorf("Status() = %+v, want the failure", st)
	}
}

func TestNewBundleLoaderChecksOptions(t *testing.T) {
	for _, opts := range []BundleOptions{
		{URL: "s3://bucket/b.tar.gz"},
		{URL: "https://bundles.example.com"},
		{URL: "https://bundles.example.com/b.tar.gz?x=1"},
		{URL: "https://bundles.example.com/b.tar.gz", Verification: &BundleVerification{}},
		// Plain http:// off this machine: unsigned, or with a token.
		{URL: "http://bundles.example.com/b.tar.gz"},
		{URL: "http://10.0.0.5/b.tar.gz"},
		{URL: "http://bundles.example.com/b.tar.gz", Token: "t", Verification: &BundleVerification{Key: "k", Algorithm: "HS256"}},
	} {
		if _, err := NewBundleLoader(opts, nil); err == nil {
			t.Errorf("NewBundleLoader(%+v) succeeded", opts)
		}
	}
	l, err := NewBundleLoader(BundleOptions{URL: "https://ci:hunter2@bundles.example.com/svc?access_token=t0ps3cr3tvalue", Resource: "b.tar.gz"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := l.Status().URL; strings.Contains(u, "hunter2") || strings.Contains(u, "t0ps3cr3tvalue") || !strings.HasSuffix(u, "/b.tar.gz") {
		t.Errorf("Status().URL = %q: it shows a credential, or not the bundle", u)
	}
	for _, opts := range []BundleOptions{
		{URL: "http://127.0.0.1:8181/b.tar.gz"},
		{URL: "http://[::1]:8181/b.tar.gz", Token: "t"},
		{URL: "http://localhost/b.tar.gz"},
		{URL: "http://bundles.example.com/b.tar.gz", Verification: &BundleVerification{Key: "k", Algorithm: "HS256"}},
		{URL: "https://bundles.example.com/b.tar.gz", Token: "t"},
	} {
		if _, err := NewBundleLoader(opts, nil); err != nil {
			t.Errorf("NewBundleLoader(%+v) = %v", opts, err)
		}
	}
}

// TestBundlePolling starts an engine from a bundle, then lets the loader
// poll a local bundle service that changes what it serves: new bundles are
// swapped in, bad ones are rejected with the last good policy kept, and a
// failing service only shows up in the loader's status.
func TestBundlePolling(t *testing.T) {
	key := newSigner(t)
	srv := newBundleServer(t)
	data := map[string]any{"acme": map[string]any{"blocked": []any{"evil.example"}}}
	srv.serve(makeBundle(t, "r1", map[string]string{"/policy.rego": bundlePolicy}, data, &key), http.StatusOK)

	l, err := NewBundleLoader(BundleOptions{URL: srv.url(), Polling: time.Second, Verification: &BundleVerification{Key: key.public, Algorithm: "ES256"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	events := newReloadEvents()
	// Local paths are compiled with the bundle: here a module of the
	// user's own next to it.
	dir := writePolicy(t, map[string]string{"local.rego": "package countersign\n\ndeny contains \"local\" if input.request.method == \"DELETE\"\n"})
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}, Bundle: b}, EvalTimeout: testEvalTimeout, OnReload: events.on}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.BundleRevision != "r1" {
		t.Errorf("Status().BundleRevision = %q, want r1", st.BundleRevision)
	}
	if !slices.Contains(e.Files(), "bundle:policy.rego") {
		t.Errorf("Files() = %v, want bundle:policy.rego", e.Files())
	}
	decide := func(method, host string) []string {
		t.Helper()
		d := e.DecideDocument(t.Context(), doc(method, host, "/"))
		if d.Err != nil {
			t.Fatalf("decide: %v", d.Err)
		}
		return d.Messages()
	}
	if got := decide("GET", "evil.example"); !slices.Equal(got, []string{"blocked host"}) {
		t.Fatalf("deny under bundle r1 = %q", got)
	}
	if got := decide("DELETE", "ok.example"); !slices.Equal(got, []string{"local"}) {
		t.Fatalf("local module under bundle r1 = %q", got)
	}

	l.Start(e, b.ETag)
	defer l.Close()

	steps := []struct {
		name    string
		body    []byte
		wantErr string // substring of a rejection; "" = accepted
		host    string // a GET to this host…
		want    []string
	}{
		{
			name: "new revision",
			body: makeBundle(t, "r2", map[string]string{"/policy.rego": bundlePolicy}, map[string]any{"acme": map[string]any{"blocked": []any{"worse.example"}}}, &key),
			host: "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "does not compile",
			body:    makeBundle(t, "r3", map[string]string{"/policy.rego": "package countersign\n\ndeny contains x if {\n"}, nil, &key),
			wantErr: "policy.rego:4: rego_parse_error",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "reaches outside the process",
			body:    makeBundle(t, "r4", map[string]string{"/policy.rego": "package countersign\n\ndeny contains \"x\" if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n"}, nil, &key),
			wantErr: "http.send",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "its own tests fail",
			body:    makeBundle(t, "r5", map[string]string{"/policy.rego": "package countersign\n", "/policy_test.rego": "package countersign\n\ntest_blocks if count(deny) > 0 with input as {\"request\": {\"host\": \"evil.example\"}}\n"}, nil, &key),
			wantErr: "test_blocks",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "no package countersign",
			body:    makeBundle(t, "r6", map[string]string{"/other.rego": "package other\n\nx := 1\n"}, nil, &key),
			wantErr: "package countersign",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "unsigned",
			body:    makeBundle(t, "r7", map[string]string{"/policy.rego": "package countersign\n"}, nil, nil),
			wantErr: ".signatures.json",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name:    "data that collides with the local policy's",
			body:    makeBundle(t, "r8", map[string]string{"/policy.rego": bundlePolicy}, map[string]any{"countersign": map[string]any{"deny": []any{"x"}}}, &key),
			wantErr: "deny",
			host:    "worse.example", want: []string{"blocked host"},
		},
		{
			name: "fixed",
			body: makeBundle(t, "r9", map[string]string{"/policy.rego": bundlePolicy}, map[string]any{"acme": map[string]any{"blocked": []any{"evil.example"}}}, &key),
			host: "evil.example", want: []string{"blocked host"},
		},
	}
	for _, st := range steps {
		before := e.Revision()
		srv.serve(st.body, http.StatusOK)
		// A poll of the previous step's bundle may still be in flight (a
		// bundle that failed verification is downloaded again on every
		// poll): skip its events, bounded.
		ev := events.next(t)
		for i := 0; i < 20 && !stepEvent(ev, st.wantErr); i++ {
			ev = events.next(t)
		}
		if ev.Origin != OriginBundle {
			t.Fatalf("%s: event from %q, want bundle", st.name, ev.Origin)
		}
		switch {
		case st.wantErr == "" && ev.Err != nil:
			t.Fatalf("%s: rejected: %v", st.name, ev.Err)
		case st.wantErr != "" && (ev.Err == nil || !strings.Contains(ev.Err.Error(), st.wantErr)):
			t.Fatalf("%s: event error %v, want one containing %q", st.name, ev.Err, st.wantErr)
		case st.wantErr != "" && e.Revision() != before:
			t.Fatalf("%s: rejected, yet the revision moved", st.name)
		}
		if got := decide("GET", st.host); !slices.Equal(got, st.want) {
			t.Errorf("%s: GET %s denied with %q, want %q", st.name, st.host, got, st.want)
		}
		if _, herr := e.Health(); (herr != nil) != (st.wantErr != "") {
			t.Errorf("%s: Health() error = %v", st.name, herr)
		}
	}
	if st := e.Status(); st.BundleRevision != "r9" || st.Rejected < 6 {
		t.Errorf("Status() = %+v, want bundle r9 and at least 6 rejections (a rejected bundle may be fetched again)", st)
	}

	// The service failing is not a rejected policy: the loader reports it
	// and the policy in force stays, with no reload event.
	srv.serve(nil, http.StatusInternalServerError)
	deadline := time.Now().Add(30 * time.Second)
	for l.Status().LastError == nil {
		if time.Now().After(deadline) {
			t.Fatal("the loader never reported the failing service")
		}
		time.Sleep(20 * time.Millisecond)
	}
	events.none(t)
	if _, herr := e.Health(); herr != nil {
		t.Errorf("Health() = %v after a download failure, want no policy error", herr)
	}
}

// stepEvent reports whether ev is the event a bundle step expects: an
// accepted bundle, or a rejection naming wantErr.
func stepEvent(ev ReloadEvent, wantErr string) bool {
	if wantErr == "" {
		return ev.Err == nil
	}
	return ev.Err != nil && strings.Contains(ev.Err.Error(), wantErr)
}

// A null in a bundle's data stays null, as OPA and policy files have it
// (found by review: it became {}, so is_null(data.cfg.approver) decided
// otherwise from a bundle).
func TestBundleDataKeepsNull(t *testing.T) {
	b := &Bundle{Data: map[string]any{"cfg": map[string]any{"approver": nil, "blocked": []any{nil, "evil.example"}}}}
	docs, err := addBundle(b, nil, nil, map[string]*ast.Module{}, map[string][]byte{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cfg": map[string]any{"approver": nil, "blocked": []any{nil, "evil.example"}}}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if docs, err := addBundle(&Bundle{}, nil, nil, map[string]*ast.Module{}, map[string][]byte{}, nil); err != nil || len(docs) != 0 {
		t.Errorf("a bundle without data: %v, %v", docs, err)
	}
}
