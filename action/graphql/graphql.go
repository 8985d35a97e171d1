// Package graphql classifies GraphQL requests on any host: the operation
// type, the top-level fields that would execute (operation names are
// optional and can lie, so they are read from the parsed document), their
// arguments and the variables. It answers denials as a GraphQL errors
// response, which GraphQL clients show.
//
// GitHub's GraphQL API is classified here too and reported as provider
// "github", with operation set to the top-level field names
// (deleteRef, createRepository).
package graphql

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/github"
)

// Options configures the GraphQL provider.
type Options struct {
	// ProviderByHost names the provider that GraphQL requests to a host are
	// reported as. It adds to the default, which maps api.github.com to
	// "github"; list GitHub Enterprise Server hosts here as "github" too.
	ProviderByHost map[string]string
}

// Provider is the GraphQL classifier.
type Provider struct {
	byHost map[string]string
}

// New returns the GraphQL provider.
func New(opts Options) *Provider {
	p := &Provider{byHost: map[string]string{"api.github.com": "github"}}
	for h, name := range opts.ProviderByHost {
		p.byHost[strings.TrimSuffix(strings.ToLower(h), ".")] = name
	}
	return p
}

// Name implements action.Provider.
func (*Provider) Name() string { return "graphql" }

// Classify implements action.Provider. Requests to a GraphQL path that
// carry a body, whatever their method, or a document in the URL are
// classified, with ParseError when it is not a GraphQL request; elsewhere,
// a POST is claimed only when its JSON body parses as a GraphQL request
// with a document.
func (p *Provider) Classify(r *action.Request) (action.Action, bool) {
	if r.Tunnel {
		return action.Action{}, false
	}
	provider := p.byHost[r.Host]
	if provider == "" && github.DataResidencyHost(r.Host, "api") {
		// GitHub Enterprise Cloud with data residency: github.com's API.
		provider = "github"
	}
	if provider == "" {
		provider = "graphql"
	}
	if !isGraphQLPath(r.Path) {
		return p.sniff(r, provider)
	}
	entries, batch, err := requestEntries(r)
	if err == nil || errors.Is(err, errNoDocument) {
		if serr := storedDocument(r); serr != nil {
			err = serr
		}
	}
	if err == nil {
		var a action.Action
		if a, err = classify(entries, batch, provider); err == nil {
			a.ByPath = true
			return a, true
		}
	}
	if errors.Is(err, errNoDocument) && r.Method != "POST" && !r.BodyTruncated && len(bytes.TrimSpace(r.Body)) == 0 {
		// A GraphiQL page, a health check or a CORS preflight, not a
		// GraphQL request.
		return action.Action{}, false
	}
	a := failed(provider, err)
	a.ByPath = true
	return a, true
}

// failed is the action of a request to a GraphQL endpoint that could not
// be read. It is refused before policy (see Reject); a trusted document's
// id too, whose document countersign cannot see: one that servers
// may read in different ways would be decided about a document the server
// might not run, and one countersign cannot read at all (nested past its
// limits, a syntax it does not know) would be decided with no fields,
// which every rule about mutations skips (found by review: a volumeDelete
// nested 130 fragments deep passed). A server rejects a document that
// really does not parse anyway.
func failed(provider string, err error) action.Action {
	a := action.Action{Provider: provider, ParseError: err.Error(), Destructive: true}
	switch {
	case errors.Is(err, errTruncated):
		// A body past inspect.body_limit: 413, which an operator can
		// lift by raising the limit.
		a.Fields = map[string]any{"rejected": true, "reject_status": http.StatusRequestEntityTooLarge}
	case errors.Is(err, errPersisted):
		// Apollo's and urql's clients answer PersistedQueryNotFound by
		// sending the document itself, which is then decided.
		a.Fields = map[string]any{"rejected": true, "persisted_query": true}
	default:
		a.Fields = map[string]any{"rejected": true}
	}
	return a
}

