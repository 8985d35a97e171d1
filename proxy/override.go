package proxy

import (
	"bytes"
	"fmt"
	"io"
	"mime"
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

// methodParamRefusal returns why a POST whose query or body names another
// method in _method is refused, or "". body is the body as the server
// reads it (inflated), as far as countersign has it.
func methodParamRefusal(method, rawQuery, contentType string, body []byte) string {
	if method != "POST" {
		// The frameworks take the parameter from POSTs only.
		return ""
	}
	say := func(where, v string) string {
		return fmt.Sprintf("the %s asks for the method %q in %s, which Rails, Laravel and Symfony run instead of POST; send the request with that method itself", where, v, methodParam)
	}
	query, _ := url.ParseQuery(rawQuery) // refuseHead refused one that does not parse
	for _, v := range query[methodParam] {
		if overridden(method, v) {
			return say("query", v)
		}
	}
	if len(body) == 0 {
		return ""
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		// Pairs that do not decode are dropped: a server that keeps them
		// reads a value that names no method.
		form, _ := url.ParseQuery(string(body))
		for _, v := range form[methodParam] {
			if overridden(method, v) {
				return say("form body", v)
			}
		}
	case "multipart/form-data":
		if v, ok := multipartField(body, params["boundary"], methodParam); ok && overridden(method, v) {
			return say("form body", v)
		}
	}
	return ""
}

// multipartField returns the first value of the field name in a multipart
// body, read as far as it parses (a body cut at the inspection limit
// still shows the fields before the cut).
func multipartField(body []byte, boundary, name string) (string, bool) {
	if boundary == "" {
		return "", false
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for range 1000 {
		p, err := r.NextPart()
		if err != nil {
			return "", false
		}
		if p.FormName() == name {
			v, _ := io.ReadAll(io.LimitReader(p, 64))
			return string(v), true
		}
	}
	return "", false
}
