package github

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

func req(method, host, rawPath, body string) *action.Request {
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		p = rawPath
	}
	r := &action.Request{Method: method, Scheme: "https", Host: host, Port: 443, Path: p, RawPath: rawPath,
		Query: url.Values{}, Header: http.Header{}}
	if body != "" {
		r.Body = []byte(body)
		r.BodySize = int64(len(body))
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	return r
}

// TestKeyOperations checks that the operations policies most need resolve
// from the generated table, on api.github.com and on GHES.
func TestKeyOperations(t *testing.T) {
	tests := []struct {
		method, path string
		want         string
		params       map[string]string
	}{
		{"DELETE", "/repos/acme/shop", "repos/delete", map[string]string{"owner": "acme", "repo": "shop"}},
		{"GET", "/repos/acme/shop", "repos/get", map[string]string{"owner": "acme", "repo": "shop"}},
		{"PATCH", "/repos/acme/shop", "repos/update", map[string]string{"owner": "acme", "repo": "shop"}},
		{"DELETE", "/repos/acme/shop/git/refs/heads/main", "git/delete-ref", map[string]string{"owner": "acme", "repo": "shop", "ref": "heads/main"}},
		{"PATCH", "/repos/acme/shop/git/refs/heads/feature/x", "git/update-ref", map[string]string{"owner": "acme", "repo": "shop", "ref": "heads/feature/x"}},
		{"PUT", "/repos/acme/shop/branches/main/protection", "repos/update-branch-protection", map[string]string{"owner": "acme", "repo": "shop", "branch": "main"}},
		{"DELETE", "/repos/acme/shop/branches/release/1.0/protection", "repos/delete-branch-protection", map[string]string{"owner": "acme", "repo": "shop", "branch": "release/1.0"}},
		{"PUT", "/repos/acme/shop/pulls/42/merge", "pulls/merge", map[string]string{"owner": "acme", "repo": "shop", "pull_number": "42"}},
		{"POST", "/user/repos", "repos/create-for-authenticated-user", nil},
		{"PUT", "/repos/acme/shop/contents/docs/a%20b.md", "repos/create-or-update-file-contents", map[string]string{"owner": "acme", "repo": "shop", "path": "docs/a b.md"}},
		{"POST", "/repos/acme/shop/pulls", "pulls/create", map[string]string{"owner": "acme", "repo": "shop"}},
		{"POST", "/repos/acme/shop/transfer", "repos/transfer", map[string]string{"owner": "acme", "repo": "shop"}},
		{"GET", "/", "meta/root", nil},
	}
	p := New(Options{})
	for _, tt := range tests {
		for _, host := range []string{"api.github.com", "ghe.example.test"} {
			path := tt.path
			if host != "api.github.com" {
				path = "/api/v3" + strings.TrimSuffix(tt.path, "/")
			}
			a, ok := p.Classify(req(tt.method, host, path, ""))
			if !ok || a.Operation != tt.want {
				t.Errorf("Classify(%s %s%s) = %q, %v; want %q", tt.method, host, path, a.Operation, ok, tt.want)
				continue
			}
			var wantParams map[string]any
			if tt.params != nil {
				wantParams = map[string]any{}
				for k, v := range tt.params {
					wantParams[k] = v
				}
			}
			if diff := cmp.Diff(wantParams, a.Params); diff != "" {
				t.Errorf("Classify(%s %s%s) params (-want +got):\n%s", tt.method, host, path, diff)
			}
			if a.Fields["ghes"] != (host != "api.github.com") {
				t.Errorf("Classify(%s %s%s) ghes = %v", tt.method, host, path, a.Fields["ghes"])
			}
		}
	}
}

