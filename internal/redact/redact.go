// Package redact removes credentials from what countersign shows, logs, posts
// or hands to the policy: request headers, query parameters, URLs, parsed
// bodies and free text (SPEC 10.6).
//
// A redacted value is replaced by Mask, so a reader (or a policy) can still
// tell that a credential was present. Structured data is redacted by name
// (an Authorization header, a token= parameter, a "password" field); free text
// by token shape (ghp_…, JWTs, private key blocks). Shape matching cannot find
// a secret with no recognisable shape, which is why every structured path
// redacts by name first.
package redact

import (
	"encoding/hex"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces every redacted value.
const Mask = "[redacted]"

// credentialHeaders are header names (lower case) whose values are always
// credentials.
var credentialHeaders = map[string]bool{
	"authorization":        true,
	"proxy-authorization":  true,
	"cookie":               true,
	"set-cookie":           true,
	"x-amz-security-token": true,
	"x-api-key":            true,
	"api-key":              true,
	"x-auth-token":         true,
	"private-token":        true,
	"x-github-token":       true,
	"x-goog-api-key":       true,
	"x-vault-token":        true,
	"x-registry-auth":      true,
	// API keys under names the words below miss (Cloudflare, Datadog,
	// Azure API Management and Functions, Honeycomb) and customer-provided
	// encryption keys (S3 SSE-C, Google Cloud Storage CSEK).
	"x-auth-key":                                true,
	"dd-application-key":                        true,
	"ocp-apim-subscription-key":                 true,
	"x-functions-key":                           true,
	"x-honeycomb-team":                          true,
	"x-amz-server-side-encryption-customer-key": true,
	"x-amz-copy-source-server-side-encryption-customer-key": true,
	"x-goog-encryption-key":                                 true,
	"x-goog-copy-source-encryption-key":                     true,
	"x-ms-encryption-key":                                   true, // Azure Blob customer-provided keys
	"x-ms-copy-source-encryption-key":                       true,
	// More API keys under names of their own (Fastly, JFrog Artifactory,
	// New Relic, Parse) and the Authorization header's misspelling that
	// some APIs read.
	"fastly-key":         true,
	"x-jfrog-art-api":    true,
	"x-insert-key":       true,
	"x-query-key":        true,
	"x-license-key":      true,
	"x-parse-master-key": true,
	"authentication":     true,
}

// credentialWords mark a header name or query parameter as a credential
// wherever they appear in it (compared in lower case).
var credentialWords = []string{"token", "secret", "password", "passwd", "apikey", "api-key", "api_key"}

// IsCredentialHeader reports whether values of the header name are
// credentials. The comparison ignores case.
func IsCredentialHeader(name string) bool {
	return isCredentialHeaderLower(strings.ToLower(name))
}

func isCredentialHeaderLower(name string) bool {
	return credentialHeaders[name] || strings.Contains(name, "authorization") || containsAny(name, credentialWords)
}

// Header returns a copy of h with lower-case keys, each value of a credential
// header replaced by Mask and every other value passed through Text. Values
// of keys that differ only in case are merged, in the byte order of the keys
// (canonical "X-Token" before "x-token").
func Header(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	merged := false
	for k, vs := range h {
		lk := strings.ToLower(k)
		_, merged = out[lk]
		if merged {
			break
		}
		out[lk] = headerValues(nil, lk, vs)
	}
	if !merged {
		return out
	}
	clear(out)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		lk := strings.ToLower(k)
		out[lk] = headerValues(out[lk], lk, h[k])
	}
	return out
}

func headerValues(dst []string, lowerName string, vs []string) []string {
	cred := isCredentialHeaderLower(lowerName)
	for _, v := range vs {
		if cred {
			dst = append(dst, Mask)
		} else {
			// A value may be a URL (Azure's x-ms-copy-source, with its
			// SAS signature): masked as a URL in a body is.
			dst = append(dst, String(v))
		}
	}
	if dst == nil {
		dst = []string{}
	}
	return dst
}

