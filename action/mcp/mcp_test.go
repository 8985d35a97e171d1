package mcp

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// goldenHost is the name the captures are classified under: they were made
// against a loopback listener (see testdata/README.md).
const goldenHost = "mcp.example.test"

// goldenOptions read the captures with the proxy's own strict reader and
// build the classifier's view of them as the proxy does, under goldenHost.
var goldenOptions = golden.Options{Host: goldenHost, Strict: true}

// TestGolden classifies requests captured from the official Go SDK's client
// (v1.8.0, protocols 2026-07-28 and 2025-11-25) and compares the actions
// with the expected JSON.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", goldenOptions, golden.Claimed(New(Options{})), *update)
}

// post is a POST of body to the MCP endpoint with the Go SDK client's
// headers, plus extra ones.
func post(body string, extra ...string) *action.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(extra); i += 2 {
		h.Add(extra[i], extra[i+1])
	}
	r := &action.Request{Method: http.MethodPost, Scheme: "https", Host: goldenHost, Port: 443, Path: "/mcp", RawPath: "/mcp", Header: h}
	if body != "" {
		r.Body = []byte(body)
		r.BodySize = int64(len(body))
	}
	return r
}

// summary is what the table tests compare: enough to tell what the policy
// sees and whether the proxy refuses the request.
type summary struct {
	Operation   string
	Tool        string
	Destructive bool
	ReadOnly    bool
	Reject      int // the refusal status, 0 when the request goes to policy
}

func summarize(a action.Action) summary {
	s := summary{Operation: a.Operation, Destructive: a.Destructive, ReadOnly: a.ReadOnly}
	s.Tool, _ = a.Fields["tool"].(string)
	if status, _, bad := Reject(a); bad {
		s.Reject = status
	}
	return s
}

const dropCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`

// TestClassify covers messages the captures do not: the message kinds, the
// read-only and destructive opinions, and every way a message can be
// shaped so that countersign and the server might read it differently.
func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		give *action.Request
		want summary
	}{
		{"tools/call of a destructive tool", post(dropCall), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"tools/call of a safe tool", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables"}}`), summary{Operation: "tools/call", Tool: "list_tables"}},
		{"camelCase destructive tool", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deleteRepository","arguments":{"repo":"acme/shop"}}}`), summary{Operation: "tools/call", Tool: "deleteRepository", Destructive: true}},
		{"execute_sql with DROP (INCIDENTS 2, 8)", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"project_id":"p","query":"DROP TABLE poc_staging;"}}}`), summary{Operation: "tools/call", Tool: "execute_sql", Destructive: true}},
		{"execute_sql with a SELECT", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"select * from deleted_orders"}}}`), summary{Operation: "tools/call", Tool: "execute_sql"}},
		{"escaped tool name is read decoded", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_\u0074able"}}`), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"tool name under another case is still read", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"drop_table"}}`), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"method under another case is still read", post(`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"drop_table"}}`), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"notification", post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`), summary{Operation: "notifications/cancelled", ReadOnly: true}},
		{"error response to the server", post(`{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"user declined"}}`), summary{Operation: OpResponse}},
		{"logging/setLevel is neither", post(`{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}`), summary{Operation: "logging/setLevel"}},
		{"resources/templates/list", post(`{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`), summary{Operation: "resources/templates/list", ReadOnly: true}},
		{"whitespace before the message", post(" \r\n\t" + dropCall), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"legacy HTTP+SSE stream", &action.Request{Method: "GET", Host: goldenHost, Path: "/sse", Header: http.Header{"Accept": {"text/event-stream"}}}, summary{Operation: OpStream, ReadOnly: true}},

		// Refused: countersign cannot know what the server would read.
		{"batch", post(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},` + dropCall + `]`), summary{Operation: OpBatch, Destructive: true, Reject: 400}},
		{"batch without jsonrpc members but with MCP headers", post(`[{"method":"tools/call"}]`, "Mcp-Session-Id", "abc"), summary{Operation: OpBatch, Destructive: true, Reject: 400}},
		{"duplicate tool name", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables","name":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate method", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate under case folding", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables","Name":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate under Unicode folding", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables","arguments":{"sql":"a","ſql":"b"}}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate through an escape", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables","n\u0061me":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate deep in the arguments", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"duplicate before a late jsonrpc member", post(`{"id":1,"method":"tools/call","params":{"name":"list_tables","name":"drop_table"},"jsonrpc":"2.0"}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"two messages in one body", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}` + dropCall), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"trailing garbage", post(dropCall + ` x`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"byte order mark", post("\uFEFF" + dropCall), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"invalid UTF-8", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_table","x":"` + "\xff" + `"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"NaN a lenient server accepts, jsonrpc hidden by an escape", post(`{"id":NaN,"method":"tools/call","params":{"name":"drop_table"},"\u006asonrpc":"2.0"}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"too deep", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Method disagrees with the body", post(dropCall, "Mcp-Method", "tools/list"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Name disagrees with the body", post(dropCall, "Mcp-Method", "tools/call", "Mcp-Name", "list_tables"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"two Mcp-Method headers", post(dropCall, "Mcp-Method", "tools/call", "Mcp-Method", "tools/call"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Name in base64 that matches", post(dropCall, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?ZHJvcF90YWJsZQ==?="), summary{Operation: "tools/call", Tool: "drop_table", Destructive: true}},
		{"MCP headers on a compressed body", post("\x1f\x8b\x08\x00", "Mcp-Session-Id", "abc", "Content-Encoding", "gzip"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"MCP headers on a non-JSON-RPC object", post(`{"method":"tools/call"}`, "Mcp-Protocol-Version", "2025-11-25"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		// Found by review: keys with a control character, which the Go
		// SDK's parser in v1.3.1–v1.4.0 dropped (GO-2026-4770).
		{"tool name key with a NUL", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tables","name\u0000":"drop_table","arguments":{"table":"users"}}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"only a NUL-ended tool name", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name\u0000":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"method key with NULs", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","method\u0000\u0000":"tools/call","params":{"name\u0000":"drop_table"}}`), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Name on a response", post(`{"jsonrpc":"2.0","id":1,"result":{}}`, "Mcp-Method", "tools/call", "Mcp-Name", "delete_x"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header naming another repository", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_issue","arguments":{"owner":"acme","repo":"private","title":"t"}}}`, "Mcp-Param-Repo", "public"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header matching an argument", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_issue","arguments":{"owner":"acme","repo":"private","title":"t"}}}`, "Mcp-Param-Repo", "private"), summary{Operation: "tools/call", Tool: "create_issue"}},
		{"Mcp-Param header equal to another argument", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_issue","arguments":{"repo":"private","title":"public"}}}`, "Mcp-Param-Repo", "public"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header on a nested argument", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"target":{"region":"eu"}}}}`, "Mcp-Param-Region", "eu"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header on prompts/get", post(`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"repo":"private"}}}`, "Mcp-Param-Repo", "public"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header in lenient base64", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_issue","arguments":{"repo":"=?base64?cHJpdmF0ZQ?="}}}`, "Mcp-Param-Repo", "=?base64?cHJpdmF0ZQ?="), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"Mcp-Param header matched by a nested decoy", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_issue","arguments":{"target_repo":"private","meta":{"repo":"public"}}}}`, "Mcp-Param-Repo", "public"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"empty Mcp-Method beside another on a response", post(`{"jsonrpc":"2.0","id":1,"result":{}}`, "Mcp-Method", "", "Mcp-Method", "tools/call"), summary{Operation: OpInvalid, Destructive: true, Reject: 400}},
		{"nested grouped action", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"projects_write","arguments":{"params":{"method":"delete_project_item"}}}}`), summary{Operation: "tools/call", Tool: "projects_write", Destructive: true}},
		{"grouped tool told to delete", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"actions_run_trigger","arguments":{"method":"delete_workflow_run_logs","run_id":1}}}`), summary{Operation: "tools/call", Tool: "actions_run_trigger", Destructive: true}},
	}
	p := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := p.Classify(tt.give)
			if !ok {
				t.Fatalf("Classify(%q) did not recognise an MCP request", tt.give.Body)
			}
			if diff := cmp.Diff(tt.want, summarize(a)); diff != "" {
				t.Errorf("Classify(%q) mismatch (-want +got):\n%s", tt.give.Body, diff)
			}
			if tt.want.Reject != 0 && (a.ParseError == "" || a.Fields["method"] != nil) {
				t.Errorf("refused action %+v: want a reason and no method", a)
			}
		})
	}
}

