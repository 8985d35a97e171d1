package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/session"
)

// ghToken has the shape of a GitHub personal access token; it is not one.
const ghToken = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var spec4Time = time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC)

// awsTerminate is the request of SPEC section 4's example, with credentials.
func awsTerminate() (*action.Request, action.Action, *session.Info) {
	body := []byte("Action=TerminateInstances&InstanceId.1=i-0abc")
	r := &action.Request{
		Method: "POST", Scheme: "https", Host: "ec2.us-east-1.amazonaws.com", Port: 443,
		Path: "/", RawPath: "/",
		Query: url.Values{
			"Action":           {"TerminateInstances"},
			"X-Amz-Signature":  {"4f1c0e1b2a3d4c5b6a7980716253443526170819"},
			"X-Amz-Credential": {"AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request"},
			"token":            {"opaque-session-value"},
		},
		Header: http.Header{
			"Authorization":        {"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=abc"},
			"Cookie":               {"session=abc"},
			"X-Amz-Security-Token": {"FwoGZXIvYXdzEJr//////////wEaDExample"},
			"Proxy-Authorization":  {"Basic dXNlcjpwYXNzd29yZA=="},
			"Content-Type":         {"application/x-www-form-urlencoded; charset=utf-8"},
			"X-Amz-Date":           {"20261126T134500Z"},
		},
		Body:     body,
		BodySize: int64(len(body)),
	}
	a := action.Action{
		Provider: "aws", Service: "ec2", Operation: "TerminateInstances", Region: "us-east-1",
		AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Resources: []string{"i-0abc"},
		Params:   map[string]any{"InstanceId.1": "i-0abc"},
		ReadOnly: false, Destructive: true,
	}
	s := &session.Info{
		ID: "s-k3j5x9q2mfa4", Name: "alice/claude", User: "alice", Command: "claude",
		Cwd: "/home/alice/shop", Labels: map[string]string{"team": "payments"},
	}
	return r, a, s
}

func TestNewInputMap(t *testing.T) {
	r, a, s := awsTerminate()
	// A clock in another zone: the input carries UTC.
	now := spec4Time.In(time.FixedZone("CET", 3600))
	in := NewInput(r, a, s, now)

	want := map[string]any{
		"request": map[string]any{
			"method": "POST", "scheme": "https", "host": "ec2.us-east-1.amazonaws.com", "port": 443,
			"path": "/", "raw_path": "/",
			"query": map[string]any{
				"Action":           []string{"TerminateInstances"},
				"X-Amz-Signature":  []string{"[redacted]"},
				"X-Amz-Credential": []string{"AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request"},
				"token":            []string{"[redacted]"},
			},
			"headers": map[string]any{
				"authorization":        []string{"[redacted]"},
				"cookie":               []string{"[redacted]"},
				"x-amz-security-token": []string{"[redacted]"},
				"proxy-authorization":  []string{"[redacted]"},
				"content-type":         []string{"application/x-www-form-urlencoded; charset=utf-8"},
				"x-amz-date":           []string{"20261126T134500Z"},
			},
			"body":           map[string]any{"Action": "TerminateInstances", "InstanceId.1": "i-0abc"},
			"body_size":      int64(len(r.Body)),
			"body_truncated": false,
			"body_sha256":    sha256Hex(r.Body),
			"tunnel":         false,
		},
		"action": map[string]any{
			"provider": "aws", "service": "ec2", "operation": "TerminateInstances",
			"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
			"resources": []any{"i-0abc"}, "params": map[string]any{"InstanceId.1": "i-0abc"},
			"read_only": false, "destructive": true,
		},
		"session": map[string]any{
			"id": "s-k3j5x9q2mfa4", "name": "alice/claude", "user": "alice", "command": "claude",
			"cwd": "/home/alice/shop", "labels": map[string]any{"team": "payments"},
		},
		"time": "2026-11-26T13:45:00Z",
	}
	if diff := cmp.Diff(want, in.Map()); diff != "" {
		t.Errorf("NewInput(...).Map() mismatch (-want +got):\n%s", diff)
	}

	// The caller's request is not modified by redaction.
	if got := r.Header.Get("Authorization"); !strings.HasPrefix(got, "AWS4-HMAC-SHA256") {
		t.Errorf("NewInput modified the request's Authorization header: %q", got)
	}
	if got := r.Query.Get("X-Amz-Signature"); got == "[redacted]" {
		t.Errorf("NewInput modified the request's query")
	}

	// MarshalJSON encodes exactly what the policy sees.
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(in.Map())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(wantJSON) {
		t.Errorf("MarshalJSON = %s, want %s", b, wantJSON)
	}
	for _, secret := range []string{"Signature=abc", "session=abc", "FwoGZXIvYXdz", "dXNlcjpwYXNzd29yZA", "opaque-session-value", "4f1c0e1b2a3d"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("input JSON contains the credential %q: %s", secret, b)
		}
	}
}

