// Package policy loads Rego policies, evaluates data.countersign for each
// request and turns the result into a Decision, following SPEC section 4:
// deny > approve > allow, the object form of members, strict built-in
// errors, no network built-ins, an evaluation timeout, and fail-closed
// handling of every error.
//
// The compiled policy set is swapped atomically on reload; a set that does
// not compile is rejected and the last good one stays in force.
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.uber.org/zap"

	"github.com/countersign/countersign/internal/redact"
)

// Options configures an Engine.
type Options struct {
	Source Source
	// OnError is the verdict used when evaluation fails: VerdictDeny
	// (default) or VerdictAllow.
	OnError Verdict
	// EvalTimeout bounds one evaluation (default 250ms).
	EvalTimeout time.Duration
	// Now is the clock used to time evaluations (default time.Now).
	Now func() time.Time
	// NoCache turns the decision cache off (for differential tests).
	NoCache bool
	// PinPaths keeps reloads to the directories loaded at start: each
	// policy path that is a directory, and the directory holding each one
	// that is a file. A reload that finds another directory there (the
	// old one moved away, a new one made in its place) is refused. run
	// --isolate sets it: the agent cannot write a read-only policy, but it
	// may rename a directory that contains it.
	PinPaths bool
	// OnReload, when set, is told about every reload that changed the
	// policy set or was rejected (see reload.go). It is called with reloads
	// serialised, so it must not call Reload.
	OnReload func(ReloadEvent)
	// TestRunner, when set, runs a reload's policy tests instead of this
	// process (see ChildTests). OPA's tester runs each test on a goroutine
	// of its own, where a panic in a built-in cannot be recovered: in the
	// proxy's process it would end every session (found by review).
	TestRunner TestRunner
}

// Engine evaluates requests against the current policy set.
type Engine struct {
	opts   Options
	logger *zap.Logger
	cur    atomic.Pointer[set]

	mu        sync.Mutex // serialises reloads
	lastError atomic.Pointer[reloadError]
	status    reloadState // see reload.go
	// pins are the policy directories loaded at start, when
	// Options.PinPaths is set (see pin.go).
	pins *pins

	// fixedOpts are the evaluation options that are the same for every
	// evaluation, made once; cancels holds evalCancels for reuse. Each
	// made per evaluation cost allocations (see eval).
	fixedOpts [2]rego.EvalOption
	cancels   sync.Pool
}

// evalCancel is an evaluation's cancellation with its deadline timer,
// reused from one evaluation to the next: a new topdown.Cancel, timer and
// their closures cost four allocations per evaluation.
type evalCancel struct {
	flag   atomic.Bool
	timer  *time.Timer // runs Cancel; stopped while not in use
	cancel func()      // Cancel, as a func value made once
	opt    rego.EvalOption
}

func (c *evalCancel) Cancel()         { c.flag.Store(true) }
func (c *evalCancel) Cancelled() bool { return c.flag.Load() }

// startCancel returns a cancellation that fires after timeout.
func (e *Engine) startCancel(timeout time.Duration) *evalCancel {
	c, _ := e.cancels.Get().(*evalCancel)
	if c == nil {
		c = &evalCancel{}
		c.cancel = c.Cancel
		c.timer = time.AfterFunc(time.Hour, c.cancel)
		c.timer.Stop()
		c.opt = rego.EvalExternalCancel(c)
	}
	c.flag.Store(false)
	c.timer.Reset(timeout)
	return c
}

// stopCancel stops c's timer and reports whether it had not fired. c is
// reused only if it had not and nothing else can cancel it any more
// (released): a timer or context.AfterFunc that fired, or is firing, could
// cancel the next evaluation.
func (e *Engine) stopCancel(c *evalCancel, released bool) bool {
	if !c.timer.Stop() {
		return false
	}
	if released {
		e.cancels.Put(c)
	}
	return true
}

type reloadError struct {
	err error
	at  time.Time
}