// Reject implements action.Rejecter.
func (p *Provider) Reject(a action.Action) (status int, reason string, bad bool) {
	if a.Fields["rejected"] != true {
		return 0, "", false
	}
	if s, ok := a.Fields["reject_status"].(int); ok {
		return s, a.ParseError + "; raise inspect.body_limit to let countersign read it", true
	}
	return http.StatusBadRequest, a.ParseError, true
}

// sniff recognises a GraphQL request sent to a path that does not say so
// (SPEC 5: "a body that parses as a GraphQL document with query"). Hosts
// reported as another provider (GitHub) are left to that provider's REST
// classifier.
//
// Any method with a body is read (graph-gophers' relay.Handler, often at
// /query, decodes the body whatever the method), and so is a multipart
// body with an operations part (gqlgen's default server takes uploads).
func (p *Provider) sniff(r *action.Request, provider string) (action.Action, bool) {
	if provider != "graphql" || len(r.Body) == 0 {
		return action.Action{}, false
	}
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	if mt == "multipart/form-data" {
		ops, found, parts, err := multipartOperations(r.Body, params["boundary"])
		switch {
		case r.BodyTruncated && parts == 0 && params["boundary"] != "":
			// Cut before the head of its first part: gqlgen's reader
			// skips any preamble and runs a first part named
			// operations, which the limit hid (found by review). Real
			// clients send no preamble, so other APIs lose nothing.
			//
			// A body whose first part was read and is not operations
			// stays the other API's upload, so that large uploads keep
			// working everywhere: gqlgen refuses it ("first part must
			// be operations"), but graphql-upload (Apollo Server 2 and
			// 3, graphqlUploadExpress) reads operations after other
			// fields, so such a server off a GraphQL path can be sent
			// operations past the limit behind a large first field. A
			// policy about multipart POSTs to that host covers it.
			return failed(provider, errTruncated), true
		case !found:
			// An upload to some other API.
			return action.Action{}, false
		case r.BodyTruncated:
			return failed(provider, errTruncated), true
		case namesAnotherType(ct, mt):
			// A preamble and a block string can make a multipart body
			// a document too, which graphql-php would run.
			return failed(provider, errContentType), true
		case err != nil:
			return failed(provider, err), true
		}
		return sniffJSON(ops, provider)
	}
	// A JSON body is read whatever its Content-Type (none, text/plain, a
	// form): graph-gophers' relay.Handler decodes the body without looking
	// at it (found by review). What sniffJSON claims is gated on a query
	// that starts as a document, so other APIs' bodies stay theirs.
	if r.BodyTruncated || !startsAsJSON(r.Body) {
		return action.Action{}, false
	}
	return sniffJSON(r.Body, provider)
}

