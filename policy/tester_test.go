package policy

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	countersign "github.com/countersign/countersign"
)

const testedPolicy = `package countersign

import data.countersign.lib.hosts

deny contains "metadata" if hosts.is_metadata(input.request.host)

approve contains "delete" if input.request.method == "DELETE"
`

func TestRunTests(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opts  TestOptions
		want  TestResult
		// wantOut are substrings of the report.
		wantOut []string
	}{
		{
			name: "passing suite",
			files: map[string]string{
				"policy.rego": testedPolicy,
				"policy_test.rego": `package countersign_test

import data.countersign

test_delete_held if {
	count(countersign.approve) == 1 with input as {"request": {"method": "DELETE", "host": "x"}}
}

test_get_allowed if {
	count(countersign.approve) == 0 with input as {"request": {"method": "GET", "host": "x"}}
}
`,
			},
			want:    TestResult{Passed: 2},
			wantOut: []string{"PASS: 2/2"},
		},
		{
			name: "failing test",
			files: map[string]string{
				"policy.rego": testedPolicy,
				"policy_test.rego": `package countersign_test

import data.countersign

test_passes if true

test_get_held if {
	count(countersign.approve) == 1 with input as {"request": {"method": "GET", "host": "x"}}
}
`,
			},
			want:    TestResult{Passed: 1, Failed: 1},
			wantOut: []string{"FAIL", "test_get_held", "policy_test.rego"},
		},
		{
			name: "test uses the helper library",
			files: map[string]string{
				"policy.rego": testedPolicy,
				"lib_test.rego": `package mine_test

import data.countersign
import data.countersign.lib.hosts

test_metadata_host if hosts.is_metadata("169.254.169.254")

test_metadata_denied if {
	countersign.deny == {"metadata"} with input as {"request": {"method": "GET", "host": "metadata.google.internal"}}
}
`,
			},
			want:    TestResult{Passed: 2},
			wantOut: []string{"PASS: 2/2"},
		},
		{
			name: "strict built-in errors are test errors",
			files: map[string]string{
				"policy.rego": testedPolicy,
				"policy_test.rego": `package countersign_test

test_bad_json if {
	v := json.unmarshal("{not json")
	v.a == 1
}
`,
			},
			want:    TestResult{Errored: 1},
			wantOut: []string{"ERROR", "json.unmarshal"},
		},
		{
			name: "run filter",
			files: map[string]string{
				"policy.rego": testedPolicy,
				"policy_test.rego": `package countersign_test

test_one if true

test_two if false
`,
			},
			opts:    TestOptions{Run: "test_one"},
			want:    TestResult{Passed: 1},
			wantOut: []string{"PASS: 1/1"},
		},
		{
			name: "skipped test",
			files: map[string]string{
				"policy.rego":      testedPolicy,
				"policy_test.rego": "package countersign_test\n\ntest_one if true\n\ntodo_test_later if false\n",
			},
			want:    TestResult{Passed: 1, Skipped: 1},
			wantOut: []string{"SKIPPED"},
		},
		{
			name: "data documents are visible",
			files: map[string]string{
				"policy.rego":      "package countersign\n\ndeny contains \"blocked\" if input.request.host in data.blocked\n",
				"data.json":        `{"blocked": ["evil.example"]}`,
				"policy_test.rego": "package countersign_test\n\nimport data.countersign\n\ntest_blocked if \"blocked\" in countersign.deny with input as {\"request\": {\"host\": \"evil.example\"}}\n",
			},
			want: TestResult{Passed: 1},
		},
		{
			name: "hidden tests are not run",
			files: map[string]string{
				"policy.rego":           testedPolicy,
				"policy_test.rego":      "package countersign_test\n\ntest_one if true\n",
				".old/policy_test.rego": "package old_test\n\ntest_stale if false\n",
			},
			want: TestResult{Passed: 1},
		},
		{
			name:    "no tests",
			files:   mod(testedPolicy),
			want:    TestResult{},
			wantOut: []string{"no tests found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writePolicy(t, tt.files)
			opts := tt.opts
			opts.Source = Source{Paths: []string{dir}}
			var out bytes.Buffer
			got, err := RunTests(t.Context(), opts, &out)
			if err != nil {
				t.Fatalf("RunTests() = %v\n%s", err, out.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RunTests() result mismatch (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
			wantOK := tt.want.Failed == 0 && tt.want.Errored == 0 && tt.want.Passed > 0
			if got.OK() != wantOK {
				t.Errorf("RunTests().OK() = %t, want %t", got.OK(), wantOK)
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(out.String(), s) {
					t.Errorf("RunTests() output does not contain %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestRunTestsVerbose(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"policy.rego":      testedPolicy,
		"policy_test.rego": "package countersign_test\n\ntest_prints if {\n\tprint(\"hello from the test\")\n}\n",
	})
	var out bytes.Buffer
	got, err := RunTests(t.Context(), TestOptions{Source: Source{Paths: []string{dir}}, Verbose: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OK() || !strings.Contains(out.String(), "hello from the test") || !strings.Contains(out.String(), "test_prints") {
		t.Errorf("RunTests(verbose) = %+v, output:\n%s\nwant the test name and its print output", got, out.String())
	}
}

func TestRunTestsErrors(t *testing.T) {
	tests := []struct {
		name string
		src  func(t *testing.T) Source
	}{
		{"no source", func(*testing.T) Source { return Source{} }},
		{"missing path", func(t *testing.T) Source { return Source{Paths: []string{t.TempDir() + "/nope"}} }},
		{"syntax error in a test", func(t *testing.T) Source {
			return Source{Paths: []string{writePolicy(t, map[string]string{
				"policy.rego":      testedPolicy,
				"policy_test.rego": "package countersign_test\n\ntest_x if {\n",
			})}}
		}},
		{"compile error in a test", func(t *testing.T) Source {
			return Source{Paths: []string{writePolicy(t, map[string]string{
				"policy.rego":      testedPolicy,
				"policy_test.rego": "package countersign_test\n\ntest_x if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"})\n",
			})}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if got, err := RunTests(t.Context(), TestOptions{Source: tt.src(t)}, &out); err == nil {
				t.Errorf("RunTests() = %+v, nil; want an error\n%s", got, out.String())
			}
		})
	}
}

// TestRunTestsBuiltin runs the Rego unit tests of rego/lib and rego/default.
func TestRunTestsBuiltin(t *testing.T) {
	var out bytes.Buffer
	got, err := RunTests(t.Context(), TestOptions{Source: Source{Builtin: true}}, &out)
	if err != nil {
		t.Fatalf("RunTests(builtin) = %v\n%s", err, out.String())
	}
	want := TestResult{Passed: countEmbeddedTests(t)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunTests(builtin) mismatch (-want +got):\n%s\noutput:\n%s", diff, out.String())
	}
}

var testRule = regexp.MustCompile(`(?m)^test_\w+`)

// countEmbeddedTests counts the test rules in the embedded _test.rego files.
func countEmbeddedTests(t *testing.T) int {
	t.Helper()
	n := 0
	err := fs.WalkDir(countersign.Rego, "rego", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.rego") {
			return err
		}
		b, err := fs.ReadFile(countersign.Rego, path)
		if err != nil {
			return err
		}
		n += len(testRule.FindAll(b, -1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no tests in the embedded rego tree")
	}
	return n
}

func TestTestResultOK(t *testing.T) {
	tests := []struct {
		give TestResult
		want bool
	}{
		{TestResult{Passed: 3}, true},
		{TestResult{Passed: 3, Skipped: 1}, true},
		{TestResult{}, false},
		{TestResult{Skipped: 2}, false},
		{TestResult{Passed: 3, Failed: 1}, false},
		{TestResult{Passed: 3, Errored: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.give.OK(); got != tt.want {
			t.Errorf("%+v.OK() = %t, want %t", tt.give, got, tt.want)
		}
	}
}

// TestRunTestsEscapesWhatTheTestsPrint: a test's output, names and errors
// come from files the agent may have written; escape sequences in them
// must not reach the terminal (found by review: a failing test printed a
// fake "PASS" over its failure, and set the clipboard).
func TestRunTestsEscapesWhatTheTestsPrint(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"policy.rego":      testedPolicy,
		"policy_test.rego": "package countersign_test\n\ntest_lies if {\n\tprint(\"\\u001b]52;c;ZXZpbA==\\u0007\\u001b[2K\\u001b[1A\\rPASS: 2/2\")\n\tfalse\n}\n",
	})
	var out bytes.Buffer
	got, err := RunTests(t.Context(), TestOptions{Source: Source{Paths: []string{dir}}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Failed != 1 {
		t.Errorf("result %+v, want the test failed", got)
	}
	if bytes.ContainsAny(out.Bytes(), "\x1b\x07\r") {
		t.Errorf("control characters reached the report:\n%q", out.String())
	}
	if !strings.Contains(out.String(), `\x1B[2K`) {
		t.Errorf("the escape is not shown as text:\n%s", out.String())
	}
}
