package countersign.incidents_test

import data.countersign

# Requests of the incidents, as countersign's classifiers turn them into
# policy input (the golden files in action/*/testdata were captured from
# the same clients).

prod_key := "AKIA2PRODEXAMPLE0001"

dev_key := "AKIAIOSFODNN7EXAMPLE"

aws(key, service, operation, resources, params, read_only, destructive) := {
	"request": {
		"method": "POST", "scheme": "https", "host": sprintf("%s.us-east-1.amazonaws.com", [service]),
		"port": 443, "path": "/", "query": {}, "headers": {}, "tunnel": false,
	},
	"action": {
		"provider": "aws", "service": service, "operation": operation, "region": "us-east-1",
		"access_key_id": key, "resources": resources, "params": params,
		"read_only": read_only, "destructive": destructive,
	},
}

http(method, host, path, headers, body) := {
	"request": {
		"method": method, "scheme": "https", "host": host, "port": 443, "path": path,
		"query": {}, "headers": headers, "body": body, "tunnel": false,
	},
	"action": {"provider": "http", "operation": method, "read_only": method == "GET", "destructive": method == "DELETE"},
}

github(method, operation, owner, repo, fields, body) := {
	"request": {
		"method": method, "scheme": "https", "host": "api.github.com", "port": 443,
		"path": sprintf("/repos/%s/%s", [owner, repo]), "query": {}, "headers": {}, "body": body, "tunnel": false,
	},
	"action": object.union(
		{
			"provider": "github", "operation": operation, "owner": owner, "repo": repo,
			"host": "api.github.com", "ghes": false, "read_only": method == "GET", "destructive": method == "DELETE",
		},
		fields,
	),
}

graphql(provider, host, fields, selections, variables, extra) := {
	"request": {"method": "POST", "scheme": "https", "host": host, "port": 443, "path": "/graphql/v2", "query": {}, "headers": {}, "tunnel": false},
	"action": object.union(
		{
			"provider": provider, "operation_type": "mutation", "operation": concat(",", fields),
			"fields": fields, "selections": selections, "variables": variables,
			"read_only": false, "destructive": false,
		},
		extra,
	),
}

mcp(tool, arguments) := {
	"request": {
		"method": "POST", "scheme": "https", "host": "mcp.example.test", "port": 443, "path": "/mcp",
		"query": {}, "headers": {"content-type": ["application/json"]}, "tunnel": false,
	},
	"action": {
		"provider": "mcp", "method": "tools/call", "operation": "tools/call", "tool": tool, "arguments": arguments,
		"server": "mcp.example.test/mcp", "read_only": false, "destructive": false,
	},
}

git_push(repo, updates) := {
	"request": {
		"method": "POST", "scheme": "https", "host": "github.com", "port": 443,
		"path": sprintf("/%s.git/git-receive-pack", [repo]), "query": {}, "headers": {}, "tunnel": false,
	},
	"action": {
		"provider": "git", "service": "receive-pack", "operation": "push", "host": "github.com", "repo": repo,
		"updates": updates, "read_only": false,
		"destructive": count([u | some u in updates; u.kind == "delete"]) > 0,
	},
}

kube(verb, resource, subresource, namespace, name, body) := {
	"request": {
		"method": "DELETE", "scheme": "https", "host": "k8s.example.test", "port": 443, "path": "/",
		"query": {}, "headers": {}, "body": body, "tunnel": false,
	},
	"action": {
		"provider": "kubernetes", "verb": verb, "operation": verb, "resource": resource, "subresource": subresource,
		"namespace": namespace, "name": name, "dry_run": false,
		"read_only": verb in {"get", "list", "watch"}, "destructive": verb in {"delete", "deletecollection"},
	},
}

ids(reasons) := {r.id | some r in reasons}

denied(inp) := reasons if {
	reasons := ids(countersign.deny) with input as inp
}

held(inp) := reasons if {
	reasons := ids(countersign.approve) with input as inp
}

allowed(inp) if {
	denied(inp) == set()
	held(inp) == set()
}

test_data_file_is_loaded if {
	data.countersign.freeze == false
	"integration_tokens" in data.countersign.sql.secret_tables
	"drone" in data.countersign.production.kubernetes.namespaces
}
