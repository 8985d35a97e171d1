//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/testinfra"
)

// denyDestructiveTools denies MCP tool calls the classifier marks
// destructive (drop_table) and allows the rest.
const denyDestructiveTools = `package countersign

deny contains {"id": "MCP-001", "msg": sprintf("the MCP tool %s is destructive", [input.action.tool])} if {
	input.action.provider == "mcp"
	input.action.operation == "tools/call"
	input.action.destructive
}
`

// buildMCPClient builds the MCP client of testdata/mcpclient: the official
// Go SDK's client, which reaches the proxy through HTTPS_PROXY and trusts
// its CA through SSL_CERT_FILE like any Go program.
func buildMCPClient(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "mcpclient")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", out, "./testdata/mcpclient")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the MCP client: %v\n%s", err, b)
	}
	return out
}

// TestMCPDestructiveToolCallDenied runs a real MCP client under
// `countersign run` against a real MCP server (both the official Go SDK),
// in the sessionless 2026-07-28 protocol and in 2025-11-25: the safe tool
// runs, the dangerous one is denied, the client shows the reason, and the
// call never reaches the server.
func TestMCPDestructiveToolCallDenied(t *testing.T) {
	client := buildMCPClient(t)
	for _, tt := range []struct{ name, protocol string }{
		{"2026-07-28 (the SDK default)", ""},
		{"2025-11-25", "2025-11-25"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			protocol := tt.protocol
			w := newWorld(t, denyDestructiveTools, "", "mcp.example.test")
			args := []string{"run", "--", client}
			if protocol != "" {
				args = append(args, "-protocol", protocol)
			}

			ok := w.run(append(args, "https://mcp.example.test/mcp", "list_tables")...)
			if ok.code != 0 || !strings.Contains(ok.stdout, "result: users, orders, integration_tokens") {
				t.Fatalf("list_tables through countersign: code %d\nstdout %s\nstderr %s", ok.code, ok.stdout, ok.stderr)
			}
			if want := "protocol: " + protocol; protocol != "" && !strings.Contains(ok.stdout, want) {
				t.Errorf("the client did not negotiate %s:\n%s", protocol, ok.stdout)
			}

			denied := w.run(append(args, "https://mcp.example.test/mcp", "drop_table", `{"table":"users"}`)...)
			const reason = "tool error: countersign: denied by policy MCP-001: the MCP tool drop_table is destructive"
			if denied.code != 1 || !strings.Contains(denied.stdout, reason) {
				t.Fatalf("drop_table through countersign: code %d, want 1 and %q\nstdout %s\nstderr %s", denied.code, reason, denied.stdout, denied.stderr)
			}
			// The client connected and listed the tools before the call: the
			// denial is that one call, not a broken session.
			if !strings.Contains(denied.stdout, "tools: drop_table, list_tables") {
				t.Errorf("the client did not list the tools before the denied call:\n%s", denied.stdout)
			}

			reqs := w.up.Requests()
			if n := testinfra.MCPToolCalls(reqs, "drop_table"); n != 0 {
				t.Errorf("upstream saw %d drop_table calls, want 0", n)
			}
			if n := testinfra.MCPToolCalls(reqs, "list_tables"); n != 1 {
				t.Errorf("upstream saw %d list_tables calls, want 1", n)
			}
			t.Logf("denied call, as the client printed it:\n%s", denied.stdout)
			audit := w.auditLog()
			if !strings.Contains(audit, "MCP-001") || !strings.Contains(audit, `"tool":"drop_table"`) {
				t.Errorf("the denied call is not in the audit log with its tool:\n%s", audit)
			}
		})
	}
}

// TestMCPSmuggledCallsRefused: a batch or a message with a repeated key
// could make the server run a tool the policy never saw (the proxy reads
// one "name", the server the other), so countersign refuses them with 400
// before the policy runs, whatever the policy says, and nothing reaches the
// server. curl stands in for a client that sends such bodies: the SDK's
// own client never does.
func TestMCPSmuggledCallsRefused(t *testing.T) {
	const allowAll = "package countersign\n"
	tests := []struct{ name, body string }{
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}]`},
		{"repeated tool name", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_tables","name":"drop_table"}}`},
		{"tool name repeated under another case", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_tables","Name":"drop_table"}}`},
		{"repeated argument", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"tmp","table":"users"}}}`},
	}
	w := newWorld(t, allowAll, "", "mcp.example.test")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.run("run", "--", "curl", "-sS", "-X", "POST", "https://mcp.example.test/mcp",
				"-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream",
				"--data-binary", tt.body, "-w", "\nHTTP %{http_code}")
			if !strings.Contains(r.stdout, "HTTP 400") || !strings.Contains(r.stdout, `"code":-32600`) || !strings.Contains(r.stdout, "countersign:") {
				t.Errorf("curl through countersign: code %d, want a 400 JSON-RPC error with the reason\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
		})
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}
