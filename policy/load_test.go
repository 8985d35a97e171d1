package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestNewLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// wantIn are substrings of the error: compiler messages carry
		// file:line, which is the contract users rely on.
		wantIn []string
	}{
		{
			name: "syntax error",
			files: map[string]string{
				"policy.rego": "package countersign\n\nallow := true\n",
				"broken.rego": "package countersign\n\n# a comment\n\ndeny contains \"x\" if { input.a == }\n\nallow := true\n",
			},
			wantIn: []string{"broken.rego:5"},
		},
		{
			name: "unterminated block",
			files: map[string]string{
				"broken.rego": "package countersign\n\ndeny contains \"x\" if {\n\tinput.a == 1\n",
			},
			// The parser reports an unexpected end of file on the last line.
			wantIn: []string{"broken.rego:5", "eof"},
		},
		{
			name:   "unsafe variable",
			files:  mod("package countersign\n\ndeny contains msg if {\n\tinput.request.method == \"GET\"\n}\n"),
			wantIn: []string{"policy.rego:3", "msg"},
		},
		{
			name:   "undefined function",
			files:  mod("package countersign\n\n\ndeny contains \"x\" if no_such.fn(input)\n"),
			wantIn: []string{"policy.rego:4", "no_such.fn"},
		},
		{
			name:   "rego v0 syntax",
			files:  mod("package countersign\n\ndeny[\"x\"] { true }\n"),
			wantIn: []string{"policy.rego:3"},
		},
		{
			name:   "no countersign package",
			files:  mod("package other\n\ndeny contains \"x\"\n"),
			wantIn: []string{"package countersign"},
		},
		{
			name:   "only a sub-package of countersign",
			files:  mod("package countersign.rules\n\ndeny contains \"x\"\n"),
			wantIn: []string{"package countersign"},
		},
		{
			name:   "countersign package only in a test file",
			files:  map[string]string{"policy_test.rego": "package countersign\n\ntest_x if true\n"},
			wantIn: []string{"package countersign"},
		},
		{
			name: "data conflicts with a rule",
			files: map[string]string{
				"policy.rego":           "package countersign\n\ndeny contains \"rule\" if input.x\n",
				"countersign/data.json": `{"deny": ["from data"]}`,
			},
			wantIn: []string{"policy.rego:3", "countersign/deny"},
		},
		{
			name:   "invalid data file",
			files:  map[string]string{"policy.rego": "package countersign\n\nallow := true\n", "data.json": "{\"a\": "},
			wantIn: []string{"data.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writePolicy(t, tt.files)
			e, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}}, nil)
			if err == nil {
				t.Fatalf("New() = %v, nil; want an error", e)
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New() error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestNewMissingPath(t *testing.T) {
	dir := writePolicy(t, mod("package countersign\n\nallow := true\n"))
	missing := filepath.Join(dir, "does-not-exist")
	for _, paths := range [][]string{{missing}, {dir, missing}} {
		_, err := New(t.Context(), Options{Source: Source{Paths: paths}}, nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New(%v) = %v, want an error wrapping fs.ErrNotExist", paths, err)
		}
	}
}

func TestLoadDataDocuments(t *testing.T) {
	e, _ := newEngine(t, Options{}, map[string]string{
		"policy.rego": `package countersign

deny contains sprintf("%s is blocked", [input.request.host]) if input.request.host in data.blocked_hosts

approve contains "team change" if input.request.host in data.teams.payments.hosts

deny contains "yaml" if input.request.host == data.extra.yaml_host
`,
		"data.json":                `{"blocked_hosts": ["evil.example"]}`,
		"teams/payments/data.json": `{"hosts": ["pay.example"]}`,
		"extra/data.yaml":          "yaml_host: yaml.example\n",
	})
	tests := []struct {
		host string
		want Decision
	}{
		{"evil.example", Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "evil.example is blocked"}}}},
		{"pay.example", Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "team change"}}}},
		{"yaml.example", Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "yaml"}}}},
		{"fine.example", Decision{Verdict: VerdictAllow}},
	}
	for _, tt := range tests {
		got := e.DecideDocument(t.Context(), doc("GET", tt.host, "/"))
		if diff := diffDecision(tt.want, got); diff != "" {
			t.Errorf("DecideDocument(%s) mismatch (-want +got):\n%s", tt.host, diff)
		}
	}
}

