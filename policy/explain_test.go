package policy

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	countersign "github.com/countersign/countersign"
)

func TestExplain(t *testing.T) {
	const src = `package countersign

import data.countersign.lib.hosts

deny contains "evil" if {
	evil_host
}

evil_host if input.request.host == "evil.example"

approve contains "patch" if input.request.method == "PATCH"

deny contains "meta" if hosts.is_metadata(input.request.host)

allow if input.request.method != "TRACE"
`
	e, dir := newEngine(t, Options{}, mod(src))
	file := filepath.Join(dir, "policy.rego")
	at := func(line string) string { return file + ":" + line }

	tests := []struct {
		name        string
		give        map[string]any
		wantVerdict Verdict
		want        []FiredRule
	}{
		{
			name:        "deny through a helper rule",
			give:        doc("GET", "evil.example", "/"),
			wantVerdict: VerdictDeny,
			want: []FiredRule{
				{Location: at("5"), Rule: "data.countersign.deny"},
				{Location: at("9"), Rule: "data.countersign.evil_host"},
				{Location: at("15"), Rule: "data.countersign.allow"},
			},
		},
		{
			name:        "approve",
			give:        doc("PATCH", "example.com", "/"),
			wantVerdict: VerdictApprove,
			want: []FiredRule{
				{Location: at("11"), Rule: "data.countersign.approve"},
				{Location: at("15"), Rule: "data.countersign.allow"},
			},
		},
		{
			name:        "deny through the helper library",
			give:        doc("GET", "169.254.169.254", "/"),
			wantVerdict: VerdictDeny,
			want: []FiredRule{
				{Location: at("13"), Rule: "data.countersign.deny"},
				{Location: at("15"), Rule: "data.countersign.allow"},
				{Location: embeddedLine(t, "rego/lib/hosts.rego", "is_metadata(host) if"), Rule: "data.countersign.lib.hosts.is_metadata"},
			},
		},
		{
			name:        "nothing fires",
			give:        doc("TRACE", "example.com", "/"),
			wantVerdict: VerdictDeny, // allow is defined and not true
			want:        nil,
		},
	}
	byLocation := cmpopts.SortSlices(func(a, b FiredRule) bool { return a.Location < b.Location })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fired := e.Explain(t.Context(), tt.give)
			if d.Err != nil || d.Verdict != tt.wantVerdict {
				t.Errorf("Explain verdict = %v (err %v), want %v", d.Verdict, d.Err, tt.wantVerdict)
			}
			// Constant helper rules such as hosts.metadata fire whenever
			// they are consulted; they are not what this test is about.
			rules := slices.DeleteFunc(slices.Clone(fired), func(r FiredRule) bool {
				return r.Rule == "data.countersign.lib.hosts.metadata"
			})
			if diff := cmp.Diff(tt.want, rules, byLocation, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Explain fired rules mismatch (-want +got):\n%s", diff)
			}
			for _, r := range fired {
				if !strings.Contains(r.Location, ".rego:") {
					t.Errorf("Explain lists a rule that is not in a policy file: %+v", r)
				}
			}
			// Explain decides exactly as DecideDocument does.
			if diff := diffDecision(e.DecideDocument(t.Context(), tt.give), d); diff != "" {
				t.Errorf("Explain decision differs from DecideDocument (-decide +explain):\n%s", diff)
			}
		})
	}
}

func TestExplainBuiltin(t *testing.T) {
	e := newBuiltin(t)
	d, fired := e.Explain(t.Context(), doc("DELETE", "api.github.com", "/repos/o/r"))
	if d.Verdict != VerdictApprove {
		t.Fatalf("Explain verdict = %v (err %v), want approve", d.Verdict, d.Err)
	}
	want := FiredRule{Location: embeddedLine(t, "rego/default/policy.rego", "approve contains {"), Rule: "data.countersign.approve"}
	if !slices.Contains(fired, want) {
		t.Errorf("Explain fired rules = %+v, want them to include %+v", fired, want)
	}
	seen := map[FiredRule]bool{}
	for _, r := range fired {
		if seen[r] {
			t.Errorf("Explain lists %+v twice", r)
		}
		seen[r] = true
	}
}

func TestExplainPolicyError(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n\ndeny := true\n"))
	d, _ := e.Explain(t.Context(), doc("GET", "example.com", "/"))
	checkPolicyError(t, d, VerdictDeny)
}

// embeddedLine returns "file:line" for the first line of an embedded Rego
// file that starts with prefix, so tests do not hard-code line numbers of
// files other people edit.
func embeddedLine(t *testing.T, file, prefix string) string {
	t.Helper()
	b, err := fs.ReadFile(countersign.Rego, file)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return fmt.Sprintf("%s:%d", file, i+1)
		}
	}
	t.Fatalf("%s has no line starting with %q", file, prefix)
	return ""
}
