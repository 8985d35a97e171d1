package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/testinfra"
)

// smugglingCorpus returns the bodies in testdata/smuggling.jsonl.
func smugglingCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open("testdata/smuggling.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] != '#' {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// stdlibTool is what a server that decodes messages with encoding/json
// into structs (case-insensitive keys, the last duplicate wins) would call,
// or "" when it would call nothing.
func stdlibTool(body []byte) string {
	var msg struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.JSONRPC != "2.0" || msg.Method != "tools/call" {
		return ""
	}
	return msg.Params.Name
}

// TestSmugglingCorpus sends every body of the corpus to the official Go
// SDK's server and checks the invariant that matters: whenever a server
// would run drop_table, countersign either refused the message or told the
// policy that the tool is drop_table. The encoding/json model stands in for
// other Go servers, which read keys case-insensitively.
func TestSmugglingCorpus(t *testing.T) {
	p := New(Options{})
	for _, body := range smugglingCorpus(t) {
		t.Run(string(body[:min(len(body), 60)]), func(t *testing.T) {
			a, ok := p.Classify(post(string(body)))
			_, _, refused := Reject(a)
			if !ok {
				t.Fatalf("Classify(%q) did not recognise it as MCP", body)
			}
			srv := testinfra.NewMCPServer(testinfra.MCPStateless, true)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/mcp", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			ran := srv.Calls("drop_table") > 0 || stdlibTool(body) == "drop_table"
			t.Logf("SDK server ran drop_table: %v; encoding/json server would: %v; countersign refused: %v (%s)",
				srv.Calls("drop_table") > 0, stdlibTool(body) == "drop_table", refused, a.ParseError)
			if ran && !refused && a.Fields["tool"] != "drop_table" {
				t.Errorf("a server runs drop_table for %q, but countersign classified it as %+v", body, a)
			}
			if ran && !refused && !a.Destructive {
				t.Errorf("drop_table for %q not marked destructive", body)
			}
		})
	}
}

// gate stands in for the proxy: it classifies each request, answers the
// ones deny picks (or that must be refused) with Respond, and passes the
// rest to upstream.
type gate struct {
	p        *Provider
	upstream http.Handler
	deny     func(a action.Action) bool
}

const denyMessage = "countersign: denied by policy MCP-001: dropping tables is not allowed. The request was not sent; if it is really needed, ask a human to do it."

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	ar := &action.Request{Method: r.Method, Scheme: "http", Host: "127.0.0.1", Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
		Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, BodySize: int64(len(body))}
	a, ok := g.p.Classify(ar)
	var d action.Denial
	switch status, reason, bad := Reject(a); {
	case ok && bad:
		d = action.Denial{Status: status, Decision: "deny", Message: "countersign: " + reason + "; nothing was sent."}
	case ok && g.deny(a):
		d = action.Denial{Status: http.StatusForbidden, Decision: "deny", Message: denyMessage}
	default:
		g.upstream.ServeHTTP(w, r)
		return
	}
	resp := g.p.Respond(ar, a, d)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

func connect(t *testing.T, url, protocol string) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolText(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// TestRealClientSurfacesDenial drives the official Go SDK client through a
// gate that denies drop_table: the client gets a tool error carrying the
// reason, the server never sees the call, and the session goes on working
// (both the sessionless 2026-07-28 protocol and the 2025-11-25 sessions).
func TestRealClientSurfacesDenial(t *testing.T) {
	for _, tt := range []struct {
		protocol string
		mode     testinfra.MCPMode
	}{{"", testinfra.MCPStateless}, {"2025-11-25", testinfra.MCPStateful}} {
		t.Run("protocol "+tt.protocol, func(t *testing.T) {
			srv := testinfra.NewMCPServer(tt.mode, false)
			ts := httptest.NewServer(&gate{p: New(Options{}), upstream: srv, deny: func(a action.Action) bool { return a.Fields["tool"] == "drop_table" }})
			// Cleanups run last first: the session ends (its event stream
			// with it) before the server closes.
			t.Cleanup(ts.Close)
			cs := connect(t, ts.URL+"/mcp", tt.protocol)

			res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "drop_table", Arguments: map[string]any{"table": "users"}})
			if err != nil {
				t.Fatalf("CallTool(drop_table): %v", err)
			}
			if !res.IsError || toolText(res) != denyMessage {
				t.Errorf("CallTool(drop_table) = isError %v, %q; want isError and the denial", res.IsError, toolText(res))
			}
			if n := srv.Calls("drop_table"); n != 0 {
				t.Errorf("the server ran drop_table %d times", n)
			}
			res, err = cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "list_tables"})
			if err != nil || res.IsError {
				t.Fatalf("CallTool(list_tables) after a denial = %+v, %v", res, err)
			}
			if n := srv.Calls("list_tables"); n != 1 {
				t.Errorf("the server ran list_tables %d times, want 1", n)
			}
		})
	}
}

// TestRealClientSurfacesDeniedRequest: a denied request other than
// tools/call is a JSON-RPC error the client returns with the reason, and
// the session survives it.
func TestRealClientSurfacesDeniedRequest(t *testing.T) {
	srv := testinfra.NewMCPServer(testinfra.MCPStateful, false)
	ts := httptest.NewServer(&gate{p: New(Options{}), upstream: srv, deny: func(a action.Action) bool { return a.Operation == "tools/list" }})
	t.Cleanup(ts.Close)
	cs := connect(t, ts.URL+"/mcp", "2025-11-25")
	_, err := cs.ListTools(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), denyMessage) {
		t.Fatalf("ListTools() error = %v, want the denial", err)
	}
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != CodeDenied {
		t.Errorf("ListTools() error %#v, want a JSON-RPC error with code %d", err, CodeDenied)
	}
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "list_tables"}); err != nil {
		t.Fatalf("CallTool after a denied request: %v", err)
	}
}