func TestLoadSkipsTestsAndHiddenFiles(t *testing.T) {
	const trap = "package countersign\n\ndeny contains \"this file must not be loaded\"\n"
	e, dir := newEngine(t, Options{}, map[string]string{
		"policy.rego":      "package countersign\n\nallow := true\n",
		"policy_test.rego": trap + "\ntest_trap if true\n",
		".hidden.rego":     trap,
		".git/hooks.rego":  "this is not rego {",
		".cache/data.json": `{"blocked": true}`,
		"sub/.swap.rego":   trap,
		"README.md":        "# not a policy\n",
	})
	got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
	if diff := diffDecision(Decision{Verdict: VerdictAllow}, got); diff != "" {
		t.Errorf("DecideDocument mismatch (-want +got):\n%s", diff)
	}
	var user []string
	for _, f := range e.Files() {
		if !strings.HasPrefix(f, "builtin:") {
			user = append(user, f)
		}
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "policy.rego")}, user); diff != "" {
		t.Errorf("Files() mismatch (-want +got):\n%s", diff)
	}
	if !slices.Contains(e.Files(), "builtin:rego/lib/hosts.rego") {
		t.Errorf("Files() = %v, want the embedded helper library", e.Files())
	}
	for _, f := range e.Files() {
		if strings.HasSuffix(f, "_test.rego") {
			t.Errorf("Files() lists test module %s", f)
		}
	}

	// The hidden data file must not land in data.
	e2, _ := newEngine(t, Options{}, map[string]string{
		"policy.rego":      "package countersign\n\ndeny contains \"hidden data loaded\" if data.blocked\n",
		".cache/data.json": `{"blocked": true}`,
	})
	if got := e2.DecideDocument(t.Context(), doc("GET", "example.com", "/")); got.Verdict != VerdictAllow {
		t.Errorf("hidden data.json was loaded: %+v", got)
	}
}

func TestLoadSingleFileAndSeveralPaths(t *testing.T) {
	a := writePolicy(t, map[string]string{"a.rego": "package countersign\n\ndeny contains \"from a\" if input.request.host == \"a.example\"\n"})
	b := writePolicy(t, map[string]string{"b.rego": "package countersign\n\ndeny contains \"from b\" if input.request.host == \"b.example\"\n"})
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{filepath.Join(a, "a.rego"), b}}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"a.example": "from a", "b.example": "from b"} {
		got := e.DecideDocument(t.Context(), doc("GET", host, "/"))
		if diff := cmp.Diff([]string{want}, got.Messages()); diff != "" {
			t.Errorf("DecideDocument(%s) messages mismatch (-want +got):\n%s", host, diff)
		}
	}
}

