package graphql

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/countersign/countersign/action"
)

// maxBatch bounds how many operations one batched request may carry before
// it is reported as unparseable rather than classified entry by entry.
const maxBatch = 100

// entry is one GraphQL request: a document, the operation it names and its
// variables. A batched request holds several.
type entry struct {
	Query         string
	HasQuery      bool
	OperationName string
	Variables     map[string]any
	Persisted     bool // Apollo persisted query: a hash instead of the document
}

var (
	errNotJSON           = errors.New("the request body is not a GraphQL request")
	errTruncated         = errors.New("the request body exceeds the inspection limit")
	errBatch             = errors.New("the batched request has too many operations")
	errVariables         = errors.New("the GraphQL variables are not a JSON object")
	errNoDocument        = errors.New("the GraphQL request carries no query document")
	errPersisted         = errors.New("the GraphQL request names a persisted query; the document is not in the request")
	errMemberCase        = errors.New("the GraphQL request repeats query, operationName, variables or extensions, or spells one in another case (servers decoding with Go's encoding/json match names in any case)")
	errURLAndBody        = errors.New("the GraphQL request carries its parameters both in the URL and in the body (servers differ on which they read)")
	errMultipartRepeated = errors.New("the GraphQL multipart request has more than one operations or map part, and servers differ on which one they read; send each once")
	errMultipartPart     = errors.New("a part of the GraphQL multipart request has no single well-formed form-data Content-Disposition with a plain name (PHP and Django read name= whatever the type, and only some servers read name*=), or has a Content-Transfer-Encoding, which servers read differently; send plain form-data parts")
	errMultipartParam    = errors.New("the GraphQL multipart request has a part named query, operationName, variables, extensions, id, queryId or documentId, which PHP and Django servers (graphql-php, graphene-django) read instead of the operations part; send the request in the operations part alone")
	errMultipartName     = errors.New("a part of the GraphQL multipart request has a name that PHP or Django reads as operations or map but that is spelt otherwise (PHP drops leading spaces and cuts a name at \"[\", Django strips white space); name the parts exactly")
	errMultipartBoundary = errors.New("the GraphQL multipart request has its boundary string inside a part or outside the parts, where Django's parser takes it for a delimiter; send it with a boundary that occurs only as the delimiters")
	errTrailing          = errors.New("the GraphQL request body has data after its JSON value, which some servers ignore and run the value; send the JSON value alone")
	errRepeated          = errors.New("the GraphQL request repeats query, operationName, variables or extensions in the URL or in the form body, and servers differ on which one they read (PHP and Django the last); send each once")
	errFieldName         = errors.New("the GraphQL request has a field in the URL or in the form body that PHP reads as query, operationName, variables or extensions but that is spelt otherwise (PHP drops leading spaces and cuts a name at \"[\"); name each exactly, once")
	errContentType       = errors.New("the Content-Type of the GraphQL request names application/graphql or JSON beside another media type (as a parameter, or as application/graphql+json, which PHP servers read as a raw document), and PHP servers (graphql-php, Lighthouse) look for those names anywhere in it; send Content-Type: application/json, application/graphql or a form type, with no parameter naming another")
	errStored            = errors.New("the GraphQL request names a stored document (id, queryId, documentId or doc_id), whose text is not in the request, and servers that keep stored documents may run it instead of a query sent beside it; send the document itself in query, without an id")
	errJSONAsForm        = errors.New("the GraphQL request body is JSON but its Content-Type says form, and PHP and Django servers read it as a form, where it has a field named like a GraphQL parameter; send it with Content-Type: application/json")
)

