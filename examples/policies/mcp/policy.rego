# MCP guard
#
# For MCP servers on the streamable HTTP transport: tool calls whose tool
# name matches data.countersign.mcp.approve_tools (drop_*, delete_*) wait
# for a human, and every request to a server matching
# data.countersign.mcp.denied_servers is denied. Local (stdio) MCP
# servers never cross the proxy; only the HTTP calls they make do.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign

import data.countersign.lib.globs

default mcp_approve_tools := []

mcp_approve_tools := data.countersign.mcp.approve_tools

default mcp_denied_servers := []

mcp_denied_servers := data.countersign.mcp.denied_servers

# The endpoint a request goes to, as "host/path", the MCP classifier's
# notation for a server.
mcp_endpoint := concat("", [input.request.host, input.request.path])

mcp_denied_server := input.action.server if {
	input.action.provider == "mcp"
	globs.match_any(mcp_denied_servers, input.action.server)
} else := mcp_endpoint if {
	globs.match_any(mcp_denied_servers, mcp_endpoint)
}

# The tool call's arguments for the approver, cut to 200 bytes (the approval
# page shows the whole request).
mcp_arguments := text if {
	text := json.marshal(object.get(input.action, "arguments", {}))
	count(text) <= 200
} else := concat("", [substring(json.marshal(input.action.arguments), 0, 200), "…"])

# METADATA
# title: MCP-001
# description: No request reaches a denied MCP server.
deny contains {
	"id": "MCP-001",
	"msg": sprintf("the MCP server %s is not allowed for agents; use another server or ask a human", [server]),
} if {
	server := mcp_denied_server
}

# METADATA
# title: MCP-002
# description: Tool calls matching approve_tools wait for a human.
approve contains {
	"id": "MCP-002",
	"msg": sprintf("the MCP tool %s on %s, arguments %s", [input.action.tool, input.action.server, mcp_arguments]),
} if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	globs.match_any(mcp_approve_tools, input.action.tool)
}
