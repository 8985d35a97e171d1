# MCP guard
#
# For MCP servers on the streamable HTTP transport: tool calls whose tool
# name matches data.countersign.mcp.approve_tools (drop_*, delete_*), or
# that the classifier finds destructive, wait for a human; every request
# to a server matching data.countersign.mcp.denied_servers is denied, and
# so is MCP over WebSocket, whose messages cannot be decided. Local (stdio) MCP
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

# Paths compared in lower case: servers that route paths so (Express,
# ASP.NET) reach /EVIL/mcp by /evil/mcp's route (found by review).
mcp_denied_server := input.action.server if {
	input.action.provider == "mcp"
	globs.match_any(mcp_denied_patterns, lower(input.action.server))
} else := mcp_endpoint if {
	globs.match_any(mcp_denied_patterns, lower(mcp_endpoint))
}

mcp_denied_patterns := [lower(p) | some p in mcp_denied_servers]

# The tool call's arguments for the approver, cut to 200 bytes (the approval
# page shows the whole request).
default mcp_args := {}

mcp_args := input.action.arguments

mcp_arguments := text if {
	text := json.marshal(mcp_args)
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
	"msg": sprintf("the MCP tool %s on %s waits for a human because %s; arguments %s", [input.action.tool, input.action.server, mcp_why, mcp_arguments]),
} if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	mcp_tool_needs_a_human
}

# The tool's name matches approve_tools, in any case and under a gateway's
# prefix (github__delete_file, supabase.drop_table), or the classifier
# finds the call destructive: a destructive verb anywhere in its name, in
# the action a grouped tool is told to take ({"method":
# "delete_workflow_run_logs"}), or SQL that drops or deletes (found by
# review: execute_sql with DROP TABLE, reset_branch and prefixed names
# were allowed).
mcp_tool_needs_a_human if globs.match_any(mcp_approve_tools, lower(input.action.tool))

mcp_tool_needs_a_human if {
	parts := regex.split(`[_.:/-]{2}|[.:/]`, lower(input.action.tool))
	globs.match_any(mcp_approve_tools, parts[count(parts) - 1])
}

mcp_tool_needs_a_human if input.action.destructive == true

mcp_why := "its name matches approve_tools" if {
	not input.action.destructive == true
} else := "it may delete or overwrite data"

# METADATA
# title: MCP-003
# description: |
#   MCP over WebSocket is not decided: after the upgrade its messages pass
#   unread, so the upgrade is denied (found by review).
deny contains {
	"id": "MCP-003",
	"msg": "MCP over WebSocket cannot be decided message by message; connect with the Streamable HTTP transport",
} if {
	input.request.upgrade
	mcp_websocket
}

mcp_websocket if {
	some protocol in input.request.headers["sec-websocket-protocol"]
	regex.match(`(?i)(^|[\s,])mcp`, protocol)
}

mcp_websocket if regex.match(`(?i)/mcp/?$`, input.request.path)
