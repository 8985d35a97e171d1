package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestChildCommand is the hidden subcommand under which the countersign
// binary runs a reload's policy tests for its parent (see ChildTests).
const TestChildCommand = "__policy-tests"

// TestSnapshot is what a reload tests: the source of every module loaded
// (the user's, the bundle's and the library's, tests included) by name,
// and the data documents.
type TestSnapshot struct {
	Modules map[string]string `json:"modules"`
	Data    map[string]any    `json:"data"`
}

// TestRunner runs the tests of a snapshot and returns their result and
// the names of the tests that failed or erred.
type TestRunner func(ctx context.Context, snap TestSnapshot) (TestResult, []string, error)

// testOutcome is what the child writes back.
type testOutcome struct {
	Result   TestResult `json:"result"`
	Failures []string   `json:"failures,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// maxChildOutput bounds what is read of the child's answer and of its
// error output.
const maxChildOutput = 4 << 20

// ChildTests returns a TestRunner that runs the tests in a child process,
// exe started with TestChildCommand (the countersign binary: main hands
// that subcommand to RunTestChild), bounded by timeout. A test that
// panics OPA ends the child, and the reload is rejected with what the
// child printed; the proxy's process is untouched.
func ChildTests(exe string, timeout time.Duration) TestRunner {
	return func(ctx context.Context, snap TestSnapshot) (TestResult, []string, error) {
		in, err := json.Marshal(snap)
		if err != nil {
			return TestResult{}, nil, fmt.Errorf("encode the policy for its tests: %w", err)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, TestChildCommand)
		// None of countersign's environment (its secrets): the tests need
		// none, and the child is readable by the agent's user until it
		// makes itself not dumpable, after Go's start-up.
		cmd.Env = []string{}
		cmd.Stdin = bytes.NewReader(in)
		var out, stderr limitedBuffer
		out.max, stderr.max = maxChildOutput, 64<<10
		cmd.Stdout, cmd.Stderr = &out, &stderr
		cmd.WaitDelay = time.Second
		runErr := cmd.Run()
		var o testOutcome
		if runErr != nil || json.Unmarshal(out.Bytes(), &o) != nil {
			if ctx.Err() != nil {
				return TestResult{}, nil, fmt.Errorf("the policy tests did not finish within %s", timeout)
			}
			msg := strings.TrimSpace(stderr.String())
			if i := strings.Index(msg, "\n\ngoroutine "); i > 0 {
				msg = msg[:i] // the panic, not every goroutine's stack
			}
			if runErr == nil {
				runErr = errors.New("no result")
			}
			return TestResult{}, nil, fmt.Errorf("the policy tests crashed (%v): %s", runErr, msg)
		}
		if o.Error != "" {
			return o.Result, o.Failures, errors.New(o.Error)
		}
		return o.Result, o.Failures, nil
	}
}

// RunTestChild is the child's side of ChildTests: it reads a TestSnapshot
// from r, runs its tests and writes the outcome to w as JSON. It returns
// the process's exit code.
func RunTestChild(ctx context.Context, r io.Reader, w io.Writer) int {
	var snap TestSnapshot
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	dec.UseNumber()
	var o testOutcome
	if err := dec.Decode(&snap); err != nil {
		o.Error = fmt.Sprintf("read the policy to test: %v", err)
	} else {
		o.Result, o.Failures, o.Error = runSnapshot(ctx, snap)
	}
	if err := json.NewEncoder(w).Encode(o); err != nil {
		fmt.Fprintln(os.Stderr, "countersign: write the policy tests' result:", err)
		return 1
	}
	return 0
}

// runSnapshot parses the snapshot's modules as loadFiles does and runs
// their tests.
func runSnapshot(ctx context.Context, snap TestSnapshot) (TestResult, []string, string) {
	modules := make(map[string]*ast.Module, len(snap.Modules))
	opts := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true, Capabilities: Capabilities()}
	for name, src := range snap.Modules {
		m, err := ast.ParseModuleWithOpts(name, src, opts)
		if err != nil {
			return TestResult{}, nil, err.Error()
		}
		modules[name] = m
	}
	if snap.Data == nil {
		snap.Data = map[string]any{}
	}
	var failed []string
	res, err := runTests(ctx, modules, snap.Data, TestOptions{}, io.Discard, &failed)
	if err != nil {
		return res, failed, err.Error()
	}
	return res, failed, ""
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