// credentialParams are query parameter names (lower case) whose values are
// credentials. X-Amz-Credential and X-Goog-Credential are not among them: they
// hold an access key id and a scope, which are not secret and which policies
// need.
var credentialParams = map[string]bool{
	"x-amz-signature":      true,
	"x-amz-security-token": true,
	"x-goog-signature":     true,
	"access_token":         true,
	"refresh_token":        true,
	"id_token":             true,
	"private_token":        true,
	"token":                true,
	"api_key":              true,
	"apikey":               true,
	"key":                  true, // Google API keys
	"sig":                  true, // Azure SAS
	"signature":            true,
	"password":             true,
	"passwd":               true,
	"pwd":                  true,
	"secret":               true,
	"client_secret":        true,
	"code":                 true, // OAuth authorization code
	"auth":                 true,
	"jwt":                  true,
	"assertion":            true, // OAuth JWT bearer grant
	"client_assertion":     true,
}

// IsCredentialParam reports whether values of the query parameter name are
// credentials. The comparison ignores case.
func IsCredentialParam(name string) bool {
	name = strings.ToLower(name)
	return credentialParams[name] || containsAny(name, credentialWords)
}

// Query returns a copy of q with the values of credential parameters replaced
// by Mask and every other value (and every name) passed through Text.
func Query(q url.Values) map[string][]string {
	out := make(map[string][]string, len(q))
	for k, vs := range q {
		cred := IsCredentialParam(k)
		rk := Text(k)
		dst := out[rk]
		for _, v := range vs {
			if cred {
				dst = append(dst, Mask)
			} else {
				dst = append(dst, Text(v))
			}
		}
		if dst == nil {
			dst = []string{}
		}
		out[rk] = dst
	}
	return out
}

// URL returns u as a string with the userinfo password, the values of
// credential query parameters (in the query and in a key=value fragment) and
// token shapes anywhere replaced by Mask. Everything else keeps its original
// spelling and order. A nil u gives "".
//
// It is for what is recorded and shown: a base64 run in a query value that
// decodes to a credential (EC2's UserData in a GET) is masked too, which
// String, for the policy's input, does not do (see Encoded).
func URL(u *url.URL) string {
	return redactURL(u, true)
}

func redactURL(u *url.URL, encoded bool) string {
	if u == nil {
		return ""
	}
	bare := *u
	bare.User = nil
	bare.RawQuery, bare.ForceQuery = "", false
	bare.Fragment, bare.RawFragment = "", ""
	s := bare.String()
	if p := bare.EscapedPath(); strings.HasSuffix(s, p) {
		s = s[:len(s)-len(p)] + Path(p)
	}

	if u.User != nil {
		// The user name is kept (it is usually an account name), unless it
		// has a token's shape: git often takes a token as the user name.
		name := u.User.Username()
		ui := url.User(name).String()
		if Text(name) != name {
			ui = Mask
		}
		if _, ok := u.User.Password(); ok {
			ui += ":" + Mask
		}
		if i := strings.Index(s, "//"); i >= 0 {
			s = s[:i+2] + ui + "@" + s[i+2:]
		} else {
			s = "//" + ui + "@" + s
		}
	}
	if u.ForceQuery || u.RawQuery != "" {
		s += "?" + rawQuery(u.RawQuery, encoded)
	}
	if u.Fragment != "" {
		s += "#" + rawQuery(u.EscapedFragment(), encoded)
	}
	if encoded {
		// What is shown: tokens percent-encoded anywhere (a query name,
		// a pair without '=', a value with a bad escape) and base64 runs
		// that decode to a credential (found by review).
		return Shown(s)
	}
	return Text(s)
}

var escapedMask = url.QueryEscape(Mask)

