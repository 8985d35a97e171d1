package proxy

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/termtext"
)

// Refusal is why countersign refuses a request before any policy sees it:
// a request the policy would read differently from the server that gets
// it.
type Refusal struct {
	Status int
	Reason string
	// Classified is set when the refusal came after classification, so
	// the answer can take the API's own format.
	Classified bool
}

// HeadRefusal runs the checks on a request head that come before
// classification (see refuseHead), for `policy eval`, which has no
// connection: the method as sent, the header (see PrepareHeader), the raw
// query, the protocol an upgrade asks for and the body's length.
func HeadRefusal(method string, h http.Header, rawQuery, upgrade string, bodyLength int64) *Refusal {
	if status, reason := headRefusal(method, h, rawQuery, upgrade != "", bodyLength); status != 0 {
		return &Refusal{Status: status, Reason: reason}
	}
	return nil
}

// PrepareHeader does to a request's header what the proxy does before
// anything reads it: it returns the protocol an upgrade request asks for,
// and removes the hop-by-hop fields (those Connection names included),
// which the policy never sees and the upstream never gets.
func PrepareHeader(h http.Header) (upgrade string) {
	upgrade = upgradeProtocol(h)
	h1.RemoveHopByHop(h)
	return upgrade
}

// headRefusal is refuseHead on the parts of an exchange.
func headRefusal(m string, h http.Header, rawQuery string, upgrade bool, contentLength int64) (int, string) {
	switch {
	case strings.ToUpper(m) != m:
		// Methods are case-sensitive, but servers that upper-case them
		// exist: "delete" would run as a DELETE the policy did not see.
		return http.StatusBadRequest, fmt.Sprintf("the method %q is not in upper case", m)
	case m == "TRACE" || m == "TRACK":
		return http.StatusMethodNotAllowed, "TRACE is not forwarded: it echoes the request, credentials included"
	case len(h.Values("Authorization")) > 1:
		// Servers differ on which one they read; approvals are bound to
		// the credentials, so there must be one.
		return http.StatusBadRequest, "the request has more than one Authorization header; send one"
	case len(h.Values("Content-Type")) > 1:
		// Servers differ on which one they read (gunicorn and Werkzeug
		// take the last): a form could pass as text the policy reads as
		// a string.
		return http.StatusBadRequest, "the request has more than one Content-Type header; send one"
	case contentLength != 0 && unreadableContentType(h.Get("Content-Type")):
		return http.StatusBadRequest, fmt.Sprintf("the Content-Type %q does not parse (a repeated or malformed parameter), and servers differ on how they read it; send a well-formed Content-Type", termtext.Line(h.Get("Content-Type"), 100))
	case upgrade && contentLength != 0:
		// After a 101 the body and the upgraded protocol would share the
		// client's stream.
		return http.StatusBadRequest, "an upgrade request with a body is not forwarded"
	}
	for _, o := range methodOverrides {
		for _, v := range h[o.key] {
			if overridden(m, v) {
				// Servers that honour it run that method, not the one
				// the policy decided on. A read (Google's clients send
				// a long GET as a POST that asks for GET) does less than
				// what was decided, and passes.
				return http.StatusBadRequest, fmt.Sprintf("the %s header asks for another method than %s; send the request with the method itself", o.name, m)
			}
		}
	}
	if _, err := url.ParseQuery(rawQuery); err != nil {
		// url.ParseQuery drops pairs it cannot read (";" separators, bad
		// escapes), so the policy would not see what the server might: the
		// query is refused rather than decided about different bytes.
		return http.StatusBadRequest, "the query string does not parse unambiguously (a ';' separator or a bad %-escape)"
	}
	return 0, ""
}

// unreadableContentType reports whether a Content-Type value names no media
// type that mime.ParseMediaType reads: a repeated parameter or a syntax
// error. The policy input then gets the body as text, while a lenient
// server (Werkzeug parses "…urlencoded; a=1; a=2" as a form) may read a
// form in it. A parameter without a value still names its type, which
// the policy input uses as such servers do.
func unreadableContentType(v string) bool {
	if strings.TrimSpace(v) == "" {
		return false // as if absent, to servers and to the policy input alike
	}
	mt, _, err := mime.ParseMediaType(v)
	return err != nil && mt == ""
}

