package policy

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
)

// Rules whose value cannot change between requests, computed once per
// policy set.
//
// OPA caches a rule's value for one evaluation only, so every request
// evaluated again the lists a policy keeps in rules: the hosts of
// countersign.lib.hosts, an allowlist read from data, a set of protected
// accounts. Those rules were a third of an evaluation's allocations. A
// complete rule whose value depends on neither the input nor the clock,
// nor on anything random, has the same value in every evaluation of a
// policy set; the set holds that value from its compilation on, and each
// evaluation starts with it in OPA's cache of rule values.
//
// A rule qualifies when it and every rule it can reach (OPA's dependency
// graph, which counts every rule a reference with variables may select)
// read nothing under `input`, call no non-deterministic or clock-reading
// built-in and use no `with`, and when no other rule can define a value at
// its path (a rule with a variable in its ref head, `a.b[k] := …`, can).
// Data documents are part of the set: a change to them is a new set. A
// rule whose evaluation fails, panics, or takes longer than one
// evaluation may (Options.EvalTimeout) is left to each evaluation, which
// reports the error as before. Their time together is taken off each
// evaluation's, and when it is half of it, none is kept.

// constBudget bounds the time spent computing a set's constant rules.
const constBudget = 2 * time.Second

// constRules holds the values of a policy set's constant rules, as a
// virtual-document cache that is read, never written, once built.
type constRules struct {
	values topdown.VirtualCache
	n      int
	// cost is how long computing them took: each evaluation that uses the
	// values has that much less time (see Engine.eval).
	cost time.Duration
}

// computeConsts finds and evaluates the constant complete rules of a compiled
// policy set, each within timeout. It returns nil when there are none.
func computeConsts(ctx context.Context, s *set, timeout time.Duration) *constRules {
	refs := constRuleRefs(s.compiler)
	if len(refs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, constBudget)
	defer cancel()
	caps := Capabilities()
	values := topdown.NewVirtualCache()
	n := 0
	var total time.Duration
	for _, ref := range refs {
		if ctx.Err() != nil {
			break
		}
		started := time.Now()
		v, ok := constValue(ctx, s, caps, ref, timeout)
		total += time.Since(started)
		if !ok {
			continue // each evaluation reports what went wrong
		}
		values.Put(ref, v) // nil: undefined
		n++
	}
	// Rules that are each quick enough may together be slower than one
	// evaluation may take: a request that reads them all would time out
	// (and be denied) without their values, so it must with them. Each
	// evaluation that uses them has their cost taken off its time; when
	// that leaves less than half, or the budget ran out before all were
	// computed, none is kept and every rule is left to each evaluation, as
	// before.
	if n == 0 || total >= timeout/2 || ctx.Err() != nil {
		return nil
	}
	return &constRules{values: values, n: n, cost: total}
}

// constValue evaluates one constant rule: its value (nil when undefined),
// and whether it was evaluated without error, panic or timeout.
func constValue(ctx context.Context, s *set, caps *ast.Capabilities, ref ast.Ref, timeout time.Duration) (v *ast.Term, ok bool) {
	defer func() {
		if recover() != nil {
			v, ok = nil, false
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := time.Now()
	rs, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(s.compiler),
		rego.Store(s.store),
		rego.StrictBuiltinErrors(true),
		rego.Capabilities(caps),
		rego.GenerateJSON(keepAST),
	).Eval(ctx)
	if err != nil || ctx.Err() != nil || time.Since(started) >= timeout {
		return nil, false
	}
	switch len(rs) {
	case 0:
		return nil, true
	case 1:
		if x, isValue := rs[0].Expressions[0].Value.(ast.Value); isValue {
			return ast.NewTerm(x), true
		}
	}
	return nil, false
}

// constRuleRefs lists the refs of complete rules (no arguments, one value)
// that qualify, in a stable order.
func constRuleRefs(c *ast.Compiler) []ast.Ref {
	verdicts := map[*ast.Rule]bool{} // rule → constant, for rules already judged
	var refs []ast.Ref
	seen := map[string]bool{}
	for _, name := range util.KeysSorted(c.Modules) {
		for _, r := range c.Modules[name].Rules {
			if len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue {
				continue
			}
			ref := r.Ref()
			if !ref.IsGround() || seen[ref.String()] {
				continue
			}
			seen[ref.String()] = true
			// Every rule that can give a value at ref: those at ref, and
			// those whose ref head has a variable where ref has a key.
			// None may sit below it.
			rules := c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{IncludeHiddenModules: true})
			if node := c.RuleTree.Find(ref); node == nil || len(node.Children) > 0 || len(rules) == 0 {
				continue
			}
			ok := true
			for _, rule := range rules {
				if len(rule.Head.Args) > 0 || rule.Head.RuleKind() != ast.SingleValue || !constClosure(c.Graph, rule, verdicts) {
					ok = false
					break
				}
			}
			if ok {
				refs = append(refs, ref)
			}
		}
	}
	return refs
}

