package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/approval"
)

// Scoped grants carry what the agent's requests said (an MCP method name):
// the grants list prints them as plain text, never as terminal controls.
func TestGrantsListPrintsAgentTextAsText(t *testing.T) {
	grants := []approval.Scope{{
		ID: "gr-k2m7f3ck", SessionID: "s-1\x1b[2J", Operation: "tools/call\x1b]0;owned\x07@https://mcp.acme.example",
		Resources: []string{"a\x1b[31mred"}, Required: 1, Created: time.Now(), Expires: time.Now().Add(time.Hour),
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/grants" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(grants)
	}))
	defer srv.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "home", ".countersign", "admin-token"), "tok\n")
	out, errOut, code := cli(t, dir, "approvals", "grants", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "gr-k2m7f3ck") || !strings.Contains(out, "tools/call") {
		t.Fatalf("approvals grants: code %d\n%s%s", code, out, errOut)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("the grants list printed terminal controls from the agent's text:\n%q", out)
	}
}
