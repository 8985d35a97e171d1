package action

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
// sent. Other encodings are left as sent: S3 keeps them as object
// metadata, so no server reads such a body inflated by a generic rule, and
// so is a list with aws-chunked, SigV4's own framing, beside them (which
// the proxy lets through to AWS's own hosts only). Any other list of
// codings that names one of the five is refused (ErrEncoding; see
// MixedCodings).
func Inflate(r *Request, limit int64) error {
	if len(r.Body) == 0 {
		return nil
	}
	codings := Codings(r.Header)
	var enc string
	switch {
	case len(codings) == 1:
		enc = codings[0]
	case MixedCodings(codings) && !slices.Contains(codings, "aws-chunked"):
		return fmt.Errorf("%w: %s", ErrEncoding, MixedCodingsReason(codings))
	}
	var zr io.Reader
	var err error
	switch enc {
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
		return nil // none, or not one a server inflates by itself: left as sent
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

// Codings returns the content codings that a request's Content-Encoding
// lines name, in order, lower-cased, without identity. Several lines are
// one list, as aws-sdk-go-v2 adds aws-chunked in a line of its own.
func Codings(h http.Header) []string {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.ToLower(strings.TrimSpace(e)); e != "" && e != "identity" {
				codings = append(codings, e)
			}
		}
	}
	return codings
}

// MixedCodings reports whether codings name one that servers undo by
// themselves beside another. Such a body is decided as sent only when it
// goes to AWS with aws-chunked among them (S3 removes aws-chunked and keeps
// the rest as the object's metadata); elsewhere a server that undoes only
// the coding it knows, or only the first line's, reads what the policy
// could not (found by review).
func MixedCodings(codings []string) bool {
	return len(codings) > 1 && slices.ContainsFunc(codings, inflated)
}

// MixedCodingsReason is the refusal of a body with MixedCodings.
func MixedCodingsReason(codings []string) string {
	return fmt.Sprintf("the body names more than one Content-Encoding (%s), and servers differ on which they undo; send it with one", strings.Join(codings, ", "))
}

// inflated reports whether servers inflate a body sent with coding by
// themselves.
func inflated(coding string) bool {
	switch coding {
	case "gzip", "x-gzip", "deflate", "br", "zstd":
		return true
	}
	return false
}
