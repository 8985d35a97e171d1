package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// FiredRule is a rule whose body succeeded during one evaluation.
type FiredRule struct {
	Location string `json:"location"` // file:line
	Rule     string `json:"rule"`     // e.g. data.countersign.deny
}

// Explain evaluates doc like DecideDocument and also lists the rules that
// fired, in evaluation order, without duplicates.
func (e *Engine) Explain(ctx context.Context, doc map[string]any) (Decision, []FiredRule) {
	tracer := topdown.NewBufferTracer()
	d := e.decide(ctx, doc, tracer, func() bool { return plainJSON(doc) })
	return d, firedRules(*tracer)
}

func firedRules(events []*topdown.Event) []FiredRule {
	seen := map[string]bool{}
	var out []FiredRule
	for _, ev := range events {
		if ev.Op != topdown.ExitOp {
			continue
		}
		rule, ok := ev.Node.(*ast.Rule)
		if !ok || rule.Location == nil {
			continue
		}
		loc := fmt.Sprintf("%s:%d", rule.Location.File, rule.Location.Row)
		name := rule.Module.Package.Path.String() + "." + rule.Head.Name.String()
		if len(rule.Head.Reference) > 0 {
			name = rule.Module.Package.Path.String() + "." + rule.Head.Reference.String()
		}
		key := loc + " " + name
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, FiredRule{Location: loc, Rule: name})
	}
	return out
}