// TestInputShape pins the key set of SPEC section 4's input document: fields
// may be added, never renamed or dropped.
func TestInputShape(t *testing.T) {
	r, a, s := awsTerminate()
	m := NewInput(r, a, s, spec4Time).Map()
	keys := func(v any) []string {
		t.Helper()
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("value %#v is not an object", v)
		}
		return slices.Sorted(maps.Keys(mm))
	}
	tests := []struct {
		name string
		give any
		want []string
	}{
		{"input", m, []string{"action", "request", "session", "time"}},
		{"request", m["request"], []string{
			"body", "body_sha256", "body_size", "body_truncated", "headers", "host", "method",
			"path", "port", "query", "raw_path", "scheme", "tunnel",
		}},
		{"action", m["action"], []string{
			"access_key_id", "destructive", "operation", "params", "provider", "read_only",
			"region", "resources", "service",
		}},
		{"session", m["session"], []string{"command", "cwd", "id", "labels", "name", "user"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, keys(tt.give)); diff != "" {
			t.Errorf("%s keys mismatch (-want +got):\n%s", tt.name, diff)
		}
	}

	// Without a session and a body: no session, body or body_sha256 keys,
	// the rest stays.
	r.Body, r.BodySize = nil, 0
	m = NewInput(r, a, nil, spec4Time).Map()
	if diff := cmp.Diff([]string{"action", "request", "time"}, keys(m)); diff != "" {
		t.Errorf("input keys without a session mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"body_size", "body_truncated", "headers", "host", "method", "path", "port", "query", "raw_path", "scheme", "tunnel",
	}, keys(m["request"])); diff != "" {
		t.Errorf("request keys without a body mismatch (-want +got):\n%s", diff)
	}
}