// isGraphQLPath reports whether the path is a GraphQL endpoint: it ends in
// /graphql (api.github.com, Linear, Hasura's /v1/graphql, GHES /api/graphql),
// /graphql.json (Shopify) or /graphql/vN (Railway's /graphql/v2).
func isGraphQLPath(p string) bool {
	p = strings.TrimSuffix(p, "/")
	last := p[strings.LastIndexByte(p, '/')+1:]
	if strings.EqualFold(last, "graphql") || strings.EqualFold(last, "graphql.json") {
		return true
	}
	if len(last) >= 2 && (last[0] == 'v' || last[0] == 'V') && isDigits(last[1:]) && len(p) > len(last) {
		rest := p[:len(p)-len(last)-1]
		return strings.EqualFold(rest[strings.LastIndexByte(rest, '/')+1:], "graphql")
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// requestEntries extracts the GraphQL request(s) from an HTTP request to a
// GraphQL endpoint: ?query= in the URL of a request without a body, a body
// whatever the method: JSON (an object or a batch array, read
// as JSON whatever the Content-Type says, since curl -d sends JSON as a
// form), application/graphql, a form with query=, or a multipart upload's
// "operations" field. batch reports a JSON array body.
func requestEntries(r *action.Request) (entries []entry, batch bool, err error) {
	if err := checkRepeated(r.Query); err != nil {
		return nil, false, err
	}
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 && !r.BodyTruncated {
		// GraphQL over HTTP puts a GET's parameters in the URL, and
		// express-graphql reads a bodiless POST's there too. Other
		// methods without a body (a CORS preflight) carry no request.
		if (r.Method == "GET" || r.Method == "HEAD" || r.Method == "POST") && (r.Query.Has("query") || r.Query.Has("extensions")) {
			e, err := queryEntry(r.Query)
			return []entry{e}, false, err
		}
		return nil, false, errNoDocument
	}
	// A body is read whatever the method: graph-gophers' relay.Handler
	// decodes it for a GET or a PUT as for a POST.
	if r.BodyTruncated {
		return nil, false, errTruncated
	}
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	if namesAnotherType(ct, mt) {
		return nil, false, errContentType
	}
	// Some servers read the URL's parameters first, others the body's:
	// with both, the document run is not known.
	inURL := r.Query.Has("query")
	if mt != "application/graphql" {
		inURL = inURL || r.Query.Has("operationName") || r.Query.Has("variables") || r.Query.Has("extensions")
	}
	if inURL {
		return nil, false, errURLAndBody
	}
	switch {
	case mt == "application/graphql":
		e := entry{Query: string(r.Body), HasQuery: true, OperationName: r.Query.Get("operationName")}
		e.Variables, err = variables(r.Query.Get("variables"))
		return []entry{e}, false, err
	case mt == "multipart/form-data":
		ops, _, _, err := multipartOperations(r.Body, params["boundary"])
		if err != nil {
			return nil, false, err
		}
		// graphql-php reads the operations part as it reads a JSON body,
		// names lower-cased (found by review).
		if err := storedIDMember(ops); err != nil {
			return nil, false, err
		}
		return jsonEntries(ops)
	case body[0] == '{' || body[0] == '[':
		if mt == "application/x-www-form-urlencoded" {
			if err := checkJSONAsForm(body); err != nil {
				return nil, false, err
			}
		}
		return jsonEntries(body)
	case mt == "application/x-www-form-urlencoded":
		form, perr := url.ParseQuery(string(body))
		if perr != nil {
			return nil, false, errNotJSON
		}
		if err := checkRepeated(form); err != nil {
			return nil, false, err
		}
		if !form.Has("query") {
			return nil, false, errNotJSON
		}
		e, err := queryEntry(form)
		return []entry{e}, false, err
	}
	return nil, false, errNotJSON
}

// namesAnotherType reports whether the Content-Type header ct names
// application/graphql or JSON anywhere but as its media type mt (in a
// parameter: `application/x-www-form-urlencoded; profile="application/graphql"`,
// or in a header that does not parse, mt ""). graphql-php and Lighthouse test the header with
// stripos($ct, "application/graphql") and take the raw body as the
// document, and Laravel's isJson reads the body as JSON when the header
// contains "/json" or "+json" (found by review).
func namesAnotherType(ct, mt string) bool {
	ct = strings.ToLower(ct)
	if strings.Contains(ct, "application/graphql") && mt != "application/graphql" {
		return true
	}
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	return !isJSON && (strings.Contains(ct, "/json") || strings.Contains(ct, "+json"))
}

// checkRepeated refuses GraphQL-over-HTTP parameters given more than once
// in a query string or form: queryEntry reads the first, while PHP's
// $_GET/$_POST (webonyx/graphql-php, Lighthouse) and Django's QueryDict
// (graphene-django) read the last. A name that PHP reads as a parameter
// but that is spelt otherwise (" query": found by review) is refused too:
// it is a second query to PHP, and no name to queryEntry.
func checkRepeated(q url.Values) error {
	for k := range q {
		if m, ok := readAs(k, graphQLMembers); ok && k != m {
			return errFieldName
		}
	}
	for _, name := range graphQLMembers {
		if len(q[name]) > 1 {
			return errRepeated
		}
	}
	return nil
}

// readAs returns the name among names that a server reads a form field
// called field as, if any: PHP's variable name (see phpName), or the
// name stripped of white space, as Django's multipart parser reads a
// part's name; in any case, since graphql-php lower-cases every
// parameter's name (OperationParams::create: found by review, QUERY in a
// form was its query).
func readAs(field string, names []string) (string, bool) {
	for _, n := range [...]string{phpName(field), strings.TrimFunc(field, isPythonSpace)} {
		for _, name := range names {
			if strings.EqualFold(n, name) {
				return name, true
			}
		}
	}
	return "", false
}

// phpName is the name PHP registers a query-string, form or multipart
// field under (php_register_variable_ex): leading spaces dropped, the name
// cut at a NUL or at "[" (an array: "query[]" is $_POST["query"]), spaces
// and dots turned into "_". PHP keeps an unmatched "[" as "_"; cutting
// there too only refuses more.
func phpName(field string) string {
	field = strings.TrimLeft(field, " ")
	if i := strings.IndexAny(field, "[\x00"); i >= 0 {
		field = field[:i]
	}
	b := []byte(field)
	for i, c := range b {
		if c == ' ' || c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

// isPythonSpace reports the runes Python's str.strip removes.
func isPythonSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// storedDocument refuses a request to a GraphQL path that names a stored
// document: graphql-php reads queryId, documentId or id (in any case: it
// lowercases the names) from the URL, a form or a JSON body, and Relay's
// servers doc_id. A bodiless GET of /graphql?queryId=… was a plain GET to
// the policy, whatever the stored document does; beside a query, which of
// the two a server runs depends on the server.
func storedDocument(r *action.Request) error {
	for k := range r.Query {
		if isStoredID(k) {
			return errStored
		}
	}
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 {
		return nil
	}
	switch body[0] {
	case '{', '[':
		return storedIDMember(body)
	default:
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			for field := range strings.SplitSeq(string(body), "&") {
				name, _, _ := strings.Cut(field, "=")
				if isStoredID(phpURLDecode(name)) {
					return errStored
				}
			}
		}
	}
	return nil
}

// storedIDMember refuses a JSON request (a body, or a multipart request's
// operations part) whose object, or a batch's, names a stored document.
func storedIDMember(b []byte) error {
	for _, m := range firstObjects(b) {
		for k, x := range m {
			if isStoredID(k) && !isNull(x) {
				return errStored
			}
		}
	}
	return nil
}

// firstObjects returns the objects of the first JSON value in body, as
// servers decoding with json.Decoder read it: the value itself, or a
// batch's entries that are objects (a batch's other entries may still
// run). It is nil when body does not start with a JSON value.
func firstObjects(body []byte) []map[string]json.RawMessage {
	var v json.RawMessage
	if json.NewDecoder(bytes.NewReader(body)).Decode(&v) != nil {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		items = []json.RawMessage{v}
	}
	var objects []map[string]json.RawMessage
	for _, it := range items {
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) == nil {
			objects = append(objects, m)
		}
	}
	return objects
}

// isStoredID reports whether a server reads a parameter called name as a
// stored document's id (PHP's reading of the name, in any case).
func isStoredID(name string) bool {
	for _, n := range [...]string{phpName(name), strings.TrimFunc(name, isPythonSpace)} {
		switch strings.ToLower(n) {
		case "id", "queryid", "documentid", "doc_id":
			return true
		}
	}
	return false
}

// parameterNames are the names under which graphql-php reads a GraphQL
// request from a form (Helper::parseRequestParams): the members and the
// ids of persisted queries and trusted documents.
var parameterNames = append(slices.Clone(graphQLMembers), "id", "queryId", "documentId", "doc_id")

// checkJSONAsForm refuses a JSON body labelled as a form whose form
// reading has a field that PHP ($_POST: graphql-php, Lighthouse) or
// Django (request.POST: graphene-django) reads as a GraphQL parameter:
// {"query":"{ a }","x":"&query=mutation { b }#"} is {a} as JSON and the
// mutation as a form. curl -d sends JSON as a form, and its bodies have no
// such field.
func checkJSONAsForm(body []byte) error {
	for field := range strings.SplitSeq(string(body), "&") {
		name, _, _ := strings.Cut(field, "=")
		if _, ok := readAs(phpURLDecode(name), parameterNames); ok {
			return errJSONAsForm
		}
	}
	return nil
}

// phpURLDecode decodes a form field name as PHP's urldecode does: "+" is a
// space, "%" and two hex digits a byte, and any other "%" stays.
func phpURLDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+':
			b = append(b, ' ')
		case s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// queryEntry reads the GraphQL-over-HTTP parameters from a query string or
// form.
func queryEntry(q url.Values) (entry, error) {
	e := entry{Query: q.Get("query"), HasQuery: q.Has("query"), OperationName: q.Get("operationName")}
	e.Persisted = namesPersistedQuery([]byte(q.Get("extensions")))
	var err error
	e.Variables, err = variables(q.Get("variables"))
	return e, err
}

// variables decodes a variables value given as text (a query parameter, or
// a JSON string some clients send instead of an object).
func variables(s string) (map[string]any, error) {
	if strings.TrimSpace(s) == "" || strings.TrimSpace(s) == "null" {
		return nil, nil
	}
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, errVariables
	}
	return v, nil
}

// jsonEntries reads a JSON request body: one request, or a batch.
func jsonEntries(body []byte) ([]entry, bool, error) {
	entries, batch, err := decodeEntries(body)
	if errors.Is(err, errNotJSON) && trailingData(bytes.TrimSpace(body)) {
		err = errTrailing
	}
	return entries, batch, err
}

// trailingData reports whether b holds one JSON value and then more, which
// json.Unmarshal refuses but gqlgen and graph-gophers, decoding with
// json.Decoder, ignore: they run the first value.
func trailingData(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return false
	}
	return len(bytes.TrimSpace(b[dec.InputOffset():])) > 0
}

