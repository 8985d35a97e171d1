package aws

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Bounds on the work done per request, whatever the body holds.
const (
	maxResources = 100
	maxWalkNodes = 10000
	maxWalkDepth = 32
	maxDeleteKey = 1000
)

// isAuthParam reports query parameters that carry the signature rather than
// the call: they are neither params nor resources.
func isAuthParam(k string) bool {
	if len(k) >= 6 && strings.EqualFold(k[:6], "x-amz-") {
		return true
	}
	switch k {
	case "AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "Expires", "Timestamp":
		return true
	}
	return false
}

// formParams turns query-protocol parameters into params: a string per name,
// a list when repeated. Action and Version name the call, not its input.
func formParams(vals ...url.Values) map[string]any {
	var p map[string]any
	for _, vs := range vals {
		for k, v := range vs {
			if k == "Action" || k == "Version" || isAuthParam(k) {
				continue
			}
			if p == nil {
				p = map[string]any{}
			}
			if len(v) == 1 {
				p[k] = v[0]
				continue
			}
			list := make([]any, len(v))
			for i, s := range v {
				list[i] = s
			}
			p[k] = list
		}
	}
	return p
}

// conflictingParam returns a call parameter (not Action, Version or the
// signature's) given more than once, in the query string, the body or
// both, with different values. The query protocol numbers its lists
// (InstanceId.1, InstanceId.2), so a repeated name is never a list, and
// which copy AWS reads is not documented.
func conflictingParam(query, form url.Values) (string, bool) {
	keys := slices.Sorted(maps.Keys(query))
	keys = append(keys, slices.Sorted(maps.Keys(form))...)
	for _, k := range keys {
		if k == "Action" || k == "Version" || isAuthParam(k) {
			continue
		}
		vals := append(slices.Clone(query[k]), form[k]...)
		for _, v := range vals[1:] {
			if v != vals[0] {
				return k, true
			}
		}
	}
	return "", false
}

// jsonParams parses a JSON-protocol body. An empty body is a call without
// input; anything but one JSON object is an error.
func jsonParams(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var p map[string]any
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	return p, nil
}

// deleteObjectsKeys reads the keys from an S3 DeleteObjects body
// (<Delete><Object><Key>k</Key></Object>…</Delete>).
func deleteObjectsKeys(body []byte) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var keys []string
	var path []string
	// One key's text may come in several pieces (around a comment, a
	// CDATA section, an entity): it is the whole text of its element.
	var key []byte
	inKey := func() bool { return len(path) == 3 && path[0] == "Delete" && path[1] == "Object" && path[2] == "Key" }
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return keys, nil
			}
			return keys, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if inKey() {
				return keys, errors.New("an element inside a Key")
			}
			if len(path) >= maxWalkDepth {
				return keys, errors.New("XML nested too deep")
			}
			path = append(path, t.Name.Local)
			key = key[:0]
		case xml.EndElement:
			if inKey() {
				if len(keys) >= maxDeleteKey {
					return keys, errors.New("too many keys")
				}
				keys = append(keys, string(key))
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		case xml.CharData:
			if inKey() {
				key = append(key, t...)
			}
		}
	}
}

// resources collects what a call acts on: the values of top-level
// parameters named like identifiers (InstanceId.1, TableName, FunctionName,
// PolicyArn, DBInstanceIdentifier, QueueUrl), and every ARN anywhere in the
// params. Nested names (Filter.1.Name, KeySchema[].AttributeName) are left
// out: they are rarely what the call acts on.
type resourceSet struct {
	list []string
	seen map[string]bool
}

func (rs *resourceSet) add(v string) {
	v = strings.TrimSpace(v)
	if v == "" || len(rs.list) >= maxResources || rs.seen[v] {
		return
	}
	if rs.seen == nil {
		rs.seen = map[string]bool{}
	}
	rs.seen[v] = true
	rs.list = append(rs.list, v)
}

// identifierName reports parameter names that hold resource identifiers:
// InstanceId, TableName, PolicyArn, DBInstanceIdentifier, QueueUrl in the
// query and JSON protocols, and the camelCase ones (functionName,
// resourceArn) and bare nouns (ECS's cluster and service) of newer APIs.
func identifierName(k string) bool {
	for _, s := range []string{"Id", "Ids", "ID", "Arn", "Arns", "ARN", "Identifier", "Identifiers", "Name", "Names", "Url", "Urls"} {
		if strings.HasSuffix(k, s) && len(k) > len(s) {
			return true
		}
	}
	switch strings.ToLower(k) {
	case "bucket", "key", "name", "id", "arn", "resource", "cluster", "service", "services",
		"task", "tasks", "taskdefinition", "containerinstance", "containerinstances":
		return true
	}
	return false
}

// formResources reads resources from query-protocol params, whose nesting is
// spelled in the names: InstanceId.1 is top level, Filter.1.Name is not.
func (rs *resourceSet) formParams(p map[string]any) {
	for _, k := range sortedKeys(p) {
		top := k
		for {
			base, last, found := cutLast(top, ".")
			if !found || !isNumber(last) {
				break
			}
			top = base
		}
		named := !strings.Contains(top, ".") && identifierName(top)
		for _, v := range stringsOf(p[k]) {
			if named || strings.HasPrefix(v, "arn:") {
				rs.add(v)
			}
		}
	}
}

// jsonParams reads resources from a JSON body: identifiers at the top level
// (strings or lists of strings), ARNs at any depth.
func (rs *resourceSet) jsonParams(p map[string]any) {
	nodes := 0
	for _, k := range sortedKeys(p) {
		if identifierName(k) {
			for _, v := range stringsOf(p[k]) {
				rs.add(v)
			}
		}
		rs.arns(p[k], 0, &nodes)
	}
}

func (rs *resourceSet) arns(v any, depth int, nodes *int) {
	*nodes++
	if depth > maxWalkDepth || *nodes > maxWalkNodes {
		return
	}
	switch v := v.(type) {
	case string:
		if strings.HasPrefix(v, "arn:") {
			rs.add(v)
		}
	case []any:
		for _, e := range v {
			rs.arns(e, depth+1, nodes)
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			rs.arns(v[k], depth+1, nodes)
		}
	}
}

func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func isNumber(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
