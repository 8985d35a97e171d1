package kubernetes

// This file ports RequestInfoFactory.NewRequestInfo from
// k8s.io/apiserver/pkg/endpoints/request/requestinfo.go at v0.37.2, and the
// parts of k8s.io/apimachinery v0.37.2 it relies on (the field selector
// parser of pkg/fields/selector.go, the bool conversion of
// pkg/apis/meta/v1/conversion.go, IsPathSegmentName of
// pkg/api/validate/content/path.go).
// Copyright 2016 The Kubernetes Authors, Apache License 2.0
// (http://www.apache.org/licenses/LICENSE-2.0); modified for countersign.
//
// Why a port rather than the import: k8s.io/apiserver's request package pulls
// in about 262 packages (klog, cbor, structured-merge-diff, kube-openapi, the
// whole apimachinery scheme machinery) to run ~200 lines of path splitting,
// and its only deviation from this port is a log line. The upstream test
// tables are ported in requestinfo_test.go so the two cannot drift unseen;
// when upgrading, diff the upstream file against the version above.
//
// Deliberate differences, each a no-op for requests the API server accepts:
//   - upstream decodes every list option with the scheme's parameter codec and
//     drops the name taken from fieldSelector=metadata.name=… when any of
//     them is malformed (a bad labelSelector or limit, say); this port
//     validates only the field selector. A request with another malformed
//     option is refused by the server with 400 before it does anything.
//   - no klog on a decoding error.

import (
	"errors"
	"slices"
	"strings"
)

// requestInfo is RequestInfo: what a Kubernetes API server's authorizer sees.
type requestInfo struct {
	// IsResourceRequest tells an API resource (or subresource) request from
	// a non-resource one (/healthz, /version, discovery).
	IsResourceRequest bool
	Path              string
	// Verb is the Kubernetes verb (get, list, watch, create, update, patch,
	// delete, deletecollection, proxy) for resource requests, and the lower
	// case HTTP method for the others.
	Verb        string
	APIPrefix   string
	APIGroup    string
	APIVersion  string
	Namespace   string
	Resource    string
	Subresource string
	Name        string
	// Parts are the path segments from the resource on.
	Parts []string
	// FieldSelector and LabelSelector are the raw selectors, set only for
	// list, watch and deletecollection.
	FieldSelector string
	LabelSelector string
}

// errNoKind is upstream's "unable to determine kind and namespace from url".
var errNoKind = errors.New("unable to determine kind and namespace from the URL")

// Upstream's sets. specialVerbs are verbs given as a path segment before the
// resource (deprecated forms /api/v1/watch/… and /api/v1/proxy/…).
var (
	specialVerbs               = []string{"proxy", "watch"}
	specialVerbsNoSubresources = []string{"proxy"}
	// namespaceSubresources tell /namespaces/{ns}/status apart from a
	// namespaced resource called "status".
	namespaceSubresources = []string{"status", "finalize"}
	verbsWithSelectors    = []string{"list", "watch", "deletecollection"}
)

// newRequestInfo is RequestInfoFactory.NewRequestInfo with the API server's
// own configuration: APIPrefixes {api, apis}, GrouplessAPIPrefixes {api}.
// path is the decoded URL path (upstream uses req.URL.Path); query the parsed
// query. On error the returned info holds what was known before the failure,
// as upstream.
func newRequestInfo(method, path string, query map[string][]string) (requestInfo, error) {
	info := requestInfo{
		IsResourceRequest: false,
		Path:              path,
		Verb:              strings.ToLower(method),
	}

	currentParts := splitPath(path)
	if len(currentParts) < 3 {
		return info, nil
	}
	if currentParts[0] != "api" && currentParts[0] != "apis" {
		return info, nil
	}
	info.APIPrefix = currentParts[0]
	currentParts = currentParts[1:]

	if info.APIPrefix != "api" {
		// One part (the prefix) is consumed already, so this asks "are there
		// four parts?".
		if len(currentParts) < 3 {
			return info, nil
		}
		info.APIGroup = currentParts[0]
		currentParts = currentParts[1:]
	}

	info.IsResourceRequest = true
	info.APIVersion = currentParts[0]
	currentParts = currentParts[1:]

	verbViaPathPrefix := false
	if slices.Contains(specialVerbs, currentParts[0]) {
		if len(currentParts) < 2 {
			return info, errNoKind
		}
		info.Verb = currentParts[0]
		currentParts = currentParts[1:]
		verbViaPathPrefix = true
	} else {
		switch method {
		case "POST":
			info.Verb = "create"
		case "GET", "HEAD":
			info.Verb = "get"
		case "PUT":
			info.Verb = "update"
		case "PATCH":
			info.Verb = "patch"
		case "DELETE":
			info.Verb = "delete"
		default:
			info.Verb = ""
		}
	}

	// /namespaces/{namespace}/{resource}/…: make the parts relative to the
	// resource, unless what follows the namespace is a namespace subresource.
	if currentParts[0] == "namespaces" {
		if len(currentParts) > 1 {
			info.Namespace = currentParts[1]
			if len(currentParts) > 2 && !slices.Contains(namespaceSubresources, currentParts[2]) {
				currentParts = currentParts[2:]
			}
		}
	} else {
		info.Namespace = ""
	}

	info.Parts = currentParts

	// resource/name/subresource/anything/else/is/not/interpreted
	switch {
	case len(info.Parts) >= 3 && !slices.Contains(specialVerbsNoSubresources, info.Verb):
		info.Subresource = info.Parts[2]
		fallthrough
	case len(info.Parts) >= 2:
		info.Name = info.Parts[1]
		fallthrough
	case len(info.Parts) >= 1:
		info.Resource = info.Parts[0]
	}

	// A get without a name is a list, or a watch.
	if info.Name == "" && info.Verb == "get" {
		if queryBool(query["watch"]) {
			info.Verb = "watch"
		} else {
			info.Verb = "list"
		}
		if vals := query["fieldSelector"]; len(vals) > 0 {
			if name, ok := fieldSelectorName(vals[0]); ok && isPathSegmentName(name) {
				info.Name = name
			}
		}
	}

	// A delete without a name deletes the collection.
	if info.Name == "" && info.Verb == "delete" {
		info.Verb = "deletecollection"
	}

	// Selectors are not recorded for the deprecated verb-in-path forms, which
	// do not support them consistently.
	if !verbViaPathPrefix && slices.Contains(verbsWithSelectors, info.Verb) {
		if vals := query["fieldSelector"]; len(vals) > 0 {
			info.FieldSelector = vals[0]
		}
		if vals := query["labelSelector"]; len(vals) > 0 {
			info.LabelSelector = vals[0]
		}
	}
	return info, nil
}

