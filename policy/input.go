package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/session"
)

// Input is the policy input document of SPEC section 4. Build it with
// NewInput so that credentials are redacted before anything can see them.
type Input struct {
	Request Request
	Action  action.Action
	Session *session.Info
	Time    time.Time

	// doc memoises Map: the proxy needs the document twice per request
	// (to decide and to audit). Change a field after calling Map and the
	// memo is stale; build a new Input instead.
	doc map[string]any
	// plain memoises convertible: 1 yes, -1 no, 0 not known yet.
	plain int8
}

// Request is input.request: the request as the policy sees it, redacted.
type Request struct {
	Method        string
	Scheme        string
	Host          string
	Port          int
	Path          string
	RawPath       string
	Query         map[string][]string
	Headers       map[string][]string
	Body          any // parsed JSON, form fields, text; nil when absent
	BodySize      int64
	BodyTruncated bool
	BodySHA256    string
	Tunnel        bool
	// Upgrade is the protocol an upgrade request switches to, or "".
	Upgrade string
	// BodyPending is true when the policy is asked about the head of a
	// request whose client waits for "100 Continue" before it sends the
	// body: only a deny is acted on, before the body is read; otherwise the
	// request is decided again with its body.
	BodyPending bool
}

// NewInput builds the input document for one request and its action.
func NewInput(r *action.Request, a action.Action, s *session.Info, now time.Time) *Input {
	in := &Input{
		Request: Request{
			Method: r.Method,
			Scheme: r.Scheme,
			Host:   r.Host,
			Port:   r.Port,
			// As sent: a policy must see every segment. The audit copy
			// masks tokens in it (proxy's recordedInput).
			Path:          r.Path,
			RawPath:       r.RawPath,
			Query:         redact.Query(r.Query),
			Headers:       redact.Header(r.Header),
			BodySize:      r.BodySize,
			BodyTruncated: r.BodyTruncated,
			Tunnel:        r.Tunnel,
			Upgrade:       r.Upgrade,
		},
		Action:  redactAction(a),
		Session: s,
		Time:    now.UTC(),
	}
	if r.Body != nil && !r.BodyTruncated {
		if len(r.BodySHA256) == sha256.Size {
			in.Request.BodySHA256 = hex.EncodeToString(r.BodySHA256)
		} else {
			sum := sha256.Sum256(r.Body)
			in.Request.BodySHA256 = hex.EncodeToString(sum[:])
		}
		body := ParseBody(BodyType(r, a), r.Body)
		if IsKubernetesSecret(a) {
			if _, text := body.(string); text {
				// YAML, or anything else whose data cannot be told apart
				// from the rest: all of it is secret.
				body = redact.Mask
			}
			in.Request.Body = redact.KubernetesSecret(body)
		} else if form, ok := body.(map[string]any); ok && isForm(BodyType(r, a)) {
			in.Request.Body = redact.Form(form)
		} else if text, ok := body.(string); ok {
			// A multipart form is text to the policy; its credential
			// fields are masked by name, as a form's are.
			in.Request.Body = redact.Multipart(text, MultipartBoundary(r.Header.Get("Content-Type")))
		} else {
			in.Request.Body = redact.Value(body)
		}
	}
	return in
}

// BodyType is the media type r's body is read as: its Content-Type, but
// for GitHub, whose API reads a body as JSON whatever it is labelled
// (its own curl examples send JSON with -d, as a form), a body that looks
// like JSON is JSON. Found by review: a JSON body labelled a form read as a
// form's one field, and a rule on request.body.branch did not fire while
// GitHub committed to the branch it named.
//
// AWS reads a body by the API's protocol, not its label: only the query
// and EC2 protocols take a form. Found by review: `curl --aws-sigv4 -d
// @policy.json` labels S3's bucket policy a form, and the rules on the
// policy's statements did not see it.
func BodyType(r *action.Request, a action.Action) string {
	ct := r.Header.Get("Content-Type")
	switch a.Provider {
	case "github":
		if looksLikeJSON(r.Body) {
			return "application/json"
		}
	case "kubernetes":
		// The API server reads YAML as JSON: so does the policy (found by
		// review: a pod made privileged in YAML was a string to it).
		if kubernetes.YAMLBody(ct) {
			return kubernetesYAML
		}
	case "aws":
		switch a.Fields["protocol"] {
		case "json", "rest-json", "rest-xml", "rpc-v2-cbor", "rest":
		default:
			return ct
		}
		if looksLikeJSON(r.Body) {
			return "application/json"
		}
		if isForm(ct) {
			return "text/plain"
		}
	}
	return ct
}

