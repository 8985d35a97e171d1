package policy

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/session"
)

// req builds an action.Request the way the proxy does for an intercepted
// request.
func req(method, rawURL, contentType, body string) *action.Request {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	r := &action.Request{
		Method: method, Scheme: u.Scheme, Host: u.Hostname(), Port: port,
		Path: u.Path, RawPath: u.EscapedPath(), Query: u.Query(),
		Header:   http.Header{"User-Agent": {"countersign-test/1"}, "Authorization": {"Bearer " + ghToken}},
		BodySize: int64(len(body)),
	}
	if body != "" {
		r.Body = []byte(body)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func newBuiltin(t testing.TB) *Engine {
	t.Helper()
	e, err := New(t.Context(), Options{Source: Source{Builtin: true}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatalf("New(builtin) = %v", err)
	}
	return e
}

func TestDefaultPolicy(t *testing.T) {
	e := newBuiltin(t)
	sess := &session.Info{ID: "s-test", Name: "alice/claude", User: "alice", Command: "claude"}
	tests := []struct {
		name        string
		give        *action.Request
		action      *action.Action // nil: the generic http classifier
		wantVerdict Verdict
		wantID      string
		wantMsgIn   string // a substring of the first reason
	}{
		{
			name:        "GET allowed",
			give:        req("GET", "https://api.github.com/repos/o/r", "", ""),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "HEAD to infrastructure allowed",
			give:        req("HEAD", "https://ec2.us-east-1.amazonaws.com/", "", ""),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "metadata host denied",
			give:        req("GET", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "", ""),
			wantVerdict: VerdictDeny, wantID: "DEFAULT-001", wantMsgIn: "169.254.169.254",
		},
		{
			name:        "GCP metadata host denied",
			give:        req("GET", "http://metadata.google.internal/computeMetadata/v1/", "", ""),
			wantVerdict: VerdictDeny, wantID: "DEFAULT-001",
		},
		{
			name:        "DELETE api.github.com held",
			give:        req("DELETE", "https://api.github.com/repos/o/r", "", ""),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002", wantMsgIn: "DELETE api.github.com/repos/o/r",
		},
		{
			name:        "POST to api.anthropic.com allowed",
			give:        req("POST", "https://api.anthropic.com/v1/messages", "application/json", `{"model": "claude", "max_tokens": 1024, "messages": []}`),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "AWS DescribeInstances allowed",
			give:        req("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded; charset=utf-8", "Action=DescribeInstances&Version=2016-11-15"),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "AWS TerminateInstances held",
			give:        req("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded; charset=utf-8", "Action=TerminateInstances&InstanceId.1=i-0abc&Version=2016-11-15"),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002", wantMsgIn: "TerminateInstances",
		},
		{
			name: "AWS TerminateInstances classified as aws held",
			give: req("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded", "Action=TerminateInstances&InstanceId.1=i-0abc"),
			action: &action.Action{
				Provider: "aws", Service: "ec2", Operation: "TerminateInstances", Region: "us-east-1",
				AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Resources: []string{"i-0abc"}, Destructive: true,
			},
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002", wantMsgIn: "ec2:TerminateInstances",
		},
		{
			name:        "AWS query-string Describe allowed",
			give:        req("GET", "https://ec2.us-east-1.amazonaws.com/?Action=DescribeRegions&Version=2016-11-15", "", ""),
			wantVerdict: VerdictAllow,
		},
		{
			name: "AWS JSON protocol delete held",
			give: func() *action.Request {
				r := req("POST", "https://dynamodb.us-east-1.amazonaws.com/", "application/x-amz-json-1.0", `{"TableName": "orders"}`)
				r.Header.Set("X-Amz-Target", "DynamoDB_20120810.DeleteTable")
				return r
			}(),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002", wantMsgIn: "DeleteTable",
		},
		{
			name:        "git-upload-pack POST allowed",
			give:        req("POST", "https://github.com/o/r.git/git-upload-pack", "application/x-git-upload-pack-request", "0032want 0123456789012345678901234567890123456789\n00000009done\n"),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "git fetch ref discovery allowed",
			give:        req("GET", "https://github.com/o/r.git/info/refs?service=git-upload-pack", "", ""),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "git-receive-pack POST held",
			give:        req("POST", "https://github.com/o/r.git/git-receive-pack", "application/x-git-receive-pack-request", "\x00\x01\x02pack"),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002",
		},
		{
			name:        "kubernetes delete held",
			give:        req("DELETE", "https://10.0.0.1/api/v1/namespaces/prod", "", ""),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002",
		},
		{
			name:        "GraphQL query allowed",
			give:        req("POST", "https://api.github.com/graphql", "application/json", `{"query": "query { viewer { login } }"}`),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "GraphQL mutation held",
			give:        req("POST", "https://api.github.com/graphql", "application/json", `{"query": "mutation { deleteRepository(input: {repositoryId: \"x\"}) { clientMutationId } }"}`),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002",
		},
		{
			name: "truncated AWS body cannot claim to be a read",
			give: func() *action.Request {
				r := req("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded", "Action=DescribeInstances")
				r.BodyTruncated = true
				return r
			}(),
			wantVerdict: VerdictApprove, wantID: "DEFAULT-002",
		},
		{
			name:        "POST to an unknown host allowed",
			give:        req("POST", "https://example.com/form", "application/x-www-form-urlencoded", "a=1"),
			wantVerdict: VerdictAllow,
		},
		{
			name:        "CONNECT tunnel denied",
			give:        &action.Request{Method: "CONNECT", Host: "example.com", Port: 443, Tunnel: true, BodySize: -1},
			wantVerdict: VerdictDeny, wantID: "TUNNEL",
		},
		{
			name:        "CONNECT tunnel to metadata denied by the policy",
			give:        &action.Request{Method: "CONNECT", Host: "169.254.169.254", Port: 80, Tunnel: true, BodySize: -1},
			wantVerdict: VerdictDeny, wantID: "DEFAULT-001",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := action.HTTP(tt.give)
			if tt.action != nil {
				a = *tt.action
			}
			d := e.Decide(t.Context(), NewInput(tt.give, a, sess, spec4Time))
			if d.Err != nil {
				t.Fatalf("Decide: %v", d.Err)
			}
			if d.Verdict != tt.wantVerdict {
				t.Errorf("Decide verdict = %v, want %v (reasons %+v)", d.Verdict, tt.wantVerdict, d.Reasons)
			}
			if tt.wantVerdict == VerdictAllow {
				if len(d.Reasons) != 0 {
					t.Errorf("allow with reasons %+v", d.Reasons)
				}
				return
			}
			if len(d.Reasons) == 0 {
				t.Fatalf("Decide: %v without reasons", d.Verdict)
			}
			if tt.wantID != "" && !slices.Contains(d.RuleIDs(), tt.wantID) {
				t.Errorf("Decide rule ids = %v, want %s", d.RuleIDs(), tt.wantID)
			}
			if !strings.Contains(d.Reasons[0].Message, tt.wantMsgIn) {
				t.Errorf("Decide reason = %q, want it to contain %q", d.Reasons[0].Message, tt.wantMsgIn)
			}
		})
	}
}

// BenchmarkDecideDefault is the baseline for policy evaluation (SPEC 11:
// ≤ 30 µs/op and ≤ 150 allocs for the example policy set).
func BenchmarkDecideDefault(b *testing.B) {
	e := newBuiltin(b)
	sess := &session.Info{ID: "s-bench", Name: "alice/claude", User: "alice", Command: "claude", Cwd: "/home/alice/shop"}
	inputs := []struct {
		name string
		give *action.Request
		want Verdict
	}{
		{"allow-get", req("GET", "https://api.github.com/repos/o/r/pulls?state=open&per_page=50", "", ""), VerdictAllow},
		{"allow-llm-post", req("POST", "https://api.anthropic.com/v1/messages", "application/json",
			`{"model": "claude", "max_tokens": 1024, "messages": [{"role": "user", "content": "hello"}]}`), VerdictAllow},
		{"approve-aws", req("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded",
			"Action=TerminateInstances&InstanceId.1=i-0abc&Version=2016-11-15"), VerdictApprove},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			input := NewInput(in.give, action.HTTP(in.give), sess, spec4Time)
			if d := e.Decide(b.Context(), input); d.Verdict != in.want || d.Err != nil {
				b.Fatalf("Decide = %v (err %v), want %v", d.Verdict, d.Err, in.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Decide(b.Context(), input)
			}
		})
	}
}
