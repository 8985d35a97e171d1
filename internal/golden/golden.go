// Package golden reads the providers' golden captures for tests, for the
// generated documentation (internal/docgen) and for the benchmark corpus
// (internal/bench); the proxy does not use it.
//
// A golden file, action/<provider>/testdata/*.txt, holds a raw HTTP/1.1
// request as a real client sent it, a "----------" line, and the action JSON
// the classifier is expected to make of it. Request turns a capture into the
// *action.Request the proxy hands the classifiers (proxy/pipeline.go), and
// Run is the compare-or-rewrite loop of the golden tests: each provider
// package keeps its own -update flag and passes it in.
package golden

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/hostport"
)

// Separator ends the captured request in a golden file; the expected action
// JSON follows it.
const Separator = "\n----------\n"

// DefaultBodyLimit is the proxy's default inspect.body_limit (1 MiB).
const DefaultBodyLimit = 1 << 20

// Split splits a golden file into the captured request and the expected
// action JSON. The separator is searched from the end, because a captured
// body may contain anything. A file without one (a new capture) is all raw
// request, with no expected JSON.
func Split(b []byte) (raw, want []byte) {
	i := bytes.LastIndex(b, []byte(Separator))
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+len(Separator):]
}

// Read reads and splits the golden file file; a file that cannot be read
// fails tb.
func Read(tb testing.TB, file string) (raw, want []byte) {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	return Split(b)
}

// Files returns the golden files that match pattern (for example
// "testdata/*.txt"); a bad pattern or no match fails tb.
func Files(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		tb.Fatalf("golden files %s: %v", pattern, err)
	}
	if len(files) == 0 {
		tb.Fatalf("no golden files match %s", pattern)
	}
	return files
}

// Options are what differs between the providers' golden tests.
type Options struct {
	// BodyLimit is inspect.body_limit: at most this many bytes of body are
	// kept, and a longer body, or a capture that ends before its declared
	// length (the prefix of a large upload), is BodyTruncated. Zero keeps
	// the whole body, and a capture that ends early is an error.
	BodyLimit int
	// Host, when set, replaces the capture's Host line ("name" or
	// "name:port"), for captures made against a loopback listener or
	// rewritten to a test name.
	Host string
	// Strict reads the capture with the proxy's own HTTP/1 reader
	// (internal/h1) instead of net/http's, which is more lenient and adds
	// Cache-Control: no-cache to a request with Pragma: no-cache.
	Strict bool
}

// Request turns a raw HTTP/1.1 request, as the client sent it, into the
// classifier's view of it, as the proxy builds it: scheme https, the host
// canonical (hostport.Split, port 443 when none is given), hop-by-hop fields
// removed (h1.RemoveHopByHop), the body buffered up to opts.BodyLimit, and
// BodySize the declared length, or the length read when none was declared
// and the body is whole.
func Request(raw []byte, opts Options) (*action.Request, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	var req *http.Request
	var err error
	if opts.Strict {
		req, err = h1.NewReader(br, h1.Limits{}).ReadRequest()
	} else {
		req, err = http.ReadRequest(br)
	}
	if err != nil {
		return nil, fmt.Errorf("read captured request: %w", err)
	}
	body, truncated, err := readBody(req.Body, opts.BodyLimit)
	if err != nil {
		return nil, fmt.Errorf("read captured body: %w", err)
	}
	hp := req.Host
	if opts.Host != "" {
		hp = opts.Host
	}
	host, port, err := hostport.Split(hp, 443)
	if err != nil {
		return nil, fmt.Errorf("captured host: %w", err)
	}
	h1.RemoveHopByHop(req.Header)
	r := &action.Request{
		Method:        req.Method,
		Scheme:        "https",
		Host:          host,
		Port:          port,
		Path:          req.URL.Path,
		RawPath:       req.URL.EscapedPath(),
		Query:         req.URL.Query(),
		Header:        req.Header,
		BodySize:      req.ContentLength,
		BodyTruncated: truncated,
	}
	if len(body) > 0 {
		r.Body = body
	}
	if !truncated && r.BodySize < 0 {
		r.BodySize = int64(len(body))
	}
	return r, nil
}

// Parse is Request for a capture that must parse: an error fails tb.
func Parse(tb testing.TB, raw []byte, opts Options) *action.Request {
	tb.Helper()
	r, err := Request(raw, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// readBody reads a captured body: all of it when limit is zero, else at most
// limit bytes, truncated when there is more or when it ends early.
func readBody(body io.Reader, limit int) ([]byte, bool, error) {
	if limit <= 0 {
		b, err := io.ReadAll(body)
		return b, false, err
	}
	b, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	truncated := len(b) > limit
	if errors.Is(err, io.ErrUnexpectedEOF) {
		truncated = true
	} else if err != nil {
		return nil, false, err
	}
	return b[:min(len(b), limit)], truncated, nil
}

// JSON is the expected-action form of a: indented JSON with a final newline.
func JSON(a action.Action) ([]byte, error) {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Claimed returns a classify function for Run that classifies with p alone
// and fails the test when p does not claim the request.
func Claimed(p action.Provider) func(t *testing.T, r *action.Request) action.Action {
	return func(t *testing.T, r *action.Request) action.Action {
		t.Helper()
		a, ok := p.Classify(r)
		if !ok {
			t.Fatalf("Classify(%s %s%s) = not claimed by %s", r.Method, r.Host, r.Path, p.Name())
		}
		return a
	}
}

// Run runs a subtest, named for the file, for each golden file that matches
// pattern: it builds the request with opts, classifies it with classify
// (which fails t when its provider does not claim the request, and may check
// more), and compares the action's JSON with the expected one. With update
// it rewrites the expected JSON instead.
func Run(t *testing.T, pattern string, opts Options, classify func(t *testing.T, r *action.Request) action.Action, update bool) {
	t.Helper()
	for _, file := range Files(t, pattern) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, want := Read(t, file)
			got, err := JSON(classify(t, Parse(t, raw, opts)))
			if err != nil {
				t.Fatal(err)
			}
			if update {
				out := append(append(append([]byte{}, raw...), Separator...), got...)
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
