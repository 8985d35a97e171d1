package policy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/countersign/countersign/internal/termtext"
)

// TestOptions configures RunTests.
type TestOptions struct {
	Source  Source
	Verbose bool
	// Run is a regular expression selecting tests by name, as `opa test --run`.
	Run     string
	Timeout time.Duration // per test; default 5s
}

// TestResult summarises a test run.
type TestResult struct {
	Passed, Failed, Errored, Skipped int
}

// OK reports whether every test passed and at least one ran.
func (r TestResult) OK() bool {
	return r.Failed == 0 && r.Errored == 0 && r.Passed > 0
}

// RunTests runs the Rego unit tests (rules named test_*) of the source with
// OPA's tester and prints the results in `opa test`'s format to w. The
// embedded helper library is available to the tests, and built-in errors are
// raised as they are in the proxy. An error means the policies did not load
// or compile.
func RunTests(ctx context.Context, opts TestOptions, w io.Writer) (TestResult, error) {
	if err := opts.Source.validate(); err != nil {
		return TestResult{}, err
	}
	modules, _, docs, err := loadFiles(opts.Source, isHidden, nil)
	if err != nil {
		return TestResult{}, err
	}
	return runTests(ctx, modules, docs, opts, w, nil)
}

// runTests runs the tests among loaded modules (policies, tests and data).
// failed, when not nil, collects "package.test_name (file:line)" of every
// failing or erroring test.
func runTests(ctx context.Context, modules map[string]*ast.Module, docs map[string]any, opts TestOptions, w io.Writer, failed *[]string) (TestResult, error) {
	store := newStore(docs)
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return TestResult{}, fmt.Errorf("open policy store: %w", err)
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn)).
		WithEnablePrintStatements(true).
		WithCapabilities(Capabilities()).
		WithUseTypeCheckAnnotations(true)

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		CapturePrintOutput(true).
		EnableTracing(opts.Verbose).
		StackTraces(true).
		RaiseBuiltinErrors(true).
		SetModules(modules).
		SetTimeout(timeout).
		Filter(opts.Run)

	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return TestResult{}, err
	}

	var res TestResult
	counted := make(chan *tester.Result)
	go func() {
		defer close(counted)
		for r := range ch {
			switch {
			case r.Skip:
				res.Skipped++
			case r.Error != nil:
				res.Errored++
				noteFailure(failed, r)
			case r.Fail:
				res.Failed++
				noteFailure(failed, r)
			default:
				res.Passed++
			}
			counted <- r
		}
	}()
	// What the tests print, their names and errors come from files the
	// agent may have written: escape sequences in them must not reach the
	// operator's terminal (a fake "PASS" over a failure, found by review).
	reporter := tester.PrettyReporter{Output: termtext.Writer{W: w}, Verbose: opts.Verbose}
	if err := reporter.Report(counted); err != nil {
		// Drain so the counting goroutine finishes before we return.
		for range counted {
		}
		return res, err
	}
	if res.Passed+res.Failed+res.Errored+res.Skipped == 0 {
		fmt.Fprintln(w, "no tests found: test rules are named test_* (see `opa test`)")
	}
	return res, nil
}

// dropOverriddenLib removes from lib the embedded library modules whose
// package the user's modules declare: a user who ships their own copy of
// countersign.lib.hosts replaces the embedded one instead of colliding with
// it, while a package of their own under countersign.lib (say
// countersign.lib.mine) leaves the embedded library in place. A test file
// in a library package adds tests; it replaces nothing (found by review: a
// reload, which loads the tests, dropped the library module they were in
// and the policy's rules that used it became undefined).
func dropOverriddenLib(lib *loader.Result, user map[string]*ast.Module) {
	for name, f := range lib.Modules {
		for userName, m := range user {
			if strings.HasSuffix(userName, "_test.rego") {
				continue
			}
			if m.Package.Path.Equal(f.Parsed.Package.Path) {
				delete(lib.Modules, name)
				break
			}
		}
	}
}

func noteFailure(failed *[]string, r *tester.Result) {
	if failed == nil {
		return
	}
	name := r.Package + "." + r.Name
	if r.Location != nil {
		name += fmt.Sprintf(" (%s:%d)", r.Location.File, r.Location.Row)
	}
	*failed = append(*failed, name)
}
