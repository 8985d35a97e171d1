package aws

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// goldenSep separates a captured request from the expected action.
const goldenSep = "\n----------\n"

// bodyLimit is the proxy's default inspect.body_limit.
const bodyLimit = 1 << 20

// TestGolden classifies requests captured from the AWS CLI (see
// testdata/README.md) and compares the actions with the expected JSON.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	p := New(Options{})
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, want := readGolden(t, file)
			r := captured(t, raw, bodyLimit)
			a, ok := p.Classify(r)
			if !ok {
				t.Fatalf("Classify(%s) did not recognise an AWS request", file)
			}
			got := actionJSON(t, a)
			if *update {
				if err := os.WriteFile(file, append(append(raw, goldenSep...), got...), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Classify(%s) mismatch (-want +got):\n%s", file, diff)
			}
		})
	}
}

// readGolden splits a golden file. The separator is searched from the end:
// a captured body may contain anything.
func readGolden(t testing.TB, file string) (raw []byte, want string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte(goldenSep))
	if i < 0 {
		return b, ""
	}
	return b[:i], string(b[i+len(goldenSep):])
}

// captured turns a raw HTTP/1.1 request as the client sent it into the
// classifier's view, as the proxy builds it.
func captured(t testing.TB, raw []byte, limit int) *action.Request {
	t.Helper()
	r, err := parseCaptured(raw, limit)
	if err != nil {
		t.Fatalf("parse captured request: %v", err)
	}
	return r
}

func parseCaptured(raw []byte, limit int) (*action.Request, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, int64(limit)+1))
	truncated := len(body) > limit
	if errors.Is(err, io.ErrUnexpectedEOF) {
		truncated = true
	} else if err != nil {
		return nil, err
	}
	if len(body) > limit {
		body = body[:limit]
	}
	host, port := req.Host, 443
	if h, p, err := net.SplitHostPort(req.Host); err == nil {
		host = h
		port, _ = strconv.Atoi(p)
	}
	h := req.Header.Clone()
	h.Del("Connection")
	r := &action.Request{
		Method:        req.Method,
		Scheme:        "https",
		Host:          strings.ToLower(host),
		Port:          port,
		Path:          req.URL.Path,
		RawPath:       req.URL.EscapedPath(),
		Query:         req.URL.Query(),
		Header:        h,
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

func actionJSON(t testing.TB, a action.Action) string {
	t.Helper()
	b, err := json.MarshalIndent(a.Map(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}