// New compiles the policy set. A policy that does not compile is an error
// carrying the compiler's file:line messages.
func New(ctx context.Context, opts Options, logger *zap.Logger) (*Engine, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.OnError == VerdictUnknown {
		opts.OnError = VerdictDeny
	}
	if opts.OnError != VerdictDeny && opts.OnError != VerdictAllow {
		return nil, fmt.Errorf("policy on_error must be deny or allow, not %s", opts.OnError)
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = 250 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := emptyEngine(opts, logger.Named("policy"))
	if opts.PinPaths {
		// Pinned before the first load, so that it and every reload read
		// the same directories.
		var err error
		if e.pins, err = pinDirs(opts.Source.Paths); err != nil {
			return nil, err
		}
	}
	s, err := compile(ctx, opts.Source, e.pins.fs())
	if err != nil {
		e.pins.close()
		return nil, err
	}
	s.consts = computeConsts(ctx, s, opts.EvalTimeout)
	e.cur.Store(s)
	e.status.loaded(opts.Now(), opts.Source.Bundle)
	e.logger.Info("policy loaded", zap.String("revision", s.revision), zap.Int("modules", len(s.files)))
	return e, nil
}

// emptyEngine returns an Engine with no policy set loaded yet.
func emptyEngine(opts Options, logger *zap.Logger) *Engine {
	e := &Engine{opts: opts, logger: logger}
	e.fixedOpts = [...]rego.EvalOption{
		// interpret reads the decision as AST: converting it to Go values
		// first cost an allocation per set member and object field.
		rego.EvalGenerateJSON(keepAST),
		// Nobody reads an evaluation's timers; collecting them cost seven
		// allocations.
		rego.EvalMetrics(metrics.NoOp()),
	}
	return e
}

// Revision identifies the policy set in force.
func (e *Engine) Revision() string { return e.cur.Load().revision }

// Files lists the modules of the policy set in force.
func (e *Engine) Files() []string { return e.cur.Load().files }

// Reload recompiles the policy from its source and runs its tests (see
// reload.go). On failure the current set stays in force and the error is
// kept for Health.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reloadLocked(ctx, e.opts.Source, OriginFiles)
}

// Health reports the revision in force and the last reload error, if any.
func (e *Engine) Health() (revision string, lastErr error) {
	revision = e.cur.Load().revision
	if le := e.lastError.Load(); le != nil {
		return revision, le.err
	}
	return revision, nil
}

// Decide evaluates the policy for one input. It never fails: any error yields
// policy.on_error with the reason "policy error: …".
func (e *Engine) Decide(ctx context.Context, in *Input) Decision {
	return e.decide(ctx, in.Map(), nil, in.convertible)
}

// DecideDocument evaluates a complete input document given as JSON-shaped
// values (from `policy eval --input` or an audit record being replayed).
func (e *Engine) DecideDocument(ctx context.Context, doc map[string]any) Decision {
	return e.decide(ctx, doc, nil, func() bool { return plainJSON(doc) })
}

// decide evaluates doc, or answers from the cache. plain reports whether OPA
// converts doc without fail (see plainJSON); it is asked on a cache hit
// only, since evaluation converts doc anyway.
func (e *Engine) decide(ctx context.Context, doc map[string]any, tracer topdown.QueryTracer, plain func() bool) Decision {
	s := e.cur.Load()
	start := e.opts.Now()
	cache := s.cache
	if tracer != nil || e.opts.NoCache || ctx.Err() != nil {
		cache = nil
	}
	var key string
	if cache != nil {
		kb, ok := cache.plan.key(doc)
		if !ok {
			cache = nil
		} else {
			hit, found := cache.get(kb.b)
			// A document OPA cannot convert (a number out of its range, in
			// a member the policy does not even read) is a policy error
			// uncached: it must be one on a hit too.
			served := found && plain()
			if !served {
				key = string(kb.b) // for put; the buffer is reused
			}
			cache.plan.release(kb)
			if served {
				return Decision{Verdict: hit.verdict, Reasons: hit.reasons, Revision: s.revision, Eval: e.opts.Now().Sub(start)}
			}
		}
	}
	var d Decision
	input, err := inputValue(doc)
	var raw rawDecision
	if err == nil {
		raw, err = e.eval(ctx, s, input, tracer)
	}
	if err == nil {
		d, err = interpret(raw, s.definesAllow, isTunnel(doc))
	}
	d.Revision = s.revision
	d.Eval = e.opts.Now().Sub(start)
	if err != nil {
		return e.onError(d, err)
	}
	if cache != nil {
		// Reasons are shared between hits; callers never modify them.
		cache.put(key, cachedDecision{verdict: d.Verdict, reasons: d.Reasons})
	}
	return d
}