func TestNewInputBody(t *testing.T) {
	binary := []byte{0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x10}
	tests := []struct {
		name        string
		contentType string
		body        []byte
		truncated   bool
		want        any
		wantSHA     bool
	}{
		{
			name:        "json",
			contentType: "application/json",
			body:        []byte(`{"model": "claude", "max_tokens": 1024, "stream": true, "tags": ["a", null]}`),
			want:        map[string]any{"model": "claude", "max_tokens": json.Number("1024"), "stream": true, "tags": []any{"a", nil}},
			wantSHA:     true,
		},
		{
			name:        "json token shape redacted",
			contentType: "application/json",
			body:        []byte(`{"note": "use ` + ghToken + ` for this", "nested": {"list": ["` + ghToken + `"]}}`),
			want:        map[string]any{"note": "use [redacted] for this", "nested": map[string]any{"list": []any{"[redacted]"}}},
			wantSHA:     true,
		},
		{
			name:        "json credential key redacted",
			contentType: "application/json",
			body:        []byte(`{"user": "alice", "password": "hunter2", "client_secret": "s3cr3t", "max_tokens": 5}`),
			want:        map[string]any{"user": "alice", "password": "[redacted]", "client_secret": "[redacted]", "max_tokens": json.Number("5")},
			wantSHA:     true,
		},
		{
			name:        "form",
			contentType: "application/x-www-form-urlencoded",
			body:        []byte("Action=DescribeInstances&Filter.1.Value=a&Filter.1.Value=b&Version=2016-11-15"),
			want:        map[string]any{"Action": "DescribeInstances", "Filter.1.Value": []any{"a", "b"}, "Version": "2016-11-15"},
			wantSHA:     true,
		},
		{
			name:        "form credential redacted",
			contentType: "application/x-www-form-urlencoded",
			body:        []byte("grant_type=refresh_token&refresh_token=abcdef&scope=repo"),
			want:        map[string]any{"grant_type": "refresh_token", "refresh_token": "[redacted]", "scope": "repo"},
			wantSHA:     true,
		},
		{
			name:        "text",
			contentType: "text/plain; charset=utf-8",
			body:        []byte("hello " + ghToken),
			want:        "hello [redacted]",
			wantSHA:     true,
		},
		{
			name:        "form fields masked by parameter name",
			contentType: "application/x-www-form-urlencoded",
			body:        []byte("grant_type=authorization_code&code=OAuthCodeSecret123&client_assertion=xyz&redirect_uri=https%3A%2F%2Fapp"),
			want:        map[string]any{"grant_type": "authorization_code", "code": "[redacted]", "client_assertion": "[redacted]", "redirect_uri": "https://app"},
			wantSHA:     true,
		},
		{
			name:        "multipart credential field redacted",
			contentType: "multipart/form-data; boundary=XX",
			body:        []byte("--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nMultiHunter2\r\n--XX--\r\n"),
			want:        "--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n[redacted]\r\n--XX--\r\n",
			wantSHA:     true,
		},
		{
			name:    "binary",
			body:    binary,
			want:    nil,
			wantSHA: true,
		},
		{
			name:        "truncated json is not parsed",
			contentType: "application/json",
			body:        []byte(`{"action": "delete", "ta`),
			truncated:   true,
			want:        nil,
		},
		{
			name:        "truncated complete-looking json is not parsed",
			contentType: "application/json",
			body:        []byte(`{"action": "read"}`),
			truncated:   true,
			want:        nil,
		},
		{
			name: "no body",
			body: nil,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &action.Request{
				Method: "POST", Scheme: "https", Host: "example.com", Port: 443, Path: "/",
				Header: http.Header{}, Body: tt.body, BodySize: int64(len(tt.body)), BodyTruncated: tt.truncated,
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			in := NewInput(r, action.HTTP(r), nil, spec4Time)
			if diff := cmp.Diff(tt.want, in.Request.Body); diff != "" {
				t.Errorf("Request.Body mismatch (-want +got):\n%s", diff)
			}
			wantSHA := ""
			if tt.wantSHA {
				wantSHA = sha256Hex(tt.body)
			}
			if in.Request.BodySHA256 != wantSHA {
				t.Errorf("Request.BodySHA256 = %q, want %q", in.Request.BodySHA256, wantSHA)
			}
			req := in.Map()["request"].(map[string]any)
			if _, ok := req["body"]; ok != (tt.want != nil) {
				t.Errorf("request.body present = %t, want %t", ok, tt.want != nil)
			}
			if _, ok := req["body_sha256"]; ok != tt.wantSHA {
				t.Errorf("request.body_sha256 present = %t, want %t", ok, tt.wantSHA)
			}
			if req["body_truncated"] != tt.truncated {
				t.Errorf("request.body_truncated = %v, want %t", req["body_truncated"], tt.truncated)
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		give        string
		want        any
	}{
		{"json object", "application/json", `{"a": 1.5}`, map[string]any{"a": json.Number("1.5")}},
		{"json array", "application/json", `[1, "x"]`, []any{json.Number("1"), "x"}},
		{"json with parameters", "application/json; charset=utf-8", `{"a": true}`, map[string]any{"a": true}},
		{"vendor json", "application/vnd.github+json", `{"a": null}`, map[string]any{"a": nil}},
		{"json by shape", "", ` {"jsonrpc": "2.0"}`, map[string]any{"jsonrpc": "2.0"}},
		{"json by shape under text type", "text/plain", `{"a": 1}`, map[string]any{"a": json.Number("1")}},
		{"invalid json is text", "application/json", `{"a": `, `{"a": `},
		{"two json documents are text", "application/json", `{"a": 1} {"b": 2}`, `{"a": 1} {"b": 2}`},
		{"json scalar under json type", "application/json", `42`, json.Number("42")},
		{"form", "application/x-www-form-urlencoded", "a=1&b=&c=x+y", map[string]any{"a": "1", "b": "", "c": "x y"}},
		{"form repeated", "application/x-www-form-urlencoded", "a=1&a=2", map[string]any{"a": []any{"1", "2"}}},
		{"form with bad escape is text", "application/x-www-form-urlencoded", "a=%zz", "a=%zz"},
		{"form with invalid utf-8", "application/x-www-form-urlencoded", "a=\xff", nil},
		{"text", "text/plain", "hello", "hello"},
		{"text without type", "", "hello", "hello"},
		{"xml is text", "application/xml", "<a>1</a>", "<a>1</a>"},
		{"nul byte is binary", "application/octet-stream", "ab\x00cd", nil},
		{"invalid utf-8 is binary", "", "\xff\xfe\xfd", nil},
		{"empty", "application/json", "", nil},
		{"bad content type", "%%%", "hello", "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseBody(tt.contentType, []byte(tt.give))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseBody(%q, %q) mismatch (-want +got):\n%s", tt.contentType, tt.give, diff)
			}
		})
	}
}