func TestClassifyTruncatedMessageIsRefused(t *testing.T) {
	r := post(dropCall[:40])
	r.BodyTruncated, r.BodySize = true, 5<<20
	a, ok := New(Options{}).Classify(r)
	if status, _, bad := Reject(a); !ok || !bad || status != http.StatusRequestEntityTooLarge {
		t.Fatalf("Classify(truncated) = %+v, %v; want a 413 refusal", a, ok)
	}
}

// A message whose "jsonrpc" comes after the inspection limit is refused
// too, when the request has what an MCP client sends to any endpoint
// (found by review: a stateless server needs no MCP header, and the
// request passed as plain HTTP): an MCP path, an Accept of both JSON and
// an event stream, the HTTP+SSE transport's session parameter, or a first
// member that is JSON-RPC's. A large JSON POST elsewhere is not MCP's.
func TestClassifyTruncatedMessageWithLateJSONRPC(t *testing.T) {
	const limit = 1 << 20
	pad := strings.Repeat("A", limit)
	idFirst := `{"id":1,"method":"tools/call","params":{"_meta":{"pad":"` + pad +
		`"},"name":"execute_sql","arguments":{"query":"DROP TABLE users"}},"jsonrpc":"2.0"}`
	lateAll := `{"id":1,"_meta":{"pad":"` + pad + `"},"method":"tools/call","params":{"name":"execute_sql"},"jsonrpc":"2.0"}`
	nested := `{"model":"m","tools":[{"method":"GET","params":{}}],"messages":[{"content":"` + pad + `"}]}`
	for _, tt := range []struct {
		name, body, path, accept, query string
		mcp                             bool
	}{
		{"MCP path and Accept", idFirst, "/mcp", "application/json, text/event-stream", "", true},
		{"Accept only", idFirst, "/v1/rpc", "application/json, text/event-stream", "", true},
		{"MCP path only", idFirst, "/sse", "application/json", "", true},
		// A JSON-RPC member read before the cut, wherever it is among the
		// top-level members (found by review: "id" first).
		{"method read, neither path nor Accept", idFirst, "/v1/upload", "application/json", "", true},
		{"method read, an event stream only", idFirst, "/v1/messages", "text/event-stream", "", true},
		{"method read, no Accept", idFirst, "/", "*/*", "", true},
		// Every JSON-RPC member after the cut: left to other providers here;
		// the proxy watches the rest as it is sent (TailWatch).
		{"neither", lateAll, "/v1/upload", "application/json", "", false},
		// Anthropic's API streaming a long conversation.
		{"an event stream only (an LLM API's stream)", lateAll, "/v1/messages", "text/event-stream", "", false},
		{"an LLM API without Accept", lateAll, "/v1/messages", "", "", false},
		{"a member nested before the cut is not one", nested, "/v1/upload", "application/json", "", false},
		{"method first", `{"method":"tools/call","params":{"_meta":{"pad":"` + pad + `"}},"jsonrpc":"2.0","id":1}`, "/v1/upload", "application/json", "", true},
		{"params first", `{ "params":{"_meta":{"pad":"` + pad + `"}},"method":"tools/call","jsonrpc":"2.0","id":1}`, "/v1/upload", "application/json", "", true},
		// The HTTP+SSE transport's endpoint, whose clients accept
		// anything (found by review).
		{"session parameter", idFirst, "/messages/", "*/*", "session_id=abc", true},
		{"TypeScript's session parameter", idFirst, "/messages", "", "sessionId=abc", true},
		{"the Go SDK's session parameter", idFirst, "/", "", "sessionid=abc", true},
		{"a batch, method first", `[{"method":"tools/call","params":{"_meta":{"pad":"` + pad + `"}},"jsonrpc":"2.0","id":1}]`, "/v1/upload", "application/json", "", true},
		// Refused though it is no MCP call: its method could be named
		// again after the cut, and decoders keep the last.
		{"Ethereum JSON-RPC, method first", `{"method":"eth_sendRawTransaction","params":["0x03` + pad + `"],"id":42,"jsonrpc":"2.0"}`, "/v2/key", "*/*", "", true},
		{"another API's upload", `{"id":1,"name":"backup","data":"` + pad + `"}`, "/v1/upload", "application/json", "", false},
	} {
		r := post("")
		r.Path, r.RawPath = tt.path, tt.path
		r.Header.Set("Accept", tt.accept)
		r.Query, _ = url.ParseQuery(tt.query)
		r.Body, r.BodySize, r.BodyTruncated = []byte(tt.body[:limit+1]), int64(len(tt.body)), true
		a, ok := New(Options{}).Classify(r)
		status, _, bad := Reject(a)
		if tt.mcp && (!ok || !bad || status != http.StatusRequestEntityTooLarge) {
			t.Errorf("%s: Classify = %+v, %v; want a 413 refusal", tt.name, a, ok)
		}
		if !tt.mcp && ok {
			t.Errorf("%s: Classify = %+v; want it left to other providers", tt.name, a)
		}
	}
}

