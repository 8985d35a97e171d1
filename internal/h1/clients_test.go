package h1

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// clientRequests are raw requests captured from real clients (curl, git,
// the AWS CLI, Python's urllib) talking to a TLS listener: what the proxy
// reads inside a tunnel. They seed the fuzz targets and must all parse.
func clientRequests(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "clients", "*.http"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no captured client requests in testdata/clients")
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestCapturedClientRequestsParse(t *testing.T) {
	for name, raw := range clientRequests(t) {
		t.Run(name, func(t *testing.T) {
			r := NewReader(bufio.NewReader(bytes.NewReader(raw)), Limits{})
			req, err := r.ReadRequest()
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if req.ContentLength >= 0 && int64(len(body)) != req.ContentLength {
				t.Errorf("body %d bytes, Content-Length %d", len(body), req.ContentLength)
			}
			if req.Host == "" || req.Method == "" {
				t.Errorf("request %+v lacks host or method", req)
			}
		})
	}
}