func decodeEntries(body []byte) ([]entry, bool, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var items []json.RawMessage
		if err := strictDecode(body, &items); err != nil {
			return nil, true, errNotJSON
		}
		if len(items) == 0 {
			return nil, true, errNoDocument
		}
		if len(items) > maxBatch {
			return nil, true, errBatch
		}
		entries := make([]entry, 0, len(items))
		for _, it := range items {
			e, err := jsonEntry(it)
			if err != nil {
				return nil, true, err
			}
			entries = append(entries, e)
		}
		return entries, true, nil
	}
	e, err := jsonEntry(body)
	if err != nil {
		return nil, false, err
	}
	return []entry{e}, false, nil
}

func jsonEntry(b []byte) (entry, error) {
	var raw map[string]json.RawMessage
	if err := strictDecode(b, &raw); err != nil || raw == nil {
		return entry{}, errNotJSON
	}
	if err := checkMembers(b); err != nil {
		return entry{}, err
	}
	// Keys are matched exactly, as GraphQL servers do; encoding/json's
	// case-insensitive struct matching would let "Query" shadow "query".
	var e entry
	var opName *string
	if q, ok := raw["query"]; ok && !isNull(q) {
		if err := json.Unmarshal(q, &e.Query); err != nil {
			return entry{}, errNotJSON
		}
		e.HasQuery = true
	}
	if n, ok := raw["operationName"]; ok && !isNull(n) {
		if err := json.Unmarshal(n, &opName); err != nil {
			return entry{}, errNotJSON
		}
		e.OperationName = *opName
	}
	if v, ok := raw["variables"]; ok && !isNull(v) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			var err error
			if e.Variables, err = variables(s); err != nil {
				return entry{}, err
			}
		} else {
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&e.Variables); err != nil {
				return entry{}, errVariables
			}
		}
	}
	e.Persisted = namesPersistedQuery(raw["extensions"])
	return e, nil
}

