package countersign.mcp_test

import data.countersign

# Actions as countersign's MCP classifier makes them of the official Go
# SDK client's requests (action/mcp/testdata).

mcp(host, method, tool, arguments) := {
	"request": {
		"method": "POST", "scheme": "https", "host": host, "port": 443, "path": "/mcp",
		"query": {}, "headers": {"content-type": ["application/json"]}, "tunnel": false,
	},
	"action": {
		"provider": "mcp", "method": method, "operation": method, "tool": tool, "arguments": arguments,
		"server": sprintf("%s/mcp", [host]), "protocol_version": "2026-07-28",
		"read_only": method != "tools/call", "destructive": startswith(tool, "drop_"),
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

test_drop_table_held if {
	inp := mcp("mcp.example.test", "tools/call", "drop_table", {"table": "users"})
	held(inp) == {"MCP-002"}
	denied(inp) == set()
	some r in countersign.approve with input as inp
	r.msg == `the MCP tool drop_table on mcp.example.test/mcp waits for a human because it may delete or overwrite data; arguments {"table":"users"}`
}

test_delete_tool_held if held(mcp("mcp.example.test", "tools/call", "delete_user", {"id": 7})) == {"MCP-002"}

test_long_arguments_are_cut if {
	inp := mcp("mcp.example.test", "tools/call", "delete_rows", {"ids": numbers.range(1, 100)})
	some r in countersign.approve with input as inp
	endswith(r.msg, "…")
	count(r.msg) < 350
}

test_tool_name_must_start_with_the_pattern if allowed(mcp("mcp.example.test", "tools/call", "undelete_file", {}))

test_other_tools_allowed if {
	allowed(mcp("mcp.example.test", "tools/call", "list_tables", {}))
	allowed(mcp("mcp.example.test", "tools/list", "", {}))
	allowed(mcp("mcp.example.test", "initialize", "", {}))
}

test_denied_server_refused if {
	inp := mcp("untrusted-mcp.example.test", "tools/call", "list_tables", {})
	denied(inp) == {"MCP-001"}
	some r in countersign.deny with input as inp
	r.msg == "the MCP server untrusted-mcp.example.test/mcp is not allowed for agents; use another server or ask a human"
}

test_denied_server_refused_from_initialize_on if denied(mcp("untrusted-mcp.example.test", "initialize", "", {})) == {"MCP-001"}

test_denied_server_glob if denied(mcp("tools.mcp.example.org", "tools/list", "", {})) == {"MCP-001"}

# The GET event stream and DELETE of a session are not JSON-RPC: the http
# provider classifies them, and the endpoint alone decides.
test_denied_server_event_stream_refused if {
	inp := {
		"request": {"method": "GET", "host": "untrusted-mcp.example.test", "path": "/mcp", "headers": {"accept": ["text/event-stream"]}},
		"action": {"provider": "http", "operation": "GET", "read_only": true, "destructive": false},
	}
	denied(inp) == {"MCP-001"}
}

test_similar_server_name_allowed if allowed(mcp("trusted-mcp.example.test", "tools/call", "list_tables", {}))

# Found by review: prefixed and differently cased names, calls the
# classifier finds destructive, MCP over WebSocket, paths in another case.
test_destructive_calls_held_whatever_their_name if {
	held(mcp("mcp.example.test", "tools/call", "github__delete_file", {})) == {"MCP-002"}
	held(mcp("mcp.example.test", "tools/call", "supabase.drop_table", {})) == {"MCP-002"}
	held(mcp("mcp.example.test", "tools/call", "Delete_User", {})) == {"MCP-002"}
	held(object.union(mcp("mcp.example.test", "tools/call", "execute_sql", {"query": "DROP TABLE users"}), {"action": {"destructive": true}})) == {"MCP-002"}
}

test_mcp_over_websocket_denied if {
	ws := {
		"request": {"method": "GET", "scheme": "https", "host": "mcp.example.test", "port": 443, "path": "/mcp", "query": {}, "headers": {"upgrade": ["websocket"], "sec-websocket-protocol": ["mcp"]}, "upgrade": "websocket", "tunnel": false},
		"action": {"provider": "http", "operation": "GET", "read_only": false},
	}
	denied(ws) == {"MCP-003"}
	allowed(object.union(ws, {"request": {"path": "/chat", "headers": {"sec-websocket-protocol": ["chat"]}}}))
}

test_denied_server_paths_in_any_case if {
	denied(object.union(mcp("untrusted-mcp.example.test", "tools/call", "x", {}), {"request": {"path": "/MCP"}, "action": {"server": "untrusted-mcp.example.test/MCP"}})) == {"MCP-001"}
}
