package policy

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
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

// maxCacheEntries and maxCacheBytes bound the cache of one policy set. Keys
// run up to maxKeyBytes, and a policy's messages may quote the input, so a
// count alone would let distinct large requests pin ~128 MiB until the next
// reload.
const (
	maxCacheEntries = 8192
	maxCacheBytes   = 16 << 20
)

// keyPlan is the list of input paths a policy set reads. Nil means the
// decisions of this set are not cacheable.
type keyPlan struct {
	paths   [][]string
	buffers sync.Pool // of *keyBuffer
}

// planCache analyses the compiled modules.
func planCache(c *ast.Compiler) *keyPlan {
	var paths [][]string
	ok := true
	// Every compiled module counts, tests included: whatever the compiler
	// holds can take part in a decision.
	for _, m := range c.Modules {
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
			if ref, isRef := call[0].Value.(ast.Ref); isRef && !cacheable(ref.String()) {
				ok = false
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() && !cacheable(e.Operator().String()) {
				ok = false
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

// clockBuiltins read the clock although OPA does not mark them
// nondeterministic: a certificate chain verified now may have expired by
// the next request.
var clockBuiltins = map[string]bool{
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
}

// cacheable reports whether a call of the named function leaves the
// decision a function of the input alone.
func cacheable(name string) bool {
	if clockBuiltins[name] {
		return false
	}
	b, known := ast.BuiltinMap[name]
	return !known || !b.Nondeterministic
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

// keyBuffer is the scratch space of one key: the encoding and the object
// keys being sorted. Buffers are pooled per plan so that building a key
// allocates nothing; on a cache hit, nothing at all is allocated.
type keyBuffer struct {
	b    []byte
	keys []string
}

// maxKeyBytes bounds a cache key. A policy that reads input.request.body
// whole (the shared library does, for S3 ACL bodies) would otherwise key on
// up to inspect.body_limit of text: encoding a 1 MiB body cost more than
// evaluating the policy, and 8192 such keys would pin gigabytes. Inputs
// whose key would be longer are evaluated without the cache.
const maxKeyBytes = 16 << 10

// key encodes the cache key of doc under the plan into a pooled buffer: the
// canonical encoding of each read path's value, or of its absence. The
// caller looks it up and returns the buffer with release. ok is false when
// doc holds a value the encoding does not know, or its key would exceed
// maxKeyBytes.
func (k *keyPlan) key(doc map[string]any) (kb *keyBuffer, ok bool) {
	kb, _ = k.buffers.Get().(*keyBuffer)
	if kb == nil {
		kb = &keyBuffer{}
	}
	kb.b = kb.b[:0]
	for _, p := range k.paths {
		v, present, known := lookup(doc, p)
		if !known {
			k.release(kb)
			return nil, false
		}
		if !present {
			kb.b = append(kb.b, "\x00-\x00"...)
			continue
		}
		kb.b = append(kb.b, 0)
		if !kb.writeCanonical(v, 0) {
			k.release(kb)
			return nil, false
		}
	}
	if len(kb.b) > maxKeyBytes {
		k.release(kb)
		return nil, false
	}
	return kb, true
}

// maxPooledKey bounds the buffers kept for reuse: one huge request body
// should not pin its key's memory.
const maxPooledKey = 64 << 10

func (k *keyPlan) release(kb *keyBuffer) {
	if cap(kb.b) > maxPooledKey {
		return
	}
	clear(kb.keys[:cap(kb.keys)]) // drop references to the request's strings
	kb.keys = kb.keys[:0]
	k.buffers.Put(kb)
}

// lookup returns the value at path in doc and whether it is there. known is
// false when a value on the way has a type whose members lookup cannot
// read (then the decision is not cached): a map[string]string, say, is an
// object to OPA, and treating it as absent would give every value one key.
func lookup(doc map[string]any, path []string) (v any, present, known bool) {
	var cur any = doc
	for _, seg := range path {
		var ok bool
		switch m := cur.(type) {
		case map[string]any:
			cur, ok = m[seg]
		case map[string]string:
			cur, ok = m[seg]
		case map[string][]string:
			cur, ok = m[seg]
		case nil, bool, string, json.Number, float64, int, int64, uint64, []any, []string:
			// Not an object: no member of it exists.
		default:
			return nil, false, false
		}
		if !ok {
			return nil, false, true
		}
	}
	return cur, true, true
}

// writeCanonical appends a JSON-shaped value with sorted object keys. It
// returns false for a value it does not know how to encode (then the
// decision is not cached), nesting beyond a sane depth, or a key that has
// grown past maxKeyBytes (checked before a string is copied, so a large body
// costs nothing here).
func (kb *keyBuffer) writeCanonical(v any, depth int) bool {
	if depth > 64 || len(kb.b) > maxKeyBytes {
		return false
	}
	switch x := v.(type) {
	case nil:
		kb.b = append(kb.b, "null"...)
	case bool:
		kb.b = strconv.AppendBool(kb.b, x)
	case string:
		if len(kb.b)+len(x) > maxKeyBytes {
			return false
		}
		kb.appendString(x)
	case int:
		kb.b = strconv.AppendInt(kb.b, int64(x), 10)
	case int64:
		kb.b = strconv.AppendInt(kb.b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
		kb.b = strconv.AppendFloat(kb.b, x, 'g', -1, 64)
	case json.Number:
		// Canonicalise so that 1, 1.0 and 1e0 share a key only when OPA
		// would treat them alike: it compares numbers by value.
		f, err := x.Float64()
		if err != nil {
			return false
		}
		kb.b = append(kb.b, 'n')
		kb.b = strconv.AppendFloat(kb.b, f, 'g', -1, 64)
		kb.b = append(kb.b, '|')
		kb.b = append(kb.b, x...)
	case []any:
		kb.b = append(kb.b, '[')
		for i, e := range x {
			if i > 0 {
				kb.b = append(kb.b, ',')
			}
			if !kb.writeCanonical(e, depth+1) {
				return false
			}
		}
		kb.b = append(kb.b, ']')
	case []string:
		kb.b = append(kb.b, '[')
		for i, e := range x {
			if i > 0 {
				kb.b = append(kb.b, ',')
			}
			kb.appendString(e)
		}
		kb.b = append(kb.b, ']')
	case map[string]any:
		keys := pushSortedKeys(&kb.keys, x)
		kb.b = append(kb.b, '{')
		for i, k := range keys {
			if i > 0 {
				kb.b = append(kb.b, ',')
			}
			kb.appendString(k)
			kb.b = append(kb.b, ':')
			if !kb.writeCanonical(x[k], depth+1) {
				return false
			}
		}
		kb.b = append(kb.b, '}')
		kb.keys = kb.keys[:len(kb.keys)-len(keys)]
	case map[string]string:
		keys := pushSortedKeys(&kb.keys, x)
		kb.b = append(kb.b, '{')
		for i, k := range keys {
			if i > 0 {
				kb.b = append(kb.b, ',')
			}
			kb.appendString(k)
			kb.b = append(kb.b, ':')
			kb.appendString(x[k])
		}
		kb.b = append(kb.b, '}')
		kb.keys = kb.keys[:len(kb.keys)-len(keys)]
	default:
		return false
	}
	return true
}

// appendString writes s length-prefixed ("s<len>:<bytes>"): unambiguous
// without escaping, which strconv.Quote paid for per rune, and distinct from
// every other kind of value writeCanonical writes.
func (kb *keyBuffer) appendString(s string) {
	kb.b = append(kb.b, 's')
	kb.b = strconv.AppendInt(kb.b, int64(len(s)), 10)
	kb.b = append(kb.b, ':')
	kb.b = append(kb.b, s...)
}

// pushSortedKeys appends m's keys to the key stack and returns them
// sorted; the caller pops them when done. Nested objects push above them,
// and a later append that moves the stack leaves the returned slice valid.
func pushSortedKeys[V any](stack *[]string, m map[string]V) []string {
	start := len(*stack)
	for k := range m {
		*stack = append(*stack, k)
	}
	keys := (*stack)[start:]
	slices.Sort(keys)
	return keys
}

// decisionCache holds successful decisions of one policy set.
type decisionCache struct {
	plan *keyPlan

	mu      sync.Mutex
	entries map[string]cachedDecision
	order   []string // insertion order, for eviction
	bytes   int      // cost of the entries, as counted by size
}

type cachedDecision struct {
	verdict Verdict
	reasons []Reason
}

// entryOverhead approximates what an entry costs besides its strings: the
// map slot, the order slot, the string and slice headers.
const entryOverhead = 96

// size is what holding d under key costs, roughly: enough to bound the
// cache's memory, not to account for it exactly.
func (d cachedDecision) size(key string) int {
	n := entryOverhead + len(key)
	for _, r := range d.reasons {
		n += entryOverhead + len(r.Message) + len(r.ID) + len(r.Channel)
	}
	return n
}

func newDecisionCache(plan *keyPlan) *decisionCache {
	if plan == nil {
		return nil
	}
	return &decisionCache{plan: plan, entries: make(map[string]cachedDecision, 256)}
}

// get looks a key up; indexing with string(key) does not copy it.
func (c *decisionCache) get(key []byte) (cachedDecision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[string(key)]
	return d, ok
}

func (c *decisionCache) put(key string, d cachedDecision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	size := d.size(key)
	if size > maxCacheBytes/64 {
		return // one entry must not push out a sixty-fourth of the cache
	}
	for len(c.order) >= maxCacheEntries || c.bytes+size > maxCacheBytes {
		// Evict the oldest quarter: cheap, and agent traffic that matters
		// keeps coming back.
		if len(c.order) == 0 {
			break // nothing left to evict: the accounting is off, not the budget
		}
		n := max(len(c.order)/4, 1)
		for _, k := range c.order[:n] {
			c.bytes -= c.entries[k].size(k)
			delete(c.entries, k)
		}
		c.order = append(c.order[:0], c.order[n:]...)
	}
	c.entries[key] = d
	c.order = append(c.order, key)
	c.bytes += size
}
