// Package mcp classifies Model Context Protocol requests (JSON-RPC 2.0 over
// the streamable HTTP transport): method, and for tools/call the tool and its
// arguments; denials are answered in JSON-RPC, which MCP clients surface
// (see Respond).
//
// Recognition does not depend on host or path: a POST whose body is a
// JSON-RPC 2.0 object (a top-level "jsonrpc" member) is MCP wherever it is
// sent, and so is any POST carrying MCP's own headers (Mcp-Session-Id,
// Mcp-Protocol-Version, Mcp-Method, …). The GET that opens a server's event
// stream and the DELETE that ends a session are MCP when they carry
// Mcp-Session-Id (or, for GET, ask for text/event-stream on an …/mcp or
// …/sse path).
//
// A message countersign cannot read exactly as every server would is not
// classified but refused (see Reject): a batch (a JSON array, removed from
// MCP in 2025-06-18 but still executed by the Go SDK's server), a key
// repeated in any object (the proxy could read one "name" and the server
// the other), nesting deeper than 64 levels, invalid JSON or UTF-8, more
// than one JSON value, a byte order mark, a body cut off at the inspection
// limit, and Mcp-Method or Mcp-Name headers that disagree with the body.
// Keys are compared the way Go's encoding/json matches struct fields
// (case-insensitively, with Unicode simple folding), because servers built
// on it read "Name" as name; for the same reason members are looked up that
// way, so the policy sees what such a server would act on.
package mcp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
)

// Options configures the MCP provider.
type Options struct{}

// Provider is the MCP classifier.
type Provider struct{ opts Options }

// New returns the MCP provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

var _ action.Responder = (*Provider)(nil)

// Name implements action.Provider.
func (*Provider) Name() string { return "mcp" }

// Operations that are not JSON-RPC methods.
const (
	// OpStream is the GET that opens the server's event stream.
	OpStream = "stream"
	// OpEndSession is the DELETE that ends a session.
	OpEndSession = "session/end"
	// OpResponse is the client's answer to a request from the server
	// (roots/list, sampling/createMessage, elicitation/create).
	OpResponse = "response"
	// OpBatch is a JSON array of messages: always refused.
	OpBatch = "batch"
	// OpInvalid is a message countersign refuses because it cannot read it
	// exactly as the server would.
	OpInvalid = "invalid"
)

// Classify implements action.Provider.
func (p *Provider) Classify(r *action.Request) (action.Action, bool) {
	if r.Tunnel {
		return action.Action{}, false
	}
	switch r.Method {
	case http.MethodPost:
		return classifyPost(r)
	case http.MethodGet:
		if r.Header.Get("Mcp-Session-Id") == "" && !(accepts(r.Header, "text/event-stream") && knownPath(r.Path)) {
			return action.Action{}, false
		}
		a := base(r, OpStream)
		a.ReadOnly = true
		return a, true
	case http.MethodDelete:
		if r.Header.Get("Mcp-Session-Id") == "" {
			return action.Action{}, false
		}
		// Ending one's own session loses nothing on the server's side that
		// the client could not re-create, so it is not destructive; but
		// the header alone on a DELETE elsewhere than an MCP endpoint
		// path could be any API's delete, the server ignoring the header.
		a := base(r, OpEndSession)
		a.Destructive = !knownPath(r.Path)
		return a, true
	}
	return action.Action{}, false
}

