# Egress allowlist
#
# The agent may reach the public package registries and LLM APIs listed
# in countersign.lib.hosts, and the company's own hosts listed in
# data.countersign.egress.allow, on the ports in
# data.countersign.egress.ports. Every other destination is denied,
# tunnels (CONNECT to hosts that are not intercepted) included.
#
# An allowlist says where traffic may go, not what it may do there:
# combine it with the provider policies for what happens on allowed hosts.
# It binds only processes that use the proxy; run the agent with
# `countersign run --isolate` to leave it no other way out.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign

import data.countersign.lib.globs
import data.countersign.lib.hosts

default egress_company := []

egress_company := data.countersign.egress.allow

default egress_ports := [443]

egress_ports := data.countersign.egress.ports

egress_host_allowed if hosts.is_package_registry(input.request.host)

egress_host_allowed if hosts.is_llm_api(input.request.host)

egress_host_allowed if globs.host_any(egress_company, input.request.host)

egress_port_allowed if input.request.port in egress_ports

# METADATA
# title: EGRESS-001
# description: Hosts that are not on the allowlist are denied.
deny contains {
	"id": "EGRESS-001",
	"msg": sprintf("%s is not on the egress allowlist (package registries, LLM APIs and the company's hosts); ask a human to add it to data.countersign.egress.allow", [input.request.host]),
} if {
	not egress_host_allowed
}

# METADATA
# title: EGRESS-002
# description: Allowed hosts are reached on the allowed ports only.
deny contains {
	"id": "EGRESS-002",
	"msg": sprintf("port %d of %s is not allowed; only ports %s are", [input.request.port, input.request.host, concat(", ", [sprintf("%d", [p]) | some p in egress_ports])]),
} if {
	egress_host_allowed
	not egress_port_allowed
}

# METADATA
# title: Tunnels
# description: |
#   A tunnel (CONNECT to a host that is not intercepted) carries bytes no
#   policy can read: it is allowed only to an allowlisted host and port.
allow if not input.request.tunnel

allow if {
	input.request.tunnel
	egress_host_allowed
	egress_port_allowed
}

# METADATA
# title: EGRESS-003
# description: |
#   An allowed LLM API is not asked to fetch, search or connect to URLs
#   on the agent's behalf: a remote MCP server (Anthropic's mcp_servers,
#   OpenAI's mcp tools), a server-side web fetch, search or URL context,
#   or an image, document or file given by URL would send what the agent
#   chose to a host no allowlist names (found by review). Set
#   data.countersign.egress.llm_fetches to true to allow them (Claude
#   Code's WebSearch uses the server-side web search).
deny contains {
	"id": "EGRESS-003",
	"msg": sprintf("this request asks %s to reach URLs for the agent (%s), which the egress allowlist does not allow; send the content itself, or ask a human to set egress.llm_fetches", [input.request.host, concat(", ", sort(egress_llm_fetches))]),
} if {
	hosts.is_llm_api(input.request.host)
	not data.countersign.egress.llm_fetches == true
	count(egress_llm_fetches) > 0
}

egress_llm_fetches contains mark if {
	walk(input.request.body, [path, value])
	count(path) > 0
	some mark in egress_fetch_marks(path[count(path) - 1], value)
	not egress_history(path)
}

# What the provider did in earlier turns is history, not a request to
# fetch (found by review: every turn after a WebSearch or WebFetch was
# denied): its own tools' results (web_search_tool_result,
# web_fetch_tool_result, search results) and the tool calls the model
# made (tool_use, server_tool_use, Gemini's functionCall), whose inputs
# name URLs. Results the agent writes (tool_result) are not skipped: an
# image by URL in one is fetched.
egress_history(path) if {
	some i in numbers.range(1, count(path) - 1)
	node := object.get(input.request.body, array.slice(path, 0, i), null)
	is_string(node.type)
	regex.match(`^(web_search_tool_result|web_fetch_tool_result|.*_search_result|tool_use|server_tool_use|mcp_tool_use|mcp_tool_result)$`, node.type)
}

egress_history(path) if {
	some i in numbers.range(0, count(path) - 2)
	path[i] in {"functionCall", "function_call", "tool_calls"}
}

# The keys providers take, in snake and camel case (Gemini takes both).
egress_fetch_marks(key, value) := {"mcp_servers"} if {
	key in {"mcp_servers", "mcpServers"}
	is_array(value)
	count(value) > 0
} else := {"server_url"} if {
	key in {"server_url", "serverUrl"}
	is_string(value)
} else := {sprintf("a %s tool", [value])} if {
	key == "type"
	is_string(value)
	regex.match(`^(mcp|web_fetch.*|web_search.*|url_context|computer_use.*)$`, value)
} else := {"url_context"} if {
	key in {"url_context", "urlContext", "googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval", "web_search_options", "webSearchOptions"}
} else := {sprintf("a %s", [replace(key, "_", " ")])} if {
	key in {"url", "image_url", "file_url", "document_url", "file_uri", "audio_url", "video_url", "imageUrl", "fileUrl", "documentUrl", "fileUri", "audioUrl", "videoUrl"}
	egress_remote_url(value)
} else := set()

egress_remote_url(value) if regex.match(`^(?i)https?://`, value)

egress_remote_url(value) if regex.match(`^(?i)https?://`, value.url)
