package policy

import "testing"

func TestZZDebug(t *testing.T) {
	for _, tt := range failClosedCases {
		e, _ := newEngine(t, Options{}, mod(tt.policy))
		got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
		t.Logf("%-40s %v", tt.name, got.Err)
	}
}