func TestClassify(t *testing.T) {
	p := New(Options{EnterpriseHosts: []string{"GHE.Corp.Example."}})
	tests := []struct {
		name string
		give *action.Request
		ok   bool
		want action.Action
	}{
		{
			name: "literal beats param",
			give: req("GET", "api.github.com", "/repos/acme/shop/branches/main/protection", ""),
			ok:   true,
			want: repoAction("repos/get-branch-protection", true, false, map[string]any{"branch": "main"}),
		},
		{
			name: "branch named like a literal",
			give: req("GET", "api.github.com", "/repos/acme/shop/branches/protection/protection", ""),
			ok:   true,
			want: repoAction("repos/get-branch-protection", true, false, map[string]any{"branch": "protection"}),
		},
		{
			name: "branch with slashes",
			give: req("GET", "api.github.com", "/repos/acme/shop/branches/feature/a/b", ""),
			ok:   true,
			want: repoAction("repos/get-branch", true, false, map[string]any{"branch": "feature/a/b"}),
		},
		{
			name: "encoded slash stays in one segment",
			give: req("GET", "api.github.com", "/repos/acme/shop/branches/feature%2Fx/protection", ""),
			ok:   true,
			want: repoAction("repos/get-branch-protection", true, false, map[string]any{"branch": "feature/x"}),
		},
		{
			name: "commit sha param before greedy ref",
			give: req("GET", "api.github.com", "/repos/acme/shop/commits/abc123/comments", ""),
			ok:   true,
			want: repoAction("repos/list-comments-for-commit", true, false, map[string]any{"commit_sha": "abc123"}),
		},
		{
			name: "owner and repo are lower-cased, literals match any case",
			give: req("DELETE", "api.github.com", "/REPOS/ACME/Shop/", ""),
			ok:   true,
			want: repoAction("repos/delete", false, true, nil),
		},
		{
			name: "dot segments are resolved before matching",
			give: req("DELETE", "api.github.com", "/repos/acme/shop/labels/x/../..", ""),
			ok:   true,
			want: repoAction("repos/delete", false, true, nil),
		},
		{
			// GitHub Enterprise Cloud with data residency serves
			// github.com's API at api.SUBDOMAIN.ghe.com's root (found by
			// review).
			name: "data residency host",
			give: req("DELETE", "api.acme.ghe.com", "/repos/acme/shop", ""),
			ok:   true,
			want: func() action.Action {
				a := repoAction("repos/delete", false, true, nil)
				a.Fields["host"] = "api.acme.ghe.com"
				return a
			}(),
		},
		{
			name: "not a data residency host",
			give: req("DELETE", "api.acme.example.ghe.com", "/repos/acme/shop", ""),
			ok:   false,
		},
		{
			name: "HEAD matches GET",
			give: req("HEAD", "api.github.com", "/repos/acme/shop", ""),
			ok:   true,
			want: repoAction("repos/get", true, false, nil),
		},
		{
			name: "unknown route on api.github.com keeps owner and repo",
			give: req("DELETE", "api.github.com", "/repos/acme/shop/not-a-route/1", ""),
			ok:   true,
			want: action.Action{Provider: "github", Destructive: true, Resources: []string{"acme/shop"},
				Fields: map[string]any{"host": "api.github.com", "ghes": false, "owner": "acme", "repo": "shop"}},
		},
		{
			name: "unknown route on another host is not GitHub",
			give: req("GET", "api.example.test", "/api/v3/widgets/1", ""),
		},
		{
			name: "known route on an unconfigured host with /api/v3 is GHES",
			give: req("DELETE", "git.corp.test", "/api/v3/repos/acme/shop", ""),
			ok:   true,
			want: func() action.Action {
				a := repoAction("repos/delete", false, true, nil)
				a.Fields["host"], a.Fields["ghes"] = "git.corp.test", true
				return a
			}(),
		},
		{
			name: "configured GHES host claims unknown routes",
			give: req("POST", "ghe.corp.example", "/api/v3/no/such/route", ""),
			ok:   true,
			want: action.Action{Provider: "github", Fields: map[string]any{"host": "ghe.corp.example", "ghes": true}},
		},
		{
			name: "GHES manage API only on configured hosts",
			give: req("GET", "ghe.corp.example", "/manage/v1/maintenance", ""),
			ok:   true,
			want: action.Action{Provider: "github", Operation: "enterprise-admin/get-manage-maintenance", ReadOnly: true,
				Fields: map[string]any{"host": "ghe.corp.example", "ghes": true}},
		},
		{
			name: "GHES manage API path elsewhere is not GitHub",
			give: req("GET", "api.example.test", "/manage/v1/maintenance", ""),
		},
		{
			name: "release asset upload",
			give: req("POST", "uploads.github.com", "/repos/acme/shop/releases/7/assets", ""),
			ok:   true,
			want: func() action.Action {
				a := repoAction("repos/upload-release-asset", false, false, map[string]any{"release_id": "7"})
				a.Fields["host"] = "uploads.github.com"
				return a
			}(),
		},
		{
			name: "visibility public",
			give: req("PATCH", "api.github.com", "/repos/acme/shop", `{"visibility":"Public"}`),
			ok:   true,
			want: withFields(repoAction("repos/update", false, false, nil), map[string]any{"public_exposure": true, "archived": false}),
		},
		{
			name: "private as a string",
			give: req("PATCH", "api.github.com", "/repos/acme/shop", `{"private":"false"}`),
			ok:   true,
			want: withFields(repoAction("repos/update", false, false, nil), map[string]any{"public_exposure": true, "archived": false}),
		},
		{
			name: "rename is not exposure",
			give: req("PATCH", "api.github.com", "/repos/acme/shop", `{"name":"shop2","private":true}`),
			ok:   true,
			want: withFields(repoAction("repos/update", false, false, nil), map[string]any{"public_exposure": false, "archived": false}),
		},
		{
			name: "differently cased key is ignored, as GitHub does",
			give: req("PATCH", "api.github.com", "/repos/acme/shop", `{"Private":false}`),
			ok:   true,
			want: withFields(repoAction("repos/update", false, false, nil), map[string]any{"public_exposure": false, "archived": false}),
		},
		{
			name: "truncated body is assumed to expose",
			give: func() *action.Request {
				r := req("PATCH", "api.github.com", "/repos/acme/shop", `{"description":"aaaa`)
				r.BodyTruncated = true
				return r
			}(),
			ok: true,
			want: func() action.Action {
				a := withFields(repoAction("repos/update", false, false, nil), map[string]any{"public_exposure": true, "archived": true})
				a.ParseError = "the request body exceeds the inspection limit; it is assumed to make the repository public or force the update"
				return a
			}(),
		},
		{
			// A lenient JSON parser may read what this one cannot (a
			// comment before the object): it counts as making the
			// repository public (found by review).
			name: "body that is not JSON",
			give: req("PATCH", "api.github.com", "/repos/acme/shop", `/**/{"private":false}`),
			ok:   true,
			want: func() action.Action {
				a := repoAction("repos/update", false, false, nil)
				a.Fields["public_exposure"] = true
				a.Fields["archived"] = true
				a.ParseError = "the request body is not a JSON object; it is assumed to make the repository public or force the update"
				return a
			}(),
		},
		{
			name: "private org repo creation",
			give: req("POST", "api.github.com", "/orgs/Acme/repos", `{"name":"x","visibility":"internal"}`),
			ok:   true,
			want: action.Action{Provider: "github", Operation: "repos/create-in-org", Params: map[string]any{"org": "acme"},
				Fields: map[string]any{"host": "api.github.com", "ghes": false, "org": "acme", "public_exposure": false}},
		},
		{
			name: "fast-forward ref update",
			give: req("PATCH", "api.github.com", "/repos/acme/shop/git/refs/heads/main", `{"sha":"aa218f56b14c9653891f9e74264a383fa43fefbd"}`),
			ok:   true,
			want: withFields(repoAction("git/update-ref", false, false, map[string]any{"ref": "heads/main"}), map[string]any{"force": false}),
		},
		{
			name: "public gist",
			give: req("POST", "api.github.com", "/gists", `{"public":true,"files":{"a.txt":{"content":"x"}}}`),
			ok:   true,
			want: action.Action{Provider: "github", Operation: "gists/create",
				Fields: map[string]any{"host": "api.github.com", "ghes": false, "public_exposure": true}},
		},
		{
			name: "transfer is destructive",
			give: req("POST", "api.github.com", "/repos/acme/shop/transfer", `{"new_owner":"mallory"}`),
			ok:   true,
			want: repoAction("repos/transfer", false, true, nil),
		},
		{
			name: "tunnel",
			give: &action.Request{Method: "CONNECT", Host: "api.github.com", Port: 443, Tunnel: true},
		},
		{
			name: "other host",
			give: req("DELETE", "example.test", "/repos/acme/shop", ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Classify(tt.give)
			if ok != tt.ok {
				t.Fatalf("Classify(%s %s%s) ok = %v, want %v", tt.give.Method, tt.give.Host, tt.give.RawPath, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%s %s%s) mismatch (-want +got):\n%s", tt.give.Method, tt.give.Host, tt.give.RawPath, diff)
			}
		})
	}
}

