package policy

import (
	"slices"
	"testing"

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
