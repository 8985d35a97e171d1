package action

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrEncoding is returned by Inflate for a body that cannot be inspected
// as sent: a Content-Encoding countersign does not read, or a compressed
// stream that is malformed.
var ErrEncoding = errors.New("request body encoding")

// Inflate replaces a compressed body (Content-Encoding gzip, x-gzip or
// deflate) with its inflated form, at most limit bytes, and sets Decoded.
// Servers inflate such bodies before they read them (Express does by
// default), so an MCP call or an AWS query sent compressed must be
// classified, and decided on, as what it says. A body cut short by the
// proxy, or inflating to more than limit, is marked truncated. BodySHA256
// and BodySize stay those of the bytes as sent. A request without a body,
// or without Content-Encoding, is left alone.
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
				return fmt.Errorf("%w: more than one Content-Encoding (%s, %s)", ErrEncoding, enc, e)
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
	default:
		return fmt.Errorf("%w: Content-Encoding %s is not inspected", ErrEncoding, strconv.Quote(enc))
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
