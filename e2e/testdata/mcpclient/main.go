// Command mcpclient is a real MCP client from the official Go SDK: it
// connects to an MCP server on the streamable HTTP transport, lists its
// tools, calls one and prints what an agent would see. Its HTTP client is
// Go's default, which reads HTTPS_PROXY and SSL_CERT_FILE, so the e2e suite
// runs it under `countersign run`.
//
//	mcpclient [-protocol 2025-11-25] URL TOOL [ARGUMENTS-JSON]
//
// It exits 0 when the call succeeded, 1 when the tool reported an error
// (isError), 2 when the call itself failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	protocol := flag.String("protocol", "", "MCP protocol version to ask for (default: the SDK's latest)")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: mcpclient [-protocol V] URL TOOL [ARGUMENTS-JSON]")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	os.Exit(run(ctx, *protocol, flag.Arg(0), flag.Arg(1), flag.Arg(2)))
}

func run(ctx context.Context, protocol, url, tool, rawArgs string) int {
	args := map[string]any{}
	if rawArgs != "" {
		if err := json.Unmarshal([]byte(rawArgs), &args); err != nil {
			fmt.Fprintln(os.Stderr, "arguments:", err)
			return 2
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "countersign-e2e-client", Version: "1.0.0"}, nil)
	transport := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: http.DefaultTransport}, MaxRetries: -1}
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		fmt.Println("connect failed:", describe(err))
		return 2
	}
	defer cs.Close()
	fmt.Println("protocol:", cs.InitializeResult().ProtocolVersion)

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		fmt.Println("tools/list failed:", describe(err))
		return 2
	}
	names := make([]string, len(tools.Tools))
	for i, t := range tools.Tools {
		names[i] = t.Name
	}
	fmt.Println("tools:", strings.Join(names, ", "))

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		fmt.Println("tools/call failed:", describe(err))
		return 2
	}
	var text []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text = append(text, t.Text)
		}
	}
	if res.IsError {
		fmt.Println("tool error:", strings.Join(text, "\n"))
		return 1
	}
	fmt.Println("result:", strings.Join(text, "\n"))
	return 0
}

// describe prints a JSON-RPC error's code and message, as an agent host
// would show it.
func describe(err error) string {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return fmt.Sprintf("%v (JSON-RPC error %d: %s)", err, je.Code, je.Message)
	}
	return err.Error()
}
