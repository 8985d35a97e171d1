package kubernetes

import (
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

// FuzzRequestInfo feeds arbitrary methods, paths, queries and bodies to the
// RequestInfo port, the detection heuristics and Classify. They must not
// panic, must claim every configured-host request, and must keep the
// invariants below. Seeds: the captured kubectl requests and the ported
// upstream cases.
func FuzzRequestInfo(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, path := range files {
		raw, _ := golden.Read(f, path)
		r, err := golden.Request(raw, goldenOptions)
		if err != nil {
			f.Fatalf("%s: %v", path, err)
		}
		f.Add(r.Method, r.Path, r.Query.Encode(), string(r.Body))
	}
	for _, s := range []string{
		"GET /api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource",
		"GET /apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
		"GET /api/v1/watch",
		"DELETE /k8s/clusters/c-1/api/v1/namespaces/prod",
		"GET /apis/a.b/v1beta1/namespaces/x/y/z/w?fieldSelector=metadata.name%3D%3Da%5C%2Cb",
		"PUT /api/v1/namespaces/other/finalize",
		"GET //api//v1//",
	} {
		method, target, _ := strings.Cut(s, " ")
		path, query, _ := strings.Cut(target, "?")
		f.Add(method, path, query, "")
	}
	f.Add("DELETE", "/api/v1/namespaces/x/pods/y", "", `{"dryRun":["All"],"dryRun":["All"]}`)

	configured := New(Options{Hosts: []string{"k8s.example.test"}})
	detecting := New(Options{})
	f.Fuzz(func(t *testing.T, method, path, rawQuery, body string) {
		query, _ := url.ParseQuery(rawQuery)
		info, err := newRequestInfo(method, path, query)
		if info.IsResourceRequest {
			if info.APIPrefix != "api" && info.APIPrefix != "apis" {
				t.Fatalf("resource request with prefix %q", info.APIPrefix)
			}
			if err == nil && len(info.Parts) == 0 {
				t.Fatalf("resource request without parts: %+v", info)
			}
		} else if err != nil {
			t.Fatalf("non-resource request with error %v", err)
		}
		if info.Verb == "get" && info.Name == "" && info.IsResourceRequest && err == nil {
			t.Fatalf("get without a name should be list or watch: %+v", info)
		}

		r := &action.Request{
			Method: method, Scheme: "https", Host: "k8s.example.test", Port: 443,
			Path: path, RawPath: path, Query: query, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(body), BodySize: int64(len(body)),
		}
		a, ok := configured.Classify(r)
		if !ok {
			t.Fatalf("configured host not claimed: %s %s", method, path)
		}
		if a.ReadOnly && a.Destructive {
			t.Fatalf("both read-only and destructive: %+v", a)
		}
		if a.ReadOnly && !slices.Contains([]string{"get", "list", "watch", "head", "options"}, a.Operation) {
			t.Fatalf("read-only with verb %q", a.Operation)
		}
		_ = configured.Respond(r, a, action.Denial{Status: 403, Message: "countersign: fuzz"})

		r.Host = "unknown.example"
		if d, ok := detecting.Classify(r); ok && d.Operation != a.Operation {
			t.Fatalf("detected verb %q differs from configured %q", d.Operation, a.Operation)
		}
	})
}