func classifyPost(r *action.Request) (action.Action, bool) {
	hinted := hasMCPHeaders(r.Header)
	if r.BodyTruncated && r.Decoded && JSONContent(r.Header) {
		// Inflated past the limit: the rest cannot be watched as it is
		// sent (TailWatch reads what the server inflates, and it goes
		// compressed), whatever the part read says, blank included (found
		// by review). Every MCP SDK requires this content type.
		return reject(r, OpInvalid, http.StatusRequestEntityTooLarge,
			"a compressed JSON body that inflates past inspect.body_limit; countersign decides only on messages it has read whole"), true
	}
	body := trimSpace(r.Body)
	bom := false
	if b, ok := bytes.CutPrefix(body, []byte("\uFEFF")); ok {
		body, bom = trimSpace(b), true
	}
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		if hinted {
			return reject(r, OpInvalid, http.StatusBadRequest, "the request carries MCP headers but its body is not a JSON-RPC message"), true
		}
		return action.Action{}, false
	}
	// The cheap test first: most JSON POSTs are other APIs' and never
	// mention "jsonrpc".
	mentioned := hinted || mentionsJSONRPC(body)
	// A message cut at the inspection limit may name "jsonrpc" after it
	// (found by review: a 1 MiB _meta first, and a stateless server needs
	// no MCP header). What a client must send to any MCP endpoint, an
	// Accept that lists both JSON and an event stream, an MCP path, the
	// older HTTP+SSE transport's session parameter, or a message that
	// starts as JSON-RPC's do, marks it as one.
	// A member of a JSON-RPC message anywhere in what was read marks it
	// too, not only a first one (found by review: "id" first); one that
	// comes after the cut is watched for as the rest is sent (TailWatch).
	if r.BodyTruncated && (mentioned || knownPath(r.Path) || legacyEndpoint(r) ||
		accepts(r.Header, "text/event-stream") && accepts(r.Header, "application/json") ||
		startsAsJSONRPC(body) || (&TailWatch{}).Scan(body)) {
		return reject(r, OpInvalid, http.StatusRequestEntityTooLarge,
			"the MCP message is larger than inspect.body_limit, and countersign decides only on messages it has read whole"), true
	}
	if !mentioned {
		return action.Action{}, false
	}
	doc := parseDocument(body)
	if doc.err != nil {
		return reject(r, OpInvalid, http.StatusBadRequest, "the MCP message cannot be read exactly: "+doc.err.Error()), true
	}
	if arr, ok := doc.value.([]any); ok {
		if !hinted && !anyJSONRPC(arr) {
			return action.Action{}, false
		}
		return reject(r, OpBatch, http.StatusBadRequest,
			"JSON-RPC batches are not accepted (MCP removed them in 2025-06-18); send one message per request"), true
	}
	obj, _ := doc.value.(map[string]any)
	if _, ok := member(obj, "jsonrpc"); !ok {
		if hinted {
			return reject(r, OpInvalid, http.StatusBadRequest, "the request carries MCP headers but its body is not a JSON-RPC 2.0 message"), true
		}
		return action.Action{}, false
	}
	var a action.Action
	switch {
	case bom:
		a = reject(r, OpInvalid, http.StatusBadRequest, "the MCP message starts with a byte order mark, which JSON forbids and servers treat differently")
	case doc.dup != "":
		a = reject(r, OpInvalid, http.StatusBadRequest,
			"the MCP message repeats the key "+strconv.Quote(doc.dup)+" (compared case-insensitively), and a server could read either value")
	case doc.ctl != "":
		a = reject(r, OpInvalid, http.StatusBadRequest,
			"the MCP message has a key with a control character ("+strconv.Quote(doc.ctl)+"), which some servers' parsers drop, reading it as another key")
	case doc.tooDeep:
		a = reject(r, OpInvalid, http.StatusBadRequest, "the MCP message nests deeper than "+strconv.Itoa(maxDepth)+" levels")
	default:
		a = classifyMessage(r, obj)
	}
	// Echo the id in a refusal only when it is the one id every reader sees.
	if _, rejected := a.Fields["rejected"]; rejected && !doc.dupTop[fold("id")] {
		if id, ok := messageID(obj); ok {
			a.Fields["id"] = id
		}
	}
	return a, true
}

