package h1

import (
	"net/http"
	"strings"
)

// maxPathDecodes is how many rounds of percent-decoding checkPath looks
// through: servers that decode twice exist, and a double-encoded dot-segment
// ("%252e%252e") is the classic way past a proxy that decodes once.
const maxPathDecodes = 3

// checkPath refuses a request path (the raw bytes between the authority and
// the query) that servers read in more than one way, so the policy never
// decides about a path the upstream understands differently (SPEC 10.2:
// refused, never normalised):
//
//   - a dot-segment ("." or ".."), raw or percent-encoded once or more, with
//     "/" or "\" as the separator (Windows servers split on both);
//   - an empty segment ("//"), except the trailing slash;
//   - a ';' (path parameters: Java servers drop ";…" from a segment);
//   - a backslash sent as such (not a URI character; some servers read it
//     as "/");
//   - an encoded control byte (%00–%1F, %7F).
//
// An encoded slash (%2F) is allowed: real APIs use it (GitLab project paths,
// npm scopes, branch names). The policy sees the decoded path, so it cannot
// hide a segment from a rule.
func checkPath(raw string) *Error {
	if strings.IndexByte(raw, '\\') >= 0 {
		return refuse(http.StatusBadRequest, "backslash in the request path")
	}
	if strings.IndexByte(raw, ';') >= 0 {
		return refuse(http.StatusBadRequest, "';' in the request path (a path parameter some servers strip)")
	}
	p := raw
	for round := 0; ; round++ {
		if round > 0 {
			for i := 0; i < len(p); i++ {
				if c := p[i]; c < 0x20 || c == 0x7f {
					return refuse(http.StatusBadRequest, "encoded control character in the request path")
				}
			}
		}
		if e := checkSegments(p, round > 0); e != nil {
			return e
		}
		if round >= maxPathDecodes || strings.IndexByte(p, '%') < 0 {
			return nil
		}
		// Decode leniently, as a lenient server would: valid escapes are
		// decoded and invalid ones kept, so that one bad escape cannot hide
		// the rest of the path from the next round's checks.
		next := lenientUnescape(p)
		if next == p {
			return nil
		}
		p = next
	}
}

// checkSegments looks for dot-segments and empty segments in p. Once p has
// been decoded, a backslash also separates segments.
func checkSegments(p string, decoded bool) *Error {
	p = strings.TrimPrefix(p, "/")
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' && !(decoded && p[i] == '\\') {
			continue
		}
		seg := p[start:i]
		switch {
		case seg == "." || seg == "..":
			return refuse(http.StatusBadRequest, "dot-segment in the request path")
		case seg == "" && i < len(p):
			return refuse(http.StatusBadRequest, "empty segment ('//') in the request path")
		}
		start = i + 1
	}
	return nil
}

// rawPathOf returns the path of an origin-form or absolute-form target as
// sent: from the first "/" after the authority up to the query.
func rawPathOf(target string, absolute bool) string {
	if absolute {
		rest := target[strings.Index(target, "://")+3:]
		end := strings.IndexAny(rest, "/?")
		if end < 0 || rest[end] == '?' {
			return ""
		}
		target = rest[end:]
	}
	if q := strings.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	return target
}

// lenientUnescape decodes every valid %XX escape of s and keeps anything
// else as it is.
func lenientUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhexByte(s[i+1])<<4 | unhexByte(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhexByte(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
