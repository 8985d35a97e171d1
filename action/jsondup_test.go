package action

import (
	"net/http"
	"testing"
)

func TestDuplicateJSONName(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		want              string
		dup               bool
	}{
		{"top level", "application/json", `{"dry_run": false, "action": "drop_database", "dry_run": true}`, "/dry_run", true},
		{"nested", "application/merge-patch+json", `{"spec":{"replicas":3,"replicas":0}}`, "/spec/replicas", true},
		{"in an array", "", `[{"a":1},{"b":2,"b":3}]`, "/1/b", true},
		{"escaped spelling", "application/json", `{"a":1,"\u0061":2}`, "/a", true},
		{"after a lone surrogate", "application/json", `{"x":"\udead","dry_run":false,"dry_run":true}`, "/dry_run", true},
		{"after invalid UTF-8", "application/json", "{\"x\":\"\xff\",\"a\":1,\"a\":2}", "/a", true},
		{"distinct names", "application/json", `{"a":1,"A":2,"b":{"a":3}}`, "", false},
		{"not JSON", "text/plain", `a=1&a=2`, "", false},
		{"invalid JSON", "application/json", `{"a":1,`, "", false},
		{"cut off before the repeat", "application/json", `{"a":1,"b":`, "", false},
		{"empty", "application/json", ``, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Header: http.Header{"Content-Type": {tt.ctype}}, Body: []byte(tt.body)}
			got, dup := DuplicateJSONName(r)
			if got != tt.want || dup != tt.dup {
				t.Errorf("DuplicateJSONName(%s) = %q, %v; want %q, %v", tt.body, got, dup, tt.want, tt.dup)
			}
		})
	}
}

func FuzzDuplicateJSONName(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":1}}`, `[{"x":1,"x":1}]`, `{"\u0061":1,"a":2}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
		name, dup := DuplicateJSONName(r)
		if !dup && name != "" {
			t.Fatalf("a name %q without a duplicate", name)
		}
	})
}
