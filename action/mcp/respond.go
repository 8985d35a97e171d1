package mcp

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/countersign/countersign/action"
)

// CodeDenied is the JSON-RPC error code of a countersign denial. It lies in
// JSON-RPC's implementation-defined server-error range (-32000 to -32099)
// and clear of the codes MCP SDKs give meaning to there: -32000 and -32001
// (the TypeScript SDK's ConnectionClosed and RequestTimeout: a denial
// under -32001 would read as a timeout and invite a retry), -32002
// (resource not found) and -32020 to -32099 (reserved by the MCP
// specification).
const CodeDenied = -32010

// codeInvalidRequest is JSON-RPC's own code for a message that is not a
// valid request, used for refusals (Reject).
const codeInvalidRequest = -32600

// Respond implements action.Responder: the denial as a JSON-RPC message the
// MCP client surfaces (SPEC section 6).
//
//   - tools/call: HTTP 200 with a tool result whose isError is true and
//     whose text is the message. MCP clients hand tool results to the model
//     as they are, so the agent reads the reason and what to do next (retry
//     after approval, ask a human) and can adjust; the specification says
//     errors the model should act on belong there, while protocol errors
//     are often shown to the user only. The Go SDK returns it from CallTool
//     as an ordinary result with IsError set. A task-augmented call (params
//     "task") expects a task handle, not a tool result, so it gets the
//     error below instead.
//   - other requests: HTTP 200 with a JSON-RPC error (code CodeDenied,
//     the message as error.message, data.decision), which the Go SDK
//     returns as the call's error without closing the session.
//   - notifications and the client's responses, which have no reply:
//     the denial status (403) with a JSON-RPC error without id, as the
//     transport specification allows; clients that print the body show
//     the reason.
//   - refusals (Reject): their status (400 or 413) with a JSON-RPC
//     "invalid request" error carrying the id when it was unambiguous,
//     which the Go SDK surfaces and survives.
//   - the event stream and session end: text/plain.
//
// A 200 is written as an event stream when the client accepts only that.
func (p *Provider) Respond(r *action.Request, a action.Action, d action.Denial) action.Response {
	switch a.Operation {
	case OpStream, OpEndSession:
		return action.PlainText(d)
	}
	id, hasID := a.Fields["id"]
	msg := errorMessage{JSONRPC: "2.0"}
	if hasID {
		msg.ID = rawID(id)
	}
	if status, _, bad := Reject(a); bad {
		if d.Status >= 400 {
			status = d.Status
		}
		msg.Error = &rpcError{Code: codeInvalidRequest, Message: d.Message}
		return jsonResponse(status, msg)
	}
	if !hasID || a.Operation == OpResponse {
		msg.ID = nil
		msg.Error = &rpcError{Code: CodeDenied, Message: d.Message, Data: &errorData{Decision: d.Decision}}
		status := d.Status
		if status < 400 {
			status = http.StatusForbidden
		}
		return jsonResponse(status, msg)
	}
	if a.Operation == "tools/call" && a.Fields["task"] == nil {
		res := resultMessage{JSONRPC: "2.0", ID: msg.ID, Result: toolResult{
			Content: []textContent{{Type: "text", Text: d.Message}},
			IsError: true,
		}}
		return okResponse(r, res)
	}
	msg.Error = &rpcError{Code: CodeDenied, Message: d.Message, Data: &errorData{Decision: d.Decision}}
	return okResponse(r, msg)
}

type errorMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Error   *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *errorData `json:"data,omitempty"`
}

type errorData struct {
	Decision string `json:"decision,omitempty"`
}

type resultMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  toolResult      `json:"result"`
}

type toolResult struct {
	Content []textContent `json:"content"`
	IsError bool          `json:"isError"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// rawID is the id exactly as the client wrote it: a number's literal is
// kept digit for digit, so the client matches the reply to its request.
func rawID(id any) json.RawMessage {
	switch v := id.(type) {
	case json.Number:
		return json.RawMessage(v.String())
	case string:
		b, err := json.Marshal(v)
		if err == nil {
			return b
		}
	}
	return nil
}

func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value here is built from strings and numbers.
		return []byte(`{"jsonrpc":"2.0","error":{"code":-32010,"message":"countersign: denied"}}`)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func jsonResponse(status int, v any) action.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return action.Response{Status: status, Header: h, Body: encode(v)}
}

// okResponse answers a request with a 200: JSON, or a one-event stream when
// the client accepts text/event-stream but not JSON.
func okResponse(r *action.Request, v any) action.Response {
	if r == nil || accepts(r.Header, "application/json") || accepts(r.Header, "*/*") ||
		accepts(r.Header, "application/*") || !accepts(r.Header, "text/event-stream") {
		return jsonResponse(http.StatusOK, v)
	}
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	body := append(append([]byte("event: message\ndata: "), encode(v)...), "\n\n"...)
	return action.Response{Status: http.StatusOK, Header: h, Body: body}
}
