package action

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// asciiCharsets are the charsets in which every ASCII character is the
// byte it is in UTF-8: a body in one of them reads the same to the policy,
// as UTF-8, wherever it matters (names, operations, ids).
var asciiCharsets = map[string]bool{
	"utf-8": true, "utf8": true, "us-ascii": true, "ascii": true,
	"iso-8859-1": true, "iso_8859-1": true, "latin1": true, "windows-1252": true, "cp1252": true,
}

// TextEncodingProblem says why a body that countersign parses as text (a
// JSON, GraphQL or form body, by its media type) cannot be decided as its
// server may read it, or returns "". countersign reads bodies as UTF-8;
// Express decodes a JSON body in any charset it is told (UTF-16, UTF-32)
// and strips a byte order mark before parsing, so an MCP call or GraphQL
// mutation sent that way would be classified as an opaque POST and pass
// (found by review). Such bodies are refused rather than decoded: clients
// send UTF-8.
func TextEncodingProblem(r *Request) string {
	if len(r.Body) == 0 {
		return ""
	}
	if !r.Decoded {
		for _, v := range r.Header.Values("Content-Encoding") {
			if e := strings.TrimSpace(v); e != "" && !strings.EqualFold(e, "identity") {
				// Still encoded (aws-chunked, two encodings at once):
				// not text countersign could judge.
				return ""
			}
		}
	}
	mt, charsets := mediaType(r.Header.Values("Content-Type"))
	// Any JSON-looking type: the MCP SDK takes whatever contains
	// "application/json".
	json := strings.Contains(mt, "json") || strings.Contains(mt, "graphql")
	if !json && mt != "application/x-www-form-urlencoded" {
		return ""
	}
	for _, cs := range charsets {
		if !asciiCharsets[strings.ToLower(cs)] {
			return fmt.Sprintf("the %s body is in charset %q; countersign reads request bodies as UTF-8, and a server that decodes %q would read what the policy did not. Send it as UTF-8", mt, cs, cs)
		}
	}
	for _, bom := range [][]byte{{0xEF, 0xBB, 0xBF}, {0xFE, 0xFF}, {0xFF, 0xFE}, {0, 0, 0xFE, 0xFF}} {
		if bytes.HasPrefix(r.Body, bom) {
			return fmt.Sprintf("the %s body starts with a byte order mark, which servers skip or decode and countersign's parsers do not. Send it as UTF-8 without one", mt)
		}
	}
	// gRPC-Web and Connect streams frame their JSON messages with binary
	// prefixes, NULs included.
	framed := strings.HasPrefix(mt, "application/grpc") || strings.HasPrefix(mt, "application/connect+")
	if json && !framed && bytes.IndexByte(r.Body, 0) >= 0 {
		// JSON has no raw NUL; UTF-16 and UTF-32 text is full of them.
		return fmt.Sprintf("the %s body holds NUL bytes, as UTF-16 or UTF-32 text does; countersign reads request bodies as UTF-8. Send it as UTF-8", mt)
	}
	return ""
}

// MediaType is the media type servers read in a Content-Type value: the
// text before the first ';', trimmed, in lower case, whatever parameters
// follow. mime.ParseMediaType refuses a value with a bad or repeated
// parameter, which servers still read by its type (found by review: a
// JSON Patch or a form hid behind one).
func MediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// mediaType returns the media type of Content-Type values, in lower case,
// and every charset they name. It reads leniently what mime.ParseMediaType
// refuses (a repeated or malformed parameter, two headers): servers
// differ on such values, so every charset counts.
func mediaType(values []string) (string, []string) {
	if len(values) == 0 {
		return "", nil
	}
	if len(values) == 1 {
		if mt, params, err := mime.ParseMediaType(values[0]); err == nil {
			if cs, ok := params["charset"]; ok {
				return mt, []string{strings.TrimSpace(cs)}
			}
			return mt, nil
		}
	}
	mt, _, _ := strings.Cut(values[0], ";")
	var charsets []string
	for _, v := range values {
		_, rest, _ := strings.Cut(v, ";")
		for p := range strings.SplitSeq(rest, ";") {
			k, val, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "charset") {
				charsets = append(charsets, strings.Trim(strings.TrimSpace(val), `"`))
			}
		}
	}
	return strings.ToLower(strings.TrimSpace(mt)), charsets
}
