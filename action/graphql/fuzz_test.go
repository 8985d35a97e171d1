package graphql

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

// FuzzGraphQL feeds arbitrary paths, content types and bodies (and the same
// text as a GET query) to the classifier: it must not panic, must claim
// every POST to a GraphQL path and any other method with a body there, and a classified request without a parse
// error has a known operation type and string field names. Denials must
// format for any request.
func FuzzGraphQL(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		raw, _ := golden.Read(f, file)
		r := golden.Parse(f, raw, golden.Options{})
		f.Add(r.Path, r.Header.Get("Content-Type"), string(r.Body))
	}
	for _, s := range []string{
		`[{"query":"{a}"},{"query":"mutation{b}"}]`, `{"query":"mutation { ...A } fragment A on M { ...A x }"}`,
		`{"query":"{ a(s: \"\"\"x\\\"\"\"\"\"\") }"}`, `{"query":null,"extensions":{"persistedQuery":{}}}`,
		`{"query":"{a}","variables":"{\"x\":1}"}`, `query=mutation+%7B+a+%7D`,
		`{"query":"{a}"} x`, `{"query":"query A {a} mutation A {b}","operationName":"A"}`,
		`{"extensions":{"persisted\u0051uery":{}}}`, `query=%7Ba%7D&query=mutation+%7Bb%7D`,
		`query=%7Ba%7D&+query=mutation+%7Bb%7D`, `{"query":"{a}","x":"&query=mutation{b}#"}`,
		`{"query":"{a}","queryId":"b"}`, `[{"query":"{a}"},{"doc_id":"1"}]`,
	} {
		f.Add("/graphql", "application/json", s)
		f.Add("/v1/query", "application/json", s)
	}
	for _, path := range []string{"/graphql", "/query"} {
		f.Add(path, "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{a}\"}\r\n--B--\r\n")
		f.Add(path, "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{a}\"}\r\n"+
			"--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"mutation{b}\"}\r\n--B--\r\n")
		f.Add(path, "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{a}\"}\r\n"+
			"--B\r\nContent-Disposition: attachment; name=\" query\"\r\n\r\nx--B\r\n--B--\r\n")
		f.Add(path, `application/x-www-form-urlencoded; profile="application/graphql"`, "mutation { b }")
	}
	p := New(Options{})
	f.Fuzz(func(t *testing.T, path, contentType, body string) {
		r := &action.Request{Method: "POST", Host: "gql.example.test", Path: path, RawPath: path,
			Query: url.Values{}, Header: http.Header{"Content-Type": {contentType}}, Body: []byte(body), BodySize: int64(len(body))}
		check(t, p, r, isGraphQLPath(path))
		// A body on a GraphQL path is read whatever the method.
		u := *r
		u.Method = "PUT"
		check(t, p, &u, isGraphQLPath(path) && strings.TrimSpace(body) != "")
		g := &action.Request{Method: "GET", Host: "gql.example.test", Path: path, RawPath: path,
			Query: url.Values{"query": {body}}, Header: http.Header{}}
		check(t, p, g, false)
	})
}

func check(t *testing.T, p *Provider, r *action.Request, mustClaim bool) {
	t.Helper()
	a, ok := p.Classify(r)
	if mustClaim && !ok {
		t.Fatalf("Classify(%s %q) not claimed on a GraphQL path", r.Method, r.Path)
	}
	if !ok {
		return
	}
	if a.Provider != "graphql" {
		t.Fatalf("Classify(%s %q) provider = %q", r.Method, r.Path, a.Provider)
	}
	if a.ParseError == "" {
		if _, known := typeRank[a.Fields["operation_type"].(string)]; !known {
			t.Fatalf("Classify(%s %q) operation_type = %v", r.Method, r.Path, a.Fields["operation_type"])
		}
		for _, f := range a.Fields["fields"].([]any) {
			if s, _ := f.(string); s == "" {
				t.Fatalf("Classify(%s %q) field %v", r.Method, r.Path, f)
			}
		}
	}
	if resp := p.Respond(r, a, action.Denial{Status: 403, Decision: "deny", Message: "countersign: no"}); resp.Status != 200 || len(resp.Body) == 0 {
		t.Fatalf("Respond(%s %q) = %d %q", r.Method, r.Path, resp.Status, resp.Body)
	}
}