// classifyMessage reads one JSON-RPC message that parsed cleanly.
func classifyMessage(r *action.Request, obj map[string]any) action.Action {
	rawMethod, hasMethod := member(obj, "method")
	if !hasMethod {
		if len(r.Header.Values("Mcp-Method")) > 0 || len(r.Header.Values("Mcp-Name")) > 0 {
			// A gateway routing on these would act on a call the body
			// does not make (noted by review).
			return reject(r, OpInvalid, http.StatusBadRequest, "Mcp-Method or Mcp-Name on a message that is no request")
		}
		a := base(r, OpResponse)
		if id, ok := messageID(obj); ok {
			a.Fields["id"] = id
		}
		_, hasResult := member(obj, "result")
		_, hasError := member(obj, "error")
		switch {
		case hasError:
			a.Fields["is_error"] = true
		case !hasResult:
			a.ParseError = "JSON-RPC message with neither method nor result"
		}
		if v, _ := member(obj, "jsonrpc"); v != "2.0" {
			a.ParseError = "jsonrpc is not \"2.0\""
		}
		return a
	}
	method, ok := rawMethod.(string)
	if !ok {
		a := base(r, OpInvalid)
		a.ParseError = "JSON-RPC method is not a string"
		return a
	}
	if bad := headerMismatch(r.Header, "Mcp-Method", method); bad != "" {
		return reject(r, OpInvalid, http.StatusBadRequest, bad)
	}
	a := base(r, method)
	a.Fields["method"] = method
	if id, ok := messageID(obj); ok {
		a.Fields["id"] = id
	}
	if v, _ := member(obj, "jsonrpc"); v != "2.0" {
		a.ParseError = "jsonrpc is not \"2.0\""
	}
	rawParams, _ := member(obj, "params")
	params, _ := rawParams.(map[string]any)
	if _, positional := rawParams.([]any); positional && (strings.Contains(method, "/") || method == "initialize") {
		// JSON-RPC allows positional params; MCP's methods never use
		// them, and a hand-written server that took them would run a
		// call whose name the policy never saw (found by review). Other
		// JSON-RPC APIs' (Ethereum's eth_call) stay as they are.
		return reject(r, OpInvalid, http.StatusBadRequest, "JSON-RPC params given by position (an array): MCP names them (an object)")
	}
	if rawParams != nil && params == nil {
		a.ParseError = "JSON-RPC params is not an object"
	}
	a.ReadOnly = readOnly(method)

	// The name the method acts on, checked against Mcp-Name (protocol
	// 2026-07-28), which gateways may route on instead of the body.
	var name string
	switch method {
	case "tools/call":
		name = stringMember(params, "name")
		a.Fields["tool"] = name
		if args, ok := member(params, "arguments"); ok {
			a.Fields["arguments"] = args
		}
		if _, ok := member(params, "task"); ok {
			a.Fields["task"] = true
		}
		a.Resources = nonEmpty(name)
		a.Destructive = destructiveTool(name) || destructiveSQL(a.Fields["arguments"]) || destructiveAction(a.Fields["arguments"])
		if bad := paramHeaderMismatch(r.Header, a.Fields["arguments"]); bad != "" {
			return reject(r, OpInvalid, http.StatusBadRequest, bad)
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		name = stringMember(params, "uri")
		a.Fields["uri"] = name
		a.Resources = nonEmpty(name)
	case "prompts/get":
		name = stringMember(params, "name")
		a.Fields["prompt"] = name
		if args, ok := member(params, "arguments"); ok {
			a.Fields["arguments"] = args
		}
		a.Resources = nonEmpty(name)
	}
	if method != "tools/call" {
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "mcp-param-") {
				// Only a tool call has arguments for it to copy (noted by
				// review: elsewhere it was never checked).
				return reject(r, OpInvalid, http.StatusBadRequest, "an "+h+" header on a message other than tools/call, which has no tool arguments")
			}
		}
	}
	if name != "" || r.Header.Get("Mcp-Name") != "" {
		if bad := headerMismatch(r.Header, "Mcp-Name", name); bad != "" {
			return reject(r, OpInvalid, http.StatusBadRequest, bad)
		}
	}
	return a
}

// base is the action every MCP request shares.
func base(r *action.Request, op string) action.Action {
	f := map[string]any{"server": server(r)}
	if sid := sessionID(r); sid != "" {
		f["session_id"] = sid
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" {
		f["protocol_version"] = v
	}
	return action.Action{Provider: "mcp", Operation: op, Fields: f, ByPath: knownPath(r.Path)}
}

// reject is the action for a message that must not be forwarded. It is
// marked destructive because nobody can tell what it would do.
func reject(r *action.Request, op string, status int, reason string) action.Action {
	a := base(r, op)
	a.ParseError = reason
	a.Destructive = true
	a.Fields["rejected"] = true
	a.Fields["reject_status"] = status
	return a
}

// Reject reports whether the request a describes must be refused before
// policy evaluation, with the HTTP status to refuse it with (400, or 413
// for a message larger than the inspection limit) and the reason, a
// sentence fragment without the "countersign:" prefix. The proxy must
// answer such a request itself (through Respond, which formats the refusal
// as a JSON-RPC error), audit it, and never forward it: countersign cannot
// know what the server would read from it.
func Reject(a action.Action) (status int, reason string, bad bool) {
	if a.ClassifiedBy != "mcp" && a.Provider != "mcp" {
		return 0, "", false
	}
	if rejected, _ := a.Fields["rejected"].(bool); !rejected {
		return 0, "", false
	}
	status, _ = a.Fields["reject_status"].(int)
	if status < 400 {
		status = http.StatusBadRequest
	}
	return status, a.ParseError, true
}