// startsAsJSON reports whether body starts, after white space, as a JSON
// object or array does.
func startsAsJSON(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// sniffJSON claims a JSON body that is a GraphQL request, or that a lenient
// server would run as one.
func sniffJSON(body []byte, provider string) (action.Action, bool) {
	// Every provider sees every request: most JSON bodies (an MCP call, a
	// REST API's) never say "query", in any case or escaped, and need no
	// decoding here.
	if !containsFold(body, "query") && !bytes.Contains(body, []byte(`\u`)) {
		return action.Action{}, false
	}
	entries, batch, err := jsonEntries(body)
	if err != nil {
		// A lenient server still runs what countersign cannot read: gqlgen
		// (at /query) matches "QUERY" as "query", express-graphql skips
		// variables it cannot use, gqlgen and graph-gophers ignore what
		// follows the first JSON value (found by review).
		if startsAsRequest(body) {
			return failed(provider, err), true
		}
		return action.Action{}, false
	}
	for _, e := range entries {
		if !e.HasQuery && e.Persisted {
			// An automatic persisted query (Apollo Server listens at /
			// on its own), alone or in a batch: answered as on a
			// GraphQL path, so the client sends the document (found by
			// review).
			return failed(provider, errPersisted), true
		}
	}
	for _, e := range entries {
		if !e.HasQuery {
			// A batch that mixes a document with something else: Apollo
			// runs the documents (found by review).
			if startsAsRequest(body) {
				return failed(provider, errNoDocument), true
			}
			return action.Action{}, false
		}
	}
	a, err := classify(entries, batch, provider)
	if err != nil {
		// A document too big or too deep to read must not pass as an
		// opaque POST (found by review), nor one that starts as a
		// document does but that countersign's parser refuses (graphql-js
		// takes control characters gqlparser does not). A "query" that
		// does neither is another API's search text, and stays that API's.
		if errors.Is(err, errTooDeep) || errors.Is(err, errTooLarge) || errors.Is(err, errTooLong) || errors.Is(err, errExpansions) {
			return failed(provider, err), true
		}
		for _, e := range entries {
			if looksLikeDocument(e.Query) {
				return failed(provider, err), true
			}
		}
		return action.Action{}, false
	}
	return a, true
}

// looksLikeDocument reports whether text starts as a GraphQL executable
// document: after ignored tokens and an optional description string, a
// selection set ("{" then a name or a spread), or an operation keyword, an
// optional name, then a selection set, variable definitions ("(" then
// "$") or a directive; or "fragment X on T" then a selection set or a
// directive. Search text such as "mutation observer javascript", "query
// builder (python)" or "fragment shader on mobile gpu" does not.
func looksLikeDocument(q string) bool {
	q = skipIgnored(skipDescription(skipIgnored(q)))
	if rest, ok := strings.CutPrefix(q, "{"); ok {
		return selectionStart(rest)
	}
	for _, kw := range []string{"query", "mutation", "subscription", "fragment"} {
		rest, ok := strings.CutPrefix(q, kw)
		if !ok || (rest != "" && isNameContinue(rest[0])) {
			continue
		}
		rest = skipIgnored(rest)
		name := ""
		name, rest = cutName(rest)
		if kw == "fragment" {
			on, ok := strings.CutPrefix(rest, "on")
			if name == "" || !ok || (on != "" && isNameContinue(on[0])) {
				return false
			}
			typ, after := cutName(skipIgnored(on))
			if typ == "" {
				return false
			}
			rest = after
		}
		switch {
		case strings.HasPrefix(rest, "{"):
			return selectionStart(rest[1:])
		case strings.HasPrefix(rest, "("):
			return kw != "fragment" && strings.HasPrefix(skipIgnored(rest[1:]), "$")
		case strings.HasPrefix(rest, "@"):
			return true
		}
		return false
	}
	return false
}

// cutName returns the GraphQL name at the front of s, if any, and what
// follows it with ignored tokens skipped.
func cutName(s string) (name, rest string) {
	if s == "" || !isNameStart(s[0]) {
		return "", s
	}
	i := 1
	for i < len(s) && isNameContinue(s[i]) {
		i++
	}
	return s[:i], skipIgnored(s[i:])
}

func selectionStart(rest string) bool {
	rest = skipIgnored(rest)
	return rest != "" && (isNameStart(rest[0]) || strings.HasPrefix(rest, "..."))
}

// skipDescription drops a leading description string ("…" or """…"""),
// which gqlparser accepts before an operation (found by review).
func skipDescription(s string) string {
	if rest, ok := strings.CutPrefix(s, `"""`); ok {
		if i := strings.Index(rest, `"""`); i >= 0 {
			return rest[i+3:]
		}
		return s
	}
	if rest, ok := strings.CutPrefix(s, `"`); ok {
		for i := 0; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return rest[i+1:]
			case '\n', '\r':
				return s
			}
		}
	}
	return s
}

// startsAsRequest reports whether the first JSON value of body (an object,
// or a batch of them; what follows is ignored, as gqlgen's decoder ignores
// it) has a member named query, in any case, whose text starts as a
// GraphQL document does, or a member named extensions, in any case, that
// names a persisted query.
func startsAsRequest(body []byte) bool {
	for _, m := range firstObjects(body) {
		for k, x := range m {
			var q string
			switch {
			case strings.EqualFold(k, "query") && json.Unmarshal(x, &q) == nil && looksLikeDocument(q):
				return true
			case strings.EqualFold(k, "extensions") && namesPersistedQuery(x):
				return true
			}
		}
	}
	return false
}

