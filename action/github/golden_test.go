package github

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// separator ends the captured request in a golden file; the expected action
// JSON follows it.
const separator = "\n----------\n"

// goldenProvider is the provider the golden files are classified with:
// ghe.example.test is a configured Enterprise Server host.
func goldenProvider() *Provider {
	return New(Options{EnterpriseHosts: []string{"ghe.example.test"}})
}

// TestGolden classifies each request captured from gh (testdata/*.txt) and
// compares the action with the expected JSON after the separator.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	c := action.NewClassifier(goldenProvider())
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, want := readGolden(t, file)
			r := parseCaptured(t, raw)
			got, err := json.MarshalIndent(c.Classify(r), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				out := append(append(append([]byte{}, raw...), separator...), got...)
				if err := os.WriteFile(file, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Classify(%s) mismatch (-want +got):\n%s", file, diff)
			}
		})
	}
}

func readGolden(t testing.TB, file string) (raw, want []byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte(separator))
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+len(separator):]
}

// hopByHop are the headers the proxy removes before classifying.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// parseCaptured turns a captured request into the classifier's view of it,
// as the proxy builds it.
func parseCaptured(t testing.TB, raw []byte) *action.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse captured request: %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("read captured body: %v", err)
	}
	host := req.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	h := req.Header.Clone()
	for _, k := range hopByHop {
		h.Del(k)
	}
	r := &action.Request{
		Method:   req.Method,
		Scheme:   "https",
		Host:     strings.ToLower(strings.TrimSuffix(host, ".")),
		Port:     443,
		Path:     req.URL.Path,
		RawPath:  req.URL.EscapedPath(),
		Query:    req.URL.Query(),
		Header:   h,
		BodySize: req.ContentLength,
	}
	if len(body) > 0 {
		r.Body = body
	}
	if r.BodySize < 0 {
		r.BodySize = int64(len(body))
	}
	return r
}