func TestNewInputHeadersAndQuery(t *testing.T) {
	r := &action.Request{
		Method: "GET", Scheme: "https", Host: "api.github.com", Port: 443, Path: "/user",
		Query: url.Values{
			"access_token": {"abc"},
			"per_page":     {"100"},
			"q":            {"find " + ghToken},
		},
		Header: http.Header{
			"Authorization":        {"Bearer " + ghToken},
			"Accept":               {"application/vnd.github+json"},
			"X-Github-Api-Version": {"2022-11-28"},
			"X-Note":               {"token " + ghToken},
			"Set-Cookie":           {"a=b"},
		},
	}
	in := NewInput(r, action.HTTP(r), nil, spec4Time)
	wantHeaders := map[string][]string{
		"authorization":        {"[redacted]"},
		"accept":               {"application/vnd.github+json"},
		"x-github-api-version": {"2022-11-28"},
		"x-note":               {"token [redacted]"},
		"set-cookie":           {"[redacted]"},
	}
	if diff := cmp.Diff(wantHeaders, in.Request.Headers); diff != "" {
		t.Errorf("Request.Headers mismatch (-want +got):\n%s", diff)
	}
	wantQuery := map[string][]string{
		"access_token": {"[redacted]"},
		"per_page":     {"100"},
		"q":            {"find [redacted]"},
	}
	if diff := cmp.Diff(wantQuery, in.Request.Query); diff != "" {
		t.Errorf("Request.Query mismatch (-want +got):\n%s", diff)
	}
}