// skipIgnored drops GraphQL's ignored tokens from the front of s: white
// space, commas, a byte order mark and # comments.
func skipIgnored(s string) string {
	for {
		t := strings.TrimLeft(s, " \t\r\n,\ufeff")
		if strings.HasPrefix(t, "#") {
			if i := strings.IndexAny(t, "\r\n"); i >= 0 {
				t = t[i:]
			} else {
				t = ""
			}
		}
		if t == s {
			return s
		}
		s = t
	}
}

func isNameStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isNameContinue(c byte) bool { return isNameStart(c) || ('0' <= c && c <= '9') }

var typeRank = map[string]int{"query": 1, "subscription": 2, "mutation": 3}

// classify builds the action for one request or a batch. The operations
// that execute are the one operationName names, or the only one; when that
// is ambiguous (several operations, no or an unknown name) all of them count,
// as a server that guesses might run any. read_only and destructive look at
// every operation in the documents, whatever operationName claims.
func classify(entries []entry, batch bool, provider string) (action.Action, error) {
	var (
		opType     string
		fieldNames []string
		fieldsSeen = map[string]bool{}
		selections []any
		operations []any
		perEntry   []any
		claimed    string
		readOnly   = true
		destroys   = false
		exposes    = false
	)
	for _, e := range entries {
		if !e.HasQuery {
			if e.Persisted {
				return action.Action{}, errPersisted
			}
			return action.Action{}, errNoDocument
		}
		ops, err := parseDocument(e.Query)
		if err != nil {
			return action.Action{}, err
		}
		for _, op := range ops {
			names := make([]any, 0, len(op.Fields))
			for _, f := range op.Fields {
				names = append(names, f.Name)
				if op.Type == "mutation" && destructiveField(f.Name) {
					destroys = true
				}
			}
			if op.Type != "query" {
				readOnly = false
			}
			o := map[string]any{"type": op.Type, "fields": names}
			if op.Name != "" {
				o["name"] = op.Name
			}
			operations = append(operations, o)
		}

		run, err := executing(ops, e.OperationName)
		if err != nil {
			return action.Action{}, err
		}
		entryType := ""
		var entryFields []any
		for _, op := range run {
			if typeRank[op.Type] > typeRank[entryType] {
				entryType = op.Type
			}
			for _, f := range op.Fields {
				entryFields = append(entryFields, f.Name)
				if !fieldsSeen[f.Name] {
					fieldsSeen[f.Name] = true
					fieldNames = append(fieldNames, f.Name)
				}
				s := map[string]any{"field": f.Name}
				if f.Alias != "" && f.Alias != f.Name {
					s["alias"] = f.Alias
				}
				args := argumentValues(f, op.def, e.Variables)
				if args != nil {
					s["arguments"] = args
				}
				selections = append(selections, s)
				if op.Type == "mutation" && setsPublicVisibility(args) {
					exposes = true
				}
			}
		}
		if typeRank[entryType] > typeRank[opType] {
			opType = entryType
		}
		name := claimedName(e, run)
		if !batch {
			claimed = name
		}
		if batch {
			pe := map[string]any{"operation_type": entryType, "fields": entryFields}
			if name != "" {
				pe["operation_name"] = name
			}
			if e.Variables != nil {
				pe["variables"] = e.Variables
			}
			perEntry = append(perEntry, pe)
		}
	}

	fields := make([]any, len(fieldNames))
	for i, n := range fieldNames {
		fields[i] = n
	}
	sorted := slices.Clone(fieldNames)
	slices.Sort(sorted)
	a := action.Action{
		Provider:    provider,
		Operation:   strings.Join(sorted, ","),
		ReadOnly:    readOnly,
		Destructive: destroys,
		Fields: map[string]any{
			"operation_type": opType,
			"fields":         fields,
			"operations":     operations,
			"selections":     selections,
		},
	}
	if batch {
		a.Fields["batch"] = perEntry
	} else {
		if claimed != "" {
			a.Fields["operation_name"] = claimed
		}
		if v := entries[0].Variables; v != nil {
			a.Fields["variables"] = v
		}
	}
	if provider == "github" && opType == "mutation" {
		// INCIDENTS #5: createRepository(input: {visibility: PUBLIC}) is how
		// `gh repo create --public` publishes a repository.
		a.Fields["public_exposure"] = exposes
	}
	return a, nil
}