// Screen runs the checks that refuse a request, its body read, before any
// policy sees it, in the order the proxy runs them (rawQuery is the query
// as sent): the body must inflate
// (inflate is action.Inflate with the body limit), must not ask for
// another method in a form field, must be in an encoding countersign reads
// (unless its server stores it as data), must be a message the provider's
// classifier reads exactly as the server would, and must not repeat a JSON
// member. It returns the action classified from the inflated body, and the
// refusal, if any. `policy eval` uses it so that what it reports is what
// the proxy does.
func Screen(cls *action.Classifier, ar *action.Request, rawQuery string, inflate func(*action.Request) error) (action.Action, *Refusal) {
	if err := inflate(ar); err != nil {
		var he *h1.Error
		if errors.As(err, &he) {
			// No room to inflate it (the reading budget).
			return action.Action{}, &Refusal{Status: he.Status, Reason: he.Reason}
		}
		// The server would read the body inflated, so the policy must; a
		// body that does not inflate here might still say something there.
		return action.Action{}, &Refusal{Status: http.StatusBadRequest, Reason: strings.TrimPrefix(err.Error(), action.ErrEncoding.Error()+": ")}
	}
	if reason := methodParamRefusal(ar.Method, rawQuery, ar.Header.Values("Content-Type"), ar.Body); reason != "" {
		return action.Action{}, &Refusal{Status: http.StatusBadRequest, Reason: reason}
	}
	act := cls.Classify(ar)
	// What only AWS's own hosts are trusted with: the agent can make any
	// request look like AWS's with a made-up signature (found by review).
	awsHost := act.Provider == "aws" && act.ByHost
	if !awsHost && encodedBackslash(ar.Path) {
		// Servers that split a path on a backslash (as Windows servers
		// do) route acme%5Cshop as acme/shop, two segments the policy
		// read as one (found by review). S3 keys hold backslashes, and
		// AWS splits on neither, so AWS requests keep them.
		return act, &Refusal{Status: http.StatusBadRequest, Classified: true,
			Reason: "the request path has an encoded backslash (%5C), which some servers read as a '/'; countersign refuses it rather than decide about a path the server may split otherwise"}
	}
	if codings := action.Codings(ar.Header); !awsHost && action.MixedCodings(codings) {
		// aws-chunked beside gzip, left as sent for S3: elsewhere a server
		// that knows gzip but not aws-chunked would inflate it.
		return act, &Refusal{Status: http.StatusBadRequest, Classified: true, Reason: action.MixedCodingsReason(codings)}
	}
	if act.Provider == "kubernetes" && len(action.Codings(ar.Header)) > 0 {
		// kube-apiserver does not inflate request bodies: it reads the
		// bytes as sent, which the policy would not see. A deflate stream
		// that is also YAML set replicas: 0 where the policy read a
		// harmless patch (found by review). kubectl and client-go never
		// compress a request.
		return act, &Refusal{Status: http.StatusUnsupportedMediaType, Classified: true,
			Reason: "the Kubernetes API server reads a request body as sent and does not undo its Content-Encoding, so countersign cannot decide on what it would read; send the body uncompressed"}
	}
	if reason := action.TextEncodingProblem(ar); reason != "" && !opaquePayload(act) {
		return act, &Refusal{Status: http.StatusUnsupportedMediaType, Reason: reason, Classified: true}
	}
	if status, reason, bad := cls.Reject(act); bad {
		// A message countersign cannot read exactly as the server would (a
		// JSON-RPC batch, a repeated key, a body cut off at the limit) is
		// refused before policy: any decision would be about a message the
		// server might read differently.
		return act, &Refusal{Status: status, Reason: reason, Classified: true}
	}
	if name, dup := action.DuplicateJSONName(ar); dup {
		// After the provider's own checks, which answer in the API's
		// format (a JSON-RPC error for MCP), as this refusal does too.
		return act, &Refusal{Status: http.StatusBadRequest, Classified: true,
			Reason: fmt.Sprintf("the JSON body repeats the member %q; servers differ on which value they act on, so countersign cannot decide it. Send each member once", termtext.Line(name, 120))}
	}
	return act, nil
}

// encodedBackslash reports whether a decoded request path holds a
// backslash, or one still encoded for a server that decodes twice or three
// times (the request line's own backslashes are refused before this). It
// does not allocate: it runs on every request.
func encodedBackslash(path string) bool {
	if strings.IndexByte(path, '\\') >= 0 {
		return true
	}
	for i := strings.IndexByte(path, '%'); i >= 0 && i+2 < len(path); i++ {
		if path[i] != '%' {
			continue
		}
		// %5C, or %255C for a server that decodes once more.
		rest := strings.TrimPrefix(path[i+1:], "25")
		if len(rest) >= 2 && rest[0] == '5' && (rest[1] == 'c' || rest[1] == 'C') {
			return true
		}
	}
	return false
}