func TestLoadHelperLibrary(t *testing.T) {
	// A user policy imports the embedded library without shipping it.
	e, _ := newEngine(t, Options{}, mod(`package countersign

import data.countersign.lib.hosts

deny contains "metadata" if hosts.is_metadata(input.request.host)
`))
	got := e.DecideDocument(t.Context(), doc("GET", "169.254.169.254", "/latest/meta-data/"))
	if diff := diffDecision(Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "metadata"}}}, got); diff != "" {
		t.Errorf("DecideDocument mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadOwnHelperPackageKeepsEmbeddedLibrary(t *testing.T) {
	// A user package of their own under countersign.lib must not drop the
	// embedded countersign.lib.hosts.
	e, _ := newEngine(t, Options{}, map[string]string{
		"policy.rego": `package countersign

import data.countersign.lib.hosts
import data.countersign.lib.mine

deny contains "metadata" if hosts.is_metadata(input.request.host)

deny contains "mine" if mine.blocked(input.request.host)
`,
		"lib/mine.rego": "package countersign.lib.mine\n\nblocked(host) if host == \"evil.example\"\n",
	})
	for host, want := range map[string][]string{"169.254.169.254": {"metadata"}, "evil.example": {"mine"}, "ok.example": {}} {
		got := e.DecideDocument(t.Context(), doc("GET", host, "/"))
		if diff := cmp.Diff(want, got.Messages()); diff != "" {
			t.Errorf("DecideDocument(%s) messages mismatch (-want +got):\n%s", host, diff)
		}
	}
}

func TestLoadOverriddenHelperLibrary(t *testing.T) {
	// A user shipping their own countersign.lib.hosts replaces the embedded
	// one instead of colliding with it.
	e, _ := newEngine(t, Options{}, map[string]string{
		"policy.rego": `package countersign

import data.countersign.lib.hosts

deny contains "metadata" if hosts.is_metadata(input.request.host)
`,
		"lib/hosts.rego": "package countersign.lib.hosts\n\nmetadata := {\"meta.internal\"}\n\nis_metadata(host) if host in metadata\n",
	})
	for host, want := range map[string][]string{"meta.internal": {"metadata"}, "169.254.169.254": {}} {
		got := e.DecideDocument(t.Context(), doc("GET", host, "/"))
		if diff := cmp.Diff(want, got.Messages()); diff != "" {
			t.Errorf("DecideDocument(%s) messages mismatch (-want +got):\n%s", host, diff)
		}
	}
	for _, f := range e.Files() {
		if f == "builtin:rego/lib/hosts.rego" {
			t.Errorf("Files() lists %s although the library is overridden", f)
		}
	}
}

func TestReload(t *testing.T) {
	const (
		v1     = "package countersign\n\ndeny contains \"v1\"\n"
		v2     = "package countersign\n\ndeny contains \"v2\"\n"
		broken = "package countersign\n\ndeny contains \"v3\" if { input.a == }\n"
	)
	core, logs := observer.New(zapcore.InfoLevel)
	dir := writePolicy(t, mod(v1))
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}, EvalTimeout: testEvalTimeout}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	messages := func() []string {
		t.Helper()
		d := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
		if d.Err != nil {
			t.Fatalf("DecideDocument: %v", d.Err)
		}
		return d.Messages()
	}
	rev1 := e.Revision()
	if rev, herr := e.Health(); rev != rev1 || herr != nil {
		t.Errorf("Health() = %q, %v; want %q, nil", rev, herr, rev1)
	}

	// Reloading unchanged files keeps the revision.
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload(unchanged) = %v", err)
	}
	if got := e.Revision(); got != rev1 {
		t.Errorf("Revision after an unchanged reload = %q, want %q", got, rev1)
	}

	// A valid change swaps the policy.
	writeFiles(t, dir, mod(v2))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload(v2) = %v", err)
	}
	rev2 := e.Revision()
	if rev2 == rev1 {
		t.Errorf("Revision did not change after a valid reload: %q", rev2)
	}
	if diff := cmp.Diff([]string{"v2"}, messages()); diff != "" {
		t.Errorf("after reload (-want +got):\n%s", diff)
	}

	// A broken policy is rejected and the last good one stays.
	writeFiles(t, dir, mod(broken))
	rerr := e.Reload(t.Context())
	if rerr == nil || !strings.Contains(rerr.Error(), "policy.rego:3") {
		t.Fatalf("Reload(broken) = %v, want a compile error at policy.rego:3", rerr)
	}
	if got := e.Revision(); got != rev2 {
		t.Errorf("Revision after a rejected reload = %q, want %q", got, rev2)
	}
	if diff := cmp.Diff([]string{"v2"}, messages()); diff != "" {
		t.Errorf("after a rejected reload (-want +got):\n%s", diff)
	}
	rev, herr := e.Health()
	if rev != rev2 || herr == nil || herr.Error() != rerr.Error() {
		t.Errorf("Health() = %q, %v; want %q, %v", rev, herr, rev2, rerr)
	}
	if n := logs.FilterMessage("policy reload rejected; keeping the last good policy").FilterField(zap.String("revision", rev2)).Len(); n != 1 {
		t.Errorf("logged %d rejected reloads with revision %s, want 1; logs: %v", n, rev2, logs.All())
	}

	// A missing directory is rejected the same way.
	writeFiles(t, dir, mod(v1))
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reload(missing dir) = %v, want fs.ErrNotExist", err)
	}
	if err := os.Rename(dir+".moved", dir); err != nil {
		t.Fatal(err)
	}

	// Fixing it clears the health error.
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload(fixed) = %v", err)
	}
	if rev, herr := e.Health(); rev != rev1 || herr != nil {
		t.Errorf("Health() after fix = %q, %v; want %q, nil", rev, herr, rev1)
	}
	if diff := cmp.Diff([]string{"v1"}, messages()); diff != "" {
		t.Errorf("after fix (-want +got):\n%s", diff)
	}
	if n := logs.FilterMessage("policy reloaded").Len(); n != 3 {
		t.Errorf("logged %d successful reloads, want 3", n)
	}
}