// executing returns the operations a server runs for operationName: the
// named one, else all of them (the only one, or an ambiguous set). Two
// operations with that name are refused: graphql-js without validation
// runs the last, a first match here would decide about the other.
func executing(ops []operation, name string) ([]operation, error) {
	if name == "" {
		return ops, nil
	}
	var run []operation
	for _, op := range ops {
		if op.Name == name {
			run = append(run, op)
		}
	}
	switch len(run) {
	case 0:
		return ops, nil
	case 1:
		return run, nil
	}
	return nil, errDuplicateName
}

// claimedName is the operation name as the client claims it: operationName,
// or the name of the single operation in the document.
func claimedName(e entry, run []operation) string {
	if e.OperationName != "" {
		return e.OperationName
	}
	if len(run) == 1 {
		return run[0].Name
	}
	return ""
}

// setsPublicVisibility reports a GitHub mutation input that makes a
// repository public (RepositoryVisibility PUBLIC).
func setsPublicVisibility(args map[string]any) bool {
	in, ok := args["input"].(map[string]any)
	if !ok {
		return false
	}
	v, ok := in["visibility"].(string)
	return ok && strings.EqualFold(v, "public")
}

// Respond implements action.Responder: status 200 and a GraphQL errors
// response (one per operation for a batch), which GraphQL clients show.
func (*Provider) Respond(r *action.Request, a action.Action, d action.Denial) action.Response {
	type ext struct {
		Code        string            `json:"code"`
		Countersign map[string]string `json:"countersign"`
	}
	type gqlError struct {
		Message    string `json:"message"`
		Extensions ext    `json:"extensions"`
	}
	type response struct {
		Data   *struct{}  `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	one := response{Errors: []gqlError{{
		Message:    d.Message,
		Extensions: ext{Code: "FORBIDDEN", Countersign: map[string]string{"decision": d.Decision}},
	}}}
	if a.Fields["persisted_query"] == true {
		// What Apollo's and urql's clients take as "send the document".
		one.Errors[0] = gqlError{Message: "PersistedQueryNotFound",
			Extensions: ext{Code: "PERSISTED_QUERY_NOT_FOUND", Countersign: map[string]string{"decision": d.Decision, "reason": d.Message}}}
	}
	var v any = one
	if n := batchSize(r); n > 0 {
		all := make([]response, n)
		for i := range all {
			all[i] = one
		}
		v = all
	}
	// HTML escaping off: curl users read the raw body, and "<" must not
	// arrive as \u003c.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return action.PlainText(d)
	}
	body := buf.Bytes()
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	status := http.StatusOK
	if s, ok := a.Fields["reject_status"].(int); ok {
		// 413 says what to change (inspect.body_limit), whatever the body.
		status = s
	}
	return action.Response{Status: status, Header: h, Body: body}
}

// batchSize returns the number of operations in a batched (JSON array)
// request body, or 0 for a single request.
func batchSize(r *action.Request) int {
	if r == nil || r.BodyTruncated || len(r.Body) == 0 {
		return 0
	}
	entries, batch, err := jsonEntries(r.Body)
	if err != nil || !batch {
		return 0
	}
	return len(entries)
}

// containsFold reports whether b contains word (lower-case ASCII) in any
// case, without allocating.
func containsFold(b []byte, word string) bool {
	for i := 0; i+len(word) <= len(b); i++ {
		j := 0
		for j < len(word) && (b[i+j]|0x20) == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}
