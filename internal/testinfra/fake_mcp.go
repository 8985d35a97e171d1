package testinfra

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPMode selects how an MCPServer keeps state.
type MCPMode int

const (
	// MCPStateful keeps sessions (Mcp-Session-Id, the GET event stream and
	// DELETE to end a session), as MCP servers did up to protocol 2025-11-25.
	MCPStateful MCPMode = iota + 1
	// MCPStateless answers every POST on its own, the sessionless mode of
	// protocol 2026-07-28; GET and DELETE get 405.
	MCPStateless
)

// MCPServer is a real MCP server from the official Go SDK on the streamable
// HTTP transport, with two tools: list_tables (read-only) and drop_table
// (destructive). It counts the tool calls that reached a tool handler, so a
// test can tell a denied call never arrived.
type MCPServer struct {
	handler http.Handler

	mu    sync.Mutex
	calls map[string]int
}

// NewMCPServer returns an MCP server that answers POSTs with SSE streams,
// like the SDK's default; jsonResponse makes it answer with
// application/json instead.
func NewMCPServer(mode MCPMode, jsonResponse bool) *MCPServer {
	s := &MCPServer{calls: map[string]int{}}
	srv := mcp.NewServer(&mcp.Implementation{Name: "countersign-fake-mcp", Version: "1.0.0"}, nil)
	yes, no := true, false
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_tables",
		Description: "List the tables of the shop database.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		s.record("list_tables")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "users, orders, integration_tokens"}}}, nil, nil
	})
	type dropIn struct {
		Table string `json:"table" jsonschema:"the table to drop"`
	}
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "drop_table",
		Description: "Drop a table of the shop database. There is no undo.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: false, DestructiveHint: &yes, IdempotentHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in dropIn) (*mcp.CallToolResult, any, error) {
		s.record("drop_table")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "dropped table " + in.Table}}}, nil, nil
	})
	s.handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless:    mode == MCPStateless,
		JSONResponse: jsonResponse,
		// The fake listens on loopback but is reached under names such as
		// mcp.example.test: the SDK's DNS-rebinding guard would refuse that.
		DisableLocalhostProtection: true,
	})
	return s
}

func (s *MCPServer) record(tool string) {
	s.mu.Lock()
	s.calls[tool]++
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *MCPServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Calls returns how many calls of tool reached its handler.
func (s *MCPServer) Calls(tool string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tool]
}

// fakeMCP is the MCP server FakeAPIs routes /mcp to. FakeAPIs keeps no
// state between requests, so it is a stateless server built per request;
// tests that need sessions or a call count start their own NewMCPServer.
func fakeMCP(w http.ResponseWriter, r *http.Request) {
	NewMCPServer(MCPStateless, false).ServeHTTP(w, r)
}

// MCPToolCalls counts the tools/call requests for tool among the requests
// an upstream recorded, looking into JSON-RPC batches too, so a test can
// assert that a denied call never reached the server whatever shape it
// was sent in.
func MCPToolCalls(reqs []Recorded, tool string) int {
	n := 0
	for _, r := range reqs {
		if r.Method != http.MethodPost {
			continue
		}
		body := bytes.TrimSpace(r.Body)
		var msgs []json.RawMessage
		if bytes.HasPrefix(body, []byte("[")) {
			if json.Unmarshal(body, &msgs) != nil {
				continue
			}
		} else {
			msgs = []json.RawMessage{body}
		}
		for _, m := range msgs {
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			if json.Unmarshal(m, &msg) == nil && msg.Method == "tools/call" && msg.Params.Name == tool {
				n++
			}
		}
	}
	return n
}
