package redact

import (
	"encoding/base64"
	"maps"
	"slices"
	"strings"
)

// APIs take whole files base64-encoded in a JSON field: GitHub's contents
// and blobs APIs, GitLab's commits, Kubernetes ConfigMaps' binaryData. A
// file an agent commits can hold a credential (.env, a kubeconfig, a
// Secret manifest whose data is base64 once more), and the token shapes
// Text knows are invisible in the encoded form, so the audit log and the
// approval page would carry it for anyone to decode.
//
// Encoded returns v, a JSON-shaped value as Value takes it, with every
// base64 run in its strings that decodes to a credential masked (see
// maskEncoded). It is for what is recorded and shown, not for the policy's
// input: a run is masked whole, and it may take in text the policy must
// read (a table name before a "--" comment whose bytes decode to a token,
// found by review). v itself comes back, without a copy, when nothing in
// it is masked.
func Encoded(v any) any {
	out, _ := encoded(v)
	return out
}

// EncodedChanged is Encoded, and whether it masked anything.
func EncodedChanged(v any) (any, bool) { return encoded(v) }

// EncodedString is Encoded of one string.
func EncodedString(s string) string { return maskEncoded(s, encodedDepth) }

// encoded is Encoded, and whether it changed anything. Maps and slices are
// copied only on the way to a change.
func encoded(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return encodedString(x)
	case map[string]any:
		return changedMap(x, encoded)
	case []any:
		return changedSlice(x, encoded)
	case []string:
		return changedSlice(x, encodedString)
	case map[string]string:
		return changedMap(x, encodedString)
	case map[string][]string:
		return changedMap(x, func(vs []string) ([]string, bool) { return changedSlice(vs, encodedString) })
	}
	return v, false
}

func encodedString(s string) (string, bool) {
	m := maskEncoded(s, encodedDepth)
	return m, m != s
}

// changedMap applies f to m's values: m itself when f changes none, else
// a copy with f's results.
func changedMap[V any](m map[string]V, f func(V) (V, bool)) (map[string]V, bool) {
	var out map[string]V
	for k, e := range m {
		if v, changed := f(e); changed {
			if out == nil {
				out = maps.Clone(m)
			}
			out[k] = v
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// changedSlice is changedMap for a slice.
func changedSlice[V any](s []V, f func(V) (V, bool)) ([]V, bool) {
	var out []V
	for i, e := range s {
		if v, changed := f(e); changed {
			if out == nil {
				out = slices.Clone(s)
			}
			out[i] = v
		}
	}
	if out == nil {
		return s, false
	}
	return out, true
}

// maskEncoded finds runs of base64 in s (either alphabet, padded or not,
// broken into lines as encoders wrap them), decodes each, and masks the
// run whole when Text finds a credential in what it decodes to, or, to
// depth levels, in base64 runs inside that. Decoding is lenient as most
// servers' decoders are: line breaks and indentation inside a run are
// skipped, and each stretch between padding characters is decoded on its
// own.
//
// It returns s itself, without allocating, when s holds no run long
// enough to hide a credential.
func maskEncoded(s string, depth int) string {
	var b strings.Builder
	last := 0
	masked := false
	mask := func(start, end int) {
		if !masked {
			b.Grow(len(s))
			masked = true
		}
		b.WriteString(s[last:start])
		b.WriteString(Mask)
		last = end
	}
	for start, end := range encodedRuns(s) {
		if encodedSecret(s[start:end], depth) {
			mask(start, end)
			continue
		}
		// '/' is a base64 digit, so a path is one run, and what comes
		// before a segment shifts its alignment: /upload/<base64 of a
		// file> (found by review). Each segment is read on its own too.
		if !strings.Contains(s[start:end], "/") {
			continue
		}
		for p := start; p < end; {
			q := strings.IndexByte(s[p:end], '/')
			if q < 0 {
				q = end - p
			}
			if q >= minEncodedRun && encodedSecret(s[p:p+q], depth) {
				mask(p, p+q)
			}
			p += q + 1
		}
	}
	if !masked {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// encodedDepth is how many encodings deep maskEncoded looks: a file, and
// base64 inside that file (a Secret manifest's data).
const encodedDepth = 2

// minEncodedRun is the fewest base64 characters a run needs to be decoded:
// the shortest credential Text masks ("password=" and 16 characters)
// takes 34.
const minEncodedRun = 32

// isBase64 reports whether c is in the standard or the URL-safe base64
// alphabet.
func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

// encodedRuns yields the start and end of each run in s of at least
// minEncodedRun base64 characters, with '=' and line breaks (and the
// indentation after them) inside it. Any other character ends a run: a
// space inside a line would shift the alignment of what follows it anyway.
func encodedRuns(s string) func(yield func(int, int) bool) {
	return func(yield func(int, int) bool) {
		i := 0
		for i < len(s) {
			if !isBase64(s[i]) {
				i++
				continue
			}
			start, n, end := i, 0, i
			for i < len(s) {
				c := s[i]
				if isBase64(c) || c == '=' {
					if c != '=' {
						n++
					}
					i++
					end = i
					continue
				}
				if c != '\r' && c != '\n' {
					break
				}
				j := i
				for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
					j++
				}
				for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
					j++
				}
				if j == len(s) || !isBase64(s[j]) && s[j] != '=' {
					break
				}
				i = j
			}
			if n >= minEncodedRun && !yield(start, end) {
				return
			}
		}
	}
}

// encodedSecret reports whether run, a run of encodedRuns, decodes (in
// stretches between padding) to text holding a credential.
func encodedSecret(run string, depth int) bool {
	// One buffer holds the digits of a stretch and, after them, what they
	// decode to.
	buf := make([]byte, len(run)+base64.RawStdEncoding.DecodedLen(len(run)))
	digits, k := buf[:len(run)], 0
	for i := 0; i <= len(run); i++ {
		if i < len(run) && run[i] != '=' {
			switch c := run[i]; c {
			case '-':
				digits[k] = '+'
				k++
			case '_':
				digits[k] = '/'
				k++
			case '\r', '\n', ' ', '\t':
			default:
				digits[k] = c
				k++
			}
			continue
		}
		if k%4 == 1 {
			k-- // no decoder makes a byte of 6 bits
		}
		if k >= minEncodedRun/2 {
			decoded := buf[len(run):]
			if n, err := base64.RawStdEncoding.Decode(decoded, digits[:k]); err == nil {
				text := string(decoded[:n])
				if Text(text) != text || depth > 1 && maskEncoded(text, depth-1) != text {
					return true
				}
			}
		}
		k = 0
	}
	return false
}
