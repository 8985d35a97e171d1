package policy

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Cacheable reports whether e caches decisions of its current policy set.
func Cacheable(e *Engine) bool { return e.cur.Load().cache != nil }

// DecideEager decides in as Decide does without the cache, but with the
// input converted to AST up front (ast.InterfaceToValue) instead of
// lazily: the reference for TestLazyInputDecidesAsEager.
func DecideEager(e *Engine, ctx context.Context, in *Input) Decision {
	return decideUncached(e, ctx, e.cur.Load(), in, func(doc map[string]any) (ast.Value, error) {
		return ast.InterfaceToValue(doc)
	})
}

// ConstRules is the number of rules whose values the current policy set
// computed once (consts.go).
func ConstRules(e *Engine) int {
	if c := e.cur.Load().consts; c != nil {
		return c.n
	}
	return 0
}

// DecideWithoutConsts decides in as Decide does without the cache and
// without the values of constant rules: every rule evaluated in the
// evaluation, the reference for TestConstRulesDecideAsEvaluated.
func DecideWithoutConsts(e *Engine, ctx context.Context, in *Input) Decision {
	s := *e.cur.Load()
	s.consts = nil
	return decideUncached(e, ctx, &s, in, inputValue)
}

// decideUncached evaluates in under s, its document made OPA's by convert.
func decideUncached(e *Engine, ctx context.Context, s *set, in *Input, convert func(map[string]any) (ast.Value, error)) Decision {
	doc := in.Map()
	value, err := convert(doc)
	if err != nil {
		return e.onError(Decision{}, err)
	}
	raw, err := e.eval(ctx, s, value, nil)
	var d Decision
	if err == nil {
		d, err = interpret(raw, s.definesAllow, isTunnel(doc))
	}
	if err != nil {
		return e.onError(d, err)
	}
	return d
}