func TestNewInputRedactsAction(t *testing.T) {
	r := &action.Request{Method: "POST", Scheme: "https", Host: "mcp.example", Port: 443, Path: "/mcp", Header: http.Header{}}
	a := action.Action{
		Provider: "mcp", Operation: "tools/call", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
		Params: map[string]any{"Password": "hunter2", "InstanceId.1": "i-0abc", "Note": "with " + ghToken},
		Fields: map[string]any{"tool": "deploy", "arguments": map[string]any{"api_key": "k", "env": "prod", "blob": ghToken}},
	}
	params := maps.Clone(a.Params)
	m := NewInput(r, a, nil, spec4Time).Map()["action"].(map[string]any)
	want := map[string]any{
		"provider": "mcp", "operation": "tools/call", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
		"read_only": false, "destructive": false,
		"params":    map[string]any{"Password": "[redacted]", "InstanceId.1": "i-0abc", "Note": "with [redacted]"},
		"tool":      "deploy",
		"arguments": map[string]any{"api_key": "[redacted]", "env": "prod", "blob": "[redacted]"},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("input.action mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(params, a.Params); diff != "" {
		t.Errorf("NewInput modified the caller's params (-want +got):\n%s", diff)
	}
}

func TestNewInputTunnel(t *testing.T) {
	r := &action.Request{Method: "CONNECT", Host: "example.com", Port: 8443, Tunnel: true, BodySize: -1}
	in := NewInput(r, action.HTTP(r), nil, spec4Time)
	req := in.Map()["request"].(map[string]any)
	want := map[string]any{
		"method": "CONNECT", "scheme": "", "host": "example.com", "port": 8443, "path": "", "raw_path": "",
		"query": map[string]any{}, "headers": map[string]any{},
		"body_size": int64(-1), "body_truncated": false, "tunnel": true,
	}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("tunnel input.request mismatch (-want +got):\n%s", diff)
	}
}

func TestDecideMatchesDecideDocument(t *testing.T) {
	// Decide(in) evaluates in.Map(); a policy reading redacted values sees
	// the mask, never the credential.
	e, _ := newEngine(t, Options{}, mod(`package countersign

deny contains "credential visible" if {
	some v in input.request.headers.authorization
	v != "[redacted]"
}

approve contains sprintf("terminate %s in %s", [input.action.resources[0], input.session.labels.team]) if {
	input.request.body.Action == "TerminateInstances"
	input.action.access_key_id == "AKIAIOSFODNN7EXAMPLE"
}
`))
	r, a, s := awsTerminate()
	in := NewInput(r, a, s, spec4Time)
	want := Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "terminate i-0abc in payments"}}}
	got := e.Decide(t.Context(), in)
	if diff := diffDecision(want, got); diff != "" {
		t.Errorf("Decide mismatch (-want +got):\n%s", diff)
	}
	if diff := diffDecision(got, e.DecideDocument(t.Context(), in.Map())); diff != "" {
		t.Errorf("DecideDocument(in.Map()) differs from Decide(in) (-decide +document):\n%s", diff)
	}
	// A JSON round trip of the input (as `policy eval --input` reads it)
	// decides the same.
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var round map[string]any
	if err := json.Unmarshal(b, &round); err != nil {
		t.Fatal(err)
	}
	if diff := diffDecision(got, e.DecideDocument(t.Context(), round)); diff != "" {
		t.Errorf("DecideDocument(JSON round trip) differs (-decide +document):\n%s", diff)
	}
}

