package main

import (
	"strings"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/golden"
)

// Requests that carry another API's markers, which the server they go to
// ignores, must not be read as that other API: the first provider to claim
// them used to win, so a DELETE of a GitHub repository with an
// Mcp-Session-Id header was an MCP "session/end".
func TestMarkersOfAnotherAPIAreRefused(t *testing.T) {
	tests := []struct {
		name, raw string
		refused   bool
		provider  string
	}{
		{
			name:    "github delete with an MCP session header",
			raw:     "DELETE /repos/acme/prod HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer ghp_x\r\nMcp-Session-Id: 1\r\n\r\n",
			refused: true,
		},
		{
			name:    "github delete with AWS presigning parameters",
			raw:     "DELETE /repos/acme/prod?Action=DescribeInstances&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20250101%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-SignedHeaders=host&X-Amz-Signature=00 HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer ghp_x\r\n\r\n",
			refused: true,
		},
		{
			name:    "graphql mutation with JSON-RPC members",
			raw:     "POST /graphql/v2 HTTP/1.1\r\nHost: backboard.railway.app\r\nContent-Type: application/json\r\nContent-Length: 95\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"ping","query":"mutation { volumeDelete(volumeId: \"v1\") }"}` + "\n",
			refused: true,
		},
		{
			name:    "kubernetes create with a GraphQL query member",
			raw:     "POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings HTTP/1.1\r\nHost: prod.k8s.acme.example\r\nContent-Type: application/json\r\nContent-Length: 76\r\n\r\n" + `{"kind":"ClusterRoleBinding","query":"{__typename}","roleRef":{"name":"x"}}` + "\n",
			refused: true,
		},
		{
			name:    "kubernetes exec with an MCP session header",
			raw:     "GET /api/v1/namespaces/prod/pods/web/exec?command=sh HTTP/1.1\r\nHost: prod.k8s.acme.example\r\nMcp-Session-Id: 1\r\nAccept: text/event-stream\r\n\r\n",
			refused: true,
		},
		{
			name:     "github graphql is one API read by two classifiers",
			raw:      "POST /graphql HTTP/1.1\r\nHost: api.github.com\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n" + `{"query":"{ viewer { login } }"}`,
			provider: "github",
		},
		{
			// AppSync's GraphQL endpoint is an AWS host and SigV4-signed:
			// the aws provider finds no operation and yields.
			name: "AppSync GraphQL signed with SigV4",
			raw: "POST /graphql HTTP/1.1\r\nHost: abc123.appsync-api.us-east-1.amazonaws.com\r\nContent-Type: application/json\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/appsync/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32) +
				"\r\nContent-Length: 42\r\n\r\n" + `{"query":"mutation { deletePost(id: 1) }"}`,
			provider: "graphql",
		},
		{
			name: "a DynamoDB delete with JSON-RPC members",
			raw: "POST / HTTP/1.1\r\nHost: dynamodb.us-east-1.amazonaws.com\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.DeleteTable\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32) +
				"\r\nContent-Length: 56\r\n\r\n" + `{"TableName":"x","jsonrpc":"2.0","id":1,"method":"ping"}`,
			refused: true,
		},
		{
			// Conflicting Action= values leave aws without an operation; the
			// MCP header must not then stand in for what EC2 does.
			name: "EC2 with two Action values and an MCP session header",
			raw: "GET /?Action=TerminateInstances&InstanceId.1=i-0abc&Action=DescribeInstances HTTP/1.1\r\nHost: ec2.us-east-1.amazonaws.com\r\nMcp-Session-Id: 1\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32) + "\r\n" + "\r\n",
			refused: true,
		},
		{
			name: "GraphQL document in the URL and JSON-RPC members in the body",
			raw: "POST /graphql?query=mutation%7BissueDelete%7D HTTP/1.1\r\nHost: api.linear.app\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" +
				`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			refused: true,
		},
		{
			name:     "CodeCommit git fetch",
			raw:      "GET /v1/repos/shop/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: git-codecommit.us-east-1.amazonaws.com\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
			provider: "git",
		},
		{
			name: "an MCP gateway on an AWS host, signed",
			raw: "POST /mcp HTTP/1.1\r\nHost: gw-1.gateway.bedrock-agentcore.us-east-1.amazonaws.com\r\nContent-Type: application/json\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/bedrock-agentcore/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32) + "\r\n" + "Content-Length: 46\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			provider: "mcp",
		},
		{
			name: "GraphQL behind API Gateway",
			raw: "POST /prod/graphql HTTP/1.1\r\nHost: a1b2c3.execute-api.us-east-1.amazonaws.com\r\nContent-Type: application/json\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32) + "\r\n" + "Content-Length: 32\r\n\r\n" + `{"query":"{ viewer { login } }"}`,
			provider: "graphql",
		},
		{
			name:     "an MCP call",
			raw:      "POST /mcp HTTP/1.1\r\nHost: mcp.acme.example\r\nContent-Type: application/json\r\nMcp-Session-Id: 1\r\nContent-Length: 73\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query"}}` + "\n",
			provider: "mcp",
		},
	}
	cfg := config.Default()
	cfg.Kubernetes.Hosts = []string{"prod.k8s.acme.example"}
	cls := newClassifier(&cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar, err := golden.Request([]byte(tt.raw), golden.Options{BodyLimit: golden.DefaultBodyLimit})
			if err != nil {
				t.Fatal(err)
			}
			a := cls.Classify(ar)
			status, reason, refused := cls.Reject(a)
			if refused != tt.refused {
				t.Fatalf("Reject(%s %s, parse_error %q) = %v, want %v", a.Provider, a.Operation, a.ParseError, refused, tt.refused)
			}
			if !tt.refused {
				if a.Provider != tt.provider {
					t.Errorf("provider = %s, want %s", a.Provider, tt.provider)
				}
				return
			}
			if status != 400 || !strings.Contains(reason, "reads both as") || a.ReadOnly {
				t.Errorf("refusal = %d %q, read_only %v", status, reason, a.ReadOnly)
			}
			if _, ok := a.Fields[action.AmbiguousField]; !ok {
				t.Errorf("no %s field in %+v", action.AmbiguousField, a.Fields)
			}
		})
	}
}