// repoAction is the action for an acme/shop route on api.github.com.
func repoAction(op string, readOnly, destructive bool, extra map[string]any) action.Action {
	a := action.Action{
		Provider: "github", Operation: op, ReadOnly: readOnly, Destructive: destructive,
		Resources: []string{"acme/shop"},
		Params:    map[string]any{"owner": "acme", "repo": "shop"},
		Fields:    map[string]any{"host": "api.github.com", "ghes": false, "owner": "acme", "repo": "shop"},
	}
	for k, v := range extra {
		a.Params[k] = v
		a.Fields[k] = v
	}
	return a
}

func withFields(a action.Action, f map[string]any) action.Action {
	for k, v := range f {
		a.Fields[k] = v
	}
	return a
}

// TestRouteTable checks the generated table: sorted (so regeneration is
// deterministic and diffs are small), no two routes that the matcher could
// not tell apart, and at most one greedy parameter per template.
func TestRouteTable(t *testing.T) {
	if len(routeTable) < 1000 {
		t.Fatalf("routeTable has %d routes; the generator lost most of GitHub's API", len(routeTable))
	}
	type shapeKey struct{ method, shape string }
	seen := map[shapeKey]string{}
	for i, r := range routeTable {
		if i > 0 {
			prev := routeTable[i-1]
			if prev.template > r.template || prev.template == r.template && prev.method >= r.method {
				t.Errorf("routeTable not sorted at %d: %s %s after %s %s", i, r.method, r.template, prev.method, prev.template)
			}
		}
		var shape []string
		greedy := 0
		for _, seg := range splitTemplate(r.template) {
			name, ok := paramName(seg)
			switch {
			case !ok:
				shape = append(shape, strings.ToLower(seg))
			case greedyParams[name]:
				greedy++
				shape = append(shape, "{*}")
			default:
				shape = append(shape, "{}")
			}
		}
		if greedy > 1 {
			t.Errorf("%s %s has %d greedy parameters; the matcher supports one", r.method, r.template, greedy)
		}
		for b := base(1); b != 0 && b <= baseGHESRoot; b <<= 1 {
			if r.bases&b == 0 {
				continue
			}
			k := shapeKey{r.method, strings.Join(shape, "/") + "@" + string(rune('0'+b))}
			if other, dup := seen[k]; dup {
				t.Errorf("%s %s and %s have the same shape", r.method, r.template, other)
			}
			seen[k] = r.template
		}
	}
}

