package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	// ChildTests re-executes this binary, as it does countersign.
	if len(os.Args) > 1 && os.Args[1] == TestChildCommand {
		os.Exit(RunTestChild(context.Background(), os.Stdin, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// writePolicy writes files (relative slash paths → contents) into a fresh
// temporary directory and returns it.
func writePolicy(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

// writeFiles writes files (relative slash paths → contents) under dir,
// replacing existing ones.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testEvalTimeout replaces the 250ms default in tests that are not about
// timeouts: on a loaded machine under -race a trivial evaluation can take
// longer, and a timeout there would be a flake, not a finding.
const testEvalTimeout = time.Minute

// newEngine writes files into a temporary policy directory and builds an
// Engine over it; opts.Source is replaced by that directory.
func newEngine(t testing.TB, opts Options, files map[string]string) (*Engine, string) {
	t.Helper()
	dir := writePolicy(t, files)
	opts.Source = Source{Paths: []string{dir}}
	if opts.EvalTimeout == 0 {
		opts.EvalTimeout = testEvalTimeout
	}
	e, err := New(t.Context(), opts, zap.NewNop())
	if err != nil {
		t.Fatalf("New(%s) = %v", dir, err)
	}
	return e, dir
}

// mod returns a single policy.rego file map holding src.
func mod(src string) map[string]string {
	return map[string]string{"policy.rego": src}
}

// doc is a minimal input document for DecideDocument.
func doc(method, host, path string) map[string]any {
	return map[string]any{
		"request": map[string]any{
			"method": method, "scheme": "https", "host": host, "port": 443, "path": path,
			"query": map[string]any{}, "headers": map[string]any{}, "tunnel": false,
		},
		"action": map[string]any{"provider": "http", "operation": method, "read_only": method == "GET", "destructive": false},
	}
}

func tunnelDoc(host string, port int) map[string]any {
	return map[string]any{
		"request": map[string]any{"method": "CONNECT", "host": host, "port": port, "tunnel": true},
		"action":  map[string]any{"provider": "http", "operation": "CONNECT", "read_only": false, "destructive": false},
	}
}

// decisionOpts compares the policy's outcome, not timing or bookkeeping.
var decisionOpts = cmpopts.IgnoreFields(Decision{}, "Revision", "Eval", "Err")

func diffDecision(want, got Decision) string {
	return cmp.Diff(want, got, decisionOpts)
}