// rawQuery redacts an encoded query string without re-encoding the parts it
// leaves alone; with encoded, base64 runs that decode to a credential too.
func rawQuery(raw string, encoded bool) string {
	var b strings.Builder
	b.Grow(len(raw))
	// Both '&' and ';' separate pairs: some servers split on ';' too, so a
	// token after one must be masked as well.
	for {
		i := strings.IndexAny(raw, "&;")
		if i < 0 {
			b.WriteString(rawPair(raw, encoded))
			return b.String()
		}
		b.WriteString(rawPair(raw[:i], encoded))
		b.WriteByte(raw[i])
		raw = raw[i+1:]
	}
}

// rawPair masks one name=value pair of a raw query.
func rawPair(part string, encoded bool) string {
	name, value, hasValue := strings.Cut(part, "=")
	if !hasValue {
		return part
	}
	uname, err := url.QueryUnescape(name)
	if err != nil {
		uname = name
	}
	if IsCredentialParam(uname) {
		return name + "=" + Mask
	}
	// Text catches tokens in the encoded form; decoding catches one hidden
	// by percent-encoding (ghp%5F…).
	if t := Text(value); t != value {
		return name + "=" + t
	}
	if uv, err := url.QueryUnescape(value); err == nil && uv != value && Text(uv) != uv {
		return name + "=" + strings.ReplaceAll(url.QueryEscape(Text(uv)), escapedMask, Mask)
	}
	if encoded {
		// Base64 is percent-encoded in a query ('+', '/', '='): read
		// decoded.
		if uv, err := url.QueryUnescape(value); err == nil {
			if m := EncodedString(uv); m != uv {
				return name + "=" + strings.ReplaceAll(url.QueryEscape(m), escapedMask, Mask)
			}
		}
	}
	return part
}

// credentialKeyWords mark a JSON object key as holding a credential, compared
// after lower-casing and dropping '_', '-' and '.' ("Client-Secret" →
// "clientsecret").
var credentialKeyWords = []string{
	"password", "passwd", "secret", "token", "authorization",
	"apikey", "privatekey", "accesstoken", "cookie", "credential",
	"connectionstring",
}

// credentialKeys are whole normalised keys that hold credentials but are too
// short to match as words ("auth" is in "author").
var credentialKeys = map[string]bool{"auth": true, "pwd": true, "signature": true, "sig": true, "dsn": true, "pass": true}

// credentialSuffixes end normalised keys that hold credentials but are too
// common inside other words to match anywhere ("DB_PASS", not "compass").
var credentialSuffixes = []string{"pass", "dsn"}

// nameSuffixes end normalised keys whose values name or describe a
// credential rather than hold one ("secretName", "token_ttl",
// "secretKeyRef"): policies need those values to match their rules. A
// plain "id" is not among them: Vault's secret_id and Consul's SecretID are
// credentials (an AWS SecretId, a name, is still in action.resources).
var nameSuffixes = []string{
	"name", "names", "keyid", "accessorid", "ref", "refs", "arn", "arns", "path", "paths",
	"ttl", "type", "kind", "version", "expiry", "expires", "expiration", "lifetime", "duration",
	"length", "count", "url", "uri",
}

// normKey lower-cases key and drops '_', '-' and '.'.
func normKey(key string) string {
	var buf [64]byte
	n := buf[:0]
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '-' || c == '.':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		n = append(n, c)
	}
	return string(n)
}

// IsCredentialKey reports whether a JSON object key names a credential, as
// Value decides it: a credential word in it, and no suffix that makes it a
// credential's name or property (see IsNameKey).
func IsCredentialKey(key string) bool {
	k := normKey(key)
	if nameLike(k) {
		return false
	}
	if credentialKeys[k] || containsAny(k, credentialKeyWords) {
		return true
	}
	for _, suf := range credentialSuffixes {
		if strings.HasSuffix(k, suf) && !strings.HasSuffix(k, "bypass") && !strings.HasSuffix(k, "compass") {
			return true
		}
	}
	return false
}

