package countersign_test

import data.countersign

req(method, host, path) := {
	"request": {"method": method, "scheme": "https", "host": host, "port": 443, "path": path, "query": {}, "headers": {}, "tunnel": false},
	"action": {"provider": "http", "operation": method, "read_only": method in {"GET", "HEAD", "OPTIONS"}, "destructive": method == "DELETE"},
}

test_read_allowed if {
	countersign.allow with input as req("GET", "api.github.com", "/repos/o/r")
	count(countersign.deny) == 0 with input as req("GET", "api.github.com", "/repos/o/r")
	count(countersign.approve) == 0 with input as req("GET", "api.github.com", "/repos/o/r")
}

test_llm_api_post_allowed if {
	count(countersign.approve) == 0 with input as req("POST", "api.anthropic.com", "/v1/messages")
	count(countersign.deny) == 0 with input as req("POST", "api.anthropic.com", "/v1/messages")
}

test_github_delete_held if {
	some m in countersign.approve with input as req("DELETE", "api.github.com", "/repos/o/r")
	m.id == "DEFAULT-002"
}

test_metadata_denied if {
	some m in countersign.deny with input as req("GET", "169.254.169.254", "/latest/meta-data/iam/security-credentials/")
	m.id == "DEFAULT-001"
}

test_git_push_held if {
	count(countersign.approve) == 1 with input as req("POST", "github.com", "/o/r.git/git-receive-pack")
}

test_git_fetch_allowed if {
	count(countersign.approve) == 0 with input as req("POST", "github.com", "/o/r.git/git-upload-pack")
}

aws_form(action) := object.union(req("POST", "ec2.us-east-1.amazonaws.com", "/"), {"request": {"body": {"Action": action}}})

test_aws_describe_allowed if {
	count(countersign.approve) == 0 with input as aws_form("DescribeInstances")
}

test_aws_terminate_held if {
	some m in countersign.approve with input as aws_form("TerminateInstances")
	contains(m.msg, "TerminateInstances")
}

test_aws_json_target_held if {
	inp := object.union(req("POST", "dynamodb.us-east-1.amazonaws.com", "/"), {"request": {"headers": {"x-amz-target": ["DynamoDB_20120810.DeleteTable"]}}})
	some m in countersign.approve with input as inp
	contains(m.msg, "DeleteTable")
}

test_kubernetes_delete_held if {
	count(countersign.approve) == 1 with input as req("DELETE", "10.0.0.1", "/api/v1/namespaces/prod")
}

graphql(q) := object.union(req("POST", "api.github.com", "/graphql"), {"request": {"body": {"query": q}}})

test_graphql_query_allowed if {
	count(countersign.approve) == 0 with input as graphql("query { viewer { login } }")
}

test_graphql_mutation_held if {
	count(countersign.approve) == 1 with input as graphql("query A { viewer { login } } mutation B { deleteRepository(input: {}) { clientMutationId } }")
}

tunnel(host, port) := {
	"request": {"method": "CONNECT", "host": host, "port": port, "tunnel": true},
	"action": {"provider": "http", "operation": "CONNECT", "read_only": false, "destructive": false},
}

test_tunnel_refused_by_default if {
	not countersign.allow with input as tunnel("example.com", 443)
}

test_tunnel_allowed_when_listed if {
	countersign.allow with input as tunnel("example.com", 443) with data.countersign.tunnels as ["example.com:443"]
}

classified(method, host, path, provider, read_only) := object.union(req(method, host, path), {"action": {"provider": provider, "read_only": read_only}})

test_kubernetes_exec_get_held if {
	# kubectl exec opens a WebSocket with a GET; the classifier says it writes.
	count(countersign.approve) == 1 with input as classified("GET", "k8s.example.test", "/api/v1/namespaces/prod/pods/web/exec", "kubernetes", false)
}

test_classified_read_post_allowed if {
	count(countersign.approve) == 0 with input as classified("POST", "ec2.us-east-1.amazonaws.com", "/", "aws", true)
}

test_classified_write_held if {
	count(countersign.approve) == 1 with input as classified("POST", "ec2.us-east-1.amazonaws.com", "/", "aws", false)
}

test_read_with_parse_error_held if {
	# A classifier that could not read all of a request cannot vouch that it only reads.
	inp := object.union(classified("POST", "ec2.us-east-1.amazonaws.com", "/", "aws", true), {"action": {"parse_error": "both X-Amz-Target and Action= name an operation"}})
	count(countersign.approve) == 1 with input as inp
}

test_websocket_upgrade_to_infrastructure_held if {
	inp := object.union(req("GET", "backboard.railway.app", "/graphql/v2"), {"request": {"upgrade": "websocket"}})
	count(countersign.approve) == 1 with input as inp
}

# Found by review: destructive MCP tool calls, on vendors' MCP endpoints too.
test_destructive_mcp_tool_call_held if {
	call := object.union(req("POST", "mcp.supabase.com", "/mcp"), {"action": {
		"provider": "mcp", "method": "tools/call", "operation": "tools/call", "tool": "execute_sql",
		"arguments": {"query": "DROP TABLE users"}, "server": "mcp.supabase.com/mcp", "read_only": false, "destructive": true,
	}})
	{m.id | some m in countersign.approve} == {"DEFAULT-003"} with input as call
	count(countersign.approve) == 0 with input as object.union(call, {"action": {"tool": "list_tables", "destructive": false}})
}
