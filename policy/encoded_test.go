package policy_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/policy"
)

// The policy reads bodies as sent (but for token shapes): base64 runs that
// decode to a credential are masked only in what is recorded and shown
// (found by review: a table name before a "--" comment whose bytes decode
// to a token was masked with it, and INC-02-1 did not fire).
func TestEncodedRunsDoNotHideWhatThePolicyReads(t *testing.T) {
	e, err := policy.New(t.Context(), policy.Options{
		Source:      policy.Source{Paths: []string{"../examples/policies/incidents"}},
		EvalTimeout: time.Minute,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail := base64.StdEncoding.EncodeToString([]byte("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678901"))
	for _, sql := range []string{"select * from integration_tokens", "select * from\nintegration_tokens\n--" + tail} {
		msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
			"params": map[string]any{"name": "execute_sql", "arguments": map[string]any{"query": sql}}})
		if err != nil {
			t.Fatal(err)
		}
		r := &action.Request{Method: "POST", Scheme: "https", Host: "mcp.supabase.com", Port: 443, Path: "/mcp", RawPath: "/mcp",
			Query: url.Values{}, Header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}},
			Body: msg, BodySize: int64(len(msg))}
		a, ok := mcp.New(mcp.Options{}).Classify(r)
		if !ok {
			t.Fatalf("%q: not classified as MCP", sql)
		}
		d := e.Decide(t.Context(), policy.NewInput(r, a, nil, time.Now()))
		if d.Err != nil || d.Verdict != policy.VerdictDeny {
			t.Errorf("%q: %v %v (%v), want deny INC-02-1", sql, d.Verdict, d.RuleIDs(), d.Err)
		}
	}
}