// TestRespond checks each kind of answer byte for byte.
func TestRespond(t *testing.T) {
	deny := action.Denial{Status: 403, Decision: "deny", Message: "countersign: denied by policy X: no."}
	p := New(Options{})
	tests := []struct {
		name       string
		give       *action.Request
		denial     action.Denial
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{
			"tools/call: a tool result with isError",
			post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_table"}}`), deny,
			200, "application/json",
			`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"countersign: denied by policy X: no."}],"isError":true}}`,
		},
		{
			"string id echoed",
			post(`{"jsonrpc":"2.0","id":"req-1","method":"tools/list"}`), deny,
			200, "application/json",
			`{"jsonrpc":"2.0","id":"req-1","error":{"code":-32010,"message":"countersign: denied by policy X: no.","data":{"decision":"deny"}}}`,
		},
		{
			"number id echoed digit for digit",
			post(`{"jsonrpc":"2.0","id":1.50e3,"method":"resources/read","params":{"uri":"db://x"}}`), deny,
			200, "application/json",
			`{"jsonrpc":"2.0","id":1.50e3,"error":{"code":-32010,"message":"countersign: denied by policy X: no.","data":{"decision":"deny"}}}`,
		},
		{
			"task-augmented tools/call gets an error",
			post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"drop_table","task":{"ttl":60000}}}`), deny,
			200, "application/json",
			`{"jsonrpc":"2.0","id":2,"error":{"code":-32010,"message":"countersign: denied by policy X: no.","data":{"decision":"deny"}}}`,
		},
		{
			"pending approval",
			post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"drop_table"}}`),
			action.Denial{Status: 403, Decision: "pending", Message: "countersign: approval pending as ap-1; retry after approval."},
			200, "application/json",
			`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"countersign: approval pending as ap-1; retry after approval."}],"isError":true}}`,
		},
		{
			"notification: the status, no id",
			post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), deny,
			403, "application/json",
			`{"jsonrpc":"2.0","error":{"code":-32010,"message":"countersign: denied by policy X: no.","data":{"decision":"deny"}}}`,
		},
		{
			"client response: the status, no id",
			post(`{"jsonrpc":"2.0","id":1,"result":{}}`), deny,
			403, "application/json",
			`{"jsonrpc":"2.0","error":{"code":-32010,"message":"countersign: denied by policy X: no.","data":{"decision":"deny"}}}`,
		},
		{
			"refusal keeps its status and the unambiguous id",
			post(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`),
			action.Denial{Status: 400, Decision: "deny", Message: "countersign: refused; nothing was sent."},
			400, "application/json",
			`{"jsonrpc":"2.0","id":4,"error":{"code":-32600,"message":"countersign: refused; nothing was sent."}}`,
		},
		{
			"refusal of a duplicated id has no id",
			post(`{"jsonrpc":"2.0","id":4,"id":5,"method":"tools/list"}`),
			action.Denial{Status: 400, Decision: "deny", Message: "countersign: refused."},
			400, "application/json",
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"countersign: refused."}}`,
		},
		{
			"batch refusal",
			post(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`),
			action.Denial{Status: 400, Decision: "deny", Message: "countersign: refused."},
			400, "application/json",
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"countersign: refused."}}`,
		},
		{
			"event stream when JSON is not accepted",
			sseOnly(post(`{"jsonrpc":"2.0","id":9,"method":"ping"}`)), deny,
			200, "text/event-stream",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32010,\"message\":\"countersign: denied by policy X: no.\",\"data\":{\"decision\":\"deny\"}}}\n\n",
		},
		{
			"GET stream: plain text",
			&action.Request{Method: "GET", Host: goldenHost, Path: "/mcp", Header: http.Header{"Mcp-Session-Id": {"s"}}}, deny,
			403, "text/plain; charset=utf-8",
			"countersign: denied by policy X: no.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := p.Classify(tt.give)
			if !ok {
				t.Fatalf("Classify(%q) did not match", tt.give.Body)
			}
			resp := p.Respond(tt.give, a, tt.denial)
			got := struct {
				Status int
				Type   string
				Body   string
			}{resp.Status, resp.Header.Get("Content-Type"), string(resp.Body)}
			want := struct {
				Status int
				Type   string
				Body   string
			}{tt.wantStatus, tt.wantType, tt.wantBody}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Respond() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRespondReadByTheSDK: every answer with an id decodes, with the SDK's
// own decoder, as the response to that request.
func TestRespondReadByTheSDK(t *testing.T) {
	p := New(Options{})
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_table"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a","name":"b"}}`,
	} {
		r := post(body)
		a, _ := p.Classify(r)
		resp := p.Respond(r, a, action.Denial{Status: 403, Decision: "deny", Message: denyMessage})
		req, err := jsonrpc.DecodeMessage([]byte(strings.Replace(body, `"name":"a",`, "", 1)))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := jsonrpc.DecodeMessage(resp.Body)
		if err != nil {
			t.Fatalf("Respond(%s) body %q: %v", body, resp.Body, err)
		}
		got, ok := msg.(*jsonrpc.Response)
		if !ok || got.ID != req.(*jsonrpc.Request).ID {
			t.Errorf("Respond(%s) = %s, want the response to id %v", body, resp.Body, req.(*jsonrpc.Request).ID)
		}
	}
}

func sseOnly(r *action.Request) *action.Request {
	r.Header.Set("Accept", "text/event-stream")
	return r
}