// TestEveryRouteMatchesItself fills each template with sample values and
// checks the route (or a more specific one with the same operation) is
// found, so no route is unreachable.
func TestEveryRouteMatchesItself(t *testing.T) {
	for _, r := range routeTable {
		var segs []string
		for _, seg := range splitTemplate(r.template) {
			if name, ok := paramName(seg); ok {
				segs = append(segs, "v-"+name)
				continue
			}
			segs = append(segs, seg)
		}
		for b := base(1); b <= baseGHESRoot; b <<= 1 {
			if r.bases&b == 0 {
				continue
			}
			m, ok := lookup(r.method, segs, b)
			if !ok || m.spec.operationID != r.operationID {
				got := ""
				if ok {
					got = m.spec.operationID
				}
				t.Errorf("lookup(%s %s) = %q, want %q", r.method, r.template, got, r.operationID)
			}
		}
	}
}

func TestRespond(t *testing.T) {
	p := New(Options{})
	r := req("DELETE", "api.github.com", "/repos/acme/shop", "")
	d := action.Denial{Status: 403, Decision: "deny", Message: `countersign: denied by policy GH-1: "no" & <never>`}
	// The raw body shows < and & as they are, for curl users.
	resp := p.Respond(r, action.Action{}, d)
	if resp.Status != 403 {
		t.Errorf("Respond status = %d, want 403", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Respond Content-Type = %q", ct)
	}
	if !strings.Contains(string(resp.Body), `\"no\" & <never>`) {
		t.Errorf("Respond body %s escapes the message for HTML", resp.Body)
	}
	var got map[string]string
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("Respond body %q: %v", resp.Body, err)
	}
	want := map[string]string{"message": d.Message, "documentation_url": "https://docs.github.com/rest", "status": "403"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Respond body (-want +got):\n%s", diff)
	}

	// A status the proxy chose for another reason (audit failure) is kept.
	resp = p.Respond(r, action.Action{}, action.Denial{Status: 503, Decision: "deny", Message: "countersign: x"})
	if resp.Status != 503 || !strings.Contains(string(resp.Body), `"status":"503"`) {
		t.Errorf("Respond(503) = %d %s", resp.Status, resp.Body)
	}
}

