package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

func TestConstRuleRefs(t *testing.T) {
	modules := map[string]string{
		"a.rego": `package countersign

list := ["a", "b"]
size := count(list)
from_data := data.lists.hosts
mixed := x if { x := list[0] }

reads_input := input.request.host
through_rule := reads_input
through_function := f(1)
f(x) := x + count(input.request.path)
g(x) := x + 1
through_pure_function := g(1)
clock := time.now_ns()
random := rand.intn("k", 3)
uses_with := x if { x := size with list as [] }
default half := 1
half := input.n
else_input := 1 if { false } else := input.n

deny contains "x" if size > 5
`,
		"b.rego": `package other

pkg_const := {"x": 1}
`,
		"c.rego": `package countersign.sub

reads := input.x
`,
		"d.rego": `package whole

sub := data.countersign.sub
keys := [k | data.countersign.sub[k]]
`,
	}
	parsed := map[string]*ast.Module{}
	for name, src := range modules {
		parsed[name] = ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	}
	c := ast.NewCompiler()
	c.Compile(parsed)
	if c.Failed() {
		t.Fatal(c.Errors)
	}
	var got []string
	for _, r := range constRuleRefs(c) {
		got = append(got, r.String())
	}
	slices.Sort(got)
	want := []string{
		"data.countersign.from_data",
		"data.countersign.list",
		"data.countersign.mixed",
		"data.countersign.size",
		"data.countersign.through_pure_function",
		"data.other.pkg_const",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("constant rules (-want +got):\n%s", diff)
	}
}

// TestConstRulesKeepErrors: policies whose evaluation fails must fail with
// constant rule values too; each case once gave an allow (a review found
// them).
func TestConstRulesKeepErrors(t *testing.T) {
	request := func(host string, action map[string]any) map[string]any {
		return map[string]any{
			"request": map[string]any{"method": "DELETE", "host": host, "path": "/", "tunnel": false},
			"action":  action,
		}
	}
	for _, tt := range []struct {
		name  string
		files map[string]string
		doc   map[string]any
	}{
		{
			// a.b[k] can define a.b.c too: a conflict, whatever a.b.c's
			// own rule says.
			name: "ref head with a variable",
			files: map[string]string{"p.rego": `package countersign

a.b.c := 1
a.b[k] := 2 if { k := input.request.host }

deny contains "c is 2" if a.b.c == 2
`},
			doc: request("c", map[string]any{"provider": "http"}),
		},
		{
			name: "object rule beside a key rule",
			files: map[string]string{"p.rego": `package countersign

mode.github := "audit"
mode[p] := "enforce" if {
	p := input.action.provider
	input.action.destructive
}

deny contains "enforce" if mode[input.action.provider] == "enforce"
`},
			doc: request("api.github.com", map[string]any{"provider": "github", "destructive": true}),
		},
		{
			name: "key rule in the parent package",
			files: map[string]string{
				"a.rego": `package countersign

cfg[k] := "enforce" if k := input.request.host

deny contains "enforce" if data.countersign.cfg.mode == "enforce"
`,
				"b.rego": `package countersign.cfg

mode := "audit"
`,
			},
			doc: request("mode", map[string]any{"provider": "http"}),
		},
		{
			// Slower than one evaluation may be: each evaluation times
			// out, so computing it once must not rescue it.
			name: "slower than the evaluation timeout",
			files: map[string]string{"p.rego": `package countersign

table := {x | some x in numbers.range(1, 200000); x % 3 == 0}

deny contains "empty" if count(table) == 0
`},
			doc: request("api.example.com", map[string]any{"provider": "http"}),
		},
		{
			// Each quick enough on its own, too slow together (found by
			// review: each was kept, and the request was allowed).
			name: "slower than the evaluation timeout together",
			files: map[string]string{"p.rego": `package countersign

t1 := {x | some x in numbers.range(1, 15000); x % 3 == 0}
t2 := {x | some x in numbers.range(1, 15000); x % 5 == 0}
t3 := {x | some x in numbers.range(1, 15000); x % 7 == 0}
t4 := {x | some x in numbers.range(1, 15000); x % 11 == 0}
t5 := {x | some x in numbers.range(1, 15000); x % 13 == 0}
t6 := {x | some x in numbers.range(1, 15000); x % 17 == 0}

deny contains "empty" if count(t1) + count(t2) + count(t3) + count(t4) + count(t5) + count(t6) == 0
`},
			doc: request("api.example.com", map[string]any{"provider": "http"}),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t, Options{NoCache: true, EvalTimeout: 50 * time.Millisecond}, tt.files)
			d := e.DecideDocument(t.Context(), tt.doc)
			if d.Err == nil || d.Verdict != VerdictDeny {
				t.Errorf("Decide = %v (err %v), want a policy error and deny", d.Verdict, d.Err)
			}
			s := *e.cur.Load()
			s.consts = nil
			value, err := inputValue(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.eval(t.Context(), &s, value, nil); err == nil {
				t.Errorf("evaluation without constant values succeeded; the case no longer tests what it claims")
			}
		})
	}
}

// TestConstRulesCostComesOffTheTimeout: an evaluation that uses the
// constant rules' values has the time they took to compute taken off its
// own (found by review: without it, the rules plus the rest of a policy
// could time out uncached and pass with the values).
func TestConstRulesCostComesOffTheTimeout(t *testing.T) {
	e, _ := newEngine(t, Options{NoCache: true, EvalTimeout: time.Second}, map[string]string{"p.rego": `package countersign

names := {"a", "b"}

allow if input.request.host in names
`})
	doc := map[string]any{"request": map[string]any{"method": "GET", "host": "a", "path": "/", "tunnel": false}}
	if d := e.DecideDocument(t.Context(), doc); d.Err != nil || d.Verdict != VerdictAllow {
		t.Fatalf("Decide = %v, %v; want allow", d.Verdict, d.Err)
	}
	c := e.cur.Load().consts
	if c == nil || c.cost <= 0 {
		t.Fatalf("constant rules %+v, want some, with their cost", c)
	}
	// As if they had taken all of the evaluation's time.
	c.cost = time.Second
	if d := e.DecideDocument(t.Context(), doc); d.Err == nil || !strings.Contains(d.Err.Error(), "exceeded") {
		t.Errorf("Decide with no time left = %v, %v; want a timeout", d.Verdict, d.Err)
	}
}
