package action

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type panicky struct{}

func (panicky) Name() string                     { return "panicky" }
func (panicky) Classify(*Request) (Action, bool) { panic("bug") }

type fixed struct{ a Action }

func (f fixed) Name() string { return "fixed" }
func (f fixed) Classify(r *Request) (Action, bool) {
	if r.Host != "match.example" {
		return Action{}, false
	}
	return f.a, true
}

func TestClassifierFallsBackToHTTP(t *testing.T) {
	c := NewClassifier(fixed{Action{Service: "svc", Operation: "Op"}})
	tests := []struct {
		name string
		give *Request
		want Action
	}{
		{"GET is read-only", &Request{Method: "GET", Host: "other.example", Header: http.Header{}}, Action{Provider: "http", Operation: "GET", ReadOnly: true}},
		{"DELETE is destructive", &Request{Method: "DELETE", Host: "other.example"}, Action{Provider: "http", Operation: "DELETE", Destructive: true}},
		{"POST neither", &Request{Method: "POST", Host: "other.example"}, Action{Provider: "http", Operation: "POST"}},
		{"tunnel", &Request{Method: "CONNECT", Host: "other.example", Tunnel: true}, Action{Provider: "http", Operation: "CONNECT"}},
		{"provider matches and its name fills in", &Request{Method: "POST", Host: "match.example"}, Action{Provider: "fixed", Service: "svc", Operation: "Op", ClassifiedBy: "fixed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, c.Classify(tt.give)); diff != "" {
				t.Errorf("Classify() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassifierSurvivesAPanickingProvider(t *testing.T) {
	c := NewClassifier(panicky{})
	got := c.Classify(&Request{Method: "DELETE", Host: "x"})
	if got.Provider != "http" || got.ParseError == "" || !got.Destructive {
		t.Fatalf("Classify() = %+v, want the http fallback with a parse error", got)
	}
}

func TestActionMap(t *testing.T) {
	a := Action{
		Provider: "aws", Service: "ec2", Operation: "TerminateInstances", Region: "us-east-1",
		Resources: []string{"i-0abc"}, Params: map[string]any{"InstanceId.1": "i-0abc"}, Destructive: true,
		Fields: map[string]any{"provider": "spoofed", "extra": "kept"},
	}
	want := map[string]any{
		"provider": "aws", "service": "ec2", "operation": "TerminateInstances", "region": "us-east-1",
		"resources": []any{"i-0abc"}, "params": map[string]any{"InstanceId.1": "i-0abc"},
		"read_only": false, "destructive": true, "extra": "kept",
	}
	if diff := cmp.Diff(want, a.Map()); diff != "" {
		t.Errorf("Map() mismatch (-want +got):\n%s", diff)
	}
}

func TestValidKeys(t *testing.T) {
	vals, err := url.ParseQuery("InstanceId.1%FE=i-prod&InstanceId.1%FF=i-scratch&Action=TerminateInstances")
	if err != nil {
		t.Fatal(err)
	}
	// The merged values come in one order, that of the raw names (0xFE
	// before 0xFF), whatever the map's iteration order: equal requests
	// must give equal inputs and fingerprints.
	for range 20 {
		got := ValidKeys(vals)
		if len(got) != 2 || !slices.Equal(got["InstanceId.1\uFFFD"], []string{"i-prod", "i-scratch"}) || got.Get("Action") != "TerminateInstances" {
			t.Fatalf("ValidKeys = %v, want both instance ids under one valid name, in the order of their raw names", got)
		}
	}
	clean := url.Values{"a": {"1"}, "b": {"2", "3"}}
	if got := ValidKeys(clean); reflect.ValueOf(got).Pointer() != reflect.ValueOf(clean).Pointer() {
		t.Error("ValidKeys copied a map whose names are all valid")
	}
}

func TestParseErrorIsNeverRead(t *testing.T) {
	c := NewClassifier(fixed{Action{Operation: "Get", ReadOnly: true, ParseError: "half a body"}})
	if a := c.Classify(&Request{Method: "GET", Host: "match.example"}); a.ReadOnly || a.ParseError == "" {
		t.Errorf("Classify() = %+v, want not read-only with the parse error", a)
	}
}

// An upgraded connection is never a read, whichever provider classified
// its GET (found by review: a KubeVirt console read as a get, an API
// Gateway WebSocket API as a read).
func TestUpgradeIsNeverRead(t *testing.T) {
	c := NewClassifier(fixed{Action{Operation: "get", ReadOnly: true}})
	if a := c.Classify(&Request{Method: "GET", Host: "match.example", Upgrade: "websocket"}); a.ReadOnly {
		t.Errorf("Classify(upgrade) = %+v, want not read-only", a)
	}
	if a := c.Classify(&Request{Method: "GET", Host: "match.example"}); !a.ReadOnly {
		t.Errorf("Classify(plain GET) = %+v, want read-only", a)
	}
}