func (e *Engine) onError(d Decision, err error) Decision {
	d.Err = err
	d.Verdict = e.opts.OnError
	d.Reasons = []Reason{{Message: "policy error: the policy could not decide this request; ask the policy owner to check the countersign log", ID: "POLICY-ERROR"}}
	return d
}

// eval runs the prepared query. A panic inside OPA is turned into an error so
// a policy bug cannot take the proxy down.
func (e *Engine) eval(ctx context.Context, s *set, input ast.Value, tracer topdown.QueryTracer) (raw rawDecision, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("policy evaluation panicked: %v", v)
		}
	}()
	// Without an external Cancel, OPA starts a goroutine per evaluation to
	// watch ctx and wakes it to exit afterwards; on a busy proxy that
	// scheduling costs more than a small policy's evaluation. The timer and
	// AfterFunc only run (in a goroutine of their own) if the deadline
	// passes or ctx ends. A timer costs a third of the allocations of a
	// context.WithTimeout plus its AfterFunc.
	started := time.Now()
	timeout := e.opts.EvalTimeout
	consts := s.consts
	if tracer != nil {
		consts = nil // a trace shows every rule evaluated
	}
	if consts != nil {
		// The constant rules' values took this long to compute; without
		// them, an evaluation would spend up to that much of its time on
		// them, so with them it has that much less.
		timeout -= consts.cost
	}
	cancelEval := e.startCancel(timeout)
	stopCtx := func() bool { return true }
	if ctx.Done() != nil {
		stopCtx = context.AfterFunc(ctx, cancelEval.cancel)
		defer stopCtx() // after a panic too; a second call does nothing
	}
	var buf [6]rego.EvalOption // on the stack: Eval keeps none
	opts := append(buf[:0], e.fixedOpts[:]...)
	opts = append(opts, rego.EvalParsedInput(input), cancelEval.opt)
	if tracer != nil {
		opts = append(opts, rego.EvalQueryTracer(tracer))
	}
	if consts != nil {
		opts = append(opts, rego.EvalVirtualCache(newEvalCache(consts)))
	}
	rs, err := s.query.Eval(ctx, opts...)
	// OPA notices cancellation asynchronously, so an evaluation can still
	// succeed after the deadline passed or the caller gave up. It counts as
	// failed all the same: the timeout contract is deterministic.
	if !e.stopCancel(cancelEval, stopCtx()) || time.Since(started) >= timeout {
		return rawDecision{}, fmt.Errorf("evaluation exceeded %s: %w", e.opts.EvalTimeout, cancelled(err, context.DeadlineExceeded))
	}
	if cerr := ctx.Err(); cerr != nil {
		return rawDecision{}, fmt.Errorf("evaluation cancelled: %w", cancelled(err, cerr))
	}
	if err != nil {
		return rawDecision{}, err
	}
	if len(rs) != 1 {
		return rawDecision{}, errors.New("policy decision is undefined")
	}
	rules, ok := rs[0].Bindings["decision"].(*ast.Array)
	if !ok || rules.Len() != 3 {
		return rawDecision{}, fmt.Errorf("policy decision is %v, want an array of three arrays", rs[0].Bindings["decision"])
	}
	if raw.deny, err = ruleValue(rules.Elem(0), "deny"); err != nil {
		return rawDecision{}, err
	}
	if raw.approve, err = ruleValue(rules.Elem(1), "approve"); err != nil {
		return rawDecision{}, err
	}
	if raw.allow, err = ruleValue(rules.Elem(2), "allow"); err != nil {
		return rawDecision{}, err
	}
	return raw, nil
}

// ruleValue unwraps a rule's value from its comprehension in decisionQuery:
// nil when the rule is undefined.
func ruleValue(t *ast.Term, rule string) (ast.Value, error) {
	arr, ok := t.Value.(*ast.Array)
	if !ok || arr.Len() > 1 {
		return nil, fmt.Errorf("policy decision: %s is %v, want an array of at most one value", rule, t)
	}
	if arr.Len() == 0 {
		return nil, nil
	}
	return arr.Elem(0).Value, nil
}