func TestReloadConcurrentWithDecide(t *testing.T) {
	// Two valid policies deny the probe with an id naming the policy; any
	// other outcome (allow, an error, an id that does not match the
	// revision) means a decision saw a half-swapped or broken set.
	const (
		validA = "package countersign\n\ndefault allow := false\n\nallow if input.request.method == \"GET\"\n\ndeny contains {\"msg\": \"A\", \"id\": \"A\"} if input.request.host == \"probe.example\"\n"
		validB = "package countersign\n\ndefault allow := false\n\nallow if input.request.method == \"GET\"\n\ndeny contains {\"msg\": \"B\", \"id\": \"B\"} if input.request.host == \"probe.example\"\n"
		// broken compiles in no way, and if it were half-applied it would
		// allow everything.
		broken = "package countersign\n\nallow := true\n\ndeny contains msg if true\n"
	)
	dir := writePolicy(t, mod(validA))
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	revA := e.Revision()
	writeFiles(t, dir, mod(validB))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	revB := e.Revision()
	wantID := map[string]string{revA: "A", revB: "B"}

	var (
		done      atomic.Bool
		decisions atomic.Int64
		wg        sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				// Keep deciding until the reloader is done, and at least a
				// few times so every goroutine takes part.
				if done.Load() && i >= 10 {
					return
				}
				probe := doc("POST", "probe.example", "/")
				if i%2 == 1 {
					probe = doc("GET", "probe.example", "/")
				}
				d := e.DecideDocument(t.Context(), probe)
				decisions.Add(1)
				id, ok := wantID[d.Revision]
				if !ok {
					t.Errorf("decision under unknown revision %q: %+v", d.Revision, d)
					return
				}
				want := Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: id, ID: id}}}
				if d.Err != nil || diffDecision(want, d) != "" {
					t.Errorf("decision under %s = %+v (err %v), want %+v", d.Revision, d, d.Err, want)
					return
				}
			}
		})
	}
	wg.Go(func() {
		defer done.Store(true)
		for i := range 50 {
			valid := validA
			if i%2 == 1 {
				valid = validB
			}
			writeFiles(t, dir, mod(valid))
			if err := e.Reload(t.Context()); err != nil {
				t.Errorf("Reload(valid %d) = %v", i, err)
				return
			}
			writeFiles(t, dir, mod(broken))
			if err := e.Reload(t.Context()); err == nil {
				t.Errorf("Reload(broken %d) = nil, want an error", i)
				return
			}
			if _, herr := e.Health(); herr == nil {
				t.Errorf("Health() after broken reload %d = nil error", i)
			}
		}
	})
	wg.Wait()
	if decisions.Load() < 80 {
		t.Errorf("only %d decisions ran", decisions.Load())
	}
	// The last valid policy (i=49) is B and stays in force.
	if got := e.Revision(); got != revB {
		t.Errorf("final Revision = %q, want %q", got, revB)
	}
}

