package golden

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantRaw   string
		wantWant  string
		wantNoSep bool
	}{
		{"one separator", "GET / HTTP/1.1\r\n\r\n\n----------\n{}\n", "GET / HTTP/1.1\r\n\r\n", "{}\n", false},
		{"separator in the body", "POST / HTTP/1.1\r\n\r\na\n----------\nb\n----------\n{}\n", "POST / HTTP/1.1\r\n\r\na\n----------\nb", "{}\n", false},
		{"no separator", "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, want := Split([]byte(tt.give))
			if string(raw) != tt.wantRaw || string(want) != tt.wantWant || (want == nil) != tt.wantNoSep {
				t.Errorf("Split(%q) = %q, %q, want %q, %q", tt.give, raw, want, tt.wantRaw, tt.wantWant)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		opts Options
		want *action.Request
	}{
		{
			name: "host canonical, port kept, hop-by-hop removed",
			raw:  "GET /a%2Fb?x=1 HTTP/1.1\r\nHost: API.Example.TEST.:8443\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n",
			want: &action.Request{
				Method: "GET", Scheme: "https", Host: "api.example.test", Port: 8443, Path: "/a/b", RawPath: "/a%2Fb",
				Query: url.Values{"x": {"1"}}, Header: http.Header{"X-Kept": {"yes"}},
			},
		},
		{
			name: "body within the limit",
			raw:  "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello",
			opts: Options{BodyLimit: 16},
			want: &action.Request{
				Method: "POST", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{"Content-Length": {"5"}}, Body: []byte("hello"), BodySize: 5,
			},
		},
		{
			name: "body over the limit",
			raw:  "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello",
			opts: Options{BodyLimit: 3},
			want: &action.Request{
				Method: "POST", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{"Content-Length": {"5"}}, Body: []byte("hel"), BodySize: 5, BodyTruncated: true,
			},
		},
		{
			name: "capture cut short is truncated under a limit",
			raw:  "POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
			opts: Options{BodyLimit: 16},
			want: &action.Request{
				Method: "POST", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{}, Body: []byte("hel"), BodySize: -1, BodyTruncated: true,
			},
		},
		{
			name: "chunked body: size is what was read",
			raw:  "POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want: &action.Request{
				Method: "POST", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{}, Body: []byte("hello"), BodySize: 5,
			},
		},
		{
			name: "host override",
			raw:  "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:39277\r\n\r\n",
			opts: Options{Host: "mcp.example.test"},
			want: &action.Request{
				Method: "GET", Scheme: "https", Host: "mcp.example.test", Port: 443, Path: "/mcp", RawPath: "/mcp",
				Query: url.Values{}, Header: http.Header{},
			},
		},
		{
			name: "net/http adds Cache-Control to Pragma",
			raw:  "GET / HTTP/1.1\r\nHost: example.test\r\nPragma: no-cache\r\n\r\n",
			want: &action.Request{
				Method: "GET", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"no-cache"}},
			},
		},
		{
			name: "the strict reader does not",
			raw:  "GET / HTTP/1.1\r\nHost: example.test\r\nPragma: no-cache\r\n\r\n",
			opts: Options{Strict: true},
			want: &action.Request{
				Method: "GET", Scheme: "https", Host: "example.test", Port: 443, Path: "/", RawPath: "/",
				Query: url.Values{}, Header: http.Header{"Pragma": {"no-cache"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Request([]byte(tt.raw), tt.opts)
			if err != nil {
				t.Fatalf("Request(%q) error: %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Request(%q) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		opts Options
	}{
		{"not a request", "hello\r\n\r\n", Options{}},
		{"capture cut short without a limit", "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhel", Options{}},
		{"bad host", "GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := Request([]byte(tt.raw), tt.opts); err == nil {
				t.Errorf("Request(%q) = %+v, want an error", tt.raw, r)
			}
		})
	}
}

// TestRunUpdateThenCompare writes the expected action of a new capture with
// update, then compares against it.
func TestRunUpdateThenCompare(t *testing.T) {
	dir := t.TempDir()
	raw := "DELETE /repos/o/r HTTP/1.1\r\nHost: api.github.com\r\n\r\n"
	file := filepath.Join(dir, "delete.txt")
	if err := os.WriteFile(file, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	classify := func(_ *testing.T, r *action.Request) action.Action {
		return action.Action{Provider: "test", Operation: r.Method + " " + r.Path, Destructive: true}
	}
	t.Run("update", func(t *testing.T) { Run(t, filepath.Join(dir, "*.txt"), Options{}, classify, true) })
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := raw + Separator + "{\n  \"destructive\": true,\n  \"operation\": \"DELETE /repos/o/r\",\n  \"provider\": \"test\",\n  \"read_only\": false\n}\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Fatalf("updated golden file mismatch (-want +got):\n%s", diff)
	}
	t.Run("compare", func(t *testing.T) { Run(t, filepath.Join(dir, "*.txt"), Options{}, classify, false) })
}