// childSecrecy is how the values under key k of object m (nil for a
// form's map) are treated, sec being how m's own are: under a credential's
// name they are credentials, unless k names or describes one; in a
// Kubernetes Secret's data and stringData, and kubectl's copy of them in
// its last-applied annotation, everything is secret.
func childSecrecy(m map[string]any, k string, sec secrecy) secrecy {
	secret := sec == secretObject || (m != nil && m["kind"] == "Secret")
	switch {
	case sec == allSecret:
		return allSecret
	case secret && (k == "data" || k == "stringData"):
		return allSecret
	case secret && k == "metadata":
		return secretMeta
	case sec == secretMeta && k == "annotations":
		return secretAnnotations
	case sec == secretAnnotations && k == "kubectl.kubernetes.io/last-applied-configuration":
		return allSecret
	case secret && k == "value" && secretPatchOp(m):
		// A JSON Patch of a Secret: {"op": "replace", "path":
		// "/data/password", "value": …}.
		return allSecret
	case IsCredentialKey(k), sec == credential && !IsNameKey(k):
		return credential
	case (k == "value" || k == "Value") && namedCredential(m):
		return credential
	}
	return plain
}

// Form is Value for a parsed form body (a map of field names to strings or
// lists of strings): its fields are masked by the names that mask query
// parameters (code, key, client_assertion…) as well as by the names that
// mask JSON members.
func Form(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return Value(v)
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[Text(k)] = valueAs(e, formSecrecy(k, plain))
	}
	return out
}

// formSecrecy is childSecrecy for a form field (or query parameter) k:
// the parameter names that the query's redaction masks count too (code,
// key, client_assertion), so that the audit log masks what the page does.
func formSecrecy(k string, sec secrecy) secrecy {
	if s := childSecrecy(nil, k, sec); s != plain {
		return s
	}
	if IsCredentialParam(k) {
		return credential
	}
	return plain
}

// namedCredential reports whether object m is a name–value pair whose name
// is a credential's: a container's {"name": "DB_PASSWORD", "value": …}, an
// SSM parameter {"Name": "/prod/db/password", "Value": …} or one of type
// SecureString.
func namedCredential(m map[string]any) bool {
	if m == nil {
		return false
	}
	if t, _ := m["Type"].(string); t == "SecureString" {
		return true
	}
	for _, k := range [...]string{"name", "Name", "key", "Key"} {
		if n, ok := m[k].(string); ok && IsCredentialKey(n) {
			return true
		}
	}
	return false
}

