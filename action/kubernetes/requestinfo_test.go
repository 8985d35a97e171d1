package kubernetes

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The cases below are ported from k8s.io/apiserver v0.37.2
// pkg/endpoints/request/requestinfo_test.go (Copyright 2016 The Kubernetes
// Authors, Apache License 2.0), so that this port and upstream agree on the
// same inputs. Keep them as upstream has them; add our own cases in
// TestRequestInfoExtra.

func parseInfo(t *testing.T, method, target string) (requestInfo, error) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", target, err)
	}
	return newRequestInfo(method, u.Path, u.Query())
}

func TestGetAPIRequestInfo(t *testing.T) {
	type want struct {
		Verb, APIPrefix, APIGroup, APIVersion, Namespace, Resource, Subresource, Name string
		Parts                                                                         []string
	}
	tests := []struct {
		method, url string
		want        want
	}{
		// resource paths
		{"GET", "/api/v1/namespaces", want{"list", "api", "", "v1", "", "namespaces", "", "", []string{"namespaces"}}},
		{"GET", "/api/v1/namespaces/other", want{"get", "api", "", "v1", "other", "namespaces", "", "other", []string{"namespaces", "other"}}},
		{"GET", "/api/v1/namespaces/other/pods", want{"list", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/other/pods/foo", want{"get", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"HEAD", "/api/v1/namespaces/other/pods/foo", want{"get", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"GET", "/api/v1/pods", want{"list", "api", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"HEAD", "/api/v1/pods", want{"list", "api", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/other/pods/foo", want{"get", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"GET", "/api/v1/namespaces/other/pods", want{"list", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},

		// special verbs
		{"GET", "/api/v1/proxy/namespaces/other/pods/foo", want{"proxy", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", want{"proxy", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo", "subpath", "not", "a", "subresource"}}},
		{"GET", "/api/v1/watch/pods", want{"watch", "api", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=true", want{"watch", "api", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=false", want{"list", "api", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/watch/namespaces/other/pods", want{"watch", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/other/pods?watch=1", want{"watch", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/other/pods?watch=0", want{"list", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},

		// subresource identification
		{"GET", "/api/v1/namespaces/other/pods/foo/status", want{"get", "api", "", "v1", "other", "pods", "status", "foo", []string{"pods", "foo", "status"}}},
		{"GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", want{"get", "api", "", "v1", "other", "pods", "proxy", "foo", []string{"pods", "foo", "proxy", "subpath"}}},
		{"PUT", "/api/v1/namespaces/other/finalize", want{"update", "api", "", "v1", "other", "namespaces", "finalize", "other", []string{"namespaces", "other", "finalize"}}},
		{"PUT", "/api/v1/namespaces/other/status", want{"update", "api", "", "v1", "other", "namespaces", "status", "other", []string{"namespaces", "other", "status"}}},

		// verb identification
		{"PATCH", "/api/v1/namespaces/other/pods/foo", want{"patch", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"DELETE", "/api/v1/namespaces/other/pods/foo", want{"delete", "api", "", "v1", "other", "pods", "", "foo", []string{"pods", "foo"}}},
		{"POST", "/api/v1/namespaces/other/pods", want{"create", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},

		// deletecollection verb identification
		{"DELETE", "/api/v1/nodes", want{"deletecollection", "api", "", "v1", "", "nodes", "", "", []string{"nodes"}}},
		{"DELETE", "/api/v1/namespaces", want{"deletecollection", "api", "", "v1", "", "namespaces", "", "", []string{"namespaces"}}},
		{"DELETE", "/api/v1/namespaces/other/pods", want{"deletecollection", "api", "", "v1", "other", "pods", "", "", []string{"pods"}}},
		{"DELETE", "/apis/extensions/v1/namespaces/other/pods", want{"deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", []string{"pods"}}},

		// api group identification
		{"POST", "/apis/extensions/v1/namespaces/other/pods", want{"create", "apis", "extensions", "v1", "other", "pods", "", "", []string{"pods"}}},

		// api version identification
		{"POST", "/apis/extensions/v1beta3/namespaces/other/pods", want{"create", "apis", "extensions", "v1beta3", "other", "pods", "", "", []string{"pods"}}},
	}
	for _, tt := range tests {
		info, err := parseInfo(t, tt.method, tt.url)
		if err != nil {
			t.Errorf("newRequestInfo(%s %s) error %v", tt.method, tt.url, err)
		}
		if !info.IsResourceRequest {
			t.Errorf("newRequestInfo(%s %s) is not a resource request", tt.method, tt.url)
		}
		got := want{info.Verb, info.APIPrefix, info.APIGroup, info.APIVersion, info.Namespace, info.Resource, info.Subresource, info.Name, info.Parts}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("newRequestInfo(%s %s) mismatch (-want +got):\n%s", tt.method, tt.url, diff)
		}
	}

	errorCases := map[string]string{
		"no resource path":            "/",
		"just apiversion":             "/api/version/",
		"just prefix, group, version": "/apis/group/version/",
		"apiversion with no resource": "/api/version/",
		"bad prefix":                  "/badprefix/version/resource",
		"missing api group":           "/apis/version/resource",
	}
	for name, u := range errorCases {
		info, err := parseInfo(t, "GET", u)
		if err != nil {
			t.Errorf("%s: newRequestInfo(%q) error %v", name, u, err)
		}
		if info.IsResourceRequest {
			t.Errorf("%s: newRequestInfo(%q) is a resource request", name, u)
		}
	}
}

func TestGetNonAPIRequestInfo(t *testing.T) {
	tests := map[string]struct {
		url  string
		want bool
	}{
		"simple groupless":  {"/api/version/resource", true},
		"simple group":      {"/apis/group/version/resource/name/subresource", true},
		"more steps":        {"/api/version/resource/name/subresource", true},
		"group list":        {"/apis/batch/v1/job", true},
		"group get":         {"/apis/batch/v1/job/foo", true},
		"group subresource": {"/apis/batch/v1/job/foo/scale", true},

		"bad root":                     {"/not-api/version/resource", false},
		"group without enough steps":   {"/apis/extensions/v1beta1", false},
		"group without enough steps 2": {"/apis/extensions/v1beta1/", false},
		"not enough steps":             {"/api/version", false},
		"one step":                     {"/api", false},
		"zero step":                    {"/", false},
		"empty":                        {"", false},
	}
	for name, tt := range tests {
		info, err := parseInfo(t, "GET", tt.url)
		if err != nil {
			t.Errorf("%s: newRequestInfo(%q) error %v", name, tt.url, err)
		}
		if info.IsResourceRequest != tt.want {
			t.Errorf("%s: newRequestInfo(%q).IsResourceRequest = %v, want %v", name, tt.url, info.IsResourceRequest, tt.want)
		}
	}
}

func TestSelectorParsing(t *testing.T) {
	tests := []struct {
		name, method, url                        string
		wantName, wantVerb, wantField, wantLabel string
	}{
		{"no selector", "GET", "/apis/group/version/resource", "", "list", "", ""},
		{"metadata.name selector", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1", "name1", "list", "metadata.name=name1", ""},
		{"metadata.name selector with watch", "GET", "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1", "name1", "watch", "metadata.name=name1", ""},
		{"random selector", "GET", "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux", "", "list", "foo=bar", "baz=qux"},
		{"invalid selector with metadata.name", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "", "list", "metadata.name=name1,foo", ""},
		{"invalid selector with metadata.name with watch", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "", "watch", "metadata.name=name1,foo", ""},
		{"invalid selector with metadata.name with watch false", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "", "list", "metadata.name=name1,foo", ""},
		{"selector on deletecollection is honored", "DELETE", "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux", "", "deletecollection", "foo=bar", "baz=qux"},
		{"selector on repeated param matches parsed param", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar&labelSelector=foo=bar&labelSelector=foo=baz", "foo", "list", "metadata.name=foo", "foo=bar"},
		{"selector on other verb is ignored", "GET", "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar", "name", "get", "", ""},
		{"selector on deprecated root type watch is not parsed", "GET", "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "", "watch", "", ""},
		{"selector on deprecated root item watch is not parsed", "GET", "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "name", "watch", "", ""},
	}
	for _, tt := range tests {
		info, err := parseInfo(t, tt.method, tt.url)
		if err != nil {
			t.Errorf("%s: error %v", tt.name, err)
		}
		got := []string{info.Name, info.Verb, info.FieldSelector, info.LabelSelector}
		want := []string{tt.wantName, tt.wantVerb, tt.wantField, tt.wantLabel}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: newRequestInfo(%s %s) [name verb field label] mismatch (-want +got):\n%s", tt.name, tt.method, tt.url, diff)
		}
	}
}

// TestRequestInfoExtra covers behaviour the upstream tables do not spell out,
// each checked against the upstream code it ports.
func TestRequestInfoExtra(t *testing.T) {
	tests := []struct {
		name, method, url  string
		wantVerb, wantName string
		wantErr            bool
	}{
		{"watch value is case-insensitive false", "GET", "/api/v1/pods?watch=FALSE", "list", "", false},
		{"empty watch value is true", "GET", "/api/v1/pods?watch=", "watch", "", false},
		{"only the first watch value counts", "GET", "/api/v1/pods?watch=0&watch=1", "list", "", false},
		{"== pins the name", "GET", "/api/v1/pods?fieldSelector=metadata.name%3D%3Dweb", "list", "web", false},
		{"!= does not pin the name", "GET", "/api/v1/pods?fieldSelector=metadata.name!%3Dweb", "list", "", false},
		{"first term in sorted order wins", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Db,metadata.name%3Da", "list", "a", false},
		{"escaped comma is data", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Da%5C,b", "list", "a,b", false},
		{"bad escape drops the name", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Da%5Cx", "list", "", false},
		{"trailing backslash drops the name", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Da%5C", "list", "", false},
		{"name with a slash is not a path segment", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Da/b", "list", "", false},
		{"name .. is not a path segment", "GET", "/api/v1/pods?fieldSelector=metadata.name%3D..", "list", "", false},
		{"name with percent is not a path segment", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Da%25b", "list", "", false},
		{"empty terms are skipped", "GET", "/api/v1/pods?fieldSelector=,metadata.name%3Dweb,", "list", "web", false},
		{"fieldSelector on a named get is ignored", "GET", "/api/v1/namespaces/default/pods/web?fieldSelector=metadata.name%3Dother", "get", "web", false},
		// Upstream returns before setting the verb; the API server answers
		// such a request with 500 and does nothing.
		{"deprecated watch without a resource", "GET", "/api/v1/watch", "get", "", true},
		{"deprecated proxy without a resource", "DELETE", "/apis/apps/v1/proxy", "delete", "", true},
		{"delete with a fieldSelector name is still deletecollection", "DELETE", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb", "deletecollection", "", false},
		{"namespace subresource, not a resource called status", "GET", "/api/v1/namespaces/prod/status", "get", "prod", false},
		{"unknown method has no verb", "OPTIONS", "/api/v1/pods", "", "", false},
		{"non-resource verb is the lower-case method", "PUT", "/healthz", "put", "", false},
	}
	for _, tt := range tests {
		info, err := parseInfo(t, tt.method, tt.url)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: newRequestInfo(%s %s) error %v, want error %v", tt.name, tt.method, tt.url, err, tt.wantErr)
		}
		if info.Verb != tt.wantVerb || info.Name != tt.wantName {
			t.Errorf("%s: newRequestInfo(%s %s) = verb %q name %q, want %q %q", tt.name, tt.method, tt.url, info.Verb, info.Name, tt.wantVerb, tt.wantName)
		}
	}
}