// TestClassifyLeavesOtherAPIsAlone: JSON that is not JSON-RPC, and MCP's
// GET and DELETE without its markers, belong to other providers.
func TestClassifyLeavesOtherAPIsAlone(t *testing.T) {
	tests := []struct {
		name string
		give *action.Request
	}{
		{"GitHub REST body", post(`{"name":"shop","private":false,"method":"tools/call"}`)},
		{"GraphQL", post(`{"query":"mutation { volumeDelete(volumeId: \"v\") }"}`)},
		{"Kubernetes object", post(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"jsonrpc-tests"}}`)},
		{"JSON array", post(`[1,2,3]`)},
		{"jsonrpc only as a value deep down", post(`{"a":{"b":"jsonrpc"}}`)},
		{"form body", post(`Action=TerminateInstances&InstanceId.1=i-0abc`)},
		{"empty POST", post("")},
		{"GET without session", &action.Request{Method: "GET", Host: goldenHost, Path: "/mcp", Header: http.Header{}}},
		{"GET for an event stream elsewhere", &action.Request{Method: "GET", Host: goldenHost, Path: "/events", Header: http.Header{"Accept": {"text/event-stream"}}}},
		{"DELETE without session", &action.Request{Method: "DELETE", Host: goldenHost, Path: "/mcp", Header: http.Header{}}},
		{"tunnel", &action.Request{Method: "CONNECT", Host: goldenHost, Port: 443, Tunnel: true}},
	}
	p := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, ok := p.Classify(tt.give); ok {
				t.Errorf("Classify(%s %q) = %+v, want no match", tt.give.Method, tt.give.Body, a)
			}
		})
	}
}

func TestReject(t *testing.T) {
	tests := []struct {
		name       string
		give       action.Action
		wantStatus int
		wantBad    bool
	}{
		{"refused", action.Action{Provider: "mcp", ParseError: "why", Fields: map[string]any{"rejected": true, "reject_status": 413}}, 413, true},
		{"refused without status", action.Action{Provider: "mcp", ParseError: "why", Fields: map[string]any{"rejected": true}}, 400, true},
		{"classified", action.Action{Provider: "mcp", Fields: map[string]any{"tool": "x"}}, 0, false},
		{"another provider's fields", action.Action{Provider: "http", ClassifiedBy: "http", Fields: map[string]any{"rejected": true}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, bad := Reject(tt.give)
			if status != tt.wantStatus || bad != tt.wantBad {
				t.Errorf("Reject(%+v) = %d, %v; want %d, %v", tt.give, status, bad, tt.wantStatus, tt.wantBad)
			}
		})
	}
}

func TestDestructiveTool(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"drop_table", true}, {"delete_file", true}, {"deleteRepository", true}, {"db.purge-cache", true},
		{"HTTPDelete", true}, {"remove_label", true}, {"reset_branch", true}, {"WIPE", true}, {"fs_rm", true},
		{"terminate_instances", true}, {"truncateLog", true}, {"destroy", true},
		{"list_tables", false}, {"undelete_file", false}, {"dropdown_options", false}, {"get_file_contents", false},
		{"execute_sql", false}, {"", false}, {"removal_report", false},
	}
	for _, tt := range tests {
		if got := destructiveTool(tt.give); got != tt.want {
			t.Errorf("destructiveTool(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestDestructiveSQL(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{`{"query":"DROP TABLE users"}`, true},
		{`{"sql":"delete from orders where id = 1"}`, true},
		{`{"statement":"  -- tidy up\n TRUNCATE audit"}`, true},
		{`{"query":"/* harmless */ SELECT 1; DROP TABLE users"}`, true},
		{`{"Query":"drop schema public cascade"}`, true},
		{`{"query":"select * from drop_log"}`, false},
		{`{"query":"how to delete a branch"}`, false},
		{`{"query":42}`, false},
		{`{"command":"DROP TABLE users"}`, false},
		{`"DROP TABLE users"`, false},
		// Found by review: comment markers in literals, other argument
		// names and lists.
		{`{"query":"SELECT '--'; DROP TABLE executives"}`, true},
		{`{"query":"-- /*\nDROP TABLE executives; -- */"}`, true},
		{`{"sqlStatements":["SELECT 1","DROP TABLE executives"]}`, true},
		{`{"migrationSql":"ALTER TABLE t DROP COLUMN c"}`, true},
		{`{"query":"SET search_path TO public; DROP TABLE users"}`, true},
		{`{"query":"EXPLAIN ANALYZE DELETE FROM users"}`, true},
		{`{"query":"UPDATE users SET password_hash = ''"}`, true},
		{`{"query":"UPDATE users SET name = 'x' WHERE id = 1"}`, false},
		{`{"query":"SHOW search_path; DROP TABLE users"}`, true},
		{`{"query":"PREPARE p AS DELETE FROM users; EXECUTE p"}`, true},
		{`{"query":"UPDATE users SET password_hash = '' -- where"}`, true},
		{`{"query":"UPDATE users SET role = 'where'"}`, true},
		{`{"sql":"VACUUM; TRUNCATE users"}`, true},
		// Found by the seventh review: lexings that differ from the server's.
		{`{"query":"COMMENT ON TABLE t IS '\\'; DROP TABLE users; --'"}`, true},
		{`{"query":"NOTIFY ch, $$'$$; TRUNCATE users; -- '"}`, true},
		{`{"query":"/*! DELETE FROM users */"}`, true},
		{`{"query":"UPDATE users SET bio = $$ where $$"}`, true},
		{`{"query":"UPDATE users SET a = '\\', b = ' where '"}`, true},
	}
	for _, tt := range tests {
		var args any
		if err := json.Unmarshal([]byte(tt.give), &args); err != nil {
			t.Fatal(err)
		}
		if got := destructiveSQL(args); got != tt.want {
			t.Errorf("destructiveSQL(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestMentionsJSONRPC(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{`{"jsonrpc":"2.0"}`, true},
		{`{"JSONRPC":"2.0"}`, true},
		{`{"\u006asonrpc":"2.0"}`, true},
		{`{"j\u0053onrpc":1}`, true},
		{`{"a":"jsonrpc"}`, true},
		{`{"jsonrpc2":"2.0"}`, false},
		{`{"a":"b"}`, false},
		{`{"jsonrpc`, false},
		{`"\"jsonrpc\""`, false},
		{"", false},
	}
	for _, tt := range tests {
		if got := mentionsJSONRPC([]byte(tt.give)); got != tt.want {
			t.Errorf("mentionsJSONRPC(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// BenchmarkClassify measures a captured tools/call, a large JSON body of
// another API (the cheap path every JSON POST takes) and a large MCP call.
func BenchmarkClassify(b *testing.B) {
	raw, _ := golden.Read(b, filepath.Join("testdata", "2026-tools-call-drop-table.txt"))
	call := golden.Parse(b, raw, goldenOptions)
	other := post(`{"files":[` + strings.Repeat(`{"path":"a/b.go","content":"package main\n","mode":"100644"},`, 16000) + `{}]}`)
	big := post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"lines":[` +
		strings.Repeat(`"some line of text",`, 50000) + `""]}}}`)
	p := New(Options{})
	for _, bb := range []struct {
		name string
		r    *action.Request
	}{{"captured tools/call", call}, {"1MiB other JSON", other}, {"1MiB tools/call", big}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.r.Body)))
			b.ReportAllocs()
			for b.Loop() {
				p.Classify(bb.r)
			}
		})
	}
}

func TestFingerprintBody(t *testing.T) {
	held := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`
	tests := []struct {
		name     string
		give     string
		wantSame bool
	}{
		{"the retry with a new id", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"users"}}}`, true},
		{"keys in another order", `{"params":{"arguments":{"table":"users"},"name":"drop_table"},"method":"tools/call","id":"x","jsonrpc":"2.0"}`, true},
		{"another table", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"orders"}}}`, false},
		{"another tool", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"drop_tables","arguments":{"table":"users"}}}`, false},
	}
	want := FingerprintBody([]byte(held))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FingerprintBody([]byte(tt.give))
			if same := bytes.Equal(got, want); same != tt.wantSame {
				t.Errorf("FingerprintBody(%s) = %s; same as the held request's (%s): %v, want %v", tt.give, got, want, same, tt.wantSame)
			}
		})
	}
	for _, raw := range []string{`{"jsonrpc":"2.0","id":1,"id":2}`, `[{"jsonrpc":"2.0","id":1}]`, `{"a":1}`, `not json`} {
		if got := FingerprintBody([]byte(raw)); string(got) != raw {
			t.Errorf("FingerprintBody(%s) = %s, want it unchanged", raw, got)
		}
	}
}

// Ending a session at an MCP endpoint is not destructive; the same header
// on a DELETE elsewhere may be another API's delete, which the server runs
// ignoring the header.
func TestEndSessionElsewhereIsDestructive(t *testing.T) {
	p := New(Options{})
	for path, destructive := range map[string]bool{"/mcp": false, "/v1/mcp/": false, "/sse": false, "/databases/prod": true} {
		a, ok := p.Classify(&action.Request{Method: "DELETE", Host: goldenHost, Path: path, Header: http.Header{"Mcp-Session-Id": {"s1"}}})
		if !ok || a.Operation != OpEndSession || a.Destructive != destructive || a.ReadOnly {
			t.Errorf("DELETE %s with a session: %+v, %v; want session/end, destructive %v", path, a, ok, destructive)
		}
	}
}

// An MCP method with positional params is refused; another JSON-RPC API's
// (Ethereum's) is not.
func TestPositionalParams(t *testing.T) {
	a, ok := New(Options{}).Classify(post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["drop_table",{"table":"users"}]}`))
	if status, _, bad := Reject(a); !ok || !bad || status != http.StatusBadRequest {
		t.Errorf("tools/call with positional params: %+v, want a 400 refusal", a)
	}
	a, ok = New(Options{}).Classify(post(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
	if _, _, bad := Reject(a); ok && bad {
		t.Errorf("eth_blockNumber: %+v, want it not refused", a)
	}
}