// A hash the caller computed while buffering the body is used as is; one
// of the wrong length is not trusted, and the body is hashed.
func TestNewInputPrecomputedHash(t *testing.T) {
	body := []byte("Action=TerminateInstances")
	given := []byte(strings.Repeat("\xab", sha256.Size))
	for _, tt := range []struct {
		name  string
		given []byte
		want  string
	}{
		{"given", given, hex.EncodeToString(given)},
		{"none", nil, sha256Hex(body)},
		{"wrong length", []byte{1, 2, 3}, sha256Hex(body)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &action.Request{Method: "POST", Scheme: "https", Host: "ec2.us-east-1.amazonaws.com", Port: 443,
				Body: body, BodySize: int64(len(body)), BodySHA256: tt.given}
			in := NewInput(r, action.Action{Provider: "http"}, &session.Info{}, spec4Time)
			if got := in.Request.BodySHA256; got != tt.want {
				t.Errorf("body_sha256 = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKubernetesSecretBodiesAreRedactedWithoutTheirKind(t *testing.T) {
	r := &action.Request{Method: "PATCH", Scheme: "https", Host: "k8s.example.test", Port: 443, Path: "/api/v1/namespaces/prod/secrets/db",
		Header: http.Header{"Content-Type": {"application/merge-patch+json"}}, Body: []byte(`{"stringData":{"DB_URL":"mysql://app:hunter2-pw@db/app","x":"plain-secret-value"}}`)}
	a := action.Action{Provider: "kubernetes", Fields: map[string]any{"resource": "secrets", "api_group": ""}}
	in := NewInput(r, a, nil, time.Now())
	got, _ := json.Marshal(in.Request.Body)
	if strings.Contains(string(got), "plain-secret-value") || strings.Contains(string(got), "hunter2") {
		t.Errorf("the policy input shows a Secret's data: %s", got)
	}
}

// AWS reads a body by its API's protocol, whatever its label: a bucket
// policy sent by `curl --aws-sigv4 -d @policy.json`, labelled a form, is
// JSON to S3 (found by review), and XML under a form label is text; only
// the query and EC2 protocols take forms.
func TestAWSBodiesAreReadByProtocol(t *testing.T) {
	const formType = "application/x-www-form-urlencoded"
	tests := []struct {
		protocol, body string
		want           any
	}{
		{"rest-xml", `{"Statement": [{"Effect": "Allow", "Principal": "*"}]}`, map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Principal": "*"}}}},
		{"rest-json", `{"Principal": "*"}`, map[string]any{"Principal": "*"}},
		{"rest-xml", `<AccessControlPolicy><Grant>AllUsers</Grant></AccessControlPolicy>`, `<AccessControlPolicy><Grant>AllUsers</Grant></AccessControlPolicy>`},
		{"query", `Action=DeleteStack&StackName=prod`, map[string]any{"Action": "DeleteStack", "StackName": "prod"}},
		{"ec2", `Action=TerminateInstances&InstanceId.1=i-1`, map[string]any{"Action": "TerminateInstances", "InstanceId.1": "i-1"}},
	}
	for _, tt := range tests {
		r := &action.Request{Method: "PUT", Header: http.Header{"Content-Type": {formType}}, Body: []byte(tt.body), BodySize: int64(len(tt.body))}
		a := action.Action{Provider: "aws", Fields: map[string]any{"protocol": tt.protocol}}
		in := NewInput(r, a, &session.Info{ID: "s"}, time.Time{})
		if diff := cmp.Diff(tt.want, in.Request.Body); diff != "" {
			t.Errorf("%s body %q labelled a form (-want +got):\n%s", tt.protocol, tt.body, diff)
		}
	}
}

// The API server reads a Kubernetes body in YAML as JSON, and so does the
// policy (found by review: a privileged pod in YAML was text to it).
func TestKubernetesYAMLBodiesAreDecoded(t *testing.T) {
	body := "apiVersion: v1\nkind: Pod\nspec:\n  hostPID: true\n  containers:\n  - name: x\n    securityContext: {privileged: true}\n"
	for _, ct := range []string{"application/yaml", "application/apply-patch+yaml"} {
		r := &action.Request{Method: "POST", Header: http.Header{"Content-Type": {ct}}, Body: []byte(body), BodySize: int64(len(body))}
		in := NewInput(r, action.Action{Provider: "kubernetes"}, &session.Info{ID: "s"}, time.Time{})
		doc, ok := in.Request.Body.(map[string]any)
		if !ok {
			t.Fatalf("%s: body %T, want the decoded object", ct, in.Request.Body)
		}
		if spec, _ := doc["spec"].(map[string]any); spec["hostPID"] != true {
			t.Errorf("%s: spec %v", ct, doc["spec"])
		}
	}
	// Elsewhere YAML stays text.
	r := &action.Request{Method: "POST", Header: http.Header{"Content-Type": {"application/yaml"}}, Body: []byte(body), BodySize: int64(len(body))}
	if _, ok := NewInput(r, action.Action{Provider: "http"}, &session.Info{ID: "s"}, time.Time{}).Request.Body.(string); !ok {
		t.Error("YAML to another API was decoded")
	}
}