func BenchmarkClassify(b *testing.B) {
	p := New(Options{})
	r := req("PUT", "api.github.com", "/repos/acme/shop/branches/release/2.0/protection/required_status_checks/contexts", "")
	b.ReportAllocs()
	for b.Loop() {
		p.Classify(r)
	}
}

// GitHub serves every repository route under /repositories/{id} as well:
// such a request has the operation of its /repos/{owner}/{repo} twin and
// names the repository by id (found by review: it had no operation, and
// every rule keyed on one let it pass).
func TestRepositoryByID(t *testing.T) {
	p := New(Options{})
	tests := []struct {
		method, path, body, op string
		fields                 map[string]any
	}{
		{"DELETE", "/repositories/1296269", "", "repos/delete", nil},
		{"PATCH", "/repositories/1296269", `{"visibility":"public"}`, "repos/update", nil},
		{"PATCH", "/repositories/1296269/git/refs/heads/main", `{"sha":"aa","force":true}`, "git/update-ref", map[string]any{"ref": "heads/main"}},
		{"DELETE", "/repositories/1296269/git/refs/heads/main", "", "git/delete-ref", map[string]any{"ref": "heads/main"}},
		{"PUT", "/repositories/1296269/contents/README.md", `{"message":"x","content":"eA=="}`, "repos/create-or-update-file-contents", map[string]any{"path": "README.md"}},
	}
	for _, tt := range tests {
		a, ok := p.Classify(req(tt.method, "api.github.com", tt.path, tt.body))
		if !ok || a.Operation != tt.op || a.Fields["repository_id"] != "1296269" || a.Fields["owner"] != nil || a.Fields["repo"] != nil ||
			len(a.Resources) != 1 || a.Resources[0] != "repositories/1296269" {
			t.Errorf("%s %s = %+v, want %s on repositories/1296269 with no owner or repo", tt.method, tt.path, a, tt.op)
			continue
		}
		for k, v := range tt.fields {
			if a.Fields[k] != v {
				t.Errorf("%s %s: %s = %v, want %v", tt.method, tt.path, k, a.Fields[k], v)
			}
		}
	}
	// Writes are refused (rules keyed on the repository's name cannot judge
	// them); reads pass.
	for _, tt := range tests {
		a, _ := p.Classify(req(tt.method, "api.github.com", tt.path, tt.body))
		if status, reason, bad := p.Reject(a); !bad || status != http.StatusBadRequest || !strings.Contains(reason, "/repos/OWNER/REPO") {
			t.Errorf("%s %s: Reject = %d %q %v, want 400 naming /repos/OWNER/REPO", tt.method, tt.path, status, reason, bad)
		}
	}
	if a, _ := p.Classify(req("GET", "api.github.com", "/repositories/1296269/contents/README.md", "")); a.Operation != "repos/get-content" || a.Fields["rejected"] == true {
		t.Errorf("a read by id = %+v, want repos/get-content, not refused", a)
	}
	// Other environment writes by id are refused like any write by id.
	if a, _ := p.Classify(req("DELETE", "api.github.com", "/repositories/1296269/environments/production", "")); a.Fields["rejected"] != true {
		t.Errorf("deleting an environment by id = %+v, want refused", a)
	}
	// Environment secrets: go-github writes them by id, and GHES 3.7 has
	// no other route (found by review); decided by the policy.
	if a, _ := p.Classify(req("PUT", "api.github.com", "/repositories/1296269/environments/prod/secrets/DB_PASSWORD", `{"encrypted_value":"x","key_id":"1"}`)); a.Fields["rejected"] == true || a.Fields["repository_id"] != "1296269" || a.Operation == "" {
		t.Errorf("an environment secret by id = %+v, want classified, not refused", a)
	}
	// Not a repository id: the list of public repositories.
	if a, ok := p.Classify(req("GET", "api.github.com", "/repositories", "")); !ok || a.Fields["repository_id"] != nil {
		t.Errorf("GET /repositories = %+v", a)
	}
}
