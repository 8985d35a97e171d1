package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"strings"
)

// methodParam is the form field, or query parameter, that Rails
// (Rack::MethodOverride), Laravel and Symfony read as the method of a POST:
// `POST /posts/1` with `_method=DELETE` runs as a DELETE the policy did not
// see (found by review; the headers of methodOverrides were refused, this
// was not).
const methodParam = "_method"

// overridden reports whether a method override asks for another method
// than m. As for the headers, a read (GET, HEAD) does less than what was
// decided, and passes.
func overridden(m, v string) bool {
	v = strings.TrimSpace(v)
	return !strings.EqualFold(v, m) && !strings.EqualFold(v, "GET") && !strings.EqualFold(v, "HEAD")
}

// isMethodParam reports whether a form or query name is read as _method by
// some framework: PHP (Laravel, Symfony) drops leading spaces and turns
// spaces and dots into underscores (".method", " method"), Rack 2 reads
// "[_method]" as "_method", and "_method[]" or "_method[x]" is the same
// name holding a list. Case is ignored, to be safe.
func isMethodParam(name string) bool {
	name = strings.TrimLeft(name, " ")
	if inner, ok := strings.CutPrefix(name, "["); ok {
		name, _, _ = strings.Cut(inner, "]")
	} else if i := strings.IndexByte(name, '['); i > 0 {
		name = name[:i]
	}
	name = strings.Map(func(r rune) rune {
		if r == ' ' || r == '.' {
			return '_'
		}
		return r
	}, name)
	return strings.EqualFold(name, methodParam)
}

// methodParamRefusal returns why a POST whose query or body names another
// method in _method is refused, or "". contentType is every Content-Type
// value; body is the body as the server reads it (inflated), as far as
// countersign has it (what follows inspect.body_limit is not seen, as for
// every part of such a body).
func methodParamRefusal(method, rawQuery string, contentType []string, body []byte) string {
	if method != "POST" {
		// The frameworks take the parameter from POSTs only.
		return ""
	}
	say := func(where, v string) string {
		return fmt.Sprintf("the %s asks for the method %q in %s, which Rails, Laravel and Symfony run instead of POST; send the request with that method itself", where, v, methodParam)
	}
	if v, ok := formOverride(rawQuery, method); ok {
		return say("query", v)
	}
	if len(body) == 0 {
		return ""
	}
	// Read the type as leniently as the servers do: Rack splits it at ";"
	// or ",", PHP compares a prefix, and both take a request without one
	// for a form.
	mt := ""
	if len(contentType) > 0 {
		mt = contentType[0]
		if i := strings.IndexAny(mt, ";,"); i >= 0 {
			mt = mt[:i]
		}
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	switch {
	case mt == "" || strings.HasPrefix(mt, "application/x-www-form-urlencoded"):
		if v, ok := formOverride(string(body), method); ok {
			return say("form body", v)
		}
	case strings.HasPrefix(mt, "multipart/"):
		if v, ok := multipartOverride(body, contentType, method); ok {
			return say("form body", v)
		}
	case strings.Contains(mt, "json"):
		// Laravel reads a JSON body's members as its form input.
		if v, ok := jsonOverride(body, method); ok {
			return say("JSON body", v)
		}
	}
	return ""
}

// formOverride returns a value of a _method name in a URL-encoded form or
// query that asks for another method than m. Every pair counts (servers
// take the first or the last of a repeated name); a pair that does not
// decode is read raw.
func formOverride(form, m string) (string, bool) {
	for pair := range strings.SplitSeq(form, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if isMethodParam(k) && overridden(m, v) {
			return v, true
		}
	}
	return "", false
}

// multipartOverride is formOverride for a multipart body, read as far as it
// parses (a body cut at the inspection limit still shows the fields before
// the cut).
func multipartOverride(body []byte, contentType []string, m string) (string, bool) {
	var boundary string
	for _, ct := range contentType {
		for p := range strings.SplitSeq(ct, ";") {
			if k, v, ok := strings.Cut(p, "="); ok && strings.EqualFold(strings.TrimSpace(k), "boundary") {
				boundary = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	if boundary == "" {
		return "", false
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for range 1000 {
		p, err := r.NextPart()
		if err != nil {
			return "", false
		}
		if isMethodParam(p.FormName()) {
			v, _ := io.ReadAll(io.LimitReader(p, 64))
			if overridden(m, string(v)) {
				return string(v), true
			}
		}
	}
	return "", false
}

// jsonOverride returns the value of a top-level _method member of a JSON
// object body that asks for another method than m.
func jsonOverride(body []byte, m string) (string, bool) {
	// Laravel's keys are case-sensitive: a "_method" member holds the
	// word, or a \u escape of one of its letters.
	if !bytes.Contains(body, []byte("method")) && !bytes.Contains(body, []byte(`\u`)) {
		return "", false
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		return "", false
	}
	for k, raw := range members {
		var v string
		if isMethodParam(k) && json.Unmarshal(raw, &v) == nil && overridden(m, v) {
			return v, true
		}
	}
	return "", false
}
