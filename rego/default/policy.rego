# METADATA
# title: countersign default policy
# description: |
#   Used when no policy is configured. Reads are allowed; mutating requests to
#   known infrastructure APIs, and MCP tool calls that may delete, wait for a
#   human; cloud metadata endpoints are denied; tunnels that are not
#   intercepted are refused.
package countersign

import data.countersign.lib.hosts

# METADATA
# description: The metadata endpoint hands out the machine's cloud credentials.
deny contains {
	"id": "DEFAULT-001",
	"msg": sprintf("requests to the cloud metadata endpoint %s are not allowed; the agent must use the credentials it was given", [input.request.host]),
} if {
	hosts.is_metadata(input.request.host)
}

# METADATA
# description: Mutating calls to infrastructure APIs need a human.
approve contains {
	"id": "DEFAULT-002",
	"msg": sprintf("%s changes infrastructure (%s %s%s); a human must approve it", [operation, input.request.method, input.request.host, input.request.path]),
} if {
	not read_request
	infrastructure_request
}

# METADATA
# description: |
#   MCP tool calls that may delete or overwrite data (a destructive verb in
#   the tool's name or the action it is told to take, SQL that drops or
#   deletes) need a human, on any server: vendors' MCP endpoints are on no
#   list of infrastructure hosts (found by review: execute_sql with DROP
#   TABLE to Supabase's MCP server was allowed).
approve contains {
	"id": "DEFAULT-003",
	"msg": sprintf("the MCP tool %s on %s may delete or overwrite data; a human must approve it", [input.action.tool, input.action.server]),
} if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	input.action.destructive == true
}

# Tunnels (CONNECT to a host that is not intercepted) carry bytes the policy
# cannot see, so they must be allowed explicitly: list "host:port" strings in
# data.countersign.tunnels to permit them.
allow if not input.request.tunnel

allow if {
	input.request.tunnel
	sprintf("%s:%d", [input.request.host, input.request.port]) in data.countersign.tunnels
}

default operation := "this request"

operation := sprintf("%s:%s", [input.action.service, input.action.operation]) if {
	input.action.service
	input.action.operation
} else := aws_operation if {
	aws_operation
} else := input.action.operation

infrastructure_request if hosts.is_infrastructure(input.request.host)

infrastructure_request if input.action.provider in {"aws", "kubernetes", "github", "git"}

# Kubernetes API paths, until the kubernetes classifier names the action.
infrastructure_request if regex.match(`^/api/v1/`, input.request.path)

infrastructure_request if regex.match(`^/apis/[a-z0-9.-]+/v[0-9][a-z0-9]*/`, input.request.path)

read_methods := {"GET", "HEAD", "OPTIONS"}

# A classified request is a read when its provider says so: a GET can write
# (a Kubernetes exec upgrade, a kubelet call through nodes/proxy), and a
# POST can read (AWS Describe*, git fetch, a GraphQL query).
read_request if {
	input.action.provider != "http"
	input.action.read_only
	not input.action.parse_error
}

# Requests no provider recognised: the method decides, with a few shapes
# known to read. An upgrade is not a read whatever its method: after the
# 101 its messages (a GraphQL mutation over graphql-ws) pass undecided.
read_request if {
	input.action.provider == "http"
	input.request.method in read_methods
	not input.request.upgrade
}

# git fetch and clone POST to git-upload-pack; only git-receive-pack pushes.
read_request if {
	input.action.provider == "http"
	endswith(input.request.path, "/git-upload-pack")
}

read_request if {
	input.action.provider == "http"
	endswith(input.request.path, "/info/refs")
	input.request.query.service == ["git-upload-pack"]
}

# AWS query and JSON protocols POST every call, reads included.
read_request if {
	input.action.provider == "http"
	aws_operation
	some prefix in aws_read_prefixes
	startswith(aws_operation, prefix)
}

aws_read_prefixes := [
	"Describe", "List", "Get", "Head", "BatchGet", "Lookup", "Search",
	"Scan", "Query", "Select", "Estimate", "Preview", "Validate",
]

aws_operation := input.request.body.Action if {
	endswith(input.request.host, ".amazonaws.com")
	is_string(input.request.body.Action)
} else := input.request.query.Action[0] if {
	endswith(input.request.host, ".amazonaws.com")
} else := op if {
	endswith(input.request.host, ".amazonaws.com")
	target := input.request.headers["x-amz-target"][0]
	parts := split(target, ".")
	op := parts[count(parts) - 1]
}

# A GraphQL document that is not a mutation only reads.
read_request if {
	input.action.provider == "http"
	endswith(input.request.path, "/graphql")
	is_string(input.request.body.query)
	not regex.match(`\bmutation\b`, input.request.body.query)
}