// splitPath returns the segments of a URL path.
func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return []string{}
	}
	return strings.Split(path, "/")
}

// queryBool is apimachinery's Convert_Slice_string_To_bool: only absence,
// "0" and "false" (any case) of the first value are false.
func queryBool(vals []string) bool {
	if len(vals) == 0 {
		return false
	}
	return vals[0] != "0" && !strings.EqualFold(vals[0], "false")
}

// isPathSegmentName is content.IsPathSegmentName reporting validity.
func isPathSegmentName(name string) bool {
	if name == "." || name == ".." {
		return false
	}
	return !strings.Contains(name, "/") && !strings.Contains(name, "%")
}

// fieldSelectorName returns the value that selector requires metadata.name
// to equal, as fields.ParseSelector(selector).RequiresExactMatch
// ("metadata.name") does; ok is false when the selector does not parse or
// does not pin the name.
func fieldSelectorName(selector string) (name string, ok bool) {
	parts := splitTerms(selector)
	slices.Sort(parts)
	found := false
	for _, part := range parts {
		if part == "" {
			continue
		}
		lhs, op, rhs, ok := splitTerm(part)
		if !ok {
			return "", false
		}
		value, ok := unescapeValue(rhs)
		if !ok {
			return "", false
		}
		// The first equality term on metadata.name in sorted order wins;
		// the rest must still parse.
		if !found && op != "!=" && lhs == "metadata.name" {
			name, found = value, true
		}
	}
	return name, found
}

// splitTerms splits a field selector at commas not escaped by a backslash;
// the terms keep their backslashes.
func splitTerms(selector string) []string {
	if len(selector) == 0 {
		return nil
	}
	terms := make([]string, 0, 1)
	start := 0
	inSlash := false
	for i, c := range selector {
		switch {
		case inSlash:
			inSlash = false
		case c == '\\':
			inSlash = true
		case c == ',':
			terms = append(terms, selector[start:i])
			start = i + 1
		}
	}
	return append(terms, selector[start:])
}

// termOperators in upstream's order: "==" before "=" so that the right-hand
// side does not start with "=".
var termOperators = []string{"!=", "==", "="}

// splitTerm splits a term at the first operator.
func splitTerm(term string) (lhs, op, rhs string, ok bool) {
	for i := range term {
		remaining := term[i:]
		for _, op := range termOperators {
			if strings.HasPrefix(remaining, op) {
				return term[:i], op, term[i+len(op):], true
			}
		}
	}
	return "", "", "", false
}

// unescapeValue is fields.UnescapeValue: \\ \, \= are escapes; any other
// escape, and a bare , or =, is an error.
func unescapeValue(s string) (string, bool) {
	if !strings.ContainsAny(s, `\,=`) {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	inSlash := false
	for _, c := range s {
		if inSlash {
			switch c {
			case '\\', ',', '=':
				b.WriteRune(c)
			default:
				return "", false
			}
			inSlash = false
			continue
		}
		switch c {
		case '\\':
			inSlash = true
		case ',', '=':
			return "", false
		default:
			b.WriteRune(c)
		}
	}
	if inSlash {
		return "", false
	}
	return b.String(), true
}
