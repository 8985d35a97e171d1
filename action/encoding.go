package action

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// ErrEncoding is returned by Inflate for a body sent compressed that does
// not inflate: a server that inflates it might still read something from
// it, which the policy would not have seen.
var ErrEncoding = errors.New("request body encoding")

// Inflate replaces a compressed body (Content-Encoding gzip, x-gzip,
// deflate, br or zstd, alone) with its inflated form, at most limit bytes,
// and sets Decoded. Servers inflate such bodies before they read them
// (Express does by default, br too since body-parser 2; gateways in front
// of model APIs inflate zstd, which Codex sends), so an MCP call or an AWS
// query sent compressed must be classified, and decided on, as what it
// says. A body cut short by the proxy, or inflating to more than limit, is
// marked truncated. BodySHA256 and BodySize stay those of the bytes as
// sent. Other encodings, and more than one, are left as sent: S3 keeps
// them as object metadata and aws-chunked is SigV4's own framing, so no
// server reads such a body inflated by a generic rule.
func Inflate(r *Request, limit int64) error {
	if len(r.Body) == 0 {
		return nil
	}
	encs := r.Header.Values("Content-Encoding")
	var enc string
	for _, v := range encs {
		for _, e := range strings.Split(v, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			if e == "" || e == "identity" {
				continue
			}
			if enc != "" {
				return nil // more than one: left as sent
			}
			enc = e
		}
	}
	var zr io.Reader
	var err error
	switch enc {
	case "":
		return nil
	case "gzip", "x-gzip":
		zr, err = gzip.NewReader(bytes.NewReader(r.Body))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(r.Body))
	case "br":
		zr = brotli.NewReader(bytes.NewReader(r.Body))
	case "zstd":
		// Synchronous (no decoding goroutines) and with the 8 MiB window
		// that RFC 9659 sets for HTTP, so that a frame cannot make the
		// decoder allocate more.
		var zd *zstd.Decoder
		zd, err = zstd.NewReader(bytes.NewReader(r.Body), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
		if err == nil {
			defer zd.Close()
			zr = zd
		}
	default:
		return nil // not one a server inflates by itself: left as sent
	}
	cut := r.BodyTruncated
	var out []byte
	if err == nil {
		out, err = io.ReadAll(io.LimitReader(zr, limit+1))
	}
	switch {
	case int64(len(out)) > limit:
		out, cut = out[:limit], true
	case err == nil:
	case cut && errors.Is(err, io.ErrUnexpectedEOF):
		// The proxy kept only a prefix of the compressed stream.
	default:
		return fmt.Errorf("%w: the %s body does not inflate: %v", ErrEncoding, enc, err)
	}
	if out == nil {
		out = []byte{}
	}
	r.Body, r.BodyTruncated, r.Decoded = out, cut, true
	return nil
}