// cancelled is the error of an evaluation that was cancelled by cause: the
// cause, together with what OPA reported if that says something else.
func cancelled(err, cause error) error {
	if err == nil || errors.Is(err, cause) {
		return cause
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// rawDecision holds the values of the three rules, nil where a rule is
// undefined.
type rawDecision struct {
	deny, approve, allow ast.Value
}

// inputValue is the input document as OPA evaluates it. A document of plain
// JSON-shaped values becomes AST as the policy reads it (ast.LazyObject):
// converting it all up front was a fifth of an evaluation's allocations,
// for headers, session, query and time that most policies never look at.
// Anything else is converted up front, so that a value OPA cannot convert
// is an error whether or not the policy reads it.
func inputValue(doc map[string]any) (ast.Value, error) {
	if plainJSON(doc) {
		return ast.LazyObject(doc), nil
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, fmt.Errorf("convert input: %w", err)
	}
	return v, nil
}

// plainJSON reports whether ast.InterfaceToValue converts v without fail:
// the types it handles directly, and numbers without an exponent (the
// only ones it range-checks).
func plainJSON(v any) bool {
	switch x := v.(type) {
	case nil, bool, string, int, int64, uint64, float64, []string, map[string]string:
		return true
	case json.Number:
		return !strings.ContainsAny(string(x), "eE")
	case []any:
		for _, e := range x {
			if !plainJSON(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !plainJSON(e) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// keepAST is the result conversion of eval: none.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

func isTunnel(doc map[string]any) bool {
	req, _ := doc["request"].(map[string]any)
	t, _ := req["tunnel"].(bool)
	return t
}

// interpret applies the decision rules of SPEC section 4 to the raw values of
// deny, approve and allow.
func interpret(raw rawDecision, definesAllow, tunnel bool) (Decision, error) {
	deny, err := members("deny", raw.deny)
	if err != nil {
		return Decision{}, err
	}
	approve, err := members("approve", raw.approve)
	if err != nil {
		return Decision{}, err
	}
	allowVal := raw.allow
	// A defined null (a data document's "allow": null) is a value of the
	// wrong type, not an absent rule.
	allowSet := allowVal != nil
	allow := false
	if allowSet {
		b, ok := allowVal.(ast.Boolean)
		if !ok {
			return Decision{}, fmt.Errorf("rule allow has type %s, want boolean", astTypeName(allowVal))
		}
		allow = bool(b)
	}

	switch {
	case len(deny) > 0:
		return Decision{Verdict: VerdictDeny, Reasons: deny}, nil
	case len(approve) > 0:
		return Decision{Verdict: VerdictApprove, Reasons: approve}, nil
	case tunnel && !allow:
		// An opaque tunnel is only opened when the policy allows it explicitly.
		return Decision{Verdict: VerdictDeny, Reasons: []Reason{{
			Message: "tunnels to hosts that are not intercepted must be allowed explicitly by the policy",
			ID:      "TUNNEL",
		}}}, nil
	case (definesAllow || allowSet) && !allow:
		return Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "not allowed by policy", ID: "NOT-ALLOWED"}}}, nil
	default:
		return Decision{Verdict: VerdictAllow}, nil
	}
}

// members converts a deny or approve value (a set, or an array when a
// policy defines the rule as one) into reasons, in the order OPA's JSON
// conversion of the value would list them. An undefined rule (nil) has none.
func members(rule string, v ast.Value) ([]Reason, error) {
	if v == nil {
		return nil, nil
	}
	if l, ok := v.(interface{ Len() int }); ok && l.Len() == 0 {
		// The common case, and the closure below costs an allocation.
		switch v.(type) {
		case ast.Set, *ast.Array:
			return nil, nil
		}
	}
	var out []Reason
	add := func(t *ast.Term) error {
		r, err := member(t.Value)
		if err != nil {
			return fmt.Errorf("rule %s: %w", rule, err)
		}
		// A message may quote the request's path, which the policy reads
		// unmasked; messages go to the audit log, the approval page and
		// Slack.
		r.Message = redact.Message(r.Message)
		out = append(out, r)
		return nil
	}
	var err error
	switch x := v.(type) {
	case ast.Set:
		out = make([]Reason, 0, x.Len())
		err = x.Iter(add)
	case *ast.Array:
		out = make([]Reason, 0, x.Len())
		err = x.Iter(add)
	default:
		return nil, fmt.Errorf("rule %s has type %s, want a set of strings or objects", rule, astTypeName(v))
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func member(v ast.Value) (Reason, error) {
	switch m := v.(type) {
	case ast.String:
		if m == "" {
			return Reason{}, errors.New("member is an empty string")
		}
		return Reason{Message: string(m)}, nil
	case ast.Object:
		if r, ok := plainMember(m); ok {
			return r, nil
		}
		fields, err := ast.JSON(m)
		if err != nil {
			return Reason{}, fmt.Errorf("convert member: %w", err)
		}
		return memberObject(fields.(map[string]any))
	default:
		return Reason{}, fmt.Errorf("member has type %s, want string or object", astTypeName(v))
	}
}

// plainMember reads the common object member, {"id": …, "msg": …} plus
// fields countersign ignores, without converting it to Go values. ok is
// false for any other shape (approvals, hold, a field of the wrong type, no
// msg), which memberObject then reads and reports.
func plainMember(obj ast.Object) (r Reason, ok bool) {
	ok = true
	obj.Foreach(func(k, v *ast.Term) {
		key, isStr := k.Value.(ast.String)
		if !isStr {
			ok = false
			return
		}
		var dst *string
		switch key {
		case "msg":
			dst = &r.Message
		case "id":
			dst = &r.ID
		case "channel":
			dst = &r.Channel
		case "approvals", "hold":
			ok = false
			return
		default:
			return
		}
		s, isStr := v.Value.(ast.String)
		if !isStr {
			ok = false
			return
		}
		*dst = string(s)
	})
	if !ok || r.Message == "" {
		// An empty or missing msg is an error or needs the ID: the slow path
		// words both.
		return Reason{}, false
	}
	return r, true
}

// memberObject reads the fields of an object member.
func memberObject(m map[string]any) (Reason, error) {
	var r Reason
	for k, val := range m {
		switch k {
		case "msg":
			s, ok := val.(string)
			if !ok || s == "" {
				return Reason{}, fmt.Errorf("member field msg must be a non-empty string, got %s", typeName(val))
			}
			r.Message = s
		case "id":
			s, ok := val.(string)
			if !ok {
				return Reason{}, fmt.Errorf("member field id must be a string, got %s", typeName(val))
			}
			r.ID = s
		case "channel":
			s, ok := val.(string)
			if !ok {
				return Reason{}, fmt.Errorf("member field channel must be a string, got %s", typeName(val))
			}
			r.Channel = s
		case "approvals":
			n, ok := wholeNumber(val)
			if !ok || n < 1 || n > 10 {
				return Reason{}, fmt.Errorf("member field approvals must be a whole number from 1 to 10, got %v", val)
			}
			r.Approvals = n
		case "hold":
			s, ok := val.(string)
			if !ok {
				return Reason{}, fmt.Errorf("member field hold must be a duration string such as \"5m\", got %s", typeName(val))
			}
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return Reason{}, fmt.Errorf("member field hold %q is not a positive duration", s)
			}
			r.Hold = d
		default:
			// Unknown fields are allowed: policies may carry their own
			// metadata (severity, links) for the audit log.
		}
	}
	if r.Message == "" {
		if r.ID == "" {
			return Reason{}, errors.New("object member needs a msg")
		}
		r.Message = "matched policy rule " + r.ID
	}
	return r, nil
}

func wholeNumber(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		if n != float64(int(n)) {
			return 0, false
		}
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// astTypeName is typeName for a value still in AST form.
func astTypeName(v ast.Value) string {
	switch v.(type) {
	case nil, ast.Null:
		return "null"
	case ast.Boolean:
		return "boolean"
	case ast.String:
		return "string"
	case *ast.Array, ast.Set:
		return "array/set"
	case ast.Object:
		return "object"
	default:
		return "number"
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array/set"
	case map[string]any:
		return "object"
	default:
		return "number"
	}
}
