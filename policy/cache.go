package policy

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A decision cache keyed on exactly the input fields the policy reads.
//
// Evaluating OPA costs tens of microseconds and hundreds of allocations per
// request; most agent traffic repeats the same few shapes. The compiled
// policy tells us which parts of the input it can reach (every reference
// that starts at `input`, up to its first non-constant step); two inputs
// that agree on all of those parts get the same decision, because the
// policy cannot tell them apart. The cache is disabled for a policy set that
// reads the input as a whole, uses a non-deterministic built-in (time.now_ns,
// rand.intn, …) or a `with` modifier outside tests: then no such argument
// holds. A differential test over the golden corpus checks cached and
// uncached decisions agree.

// maxCacheEntries bounds the cache of one policy set.
const maxCacheEntries = 8192

// keyPlan is the list of input paths a policy set reads. Nil means the
// decisions of this set are not cacheable.
type keyPlan struct {
	paths [][]string
}

// planCache analyses the compiled modules.
func planCache(c *ast.Compiler) *keyPlan {
	var paths [][]string
	ok := true
	for _, m := range c.Modules {
		if strings.HasSuffix(m.Package.Location.File, "_test.rego") {
			continue
		}
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !ok || len(r) == 0 || !r[0].Equal(ast.InputRootDocument) {
				return false
			}
			var p []string
			for _, t := range r[1:] {
				s, isStr := t.Value.(ast.String)
				if !isStr {
					break
				}
				p = append(p, string(s))
			}
			if len(p) == 0 {
				ok = false // the whole input is read
				return true
			}
			paths = append(paths, p)
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if !ok {
				return true
			}
			call, isCall := t.Value.(ast.Call)
			if !isCall || len(call) == 0 {
				return false
			}
			if ref, isRef := call[0].Value.(ast.Ref); isRef {
				if b, known := ast.BuiltinMap[ref.String()]; known && b.Nondeterministic {
					ok = false
				}
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				if b, known := ast.BuiltinMap[e.Operator().String()]; known && b.Nondeterministic {
					ok = false
				}
			}
			if len(e.With) > 0 {
				ok = false
			}
			return !ok
		})
		if !ok {
			return nil
		}
	}
	// The decision also depends on request.tunnel (see interpret).
	paths = append(paths, []string{"request", "tunnel"})
	return &keyPlan{paths: minimalPaths(paths)}
}

// minimalPaths sorts paths and drops any path that has a shorter prefix in
// the list: reading request covers request.host.
func minimalPaths(paths [][]string) [][]string {
	slices.SortFunc(paths, func(a, b []string) int {
		return slices.Compare(a, b)
	})
	paths = slices.CompactFunc(paths, slices.Equal)
	out := paths[:0]
	for _, p := range paths {
		if len(out) > 0 && hasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasPrefix(p, prefix []string) bool {
	return len(p) >= len(prefix) && slices.Equal(p[:len(prefix)], prefix)
}

// key returns the cache key of doc under the plan: the canonical encoding of
// each read path's value, or of its absence.
func (k *keyPlan) key(doc map[string]any) (string, bool) {
	var b strings.Builder
	for _, p := range k.paths {
		v, present := lookup(doc, p)
		if !present {
			b.WriteString("\x00-\x00")
			continue
		}
		b.WriteByte(0)
		if !writeCanonical(&b, v, 0) {
			return "", false
		}
	}
	return b.String(), true
}

func lookup(doc map[string]any, path []string) (any, bool) {
	var cur any = doc
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// writeCanonical writes a JSON-shaped value with sorted object keys. It
// returns false for a value it does not know how to encode (then the
// decision is not cached) or nesting beyond a sane depth.
func writeCanonical(b *strings.Builder, v any, depth int) bool {
	if depth > 64 {
		return false
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		b.WriteString(strconv.Quote(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case json.Number:
		// Canonicalise so that 1, 1.0 and 1e0 share a key only when OPA
		// would treat them alike: it compares numbers by value.
		f, err := x.Float64()
		if err != nil {
			return false
		}
		b.WriteString("n" + strconv.FormatFloat(f, 'g', -1, 64) + "|" + string(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if !writeCanonical(b, e, depth+1) {
				return false
			}
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(e))
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			if !writeCanonical(b, x[k], depth+1) {
				return false
			}
		}
		b.WriteByte('}')
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k) + ":" + strconv.Quote(x[k]))
		}
		b.WriteByte('}')
	default:
		return false
	}
	return true
}

// decisionCache holds successful decisions of one policy set.
type decisionCache struct {
	plan *keyPlan

	mu      sync.Mutex
	entries map[string]cachedDecision
	order   []string // insertion order, for eviction
}

type cachedDecision struct {
	verdict Verdict
	reasons []Reason
}

func newDecisionCache(plan *keyPlan) *decisionCache {
	if plan == nil {
		return nil
	}
	return &decisionCache{plan: plan, entries: make(map[string]cachedDecision, 256)}
}

func (c *decisionCache) get(key string) (cachedDecision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[key]
	return d, ok
}

func (c *decisionCache) put(key string, d cachedDecision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	if len(c.order) >= maxCacheEntries {
		// Evict the oldest quarter: cheap, and agent traffic that matters
		// keeps coming back.
		n := maxCacheEntries / 4
		for _, k := range c.order[:n] {
			delete(c.entries, k)
		}
		c.order = append(c.order[:0], c.order[n:]...)
	}
	c.entries[key] = d
	c.order = append(c.order, key)
}
