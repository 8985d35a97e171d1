package action

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func brotlied(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := brotli.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t testing.TB, s string) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll([]byte(s), nil)
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestInflate(t *testing.T) {
	body := `{"jsonrpc":"2.0","method":"tools/call"}`
	z := gzipped(t, body)
	tests := []struct {
		name      string
		enc       []string
		body      []byte
		truncated bool
		limit     int64
		want      string
		wantCut   bool
		wantErr   string // "" for none
		untouched bool
	}{
		{name: "no encoding", body: []byte(body), limit: 100, untouched: true},
		{name: "identity", enc: []string{"identity"}, body: []byte(body), limit: 100, untouched: true},
		{name: "gzip", enc: []string{"gzip"}, body: z, limit: 100, want: body},
		{name: "x-gzip, odd case and spaces", enc: []string{" X-GZIP "}, body: z, limit: 100, want: body},
		{name: "past the limit", enc: []string{"gzip"}, body: z, limit: 10, want: body[:10], wantCut: true},
		{name: "cut by the proxy", enc: []string{"gzip"}, body: z[:len(z)-12], truncated: true, limit: 100, want: body[:len(body)-4], wantCut: true},
		{name: "malformed", enc: []string{"gzip"}, body: []byte("hello"), limit: 100, wantErr: "does not inflate"},
		{name: "stream cut short but not by the proxy", enc: []string{"gzip"}, body: z[:len(z)-12], limit: 100, wantErr: "does not inflate"},
		// Express 5 inflates br; gateways inflate zstd (Codex sends it).
		{name: "br", enc: []string{"br"}, body: brotlied(t, body), limit: 100, want: body},
		{name: "br past the limit", enc: []string{"br"}, body: brotlied(t, body), limit: 10, want: body[:10], wantCut: true},
		{name: "br cut by the proxy", enc: []string{"br"}, body: brotlied(t, body)[:8], truncated: true, limit: 100, wantCut: true},
		{name: "br malformed", enc: []string{"br"}, body: []byte("opaque bytes"), limit: 100, wantErr: "does not inflate"},
		{name: "zstd", enc: []string{"zstd"}, body: zstded(t, body), limit: 100, want: body},
		{name: "zstd past the limit", enc: []string{"ZSTD"}, body: zstded(t, body), limit: 10, want: body[:10], wantCut: true},
		{name: "zstd cut by the proxy", enc: []string{"zstd"}, body: zstded(t, body)[:20], truncated: true, limit: 100, wantCut: true},
		{name: "zstd malformed", enc: []string{"zstd"}, body: []byte("opaque bytes"), limit: 100, wantErr: "does not inflate"},
		// A window past RFC 9659's 8 MiB (frame header: window descriptor
		// 0x80, 64 MiB) is refused, not allocated.
		{name: "zstd window too large", enc: []string{"zstd"}, body: []byte("\x28\xb5\x2f\xfd\x00\x80\x01\x00\x00"), limit: 100, wantErr: "window size exceeded"},
		// S3 stores these as object metadata; aws-chunked is SigV4 framing.
		{name: "another encoding", enc: []string{"compress"}, body: []byte("x"), limit: 100, untouched: true},
		{name: "aws-chunked", enc: []string{"aws-chunked"}, body: []byte("5;chunk-signature=ab\r\nhello\r\n"), limit: 100, untouched: true},
		{name: "two encodings", enc: []string{"aws-chunked, gzip"}, body: z, limit: 100, untouched: true},
		// A server that undoes only the first, or only the one it knows,
		// reads what the policy could not (found by review).
		{name: "two headers", enc: []string{"gzip", "deflate"}, body: z, limit: 100, wantErr: "more than one Content-Encoding (gzip, deflate)"},
		{name: "gzip twice", enc: []string{"gzip, gzip"}, body: z, limit: 100, wantErr: "more than one Content-Encoding"},
		{name: "gzip and another", enc: []string{"gzip, compress"}, body: z, limit: 100, wantErr: "more than one Content-Encoding"},
		{name: "two others", enc: []string{"compress, foo"}, body: z, limit: 100, untouched: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Header: http.Header{}, Body: tt.body, BodyTruncated: tt.truncated}
			for _, e := range tt.enc {
				r.Header.Add("Content-Encoding", e)
			}
			err := Inflate(r, tt.limit)
			switch {
			case tt.wantErr != "":
				if !errors.Is(err, ErrEncoding) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Inflate() error = %v, want ErrEncoding saying %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Inflate() error = %v", err)
			case tt.untouched:
				if r.Decoded || !bytes.Equal(r.Body, tt.body) {
					t.Errorf("a plain body changed: decoded %v, %q", r.Decoded, r.Body)
				}
				return
			}
			// A stream cut mid-deflate block may yield less than the
			// bytes before the cut: what it yields is a prefix.
			if !r.Decoded || r.BodyTruncated != tt.wantCut || !strings.HasPrefix(body, string(r.Body)) || (!tt.wantCut && string(r.Body) != tt.want) {
				t.Errorf("Inflate() = %q, decoded %v, truncated %v; want %q, truncated %v", r.Body, r.Decoded, r.BodyTruncated, tt.want, tt.wantCut)
			}
		})
	}
}

func FuzzInflate(f *testing.F) {
	f.Add(gzipped(f, `{"jsonrpc":"2.0","method":"tools/call"}`), "gzip", false)
	f.Add([]byte("x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15"), "deflate", false)
	f.Add([]byte("hello"), "gzip", true)
	f.Add(brotlied(f, `{"jsonrpc":"2.0","method":"tools/call"}`), "br", false)
	f.Add(zstded(f, `{"jsonrpc":"2.0","method":"tools/call"}`), "zstd", false)
	f.Fuzz(func(t *testing.T, body []byte, enc string, truncated bool) {
		r := &Request{Header: http.Header{"Content-Encoding": {enc}}, Body: body, BodyTruncated: truncated}
		if err := Inflate(r, 1<<16); err != nil {
			if !errors.Is(err, ErrEncoding) {
				t.Fatalf("error not ErrEncoding: %v", err)
			}
			return
		}
		if len(r.Body) > 1<<16 {
			t.Fatalf("inflated past the limit: %d bytes", len(r.Body))
		}
	})
}