// secretPatchOp reports whether m is a JSON Patch operation that writes a
// Secret's data: its path is the whole object or under data, stringData or
// the annotations (where kubectl apply keeps a copy of the data).
func secretPatchOp(m map[string]any) bool {
	if m == nil {
		return false
	}
	if _, ok := m["op"].(string); !ok {
		return false
	}
	p, ok := m["path"].(string)
	if !ok {
		return true // no readable path: cannot tell, so secret
	}
	for _, prefix := range [...]string{"/data", "/stringData", "/metadata"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return p == "" || p == "/"
}

// IsNameKey reports whether a JSON object key holds a name, an id or a
// property rather than a secret, even inside a credential's object
// ({"secret": {"secretName": …}}).
func IsNameKey(key string) bool { return nameLike(normKey(key)) }

func nameLike(k string) bool {
	for _, s := range nameSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// Value returns a deep copy of a JSON-shaped value (map[string]any, []any,
// string, float64, json.Number, other numbers, bool, nil; also []string,
// map[string]string and map[string][]string as form decoders return them).
// Strings under a key that IsCredentialKey are replaced by Mask, however
// deeply nested, except under a key that IsNameKey; numbers, booleans and
// nulls are kept, so "max_tokens": 1024 survives. Other strings go through
// String, and object keys through Text. A value of any other type is
// replaced by Mask: Value cannot see inside it, so it does not pass it on.
// What is recorded or shown also goes through Encoded.
func Value(v any) any {
	return value(v, false)
}

// secrecy says how a value's strings are treated: plain (Text), as a
// credential's (masked, but names and properties under it kept), or all
// secret (a Kubernetes Secret's data: everything masked).
type secrecy uint8

const (
	plain secrecy = iota
	credential
	allSecret
	// secretObject is a Kubernetes Secret whose kind the body does not say
	// (a patch); secretMeta and secretAnnotations are a Secret's metadata
	// and annotations, where kubectl apply keeps a copy of the data.
	secretObject
	secretMeta
	secretAnnotations
)

// masked reports whether strings under sec are replaced by Mask.
func masked(sec secrecy) bool { return sec == credential || sec == allSecret }

// KubernetesSecret redacts v, the body of a request to a Kubernetes
// Secret, as Value does, and also every value of its data and stringData
// and the copy kubectl apply keeps in an annotation, whether or not the
// body names its kind (a patch does not).
func KubernetesSecret(v any) any { return valueAs(v, secretObject) }

func value(v any, cred bool) any {
	if cred {
		return valueAs(v, credential)
	}
	return valueAs(v, plain)
}

func valueAs(v any, sec secrecy) any {
	switch v := v.(type) {
	case nil, bool, json.Number,
		float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return v
	case string:
		return str(v, masked(sec))
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[Text(k)] = valueAs(e, childSecrecy(v, k, sec))
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = valueAs(e, sec)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(v))
		for k, e := range v {
			out[Text(k)] = str(e, masked(formSecrecy(k, sec)))
		}
		return out
	case []string:
		return strs(v, masked(sec))
	case map[string][]string:
		out := make(map[string][]string, len(v))
		for k, e := range v {
			out[Text(k)] = strs(e, masked(formSecrecy(k, sec)))
		}
		return out
	default:
		return Mask
	}
}

func str(s string, cred bool) string {
	if cred {
		return Mask
	}
	return String(s)
}

// String is Text for a value that may be a URL: an absolute URL (a
// resource's uri, a webhook) also has its credential query parameters and
// its userinfo masked, as URL does, whatever their length or shape.
func String(s string) string {
	if u, ok := absoluteURL(s); ok {
		return redactURL(u, false)
	}
	return Text(s)
}

// Strings is String of each of ss: ss itself when nothing in it is masked
// (the common case, on every request: no allocation), else a new slice.
func Strings(ss []string) []string {
	var out []string
	for i, s := range ss {
		m := String(s)
		if m != s && out == nil {
			out = make([]string, len(ss))
			copy(out, ss[:i])
		}
		if out != nil {
			out[i] = m
		}
	}
	if out == nil {
		return ss
	}
	return out
}

// maxURLString bounds the strings String parses as URLs: a long text that
// happens to start like one is left to Text.
const maxURLString = 8 << 10

// absoluteURL parses s when it is a single absolute URL with a host.
func absoluteURL(s string) (*url.URL, bool) {
	if len(s) > maxURLString || !strings.Contains(s, "://") || strings.ContainsAny(s, " \t\r\n") {
		return nil, false
	}
	scheme, _, _ := strings.Cut(s, "://")
	if scheme == "" || strings.ContainsFunc(scheme, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '+' || r == '-' || r == '.')
	}) {
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, false
	}
	return u, true
}

// Path returns an escaped URL path with token shapes masked, spelt out or
// percent-encoded (/v1/ghp%5F…): a server decodes the path, so a token in
// it is one either way. A value may run across '/' (base64 holds it: an AWS
// secret key, Basic credentials), with its '=' or '+' encoded, and is
// masked whole, with what follows it in its alphabet. Everything else keeps
// its spelling. It is for what is recorded and shown: the policy reads the
// path as sent.
func Path(p string) string {
	return maskDecoded(Text(p))
}

// Message masks credentials in a policy's message to the agent or an
// approver, as Path does: the message may quote the request's path, the one
// part of the input the policy reads unmasked. Base64 runs that decode to
// a credential are masked too (see Encoded): the message may quote a body.
func Message(m string) string {
	return Shown(m)
}

// Shown masks credentials in text that is recorded or shown but that no
// policy reads: token shapes (Text), tokens percent-encoded (read decoded,
// leniently, and masked as spelt), and base64 runs that decode to a
// credential (see Encoded).
func Shown(s string) string {
	return maskEncoded(maskDecoded(Text(s)), encodedDepth)
}

