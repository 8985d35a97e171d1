package mcp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

// FuzzJSONRPC classifies arbitrary POST bodies, with and without MCP's
// headers, seeded with the bodies the Go SDK client sent (testdata/*.txt)
// and the smuggling corpus. Beyond not panicking, it checks that countersign
// never reads a message differently from the servers it stands in front of:
// what the SDK's decoder or encoding/json accept as a call is either refused
// or classified as the same method and tool.
func FuzzJSONRPC(f *testing.F) {
	for _, file := range golden.Files(f, "testdata/*.txt") {
		raw, _ := golden.Read(f, file)
		if r := golden.Parse(f, raw, goldenOptions); len(r.Body) > 0 {
			f.Add(r.Body, false)
			f.Add(r.Body, true)
		}
	}
	for _, body := range smugglingCorpus(f) {
		f.Add(body, false)
	}
	p := New(Options{})
	f.Fuzz(func(t *testing.T, body []byte, hinted bool) {
		r := post(string(body))
		if hinted {
			r.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		a, ok := p.Classify(r)
		_, _, refused := Reject(a)
		sdkMsg, sdkErr := jsonrpc.DecodeMessage(body)
		sdkReq, _ := sdkMsg.(*jsonrpc.Request)

		if !ok {
			if sdkErr == nil {
				t.Fatalf("Classify(%q) let through a message the SDK decodes as %#v", body, sdkMsg)
			}
			if tool := stdlibTool(body); tool != "" {
				t.Fatalf("Classify(%q) let through a call of %q by encoding/json's reading", body, tool)
			}
			return
		}
		if a.Provider != "mcp" {
			t.Fatalf("Classify(%q).Provider = %q", body, a.Provider)
		}
		if refused {
			if a.ParseError == "" || !a.Destructive {
				t.Fatalf("refusal of %q without a reason or not destructive: %+v", body, a)
			}
		} else {
			if sdkReq != nil && a.Operation != sdkReq.Method {
				t.Fatalf("Classify(%q).Operation = %q, the SDK reads method %q", body, a.Operation, sdkReq.Method)
			}
			if tool := stdlibTool(body); tool != "" && a.Fields["tool"] != tool {
				t.Fatalf("Classify(%q) tool %q, encoding/json reads %q", body, a.Fields["tool"], tool)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Fatalf("action for %q does not marshal: %v", body, err)
			}
		}
		if fp := FingerprintBody(body); ok && !refused && a.Operation != OpStream && !bytes.Equal(fp, FingerprintBody(fp)) {
			t.Fatalf("FingerprintBody(%q) = %q is not stable", body, fp)
		}
		resp := p.Respond(r, a, action.Denial{Status: http.StatusForbidden, Decision: "deny", Message: "countersign: denied."})
		switch resp.Status {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("Respond(%q) status %d", body, resp.Status)
		}
		if resp.Header.Get("Content-Type") == "application/json" && !json.Valid(resp.Body) {
			t.Fatalf("Respond(%q) body %q is not JSON", body, resp.Body)
		}
	})
}