// readOnly reports whether method only reads. tools/call never counts as
// read-only, whatever the tool: only the server knows what a tool does,
// and its readOnlyHint annotation is the server's claim, not a guarantee.
func readOnly(method string) bool {
	switch method {
	case "initialize", "ping", "server/discover", "resources/read", "resources/subscribe",
		"resources/unsubscribe", "prompts/get", "completion/complete", "tasks/get",
		"tasks/result", "subscriptions/listen":
		return true
	}
	return strings.HasSuffix(method, "/list") || strings.HasPrefix(method, "notifications/")
}

// server is the MCP endpoint: host, the port when it is not the scheme's
// default, and path.
func server(r *action.Request) string {
	host := r.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if r.Port != 0 && !(r.Port == 443 && r.Scheme == "https") && !(r.Port == 80 && r.Scheme == "http") {
		host += ":" + strconv.Itoa(r.Port)
	}
	return host + r.Path
}

// sessionID is the streamable HTTP transport's Mcp-Session-Id, or the
// sessionId query parameter of the older HTTP+SSE transport.
func sessionID(r *action.Request) string {
	if v := r.Header.Get("Mcp-Session-Id"); v != "" {
		return v
	}
	return r.Query.Get("sessionId")
}

func hasMCPHeaders(h http.Header) bool {
	for k := range h {
		if len(k) > 4 && strings.EqualFold(k[:4], "mcp-") {
			return true
		}
	}
	return false
}

// headerMismatch checks a header that restates the body (protocol
// 2026-07-28's Mcp-Method and Mcp-Name): a server or gateway may act on
// the header, countersign decides on the body, so they must agree.
func headerMismatch(h http.Header, name, body string) string {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		return "the request carries " + strconv.Itoa(len(vs)) + " " + name + " headers"
	}
	if v := decodeHeaderValue(vs[0]); v != body {
		return "the " + name + " header " + strconv.Quote(v) + " does not match the body's " + strconv.Quote(body)
	}
	return ""
}

// paramHeaderMismatch checks the Mcp-Param-{Name} headers (protocol
// 2026-07-28), which copy arguments a tool marks for routing: a gateway
// that routes on one acts on what the header says. The header must name a
// top-level argument of the call (GitHub's server: Mcp-Param-Owner,
// Mcp-Param-Repo), compared without case, '-' or '_', and equal it
// (noted by reviews: a header naming another repository than the body's
// was not checked, and first fixes accepted it when any argument, or a
// nested one of its name, had its value). A tool whose schema maps a
// header to an argument of another name, or to a nested one, is refused:
// countersign does not know the schema.
func paramHeaderMismatch(h http.Header, args any) string {
	obj, _ := args.(map[string]any)
	for name, vs := range h {
		suffix, ok := strings.CutPrefix(strings.ToLower(name), "mcp-param-")
		if !ok {
			continue
		}
		if len(vs) > 1 {
			return "the request carries " + strconv.Itoa(len(vs)) + " " + name + " headers"
		}
		if strings.HasPrefix(vs[0], "=?base64?") {
			raw := strings.TrimSuffix(strings.TrimPrefix(vs[0], "=?base64?"), "?=")
			if _, err := base64.StdEncoding.Strict().DecodeString(raw); err != nil || !strings.HasSuffix(vs[0], "?=") {
				// Lenient decoders read what this one refuses (noted by
				// review): the value is not known.
				return "the " + name + " header is not valid base64"
			}
		}
		v := decodeHeaderValue(vs[0])
		found := 0
		for k, a := range obj {
			if paramKey(k) != paramKey(suffix) {
				continue
			}
			found++
			var text string
			switch a := a.(type) {
			case string:
				text = a
			case json.Number:
				text = a.String()
			case bool:
				text = strconv.FormatBool(a)
			default:
				return "the " + name + " header names an argument that is not a string, number or boolean"
			}
			if text != v {
				return "the " + name + " header " + strconv.Quote(v) + " does not match the argument's " + strconv.Quote(text)
			}
		}
		if found == 0 {
			return "the " + name + " header names no top-level argument of the call"
		}
	}
	return ""
}

// paramKey is an argument or header name as the two are compared.
func paramKey(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
}

