package graphql

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

func post(host, path, contentType, body string) *action.Request {
	r := &action.Request{Method: "POST", Scheme: "https", Host: host, Port: 443, Path: path, RawPath: path,
		Query: url.Values{}, Header: http.Header{}, Body: []byte(body), BodySize: int64(len(body))}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func doc(query string, extra ...string) string {
	q, _ := json.Marshal(query)
	return `{"query":` + string(q) + strings.Join(extra, "") + `}`
}

// summary is the part of an action most tests check.
type summary struct {
	Provider, Operation, Type, Name, ParseError string
	Fields                                      []string
	ReadOnly, Destructive                       bool
}

func summarise(a action.Action) summary {
	s := summary{Provider: a.Provider, Operation: a.Operation, ParseError: a.ParseError, ReadOnly: a.ReadOnly, Destructive: a.Destructive}
	s.Type, _ = a.Fields["operation_type"].(string)
	s.Name, _ = a.Fields["operation_name"].(string)
	fs, _ := a.Fields["fields"].([]any)
	for _, f := range fs {
		s.Fields = append(s.Fields, f.(string))
	}
	return s
}

func TestClassify(t *testing.T) {
	p := New(Options{})
	const railway, path = "backboard.railway.com", "/graphql/v2"
	deep := strings.Repeat("{a", 200) + strings.Repeat("}", 200)
	fanout := "mutation { ...F0 } "
	for i := range 20 {
		fanout += "fragment F" + strconv.Itoa(i) + " on M { ...F" + strconv.Itoa(i+1) + " ...F" + strconv.Itoa(i+1) + " } "
	}
	fanout += "fragment F20 on M { volumeDelete(volumeId: 1) }"
	tests := []struct {
		name string
		give *action.Request
		ok   bool
		want summary
	}{
		{
			name: "operationName picks the query; the document's mutation still marks it",
			give: post(railway, path, "application/json", doc("query A { me { id } } mutation B { volumeDelete(volumeId: \"v\") }", `,"operationName":"A"`)),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me", Type: "query", Name: "A", Fields: []string{"me"}, Destructive: true},
		},
		{
			name: "several operations and no name: all of them count",
			give: post(railway, path, "application/json", doc("query A { me { id } } mutation B { volumeDelete(volumeId: \"v\") }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me,volumeDelete", Type: "mutation", Fields: []string{"me", "volumeDelete"}, Destructive: true},
		},
		{
			name: "an unknown operationName counts all operations",
			give: post(railway, path, "application/json", doc("query A { me { id } } mutation B { serviceDelete(id: 1) }", `,"operationName":"C"`)),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me,serviceDelete", Type: "mutation", Name: "C", Fields: []string{"me", "serviceDelete"}, Destructive: true},
		},
		{
			name: "mutation hidden in an inline fragment and a cyclic spread",
			give: post(railway, path, "application/json", doc("mutation { ... on Mutation { ...A } } fragment A on Mutation { ...B projectDelete(id: 1) } fragment B on Mutation { ...A }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "projectDelete", Type: "mutation", Fields: []string{"projectDelete"}, Destructive: true},
		},
		{
			name: "non-destructive mutation",
			give: post(railway, path, "application/json", doc("mutation { serviceInstanceRedeploy(serviceId: 1) }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "serviceInstanceRedeploy", Type: "mutation", Fields: []string{"serviceInstanceRedeploy"}},
		},
		{
			name: "subscription is not read-only",
			give: post(railway, path, "application/json", doc("subscription { deploymentLogs(id: 1) { message } }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "deploymentLogs", Type: "subscription", Fields: []string{"deploymentLogs"}},
		},
		{
			name: "variables sent as a JSON string",
			give: post(railway, path, "application/json", doc("mutation($id: String!) { volumeDelete(volumeId: $id) }", `,"variables":"{\"id\":\"v1\"}"`)),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "volumeDelete", Type: "mutation", Fields: []string{"volumeDelete"}, Destructive: true},
		},
		{
			name: "variables that are not an object",
			give: post(railway, path, "application/json", doc("{ me { id } }", `,"variables":[1]`)),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL variables are not a JSON object", Destructive: true},
		},
		{
			name: "form-encoded query",
			give: post(railway, path, "application/x-www-form-urlencoded", "query="+url.QueryEscape("mutation { volumeDelete(volumeId: 1) }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "volumeDelete", Type: "mutation", Fields: []string{"volumeDelete"}, Destructive: true},
		},
		{
			name: "multipart upload",
			give: post(railway, path, "multipart/form-data; boundary=XX",
				"--XX\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"+doc("mutation($f: Upload!) { fileDelete(file: $f) }", `,"variables":{"f":null}`)+
					"\r\n--XX\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XX--\r\n"),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "fileDelete", Type: "mutation", Fields: []string{"fileDelete"}, Destructive: true},
		},
		{
			name: "persisted query",
			give: post(railway, path, "application/json", `{"operationName":"X","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL request names a persisted query; the document is not in the request", Destructive: true},
		},
		{
			name: "too deep",
			give: post(railway, path, "application/json", doc(deep)),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL document nests too deeply", Destructive: true},
		},
		{
			name: "fragment fan-out",
			give: post(railway, path, "application/json", doc(fanout)),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL document spreads fragments too many times", Destructive: true},
		},
		{
			name: "only fragments",
			give: post(railway, path, "application/json", doc("fragment F on Q { a }")),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL document has no operation", Destructive: true},
		},
		{
			name: "truncated body",
			give: func() *action.Request {
				r := post(railway, path, "application/json", `{"query":"mutation { volumeDel`)
				r.BodyTruncated = true
				return r
			}(),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the request body exceeds the inspection limit", Destructive: true},
		},
		{
			name: "empty batch",
			give: post(railway, path, "application/json", `[]`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: "the GraphQL request carries no query document", Destructive: true},
		},
		{
			// gqlgen (encoding/json) would match either: refused.
			name: "case-variant key beside the query",
			give: post(railway, path, "application/json", `{"Query":"{ me { id } }","query":"mutation { volumeDelete(volumeId: 1) }"}`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: errMemberCase.Error(), Destructive: true},
		},
		{
			name: "upper-case key alone",
			give: post(railway, path, "application/json", `{"query":"{ me { id } }","QUERY":"mutation { volumeDelete(volumeId: 1) }"}`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: errMemberCase.Error(), Destructive: true},
		},
		{
			name: "a member name equal under Unicode folding",
			give: post(railway, path, "application/json", `{"query":"mutation($id: ID!) { volumeDelete(volumeId: $id) }","variables":{"id":"scratch"},"variableſ":{"id":"prod"}}`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: errMemberCase.Error(), Destructive: true},
		},
		{
			name: "query member twice",
			give: post(railway, path, "application/json", `{"query":"mutation { volumeDelete(volumeId: 1) }","query":"{ me { id } }"}`),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: errMemberCase.Error(), Destructive: true},
		},
		{
			// express-graphql reads the URL's query first.
			name: "document in the URL and in the body",
			give: func() *action.Request {
				r := post(railway, path, "application/json", `{"query":"{ me { id } }"}`)
				r.Query.Set("query", "mutation { volumeDelete(volumeId: 1) }")
				return r
			}(),
			ok:   true,
			want: summary{Provider: "graphql", ParseError: errURLAndBody.Error(), Destructive: true},
		},
		{
			name: "application/graphql with operationName in the URL",
			give: func() *action.Request {
				r := post(railway, path, "application/graphql", `query Me { me { id } }`)
				r.Query.Set("operationName", "Me")
				return r
			}(),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me", Type: "query", Name: "Me", Fields: []string{"me"}, ReadOnly: true},
		},
		{
			name: "GitHub GraphQL is reported as github",
			give: post("api.github.com", "/graphql", "application/json; charset=utf-8", doc("mutation { deleteRef(input: {refId: \"R\"}) { clientMutationId } }")),
			ok:   true,
			want: summary{Provider: "github", Operation: "deleteRef", Type: "mutation", Fields: []string{"deleteRef"}, Destructive: true},
		},
		{
			// GitHub Enterprise Cloud with data residency (found by review).
			name: "GitHub data residency GraphQL is reported as github",
			give: post("api.acme.ghe.com", "/graphql", "application/json", doc("mutation { deleteRef(input: {refId: \"R\"}) { clientMutationId } }")),
			ok:   true,
			want: summary{Provider: "github", Operation: "deleteRef", Type: "mutation", Fields: []string{"deleteRef"}, Destructive: true},
		},
		{
			name: "sniffed on a path that does not say graphql",
			give: post("hasura.example.test", "/v1/query", "application/json", doc("mutation { delete_orders(where: {}) { affected_rows } }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "delete_orders", Type: "mutation", Fields: []string{"delete_orders"}, Destructive: true},
		},
		{
			name: "sniffed when the member name is escaped",
			give: post("hasura.example.test", "/v1/run", "application/json", `{"\u0071uery":"mutation { delete_orders(where: {}) { affected_rows } }"}`),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "delete_orders", Type: "mutation", Fields: []string{"delete_orders"}, Destructive: true},
		},
		{
			name: "a search API's query is not GraphQL",
			give: post("search.example.test", "/v1/search", "application/json", `{"query":"red shoes"}`),
		},
		{
			name: "GitHub REST bodies are left to the github provider",
			give: post("api.github.com", "/repos/o/r/issues", "application/json", doc("{ viewer { login } }")),
		},
		{
			// graph-gophers' relay.Handler decodes a body whatever its
			// Content-Type, so a JSON body is sniffed whatever it says
			// (found by review); the gate is the query, as for any JSON.
			name: "sniffed whatever the content type says",
			give: post("api.example.test", "/v1/query", "text/plain", doc("{ me }")),
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me", Type: "query", Fields: []string{"me"}, ReadOnly: true},
		},
		{
			name: "a search API's query is not GraphQL whatever the content type says",
			give: post("search.example.test", "/v1/search", "text/plain", `{"query":"red shoes"}`),
		},
		{
			name: "GET without a query is a page, not a request",
			give: &action.Request{Method: "GET", Host: railway, Path: path, RawPath: path, Query: url.Values{}, Header: http.Header{}},
		},
		{
			name: "GET with a query",
			give: &action.Request{Method: "GET", Host: railway, Path: path, RawPath: path, Header: http.Header{},
				Query: url.Values{"query": {"{ me { id } }"}, "variables": {`{"a":1}`}}},
			ok:   true,
			want: summary{Provider: "graphql", Operation: "me", Type: "query", Fields: []string{"me"}, ReadOnly: true},
		},
		{
			name: "CORS preflight",
			give: &action.Request{Method: "OPTIONS", Host: railway, Path: path, RawPath: path, Query: url.Values{}, Header: http.Header{}},
		},
		{
			name: "tunnel",
			give: &action.Request{Method: "CONNECT", Host: railway, Port: 443, Tunnel: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Classify(tt.give)
			if ok != tt.ok {
				t.Fatalf("Classify(%s %s%s) ok = %v, want %v (%+v)", tt.give.Method, tt.give.Host, tt.give.Path, ok, tt.ok, got)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tt.want, summarise(got)); diff != "" {
				t.Errorf("Classify(%s %s%s) mismatch (-want +got):\n%s", tt.give.Method, tt.give.Host, tt.give.Path, diff)
			}
		})
	}
}

func TestArgumentsResolveVariablesAndDefaults(t *testing.T) {
	p := New(Options{})
	body := doc(`mutation($id: String = "dflt", $env: String!) { a: volumeDelete(volumeId: $id, env: $env, n: 3, f: 1.5, on: true, k: PROD, l: [1, "x"], o: {x: null}) }`,
		`,"variables":{"env":"production"}`)
	a, ok := p.Classify(post("backboard.railway.com", "/graphql/v2", "application/json", body))
	if !ok {
		t.Fatal("Classify: not claimed")
	}
	want := []any{map[string]any{
		"field": "volumeDelete", "alias": "a",
		"arguments": map[string]any{
			"volumeId": "dflt", "env": "production", "n": json.Number("3"), "f": json.Number("1.5"), "on": true,
			"k": "PROD", "l": []any{json.Number("1"), "x"}, "o": map[string]any{"x": nil},
		},
	}}
	if diff := cmp.Diff(want, a.Fields["selections"]); diff != "" {
		t.Errorf("selections (-want +got):\n%s", diff)
	}
}

func TestGitHubPublicExposure(t *testing.T) {
	p := New(Options{ProviderByHost: map[string]string{"GHE.Example.Test.": "github"}})
	tests := []struct {
		host, body string
		want       any
	}{
		{"api.github.com", doc(`mutation { createRepository(input: {name: "x", visibility: PUBLIC}) { repository { url } } }`), true},
		{"ghe.example.test", doc(`mutation($i: CreateRepositoryInput!) { createRepository(input: $i) { clientMutationId } }`, `,"variables":{"i":{"visibility":"PRIVATE"}}`), false},
		{"api.github.com", doc(`{ viewer { login } }`), nil},
		{"backboard.railway.com", doc(`mutation { createRepository(input: {visibility: PUBLIC}) }`), nil},
	}
	for _, tt := range tests {
		path := "/graphql"
		if tt.host == "ghe.example.test" {
			path = "/api/graphql"
		}
		a, _ := p.Classify(post(tt.host, path, "application/json", tt.body))
		if got := a.Fields["public_exposure"]; got != tt.want {
			t.Errorf("Classify(%s %s) public_exposure = %v, want %v", tt.host, tt.body, got, tt.want)
		}
	}
}

func TestDestructiveField(t *testing.T) {
	tests := map[string]bool{
		"volumeDelete": true, "deleteRepository": true, "delete_users_by_pk": true, "removeCollaborator": true,
		"purgeCache": true, "environmentDelete": true, "HTMLDelete": true, "resetDatabase": true, "DropTable": true,
		"dropdownUpdate": false, "undeleteIssue": false, "variableUpsert": false, "createRepository": false,
		"volumeDeleted": false, "": false, "_": false, "deleted": false,
	}
	for name, want := range tests {
		if got := destructiveField(name); got != want {
			t.Errorf("destructiveField(%q) = %v, want %v (words %q)", name, got, want, splitWords(name))
		}
	}
}

func TestDepth(t *testing.T) {
	tests := map[string]int{
		`{ a }`:                              1,
		`{ a(s: "{{{{") { b } }`:             2,
		`{ a(s: "\"{{") }`:                   2,
		"{ a(s: \"\"\"{{\\\"\"\"{{\"\"\") }": 2,
		"# {{{{\n{ a }":                      1,
		`query($v: [[Int]]) { a }`:           3,
		`}}}{`:                               1,
	}
	for in, want := range tests {
		if got := depth(in); got != want {
			t.Errorf("depth(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestIsGraphQLPath(t *testing.T) {
	tests := map[string]bool{
		"/graphql": true, "/graphql/": true, "/api/graphql": true, "/graphql/v2": true, "/v1/graphql": true,
		"/admin/api/2024-01/graphql.json": true, "/GraphQL": true, "/graphql/v": false, "/graphql/v2x": false,
		"/": false, "": false, "/graphqlx": false, "/v2": false, "v0": false, "/repos/o/r": false,
	}
	for in, want := range tests {
		if got := isGraphQLPath(in); got != want {
			t.Errorf("isGraphQLPath(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRespond(t *testing.T) {
	p := New(Options{})
	d := action.Denial{Status: 403, Decision: "deny", Message: "countersign: denied by policy RW-1: volumes are not deleted by agents"}
	one := `{"data":null,"errors":[{"message":"countersign: denied by policy RW-1: volumes are not deleted by agents","extensions":{"code":"FORBIDDEN","countersign":{"decision":"deny"}}}]}`
	tests := []struct {
		name string
		give *action.Request
		want string
	}{
		{"single", post("backboard.railway.com", "/graphql/v2", "application/json", doc("mutation { volumeDelete(volumeId: 1) }")), one + "\n"},
		{"batch", post("backboard.railway.com", "/graphql/v2", "application/json", "["+doc("{ a }")+","+doc("{ b }")+"]"), "[" + one + "," + one + "]\n"},
		{"get", &action.Request{Method: "GET", Query: url.Values{"query": {"{ a }"}}}, one + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.Respond(tt.give, action.Action{}, d)
			if resp.Status != 200 {
				t.Errorf("Respond status = %d, want 200", resp.Status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Respond Content-Type = %q", ct)
			}
			if diff := cmp.Diff(tt.want, string(resp.Body)); diff != "" {
				t.Errorf("Respond body (-want +got):\n%s", diff)
			}
		})
	}
}

func BenchmarkClassify(b *testing.B) {
	p := New(Options{})
	r := post("backboard.railway.com", "/graphql/v2", "application/json",
		doc("mutation variableUpsert($input: VariableUpsertInput!) { variableUpsert(input: $input) }",
			`,"variables":{"input":{"name":"DATABASE_URL","value":"x"}},"operationName":"variableUpsert"`))
	b.ReportAllocs()
	for b.Loop() {
		p.Classify(r)
	}
}

func TestRejectsWhatServersReadDifferently(t *testing.T) {
	p := New(Options{})
	r := post("backboard.railway.com", "/graphql/v2", "application/json", `{"query":"{ me { id } }","QUERY":"mutation { volumeDelete(volumeId: 1) }"}`)
	a, ok := p.Classify(r)
	if status, reason, bad := p.Reject(a); !ok || !bad || status != http.StatusBadRequest || reason != errMemberCase.Error() {
		t.Errorf("Reject(%+v) = %d %q %v, want 400 for a case-variant member", a, status, reason, bad)
	}
	a, _ = p.Classify(post("backboard.railway.com", "/graphql/v2", "application/json", `{"query":"{ me { id } }"}`))
	if _, _, bad := p.Reject(a); bad {
		t.Errorf("Reject refused a plain query: %+v", a)
	}
}

// A stored document's id names a document countersign cannot see: refused
// on a GraphQL path, in the URL of a bodiless GET too (it was a plain GET to
// the policy), and beside a query, which some servers skip for it.
func TestRefusesStoredDocuments(t *testing.T) {
	p := New(Options{})
	get := func(rawQuery string) *action.Request {
		r := post("api.example.com", "/graphql", "", "")
		r.Method = "GET"
		r.Query, _ = url.ParseQuery(rawQuery)
		return r
	}
	refused := map[string]*action.Request{
		"GET ?queryId=":              get("queryId=deleteEverything"),
		"GET ?id=":                   get("id=5"),
		"GET ?documentId= and query": get("documentId=sha256:ab&query=%7Bme%7Bid%7D%7D"),
		"GET ?QueryID=":              get("QueryID=x"),
		"GET ?doc_id=":               get("doc_id=123"),
		"JSON beside a query":        post("api.example.com", "/graphql", "application/json", doc("{ me { id } }", `,"queryId":"deleteEverything"`)),
		"JSON id beside a query":     post("api.example.com", "/graphql", "application/json", doc("{ me { id } }", `,"id":7`)),
		"a batch's second entry":     post("api.example.com", "/graphql", "application/json", "["+doc("{ me { id } }")+","+doc("{ me { id } }", `,"DocumentId":"x"`)+"]"),
		"form beside a query":        post("api.example.com", "/graphql", "application/x-www-form-urlencoded", "query=%7Bme%7Bid%7D%7D&queryid=x"),
		"form, PHP's reading":        post("api.example.com", "/graphql", "application/x-www-form-urlencoded", "query=%7Bme%7Bid%7D%7D&+queryId%5B%5D=x"),
	}
	for name, r := range refused {
		a, ok := p.Classify(r)
		if status, reason, bad := p.Reject(a); !ok || !bad || status != http.StatusBadRequest || reason != errStored.Error() {
			t.Errorf("%s: Classify = %+v %v, Reject = %d %q %v; want refused as a stored document", name, a, ok, status, reason, bad)
		}
	}
	// Relay's clients send "id": null beside the document; a GraphiQL
	// page is no GraphQL request; an id elsewhere is another API's.
	a, _ := p.Classify(post("api.example.com", "/graphql", "application/json", doc("{ me { id } }", `,"id":null`)))
	if _, _, bad := p.Reject(a); bad || a.Operation == "" {
		t.Errorf(`"id": null beside a query: %+v, refused %v`, a, bad)
	}
	if a, ok := p.Classify(get("")); ok {
		t.Errorf("a bare GET of /graphql is classified: %+v", a)
	}
	if a, ok := p.Classify(post("api.example.com", "/v1/items", "application/json", `{"id":"5","name":"x"}`)); ok {
		t.Errorf("another API's body with an id is classified: %+v", a)
	}
}

// A request to a GraphQL endpoint that countersign cannot read is refused,
// not decided without fields (found by review: a volumeDelete nested 130
// inline fragments deep had no fields, and no rule about mutations fired).
func TestRejectsWhatItCannotRead(t *testing.T) {
	p := New(Options{})
	deep := "mutation { " + strings.Repeat("... on Mutation { ", 130) + `volumeDelete(volumeId: \"v\")` + strings.Repeat(" }", 130) + " }"
	for name, body := range map[string]string{
		"too deep":        `{"query":"` + deep + `"}`,
		"does not parse":  `{"query":"mutation { volumeDelete(volumeId: "}`,
		"persisted query": `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`,
	} {
		a, ok := p.Classify(post("backboard.railway.com", "/graphql/v2", "application/json", body))
		if status, _, bad := p.Reject(a); !ok || !bad || status != http.StatusBadRequest || !a.Destructive {
			t.Errorf("%s: Classify = %+v, Reject = %d %v; want refused with 400", name, a, status, bad)
		}
	}
}

// A persisted query's hash is refused the way Apollo's and urql's clients
// understand as "send the document"; a trusted document's id and a body
// past the limit go to the policy, destructive; an unreadable document on
// a path that does not say GraphQL is refused too (found by review).
func TestUnreadableRequestsAnswers(t *testing.T) {
	p := New(Options{})
	apq := post("backboard.railway.com", "/graphql/v2", "application/json", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`)
	a, _ := p.Classify(apq)
	if _, _, bad := p.Reject(a); !bad {
		t.Fatalf("a persisted query's hash was not refused: %+v", a)
	}
	resp := p.Respond(apq, a, action.Denial{Status: 400, Decision: "deny", Message: "countersign: no document"})
	if !strings.Contains(string(resp.Body), `"message":"PersistedQueryNotFound"`) || !strings.Contains(string(resp.Body), `"code":"PERSISTED_QUERY_NOT_FOUND"`) {
		t.Errorf("answer to a persisted query: %s", resp.Body)
	}
	// A trusted document's id: its document is not in the request either.
	a, ok := p.Classify(post("backboard.railway.com", "/graphql/v2", "application/json", `{"documentId":"sha256:ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}`))
	if _, _, bad := p.Reject(a); !ok || !bad {
		t.Errorf("trusted document: %+v, refused %v; want refused", a, bad)
	}
	// A body past the limit: 413, which raising inspect.body_limit lifts.
	r := post("backboard.railway.com", "/graphql/v2", "application/json", `{"query":"mutation { volumeDelete(`)
	r.BodyTruncated = true
	a, _ = p.Classify(r)
	if status, reason, bad := p.Reject(a); !bad || status != http.StatusRequestEntityTooLarge || !strings.Contains(reason, "inspect.body_limit") {
		t.Errorf("a body past the limit: Reject = %d %q %v, want 413", status, reason, bad)
	}
	if resp := p.Respond(r, a, action.Denial{Status: 413, Decision: "deny", Message: "countersign: too large"}); resp.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body past the limit is answered %d, want 413", resp.Status)
	}
	// Sniffed elsewhere: a document too deep to read (even after a
	// comment) is refused; a persisted query's hash is answered so the
	// client sends the document; another API's search text is its own.
	deep := `#x\n mutation { ` + strings.Repeat("... on Mutation { ", 130) + "delete_board(board_id: 1)" + strings.Repeat(" }", 130) + " }"
	a, ok = p.Classify(post("api.monday.com", "/v2", "application/json", `{"query":"`+deep+`"}`))
	if _, _, bad := p.Reject(a); !ok || !bad {
		t.Errorf("an unreadable document on /v2: claimed %v, %+v; want refused", ok, a)
	}
	// A document graphql-js reads but gqlparser refuses (a control
	// character in a comment) is refused when it starts as a document.
	a, ok = p.Classify(post("apollo.internal", "/", "application/json", `{"query":"mutation { volumeDelete(volumeId: \"v\") } # \u0001"}`))
	if _, _, bad := p.Reject(a); !ok || !bad {
		t.Errorf("a document gqlparser refuses at /: claimed %v, %+v; want refused", ok, a)
	}
	// What lenient servers still run (found by review): a member in
	// another case (gqlgen at /query), variables that do not decode, a
	// batch mixing a document with something else.
	for _, body := range []string{
		`{"QUERY":"mutation { volumeDelete(volumeId: \"v\") }"}`,
		`{"query":"{ a }","QUERY":"mutation { volumeDelete(volumeId: \"v\") }"}`,
		`{"query":"mutation { volumeDelete(volumeId: \"v\") }","variables":"[1]"}`,
		`[{"query":"mutation { volumeDelete(volumeId: \"v\") }"},{"x":1}]`,
		// gqlparser takes a description before an operation (found by review).
		`{"QUERY":"\"d\" mutation { deleteAll }"}`,
		`{"QUERY":"\"\"\"d\"\"\" mutation { deleteAll }"}`,
		`{"QUERY":"query Q($id: ID!) { node(id: $id) { id } }"}`,
		`{"QUERY":"fragment F on Mutation { deleteAll }"}`,
	} {
		a, ok := p.Classify(post("api.example.com", "/query", "application/json", body))
		if _, _, bad := p.Reject(a); !ok || !bad {
			t.Errorf("%s at /query: claimed %v, %+v; want refused", body, ok, a)
		}
	}
	if _, ok := p.Classify(post("api.example.com", "/search", "application/json", `{"Query":"red shoes"}`)); ok {
		t.Error(`a search API's {"Query":"red shoes"} was taken for GraphQL`)
	}
	// A persisted query's hash in a batch, after an entry that is not one.
	a, ok = p.Classify(post("apollo.internal", "/", "application/json", `[{"x":1},{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4"}}}]`))
	if _, _, bad := p.Reject(a); !ok || !bad {
		t.Errorf("a persisted query's hash in a batch: claimed %v, %+v; want refused", ok, a)
	}
	a, ok = p.Classify(post("apollo.internal", "/", "application/json", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4"}}}`))
	if _, _, bad := p.Reject(a); !ok || !bad || a.Fields["persisted_query"] != true {
		t.Errorf("a persisted query's hash at /: claimed %v, %+v; want refused as PersistedQueryNotFound", ok, a)
	}
	for _, body := range []string{`{"query":"fragment shader on mobile gpu"}`, `{"query":"mutation (genetics) definition"}`, `{"query":"query builder (python)"}`, `{"query":"\"red shoes\" review"}`,
		`{"query":"red shoes","page":2}`, `{"query":"mutation observer javascript"}`, `{"query":"{ \"name\": \"x\" }"}`, `{"query":"querying logs"}`, `{"query":"Query planning in Postgres"}`} {
		if a, ok := p.Classify(post("api.tavily.com", "/search", "application/json", body)); ok {
			t.Errorf("a search API's %s was taken for GraphQL: %+v", body, a)
		}
	}
}

func TestLooksLikeDocument(t *testing.T) {
	for q, want := range map[string]bool{
		"{ me { id } }":                  true,
		"  # note\n, query { a }":        true,
		"query Q($id: ID!) { a }":        true,
		"mutation @live { a }":           true,
		"subscription { a }":             true,
		`"d" mutation { a }`:             true,
		`"""d""" query { a }`:            true,
		"fragment F on T { a }":          true,
		"{ ...F }":                       true,
		"{name} placeholder syntax":      true, // a false positive, documented
		`{ "name": 1 }`:                  false,
		"querying logs":                  false,
		"query builder (python)":         false,
		"mutation (genetics) definition": false,
		"fragment shader on mobile gpu":  false,
		"mutation observer javascript":   false,
		"subscriptions":                  false,
		`"unterminated mutation { a }`:   false,
		`"""unterminated mutation { a }`: false,
		"":                               false,
		"#":                              false,
	} {
		if got := looksLikeDocument(q); got != want {
			t.Errorf("looksLikeDocument(%q) = %v, want %v", q, got, want)
		}
	}
}

func FuzzLooksLikeDocument(f *testing.F) {
	for _, s := range []string{"{ a }", `"d" mutation { a }`, "fragment F on T @x", "query ($a: Int) { a }", "#c\n{", `"\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if !looksLikeDocument(q) {
			return
		}
		// What it takes for a document starts as one can.
		r := skipIgnored(skipDescription(skipIgnored(q)))
		for _, p := range []string{"{", "query", "mutation", "subscription", "fragment"} {
			if strings.HasPrefix(r, p) {
				return
			}
		}
		t.Fatalf("looksLikeDocument(%q) is true, but it starts with %q", q, r[:min(len(r), 10)])
	})
}

// Requests a widely used server reads differently from a first reading
// (found by review): each runs volumeDelete there, and must be refused, or
// classified as that mutation.
func TestRequestsServersReadDifferently(t *testing.T) {
	p := New(Options{})
	const mutation = `mutation { volumeDelete(volumeId: "3d2c") }`
	form := "query=" + url.QueryEscape("{ me { id } }") + "&query=" + url.QueryEscape(mutation)
	part := func(disposition, content string) string {
		return "--XX\r\nContent-Disposition: " + disposition + "\r\n\r\n" + content + "\r\n"
	}
	multipartTo := func(path string, parts ...string) *action.Request {
		return post("api.example.com", path, "multipart/form-data; boundary=XX", strings.Join(parts, "")+"--XX--\r\n")
	}
	multipart := func(parts ...string) *action.Request { return multipartTo("/graphql", parts...) }
	withMethod := func(m string, r *action.Request) *action.Request {
		r.Method = m
		return r
	}
	withQuery := func(r *action.Request, q string) *action.Request {
		r.Query, _ = url.ParseQuery(q)
		return r
	}
	tests := []struct {
		name    string
		give    *action.Request
		refused error // nil: classified as the volumeDelete mutation
	}{
		// PHP ($_POST: webonyx/graphql-php, Lighthouse) and Django
		// (QueryDict: graphene-django) read the last of a repeated field.
		{"repeated query in a form body", post("api.example.com", "/graphql", "application/x-www-form-urlencoded", form), errRepeated},
		{"repeated query in the URL of a POST without body", withQuery(post("api.example.com", "/graphql", "", ""), form), errRepeated},
		{"repeated query in the URL of a GET", withQuery(&action.Request{Method: "GET", Host: "api.example.com", Path: "/graphql", Header: http.Header{}}, form), errRepeated},
		{"repeated operationName beside application/graphql", withQuery(post("api.example.com", "/graphql", "application/graphql", `query A { me { id } } mutation B { volumeDelete(volumeId: "3d2c") }`), "operationName=A&operationName=B"), errRepeated},
		// graphql-upload (Apollo, Yoga, express) keeps the last
		// operations part before map; gqlgen reads the first part.
		{"two operations parts", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}")), errMultipartRepeated},
		{"two map parts", multipart(part(`form-data; name="operations"`, doc(mutation)),
			part(`form-data; name="map"`, "{}"), part(`form-data; name="map"`, "{}")), errMultipartRepeated},
		{"an operations part whose disposition does not parse", multipart(part(`form-data; name="operations"; name="x"`, doc(mutation)),
			part(`form-data; name="operations"`, doc("{ me { id } }")), part(`form-data; name="map"`, "{}")), errMultipartPart},
		{"a quoted-printable operations part", multipart("--XX\r\nContent-Disposition: form-data; name=\"operations\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+doc(mutation)+"\r\n",
			part(`form-data; name="map"`, "{}")), errMultipartPart},
		{"one operations part and a file", multipart(part(`form-data; name="operations"`, doc(mutation)),
			part(`form-data; name="map"`, `{"0":["variables.f"]}`), part(`form-data; name="0"; filename="a.txt"`, "hello")), nil},
		// graphql-php ($_POST) and graphene-django (request.POST) read
		// the parameters themselves, not operations (found by review).
		{"a query part beside operations", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`form-data; name="query"`, mutation)), errMultipartParam},
		{"a persisted query's id beside operations", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`form-data; name="id"`, "ecf4")), errMultipartParam},
		{"a misspelt queryId beside operations", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`form-data; name=" queryId"`, "ecf4")), errMultipartParam},
		// Django's parser finds the boundary anywhere (found by review).
		{"the boundary inside a part", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")), part(`form-data; name="map"`, "{}"),
			part(`form-data; name="note"`, "see--XX\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"+doc(mutation))), errMultipartBoundary},
		{"the boundary in the preamble", post("api.example.com", "/graphql", "multipart/form-data; boundary=XX",
			"x--XX\r\n"+part(`form-data; name="operations"`, doc("{ me { id } }"))+part(`form-data; name="map"`, "{}")+"--XX--\r\n"), errMultipartBoundary},
		{"the boundary in the epilogue", post("api.example.com", "/graphql", "multipart/form-data; boundary=XX",
			part(`form-data; name="operations"`, doc("{ me { id } }"))+part(`form-data; name="map"`, "{}")+"--XX--\r\n--XX\r\n"), errMultipartBoundary},
		{"the boundary inside a part that the body ends in", post("api.example.com", "/graphql", "multipart/form-data; boundary=XX",
			part(`form-data; name="operations"`, doc("{ me { id } }"))+part(`form-data; name="map"`, "{}")+
				part(`form-data; name="note"`, "see--XX\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"+doc(mutation))), errMultipartBoundary},
		// Django and PHP read name= whatever the disposition type, and
		// Django and busboy an encoded name*=, which PHP ignores.
		{"an attachment named operations", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`attachment; name="operations"`, doc(mutation))), errMultipartPart},
		{"an encoded name", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`form-data; name="query"; NAME*=utf-8''x`, mutation)), errMultipartPart},
		// PHP drops leading spaces and cuts at "[", Django strips.
		{"operations with a leading space", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part(`form-data; name=" operations"`, doc(mutation))), errMultipartName},
		{"operations with a trailing tab", multipart(part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="map"`, "{}"), part("form-data; name=\"operations\t\"", doc(mutation))), errMultipartName},
		{"map as a PHP array", multipart(part(`form-data; name="operations"`, doc(mutation)),
			part(`form-data; name="map"`, "{}"), part(`form-data; name="map[x]"`, "{}")), errMultipartName},
		{"only a misspelt operations", multipart(part(`form-data; name="operations[]"`, doc(mutation)), part(`form-data; name="map"`, "{}")), errMultipartName},
		// curl -F, as in the multipart request spec's examples: its
		// boundary starts with dashes.
		{"an upload by curl -F", post("api.example.com", "/graphql", "multipart/form-data; boundary=------------------------d74496d66958873e",
			"--------------------------d74496d66958873e\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"+doc("mutation($f: Upload!) { volumeDelete(volumeId: $f) }", `,"variables":{"f":null}`)+
				"\r\n--------------------------d74496d66958873e\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\":[\"variables.f\"]}"+
				"\r\n--------------------------d74496d66958873e\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"+
				"--------------------------d74496d66958873e--\r\n"), nil},
		// graphql-js, unvalidated, runs the last operation of that name.
		{"two operations with the name given", post("api.example.com", "/graphql", "application/json",
			doc(`query A { me { id } } mutation A { volumeDelete(volumeId: "3d2c") }`, `,"operationName":"A"`)), errDuplicateName},
		{"two operations with that name in a batch", post("api.example.com", "/graphql", "application/json",
			"["+doc("{ me { id } }")+","+doc(`query A { me { id } } mutation A { volumeDelete(volumeId: "3d2c") }`, `,"operationName":"A"`)+"]"), errDuplicateName},
		// Apollo's and gqlgen's decoders read the escape: a known hash
		// runs a document the policy never saw.
		{"a persisted query named with an escape", post("api.example.com", "/graphql", "application/json",
			`{"extensions":{"persisted\u0051uery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`), errPersisted},
		{"a persisted query named with an escape at /", post("api.example.com", "/", "application/json",
			`{"extensions":{"persisted\u0051uery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`), errPersisted},
		{"a persisted query named with an escape in a GET", withQuery(&action.Request{Method: "GET", Host: "api.example.com", Path: "/graphql", Header: http.Header{}},
			"extensions="+url.QueryEscape(`{"persisted\u0051uery":{"version":1,"sha256Hash":"ecf4"}}`)), errPersisted},
		// graph-gophers' relay.Handler decodes the body for any method.
		{"a GET with a body", withMethod("GET", post("api.example.com", "/graphql", "application/json", doc(mutation))), nil},
		{"a GET with a body and no Content-Type", withMethod("GET", post("api.example.com", "/graphql", "", doc(mutation))), nil},
		{"a PUT with a body", withMethod("PUT", post("api.example.com", "/graphql", "application/json", doc(mutation))), nil},
		{"a GET with a document in the URL and a body", withQuery(withMethod("GET", post("api.example.com", "/graphql", "application/json", doc(mutation))), "query="+url.QueryEscape("{ me { id } }")), errURLAndBody},
		// gqlgen (at /query) and graph-gophers decode one JSON value and
		// ignore what follows it.
		{"trailing data at /query", post("api.example.com", "/query", "application/json", doc(mutation)+" x"), errTrailing},
		{"trailing data in a batch at /query", post("api.example.com", "/query", "application/json", "["+doc(mutation)+"]]"), errTrailing},
		{"trailing data after a persisted query at /query", post("api.example.com", "/query", "application/json",
			`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4"}}}{}`), errTrailing},
		{"a batch with an entry that is not an object at /query", post("api.example.com", "/query", "application/json", "["+doc(mutation)+",1]"), errNotJSON},
		{"trailing data at /graphql", post("api.example.com", "/graphql", "application/json", doc(mutation)+" x"), errTrailing},
		// gqlgen's default server adds the multipart transport at /query.
		{"multipart at /query", multipartTo("/query", part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}")), nil},
		{"two operations parts at /query", multipartTo("/query", part(`form-data; name="operations"`, doc("{ me { id } }")),
			part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}")), errMultipartRepeated},
		{"multipart past the body limit at /query", func() *action.Request {
			r := multipartTo("/query", part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="0"; filename="a"`, "abc"))
			r.Body, r.BodyTruncated = r.Body[:len(r.Body)-10], true
			return r
		}(), errTruncated},
		// gqlgen's reader skips a preamble, however long, and runs a
		// first part named operations (found by review).
		{"multipart cut in a preamble at /query", func() *action.Request {
			r := multipartTo("/query", strings.Repeat("p", 100)+"\r\n", part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}"))
			r.Body, r.BodyTruncated = r.Body[:50], true
			return r
		}(), errTruncated},
		{"multipart cut in its first part's head at /query", func() *action.Request {
			r := multipartTo("/query", part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}"))
			r.Body, r.BodyTruncated = r.Body[:20], true
			return r
		}(), errTruncated},
		{"a PUT at /query", withMethod("PUT", post("api.example.com", "/query", "application/json", doc(mutation))), nil},
		// graph-gophers' relay.Handler decodes the body whatever its
		// Content-Type.
		{"JSON without a Content-Type at /query", post("api.example.com", "/query", "", doc(mutation)), nil},
		{"JSON labelled text at /query", post("api.example.com", "/query", "text/plain", "\n "+doc(mutation)), nil},
		{"JSON labelled a form at /query", post("api.example.com", "/query", "application/x-www-form-urlencoded", doc(mutation)), nil},
		{"a JSON batch labelled text at /query", post("api.example.com", "/query", "text/plain", "["+doc(mutation)+"]"), nil},
		// PHP registers " query" (a "+" decodes to a space), "query[]"
		// and "query%00x" as query, and keeps the last (found by review).
		{"a form field with a leading space", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			"query="+url.QueryEscape("{ me { id } }")+"&+query="+url.QueryEscape(mutation)), errFieldName},
		{"a form field as a PHP array", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			"query="+url.QueryEscape("{ me { id } }")+"&query%5B%5D="+url.QueryEscape(mutation)), errFieldName},
		{"a form field cut at a NUL", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			"query="+url.QueryEscape("{ me { id } }")+"&query%00x="+url.QueryEscape(mutation)), errFieldName},
		{"a form with only a misspelt query", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			"++query="+url.QueryEscape(mutation)), errFieldName},
		{"a URL field with a leading space", withQuery(&action.Request{Method: "GET", Host: "api.example.com", Path: "/graphql", Header: http.Header{}},
			"query="+url.QueryEscape("{ me { id } }")+"&%20query="+url.QueryEscape(mutation)), errFieldName},
		{"a URL field with a leading space beside a JSON body", withQuery(post("api.example.com", "/graphql", "application/json", doc("{ me { id } }")),
			"+query="+url.QueryEscape(mutation)), errFieldName},
		// PHP and Django read a JSON body labelled a form as a form.
		{"a JSON body labelled a form that is a form with a query", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			`{"query":"{ me { id } }","x":"&query=`+url.QueryEscape(mutation)+`#"}`), errJSONAsForm},
		{"a JSON body labelled a form that is a form with a persisted query id", post("api.example.com", "/graphql", "application/x-www-form-urlencoded",
			`{"query":"{ me { id } }","x":"&+queryId=ecf4"}`), errJSONAsForm},
		// graphql-php and Lighthouse look for application/graphql
		// anywhere in the header and run the raw body (found by review);
		// Laravel reads JSON when it says "/json" or "+json".
		{"a form type naming application/graphql", post("api.example.com", "/graphql", `application/x-www-form-urlencoded; profile="application/graphql"`,
			`mutation M { volumeDelete(volumeId: "&query={me{id}}#") }`), errContentType},
		{"a JSON type naming application/graphql", post("api.example.com", "/graphql", `application/json; profile="application/graphql"`, doc(mutation)), errContentType},
		{"GraphQL's response type as a request's", post("api.example.com", "/graphql", "application/graphql-response+json", doc(mutation)), errContentType},
		// The draft GraphQL-over-HTTP type: JSON to most servers, a raw
		// document to PHP's stripos (noted by review).
		{"the draft application/graphql+json", post("api.example.com", "/graphql", "application/graphql+json", doc(mutation)), errContentType},
		{"a form type naming JSON", post("api.example.com", "/graphql", "application/x-www-form-urlencoded; x=a/json", "query="+url.QueryEscape(mutation)), errContentType},
		{"a Content-Type that does not parse", post("api.example.com", "/graphql", "application/json/graphql", doc(mutation)), errContentType},
		{"a multipart type naming application/graphql at /query", func() *action.Request {
			r := multipartTo("/query", part(`form-data; name="operations"`, doc(mutation)), part(`form-data; name="map"`, "{}"))
			r.Header.Set("Content-Type", `multipart/form-data; boundary=XX; x="application/graphql"`)
			return r
		}(), errContentType},
		{"application/graphql with a charset", post("api.example.com", "/graphql", "application/graphql; charset=utf-8", mutation), nil},
		{"JSON with a charset", post("api.example.com", "/graphql", "Application/JSON; charset=utf-8", doc(mutation)), nil},
		{"a vendor JSON type", post("api.example.com", "/graphql", "application/vnd.api+json", doc(mutation)), nil},
		{"repeated variables in a form body", post("api.example.com", "/graphql", "application/x-www-form-urlencoded", "query="+url.QueryEscape(mutation)+"&variables=%7B%7D&variables=%7B%7D"), errRepeated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := p.Classify(tt.give)
			_, reason, bad := p.Reject(a)
			if tt.refused != nil {
				if !ok || !bad || !strings.HasPrefix(reason, tt.refused.Error()) {
					t.Errorf("Classify(%s %s) = %v, %+v; want refused: %v", tt.give.Method, tt.give.Path, ok, a, tt.refused)
				}
				return
			}
			if got := summarise(a); !ok || bad || got.Type != "mutation" || !slices.Contains(got.Fields, "volumeDelete") {
				t.Errorf("Classify(%s %s) = %v, %+v; want the volumeDelete mutation", tt.give.Method, tt.give.Path, ok, a)
			}
		})
	}
	// What other APIs send stays theirs.
	for name, r := range map[string]*action.Request{
		"a search with trailing data": post("api.example.com", "/search", "application/json", `{"query":"red shoes"} x`),
		"an upload without operations": multipartTo("/upload", part(`form-data; name="file"; filename="a.txt"`, "hello"),
			part(`form-data; name="file"; filename="b.txt"`, "hello")),
		"an upload whose operations are not GraphQL": multipartTo("/upload", part(`form-data; name="operations"`, `[{"op":"add"}]`)),
		"an upload past the limit whose first part is a file": func() *action.Request {
			r := multipartTo("/upload", part(`form-data; name="file"; filename="a.bin"`, strings.Repeat("x", 200)), part(`form-data; name="note"`, "hi"))
			r.Body, r.BodyTruncated = r.Body[:100], true
			return r
		}(),
		"an upload with a query field": multipartTo("/upload", part(`form-data; name="query"`, "red shoes"), part(`form-data; name="id"`, "7")),
		"a PUT of a search":            withMethod("PUT", post("api.example.com", "/search", "application/json", `{"query":"red shoes"}`)),
	} {
		if a, ok := p.Classify(r); ok {
			t.Errorf("%s: Classify(%s %s) = %+v, want not claimed", name, r.Method, r.Path, a)
		}
	}
}

// graphql-php (OperationParams::create) lower-cases every name of $_POST,
// which it reads for a form body and for a multipart body alike: a GraphQL
// parameter or a stored document's id spelt in another case, in a form, a
// multipart part or the form reading of a JSON body labelled a form, is
// refused (found by review: each passed as the query beside it).
func TestCaseVariantParametersAreRefused(t *testing.T) {
	p := New(Options{})
	mp := "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ me { id } }\"}\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\ndeleteEverything\r\n--B--\r\n"
	cases := map[string][2]string{
		"multipart QueryId":    {"multipart/form-data; boundary=B", fmt.Sprintf(mp, "QueryId")},
		"multipart ID":         {"multipart/form-data; boundary=B", fmt.Sprintf(mp, "ID")},
		"multipart doc_id":     {"multipart/form-data; boundary=B", fmt.Sprintf(mp, "doc_id")},
		"JSON as form QueryId": {"application/x-www-form-urlencoded", `{"query":"{ me { id } }","x":"&QueryId=deleteEverything&y="}`},
		"JSON as form ID":      {"application/x-www-form-urlencoded", `{"query":"{ me { id } }","x":"&ID=deleteEverything&y="}`},
		"form QUERY":           {"application/x-www-form-urlencoded", `query=%7Bme%7Bid%7D%7D&QUERY=mutation%7BdeleteEverything%7D`},
		"JSON as form QUERY":   {"application/x-www-form-urlencoded", `{"query":"{ me { id } }","x":"&QUERY=mutation{deleteEverything}&y="}`},
	}
	for name, c := range cases {
		a, ok := p.Classify(post("api.example.com", "/graphql", c[0], c[1]))
		if _, _, bad := p.Reject(a); ok && !bad {
			t.Errorf("%s: classified as %+v, not refused", name, summarise(a))
		}
	}
}

// graphql-php (Lighthouse, Ecodev/graphql-upload) reads a multipart
// request's operations part as a JSON body: a stored document's id in it,
// in any case, is refused (found by review).
func TestStoredIDInMultipartOperationsIsRefused(t *testing.T) {
	p := New(Options{})
	mp := "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n%s\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n--B--\r\n"
	for _, ops := range []string{
		`{"query":"{ me { id } }","queryId":"deleteEverything"}`,
		`{"query":"{ me { id } }","ID":"deleteEverything"}`,
		`[{"query":"{ me { id } }","documentId":"deleteEverything"}]`,
	} {
		a, ok := p.Classify(post("api.example.com", "/graphql", "multipart/form-data; boundary=B", fmt.Sprintf(mp, ops)))
		if _, _, bad := p.Reject(a); ok && !bad {
			t.Errorf("%s: classified as %+v, not refused", ops, summarise(a))
		}
	}
	a, _ := p.Classify(post("api.example.com", "/graphql", "multipart/form-data; boundary=B", fmt.Sprintf(mp, `{"query":"{ me { id } }","id":null}`)))
	if _, _, bad := p.Reject(a); bad {
		t.Errorf(`operations with "id": null refused: %+v`, summarise(a))
	}
}