func TestRevision(t *testing.T) {
	files := map[string]string{
		"policy.rego": "package countersign\n\ndeny contains \"x\" if input.request.host in data.blocked\n",
		"data.json":   `{"blocked": ["a.example"]}`,
	}
	dir := writePolicy(t, files)
	src := Source{Paths: []string{dir}}
	rev := func() string {
		t.Helper()
		e, err := New(t.Context(), Options{Source: src}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	base := rev()
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+16 {
		t.Errorf("Revision() = %q, want sha256: and 16 hex digits", base)
	}
	if again := rev(); again != base {
		t.Errorf("Revision() of the same files = %q, then %q", base, again)
	}

	tests := []struct {
		name   string
		change map[string]string
	}{
		{"policy edited", map[string]string{"policy.rego": files["policy.rego"] + "\n# comment\n"}},
		{"data edited", map[string]string{"data.json": `{"blocked": ["b.example"]}`}},
		{"file added", map[string]string{"more.rego": "package countersign\n\nx := 1\n"}},
		{"data added", map[string]string{"teams/data.json": `{"x": 1}`}},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		writeFiles(t, dir, tt.change)
		got := rev()
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: Revision() = %q, same as after %s", tt.name, got, prev)
		}
		seen[got] = tt.name
	}

	// Changes that do not reach the policy leave the revision alone.
	before := rev()
	writeFiles(t, dir, map[string]string{"policy_test.rego": "package countersign\n\ntest_x if true\n", ".hidden.rego": "junk", "notes.txt": "hi"})
	if got := rev(); got != before {
		t.Errorf("Revision() changed from %q to %q after adding test, hidden and non-policy files", before, got)
	}

	// The built-in policy has a stable revision of its own.
	b1, err := New(t.Context(), Options{Source: Source{Builtin: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := New(t.Context(), Options{Source: Source{Builtin: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b1.Revision() != b2.Revision() || seen[b1.Revision()] != "" {
		t.Errorf("built-in Revision() = %q and %q, want equal and distinct from user policies", b1.Revision(), b2.Revision())
	}
}

func TestLoadDataInPolicyPackage(t *testing.T) {
	// Data in countersign/data.json lands next to the package's rules:
	// the built-in policy's tunnel allow list, data.countersign.tunnels,
	// is supplied that way.
	e, _ := newEngine(t, Options{}, map[string]string{
		"policy.rego": `package countersign

allow if not input.request.tunnel

allow if {
	input.request.tunnel
	sprintf("%s:%d", [input.request.host, input.request.port]) in data.countersign.tunnels
}
`,
		"countersign/data.json": `{"tunnels": ["db.example:5432"]}`,
	})
	tests := []struct {
		host string
		port int
		want Verdict
	}{
		{"db.example", 5432, VerdictAllow},
		{"db.example", 5433, VerdictDeny},
		{"other.example", 5432, VerdictDeny},
	}
	for _, tt := range tests {
		got := e.DecideDocument(t.Context(), tunnelDoc(tt.host, tt.port))
		if got.Err != nil || got.Verdict != tt.want {
			t.Errorf("tunnel %s:%d = %v (err %v, reasons %+v), want %v", tt.host, tt.port, got.Verdict, got.Err, got.Reasons, tt.want)
		}
	}
}

// TestOddFilesInAPolicyDirectoryAreRefused: OPA's loader reads every file
// it is given, links followed, whatever its size: a FIFO planted in a
// policy directory hung a load (a reload, in the proxy) and a link to
// /dev/zero filled the memory (found by review). Both are refused, naming
// the file, and a reload keeps the set in force.
func TestOddFilesInAPolicyDirectoryAreRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(path string) error
	}{
		{"a FIFO", func(path string) error { return syscall.Mkfifo(path, 0o600) }},
		{"a link to a device", func(path string) error { return os.Symlink("/dev/zero", path) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, dir := newEngine(t, Options{}, mod("package countersign\n"))
			rev := e.Revision()
			if err := tt.make(filepath.Join(dir, "notes.txt")); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- e.Reload(t.Context()) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "notes.txt") || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("Reload = %v, want the file named and refused", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Reload did not return: the file was read")
			}
			if e.Revision() != rev {
				t.Error("the set in force changed")
			}
		})
	}
}
