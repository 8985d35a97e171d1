package action

import (
	"bytes"
	"errors"
	"mime"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// DuplicateJSONName reports an object member name that the JSON body of r
// repeats ({"dry_run": false, …, "dry_run": true}), with where it is as a
// JSON Pointer. Servers differ on which of the values they act on (Go's and
// JavaScript's parsers take the last, gjson and some gateways the first),
// while the policy and the approver see one: such a request cannot be
// decided. A body that is not JSON, or is cut off before a repeat, has
// none.
func DuplicateJSONName(r *Request) (string, bool) {
	if len(r.Body) == 0 || !jsonBody(r.Header.Get("Content-Type"), r.Body) {
		return "", false
	}
	// Invalid UTF-8 or a lone surrogate earlier in the body must not end
	// the search before the repeat.
	d := jsontext.NewDecoder(bytes.NewReader(r.Body), jsontext.AllowInvalidUTF8(true))
	err := d.SkipValue()
	var se *jsontext.SyntacticError
	if !errors.Is(err, jsontext.ErrDuplicateName) || !errors.As(err, &se) {
		return "", false
	}
	return string(se.JSONPointer), true
}

// jsonBody reports whether a body is JSON by its media type or its first
// byte, as the policy input decides to parse it.
func jsonBody(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return true
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