// constClosure reports whether rule, its else branches and every rule they
// can reach are free of input, volatile built-ins and with.
func constClosure(g *ast.Graph, rule *ast.Rule, verdicts map[*ast.Rule]bool) bool {
	if v, done := verdicts[rule]; done {
		return v
	}
	// Assume constant while visiting, so cycles (which the compiler refuses
	// anyway) end; the verdict is corrected below.
	verdicts[rule] = true
	ok := constBody(rule)
	for e := rule.Else; ok && e != nil; e = e.Else {
		ok = constClosure(g, e, verdicts)
	}
	for dep := range g.Dependencies(rule) {
		if !ok {
			break
		}
		d, isRule := dep.(*ast.Rule)
		ok = isRule && constClosure(g, d, verdicts)
	}
	verdicts[rule] = ok
	return ok
}

// constBody looks at one rule on its own: its head, body and arguments.
func constBody(rule *ast.Rule) bool {
	ok := true
	check := func(x any) {
		ast.WalkRefs(x, func(r ast.Ref) bool {
			switch {
			case len(r) == 0:
			case r[0].Equal(ast.InputRootDocument):
				ok = false
			case r[0].Equal(ast.DefaultRootDocument):
				// A reference into data whose second step is not a constant
				// can select anything, rules reading the input included.
				if len(r) < 2 || !r[1].IsGround() {
					ok = false
				}
			}
			return !ok
		})
		ast.WalkTerms(x, func(t *ast.Term) bool {
			if call, isCall := t.Value.(ast.Call); isCall && len(call) > 0 {
				if ref, isRef := call[0].Value.(ast.Ref); isRef && !cacheable(ref.String()) {
					ok = false
				}
			}
			return !ok
		})
		ast.WalkExprs(x, func(e *ast.Expr) bool {
			if len(e.With) > 0 || (e.IsCall() && !cacheable(e.Operator().String())) {
				ok = false
			}
			return !ok
		})
	}
	check(rule.Head)
	check(rule.Body)
	return ok
}

// evalCache is the virtual-document cache of one evaluation: the set's
// constant rules, read-only and shared, in front of OPA's own cache for
// everything else. Under a `with` (a pushed frame) the constants are not
// consulted: a with may replace a rule they depend on.
type evalCache struct {
	consts topdown.VirtualCache
	own    topdown.VirtualCache
	depth  int
}

func newEvalCache(c *constRules) *evalCache {
	return &evalCache{consts: c.values, own: topdown.NewVirtualCache()}
}

func (c *evalCache) Push() { c.depth++; c.own.Push() }
func (c *evalCache) Pop()  { c.depth--; c.own.Pop() }

func (c *evalCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.depth == 0 {
		if v, undefined := c.consts.Get(ref); v != nil || undefined {
			return v, undefined
		}
	}
	return c.own.Get(ref)
}

func (c *evalCache) Put(ref ast.Ref, value *ast.Term) { c.own.Put(ref, value) }
func (c *evalCache) Keys() []ast.Ref                  { return c.own.Keys() }
