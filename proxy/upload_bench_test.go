package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/policy"
)

// BenchmarkHandleUpload decides and forwards a 1 MiB upload the way a
// tunnel does, under the example policies (which read input.request.body):
// the cost the transfer benchmark's uploads pay over bare interception.
func BenchmarkHandleUpload(b *testing.B) {
	var paths []string
	for _, p := range []string{"aws-prod-guard", "egress-allowlist", "github-git", "kubernetes", "mcp"} {
		paths = append(paths, filepath.Join("..", "examples", "policies", p))
	}
	engine, err := policy.New(b.Context(), policy.Options{Source: policy.Source{Paths: paths}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The egress allowlist admits the transfer benchmark's host.
	const host = "bench.acme.example"
	h := newHarness(b, harnessOptions{configure: func(o *Options) {
		o.Decider = engine
		o.Resolve[host+":443"] = o.Resolve["example.test:443"]
	}})
	for _, kind := range []struct{ name, ctype, line string }{
		{"binary", "application/octet-stream", ""},
		{"text", "text/plain; charset=utf-8", "countersign bench payload 0123456789abcdef\n"},
	} {
		body := make([]byte, 1<<20)
		if kind.line == "" {
			for i := range body {
				body[i] = byte(i*7919>>3 ^ i>>11)
			}
		} else {
			copy(body, strings.Repeat(kind.line, len(body)/len(kind.line)+1))
		}
		b.Run(kind.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/upload"},
					Header: http.Header{"Content-Type": {kind.ctype}, "Content-Length": {"1048576"}},
					Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
				resp := h.srv.handle(b.Context(), &exchange{req: req, scheme: "https", host: host, port: 443, session: h.sess})
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d: %s", resp.StatusCode, resp.Header.Get(headerDecision))
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