// kubernetesYAML is BodyType's name for a Kubernetes body in YAML, which
// ParseBody decodes as the API server does.
const kubernetesYAML = "application/x-countersign-kubernetes-yaml"

// isForm reports whether contentType is a URL-encoded form's.
func isForm(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/x-www-form-urlencoded"
}

// MultipartBoundary is the boundary of a multipart/form-data Content-Type,
// or "".
func MultipartBoundary(contentType string) string {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return ""
	}
	return params["boundary"]
}

// IsKubernetesSecret reports whether a is a request to a Kubernetes
// Secret, whose body's data is secret whether or not it says its kind.
func IsKubernetesSecret(a action.Action) bool {
	return a.Provider == "kubernetes" && a.Fields["resource"] == "secrets" && a.Fields["api_group"] == ""
}

func redactAction(a action.Action) action.Action {
	// An MCP resource's URI can carry a password or a token; the
	// classifier's slice is not changed.
	a.Resources = redact.Strings(a.Resources)
	if len(a.Params) > 0 {
		if p, ok := redact.Value(a.Params).(map[string]any); ok {
			a.Params = p
		}
	}
	if len(a.Fields) > 0 {
		if f, ok := redact.Value(a.Fields).(map[string]any); ok {
			a.Fields = f
		}
	}
	return a
}

// ParseBody parses a request body for the policy: JSON (by content type or by
// shape), URL-encoded form fields (a string per field, a list when repeated),
// or text. Binary bodies yield nil.
func ParseBody(contentType string, body []byte) any {
	if len(body) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case contentType == kubernetesYAML:
		if v := kubernetes.DecodeYAML(body); v != nil {
			return v
		}
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil || !utf8.Valid(body) {
			break
		}
		vals = action.ValidKeys(vals)
		form := make(map[string]any, len(vals))
		for k, vs := range vals {
			if len(vs) == 1 {
				form[k] = vs[0]
				continue
			}
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			form[k] = list
		}
		return form
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || looksLikeJSON(body):
		if v, ok := parseJSON(body); ok {
			return v
		}
	}
	if utf8.Valid(body) && !bytes.ContainsRune(body, 0) {
		return string(body)
	}
	return nil
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

func parseJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	return v, true
}

// Map returns the input as the JSON-shaped value OPA evaluates. The map is
// shared between calls: callers must not modify it.
func (in *Input) Map() map[string]any {
	if in.doc == nil {
		in.doc = in.buildMap()
	}
	return in.doc
}

func (in *Input) buildMap() map[string]any {
	req := map[string]any{
		"method":         in.Request.Method,
		"scheme":         in.Request.Scheme,
		"host":           in.Request.Host,
		"port":           in.Request.Port,
		"path":           in.Request.Path,
		"raw_path":       in.Request.RawPath,
		"query":          stringsMap(in.Request.Query),
		"headers":        stringsMap(in.Request.Headers),
		"body_size":      in.Request.BodySize,
		"body_truncated": in.Request.BodyTruncated,
		"tunnel":         in.Request.Tunnel,
	}
	if in.Request.Body != nil {
		req["body"] = in.Request.Body
	}
	if in.Request.BodySHA256 != "" {
		req["body_sha256"] = in.Request.BodySHA256
	}
	if in.Request.Upgrade != "" {
		req["upgrade"] = in.Request.Upgrade
	}
	if in.Request.BodyPending {
		req["body_pending"] = true
	}
	m := map[string]any{
		"request": req,
		"action":  in.Action.Map(),
		"time":    in.Time.Format(time.RFC3339Nano),
	}
	if in.Session != nil {
		m["session"] = in.Session.PolicyDoc()
	}
	return m
}

// convertible reports whether OPA converts the input document without
// fail. Only the parsed body and the action can hold what it cannot (a
// JSON number out of its range); the other members are strings, numbers
// the proxy set and lists of strings. Computed once.
func (in *Input) convertible() bool {
	if in.plain == 0 {
		doc := in.Map()
		in.plain = -1
		if plainJSON(in.Request.Body) && plainJSON(doc["action"]) {
			in.plain = 1
		}
	}
	return in.plain > 0
}

// MarshalJSON encodes the input exactly as the policy sees it.
func (in *Input) MarshalJSON() ([]byte, error) { return json.Marshal(in.Map()) }

// stringsMap is a header or query map as the document holds it. The value
// lists are shared, not copied: the redacted maps are the Input's own and
// never change, and OPA, the decision cache and the audit encoder all read
// []string as they read []any (a copy per value cost an allocation per
// header on every request).
func stringsMap(m map[string][]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, vs := range m {
		out[k] = vs
	}
	return out
}