// accepts reports whether the Accept header lists mediaType.
func accepts(h http.Header, mediaType string) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), mediaType) {
				return true
			}
		}
	}
	return false
}

// legacyEndpoint reports whether r goes where the HTTP+SSE transport (MCP
// before 2025-03-26) takes messages: the endpoint its server hands out,
// /messages?session_id=… (Python) or ?sessionId=… (TypeScript), to which
// its clients post with no Accept of an event stream (found by review).
// The path alone is not enough: Anthropic's API is POST /v1/messages.
func legacyEndpoint(r *action.Request) bool {
	for k := range r.Query {
		// The Go SDK's SSE handler hands out ?sessionid= (found by review).
		switch strings.ToLower(k) {
		case "session_id", "sessionid":
			return true
		}
	}
	return false
}

// startsAsJSONRPC reports whether a JSON object's first member, or that of
// the first object of a batch, is one a JSON-RPC message has and other
// APIs' bodies rarely start with. Only the first tokens are read: the body
// may be cut off. A method seen there proves nothing about what runs: a
// second "method" after the cut is the one JSON decoders keep.
func startsAsJSONRPC(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	if err == nil && t == json.Delim('[') {
		t, err = dec.Token()
	}
	if err != nil || t != json.Delim('{') {
		return false
	}
	key, err := dec.Token()
	k, isString := key.(string)
	if err != nil || !isString {
		return false
	}
	switch fold(k) {
	case "JSONRPC", "METHOD", "PARAMS":
		return true
	}
	return false
}

// knownPath is where MCP servers conventionally listen: …/mcp for the
// streamable HTTP transport, …/sse for the older HTTP+SSE one.
func knownPath(p string) bool {
	p = strings.TrimSuffix(p, "/")
	return strings.HasSuffix(p, "/mcp") || strings.HasSuffix(p, "/sse")
}

func anyJSONRPC(arr []any) bool {
	for _, e := range arr {
		if obj, ok := e.(map[string]any); ok {
			if _, ok := member(obj, "jsonrpc"); ok {
				return true
			}
		}
	}
	return false
}

// messageID returns the id as sent: a string, or the number's literal
// (json.Number) so a reply can echo it digit for digit.
func messageID(obj map[string]any) (any, bool) {
	v, ok := member(obj, "id")
	if !ok {
		return nil, false
	}
	switch v.(type) {
	case string:
		return v, true
	case interface{ Int64() (int64, error) }: // json.Number
		return v, true
	}
	return nil, false
}

func stringMember(obj map[string]any, name string) string {
	v, _ := member(obj, name)
	s, _ := v.(string)
	return s
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// decodeHeaderValue undoes the =?base64?…?= wrapping SEP-2243 uses for
// header values that are not plain ASCII.
func decodeHeaderValue(v string) string {
	if s, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if s, ok := strings.CutSuffix(s, "?="); ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return string(b)
			}
		}
	}
	return v
}

// FingerprintBody returns the bytes an approval fingerprint should hash for
// an MCP message: the message without its JSON-RPC id, re-encoded with
// sorted keys. An MCP client numbers every request anew, so the retry an
// agent makes after a human approved ("retry after approval") differs from
// the held request only in its id; hashing the raw body would make that
// retry a new approval instead of the approved one. The id selects no
// behaviour on the server, so leaving it out widens nothing. Bodies that
// are not a single clean JSON-RPC object are returned unchanged.
func FingerprintBody(body []byte) []byte {
	doc := parseDocument(trimSpace(body))
	obj, ok := doc.value.(map[string]any)
	if doc.err != nil || doc.dup != "" || doc.tooDeep || !ok {
		return body
	}
	if _, ok := obj["jsonrpc"]; !ok {
		return body
	}
	delete(obj, "id")
	b, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return b
}

// Reject implements action.Rejecter.
func (*Provider) Reject(a action.Action) (int, string, bool) { return Reject(a) }

// FingerprintBody implements action.BodyFingerprinter: the message without
// its id, so an identical retry matches its approval.
func (*Provider) FingerprintBody(_ action.Action, body []byte) []byte { return FingerprintBody(body) }

// JSONContent reports whether the request says its body is JSON as the MCP
// SDKs test it (Go: the media type; TypeScript: the header contains it;
// Python: it starts with it).
func JSONContent(h http.Header) bool {
	for _, v := range h.Values("Content-Type") {
		if strings.Contains(strings.ToLower(v), "application/json") {
			return true
		}
	}
	return false
}