// Args masks credentials in a command line as it is recorded: each
// argument as Shown does, and the value of NAME=value when NAME holds a
// credential (GITHUB_TOKEN=…, --password=…).
func Args(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if name, _, ok := strings.Cut(a, "="); ok && IsCredentialKey(strings.TrimLeft(name, "-")) {
			out[i] = name + "=" + Mask
			continue
		}
		out[i] = Shown(a)
	}
	return out
}

// maskDecoded masks in s, as spelt, each span in which Text finds a
// credential once s is percent-decoded. Decoding is lenient: a '%' that
// does not start an escape stays as it is ("50%"), so a message or a path
// with one is still read. Masking one span can complete another's shape
// (as in Text), hence the bounded repeat.
func maskDecoded(s string) string {
	for range maxPasses {
		if !strings.Contains(s, "%") {
			return s
		}
		dec := make([]byte, 0, len(s))
		from := make([]int, 0, len(s)+1) // from[i]: where dec[i] starts in s
		for i := 0; i < len(s); {
			if s[i] == '%' && i+2 < len(s) {
				var b [1]byte
				if _, err := hex.Decode(b[:], []byte(s[i+1:i+3])); err == nil {
					dec = append(dec, b[0])
					from = append(from, i)
					i += 3
					continue
				}
			}
			dec = append(dec, s[i])
			from = append(from, i)
			i++
		}
		from = append(from, len(s))
		if len(dec) == len(s) {
			return s // nothing decoded: Text saw it all
		}
		spans := find(string(dec), nil)
		if len(spans) == 0 {
			return s
		}
		for k := range spans {
			spans[k] = span{from[spans[k].start], from[spans[k].end]}
		}
		s = mask(s, spans)
	}
	return s
}

func strs(v []string, cred bool) []string {
	if v == nil {
		return nil
	}
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = str(s, cred)
	}
	return out
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Multipart returns a multipart/form-data body (boundary from its
// Content-Type) with the contents of the parts whose form names are
// credentials (password, token, client_secret, …) replaced by Mask, and
// token shapes masked everywhere, as Text does. A body that does not split
// on the boundary is only passed through Text.
func Multipart(body, boundary string) string {
	if boundary == "" {
		return String(body)
	}
	delim := "--" + boundary
	parts := strings.Split(body, delim)
	for i := 1; i < len(parts); i++ {
		p := parts[i]
		// The head ends at the first blank line, CRLF or bare LF: servers
		// (Go's among them) read both (found by review).
		cut := len(p)
		for _, blank := range []string{"\r\n\r\n", "\n\n", "\n\r\n"} {
			if j := strings.Index(p, blank); j >= 0 && j+len(blank) <= cut {
				cut = j + len(blank)
			}
		}
		if cut == len(p) {
			continue
		}
		head, content := p[:cut], p[cut:]
		name, known := formName(head)
		if known && !(IsCredentialParam(name) || IsCredentialKey(name)) {
			continue
		}
		// Named as a credential, or a disposition that does not parse:
		// masked. The content ends before the line break that precedes
		// the next delimiter.
		end := strings.TrimSuffix(strings.TrimSuffix(content, "\n"), "\r")
		parts[i] = head + Mask + content[len(end):]
	}
	return Text(strings.Join(parts, delim))
}

// formName is the name parameter of a part's Content-Disposition header,
// its folded lines joined; known is false when the header is there but
// does not parse (a repeated parameter), which lenient servers still read.
func formName(head string) (name string, known bool) {
	head = strings.NewReplacer("\r\n ", " ", "\r\n\t", " ", "\n ", " ", "\n\t", " ").Replace(head)
	for line := range strings.SplitSeq(head, "\n") {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "Content-Disposition") {
			continue
		}
		_, params, err := mime.ParseMediaType(strings.TrimSpace(v))
		if err != nil {
			return "", false
		}
		return params["name"], true
	}
	return "", true
}
