package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		o    Observed
		want Verdict
	}{
		{Observed{Reached: true}, OK},
		// A retry may fail TLS after a first attempt got through: reaching
		// the probe is what counts.
		{Observed{Reached: true, HandshakeFailed: true}, OK},
		{Observed{HandshakeFailed: true}, NoTrust},
		{Observed{}, NoProxy},
	}
	for _, tt := range tests {
		if got := Judge(tt.o); got != tt.want {
			t.Errorf("Judge(%+v) = %v, want %v", tt.o, got, tt.want)
		}
	}
}

// The probe answers each client's request with what that client accepts,
// and remembers which hosts it served.
func TestProbeAnswersEachClient(t *testing.T) {
	p, err := StartProbe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CertPEM) {
		t.Fatal("probe certificate does not parse")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.Addr)
		},
	}}
	tests := []struct {
		client, method, path string
		wantType, wantBody   string
	}{
		{"git", "GET", "/probe.git/info/refs?service=git-upload-pack", "application/x-git-upload-pack-advertisement", "# service=git-upload-pack"},
		{"go", "GET", "/mod/" + Domain + "/probe/@v/v1.0.0.info", "application/json", `"Version":"v1.0.0"`},
		{"aws", "POST", "/", "text/xml", "<GetCallerIdentityResponse"},
		{"kubectl", "GET", "/version", "application/json", `"gitVersion"`},
		{"gh", "GET", "/api/v3/meta", "application/json", "{}"},
	}
	for _, tt := range tests {
		if p.Reached(Host(tt.client)) {
			t.Fatalf("%s reached before it asked", tt.client)
		}
		req, err := http.NewRequest(tt.method, "https://"+Host(tt.client)+tt.path, strings.NewReader("Action=GetCallerIdentity"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.client, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.wantType || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s: %d %q %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if !p.Reached(Host(tt.client)) {
			t.Errorf("%s: not recorded as reached", tt.client)
		}
	}
}

func TestRunSkipsMissingClients(t *testing.T) {
	c := Client{Name: "nothing", Command: func(string, string) []string { return []string{"countersign-doctor-no-such-client"} }}
	if r := Run(t.Context(), c, nil, t.TempDir()); r.Verdict != NotInstalled {
		t.Errorf("Run() verdict = %v, want %v", r.Verdict, NotInstalled)
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	var tl tail
	for range 100 {
		tl.Write([]byte(strings.Repeat("x", 99) + "\n"))
	}
	tl.Write([]byte("the last line\n"))
	if s := tl.String(); len(s) > 2048 || !strings.HasSuffix(s, "the last line") {
		t.Errorf("tail = %d bytes ending %q", len(s), s[max(len(s)-20, 0):])
	}
}
