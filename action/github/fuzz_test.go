package github

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/countersign/countersign/internal/golden"
)

// FuzzRoute feeds arbitrary methods, hosts, paths and bodies to the
// classifier: it must not panic, must claim every api.github.com request,
// and every parameter of a matched route must be non-empty.
func FuzzRoute(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		raw, _ := golden.Read(f, file)
		r := golden.Parse(f, raw, golden.Options{})
		f.Add(r.Method, r.Host, r.RawPath, string(r.Body))
	}
	for _, s := range []string{
		"/repos/a/b/branches/x/y/z/protection", "/REPOS/a/b/git/refs/heads//main", "/repos/a/b/../../user/repos",
		"/api/v3/repos/o/r", "/api/uploads/repos/o/r/releases/1/assets", "/%zz/..%2f", "/repos/a/b/contents/" + string(make([]byte, 40)),
	} {
		f.Add("DELETE", "api.github.com", s, `{"private":false}`)
		f.Add("PATCH", "ghe.example.test", s, `{"force":"1"}`)
	}
	p := New(Options{EnterpriseHosts: []string{"ghe.example.test"}})
	f.Fuzz(func(t *testing.T, method, host, rawPath, body string) {
		r := req(method, host, rawPath, body)
		if r.Path == "" {
			if p, err := url.PathUnescape(rawPath); err == nil {
				r.Path = p
			}
		}
		a, ok := p.Classify(r)
		if host == "api.github.com" && !ok {
			t.Fatalf("Classify(%q %q) not claimed on api.github.com", method, rawPath)
		}
		if !ok {
			return
		}
		if a.Provider != "github" {
			t.Fatalf("Classify(%q %q) provider = %q", method, rawPath, a.Provider)
		}
		for k, v := range a.Params {
			if s, _ := v.(string); s == "" {
				t.Fatalf("Classify(%q %q) param %s is empty", method, rawPath, k)
			}
		}
		b, ok2 := p.Classify(r)
		if ok2 != ok || b.Operation != a.Operation {
			t.Fatalf("Classify(%q %q) not deterministic: %q then %q", method, rawPath, a.Operation, b.Operation)
		}
	})
}