// namesPersistedQuery reports whether an extensions value (a JSON object,
// or a string holding one, as in a GET's URL) has a persistedQuery member.
// It is decoded, as Apollo's and gqlgen's JSON decoders read it:
// "persisted\u0051uery" is that member too. A value that does not decode
// counts when it says persistedQuery at all.
func namesPersistedQuery(ext []byte) bool {
	if len(bytes.TrimSpace(ext)) == 0 {
		return false
	}
	var s string
	if json.Unmarshal(ext, &s) == nil {
		ext = []byte(s)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(ext, &m) != nil {
		return bytes.Contains(ext, []byte("persistedQuery"))
	}
	_, ok := m["persistedQuery"]
	return ok
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

// strictDecode decodes exactly one JSON value (json.Unmarshal rejects
// trailing data).
// graphQLMembers are the request members a server reads.
var graphQLMembers = []string{"query", "operationName", "variables", "extensions"}

// checkMembers refuses a JSON request object (already known to be valid
// JSON) that has a GraphQL member twice or in another case: servers take
// the first or the last, and gqlgen matches "QUERY" to query.
func checkMembers(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return errNotJSON
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errNotJSON
		}
		k, _ := t.(string)
		// encoding/json matches names by Unicode simple folding
		// ("variableſ" is variables), as strings.EqualFold does.
		for _, name := range graphQLMembers {
			if !strings.EqualFold(k, name) {
				continue
			}
			if k != name || seen[name] {
				return errMemberCase
			}
			seen[name] = true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errNotJSON
		}
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	return json.Unmarshal(b, v)
}

// multipartNames are the names of a GraphQL multipart request's own parts
// (the files are named in its map) and of the parameters that servers
// reading the parts as a form take instead of them.
var multipartNames = append([]string{"operations", "map"}, parameterNames...)

// multipartOperations returns the "operations" part of a GraphQL multipart
// request (file uploads); the files themselves are not needed, but every
// part is read: graphql-upload keeps the last "operations" before "map",
// gqlgen takes the first part, so a second one (or a second map) is
// refused, and so is a part whose name servers could read differently (a
// Content-Disposition that does not parse or is not form-data, an encoded
// name*=, a transfer encoding that Go decodes and busboy does not, a name
// that PHP or Django reads as operations or map but spelt otherwise), a
// part that PHP's $_POST (graphql-php) or Django's request.POST
// (graphene-django) gives as a GraphQL parameter (a query part beside
// operations), and a boundary string that occurs where Go's reader does
// not take it for a delimiter (Django's parser finds it anywhere, and
// reads a part where Go reads a part's text). found reports an operations
// part, which makes the body a GraphQL request even when err is set;
// parts counts the parts whose head was read.
func multipartOperations(body []byte, boundary string) (ops []byte, found bool, parts int, err error) {
	if boundary == "" {
		return nil, false, 0, errNotJSON
	}
	var bad error
	maps, named := 0, false // named: a part servers may read as operations
	closed := 0             // delimiters read that began no part: the closing one
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			// Bare: after the closing delimiter, or after a delimiter
			// that the body ends behind.
			closed = 1
			break
		}
		if errors.Is(err, io.EOF) {
			break // wrapped: the body ends with no delimiter after the last part
		}
		if err != nil {
			return nil, found || named, parts, errNotJSON
		}
		parts++
		cd := p.Header.Values("Content-Disposition")
		all := strings.Join(cd, ",")
		disposition, params, perr := mime.ParseMediaType(all)
		if len(cd) != 1 || perr != nil || disposition != "form-data" || hasEncodedName(all) {
			bad = errMultipartPart
			named = named || containsFold([]byte(all), "operations")
			continue
		}
		name := params["name"]
		if m, ok := readAs(name, multipartNames); ok && (m != name || slices.Contains(parameterNames, m)) {
			if slices.Contains(parameterNames, m) {
				bad = errMultipartParam
			} else {
				bad = errMultipartName
			}
			named = named || m == "operations"
			continue
		}
		switch name {
		case "operations":
			if found {
				return nil, true, parts, errMultipartRepeated
			}
			found = true
			if ops, err = io.ReadAll(p); err != nil {
				return nil, true, parts, errNotJSON
			}
		case "map":
			if maps++; maps > 1 {
				return nil, found || named, parts, errMultipartRepeated
			}
		default:
			continue
		}
		if te := p.Header.Get("Content-Transfer-Encoding"); te != "" && !strings.EqualFold(te, "binary") && !strings.EqualFold(te, "8bit") && !strings.EqualFold(te, "7bit") {
			bad = errMultipartPart
		}
	}
	// Each part's head follows one delimiter, and the closing one ends
	// the body: any other occurrence of the boundary is one Go's reader
	// did not take as a delimiter.
	if bytes.Count(body, []byte("--"+boundary)) > parts+closed && bad == nil {
		bad = errMultipartBoundary
	}
	if bad != nil {
		return nil, found || named, parts, bad
	}
	if !found {
		return nil, false, parts, errNoDocument
	}
	return ops, true, parts, nil
}

// hasEncodedName reports whether a Content-Disposition has an RFC 2231
// name*= parameter: Go, Django and busboy decode it (and let it override
// name=), PHP ignores it.
func hasEncodedName(cd string) bool {
	for param := range strings.SplitSeq(cd, ";") {
		param = strings.TrimLeft(param, " \t")
		if len(param) >= 5 && strings.EqualFold(param[:5], "name*") {
			return true
		}
	}
	return false
}
