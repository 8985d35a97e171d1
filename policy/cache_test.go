package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/aws"
	"github.com/countersign/countersign/action/git"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/action/graphql"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/internal/golden"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// goldenInputs turns every captured client request under action/*/testdata
// into a policy input, built as the proxy builds it and classified by the
// real provider chain.
// goldenCorpus is the golden requests' files, the classifier, session and
// time their inputs are built with.
func goldenCorpus(t *testing.T) (files []string, cls *action.Classifier, sess *session.Info, now time.Time) {
	t.Helper()
	files, err := filepath.Glob("../action/*/testdata/*.txt")
	if err != nil || len(files) < 100 {
		t.Fatalf("golden corpus: %d files, %v", len(files), err)
	}
	cls = action.NewClassifier(aws.New(aws.Options{}), git.New(git.Options{}), mcp.New(mcp.Options{}),
		graphql.New(graphql.Options{}), github.New(github.Options{}), kubernetes.New(kubernetes.Options{}))
	sess = &session.Info{ID: "s-1", Name: "alice/claude", User: "alice", Command: "claude"}
	return files, cls, sess, time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
}

func goldenInputs(t *testing.T) map[string]*policy.Input {
	t.Helper()
	files, cls, sess, now := goldenCorpus(t)
	out := map[string]*policy.Input{}
	for _, f := range files {
		raw, _ := golden.Read(t, f)
		ar, err := golden.Request(raw, golden.Options{BodyLimit: golden.DefaultBodyLimit})
		if err != nil {
			continue // a capture the strict proxy reader handles but net/http does not
		}
		out[f] = policy.NewInput(ar, cls.Classify(ar), sess, now)
	}
	if len(out) < 100 {
		t.Fatalf("only %d golden requests parsed", len(out))
	}
	return out
}

// policies under test: the built-in default and a few that read unusual
// parts of the input.
var differentialPolicies = map[string]string{
	"headers": `package countersign

deny contains "ua" if contains(lower(input.request.headers["user-agent"][0]), "aws-cli")

approve contains "k8s" if input.action.verb == "delete"
`,
	"body": `package countersign

approve contains msg if {
	some k, v in input.request.body
	startswith(k, "Instance")
	msg := sprintf("touches %v", [v])
}

deny contains "mcp" if input.action.tool == "drop_table"
`,
	"allow-rule": `package countersign

default allow := false

allow if input.action.read_only

allow if input.request.host == "api.github.com"
`,
}

// differentialSources are the built-in policy and differentialPolicies, each
// written to a directory of its own.
func differentialSources(t *testing.T) map[string]policy.Source {
	t.Helper()
	sources := map[string]policy.Source{"default": {Builtin: true}}
	for name, src := range differentialPolicies {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		sources[name] = policy.Source{Paths: []string{dir}}
	}
	return sources
}

func TestCachedDecisionsEqualUncached(t *testing.T) {
	inputs := goldenInputs(t)
	sources := differentialSources(t)
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			cached, err := policy.New(t.Context(), policy.Options{Source: src, EvalTimeout: time.Minute}, nil)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := policy.New(t.Context(), policy.Options{Source: src, EvalTimeout: time.Minute, NoCache: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Twice through the cached engine: the second pass is all hits,
			// and every input is also checked against every other input's
			// cache entry by running them in one engine.
			for pass := range 2 {
				for f, in := range inputs {
					got, want := cached.Decide(t.Context(), in), plain.Decide(t.Context(), in)
					if diff := cmp.Diff(summarise(want), summarise(got)); diff != "" {
						t.Errorf("pass %d, %s: cached decision differs (-uncached +cached):\n%s", pass, filepath.Base(f), diff)
					}
				}
			}
		})
	}
}

func summarise(d policy.Decision) any {
	return struct {
		Verdict string
		Reasons []policy.Reason
		Err     bool
	}{d.Verdict.String(), d.Reasons, d.Err != nil}
}

func TestCacheIsOffForPoliciesItCannotKeyOn(t *testing.T) {
	for name, src := range map[string]string{
		"whole input": "package countersign\n\ndeny contains \"x\" if count(input) > 100\n",
		"clock":       "package countersign\n\ndeny contains \"x\" if time.now_ns() < 0\n",
		"random":      "package countersign\n\ndeny contains \"x\" if rand.intn(\"k\", 10) > 100\n",
		// OPA does not mark it nondeterministic, but it checks validity
		// against the clock.
		"certificates verified now": "package countersign\n\ndeny contains \"x\" if not crypto.x509.parse_and_verify_certificates(input.request.body)[0]\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := policy.New(t.Context(), policy.Options{Source: policy.Source{Paths: []string{dir}}, EvalTimeout: time.Minute}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if policy.Cacheable(e) {
				t.Errorf("decisions of a policy that reads %s were cached", name)
			}
		})
	}
}

// TestLazyInputDecidesAsEager: Decide hands OPA the input as an
// ast.LazyObject; over the golden corpus and every example policy set
// (alone, and loaded together as the benchmark does) its decisions must
// equal those with the input converted up front.
func TestLazyInputDecidesAsEager(t *testing.T) {
	inputs := goldenInputs(t)
	sources := differentialSources(t)
	maps.Copy(sources, exampleSources(t))
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			e, err := policy.New(t.Context(), policy.Options{Source: src, EvalTimeout: time.Minute, NoCache: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for f, in := range inputs {
				got, want := e.Decide(t.Context(), in), policy.DecideEager(e, t.Context(), in)
				if want.Err != nil && strings.HasPrefix(name, "examples") {
					// The example sets decide every captured request; a
					// comparison of two errors would prove little.
					t.Errorf("%s: %v", filepath.Base(f), want.Err)
				}
				if diff := cmp.Diff(summarise(want), summarise(got)); diff != "" {
					t.Errorf("%s: lazy input decides differently (-eager +lazy):\n%s", filepath.Base(f), diff)
				}
			}
		})
	}
}

// exampleSources are the example policy sets, each alone and (but for
// incidents) all together, as the benchmark loads them; their names start
// with "examples".
func exampleSources(t *testing.T) map[string]policy.Source {
	t.Helper()
	sets, err := filepath.Glob("../examples/policies/*/policy.rego")
	if err != nil || len(sets) == 0 {
		t.Fatalf("example policy sets: %v, %v", sets, err)
	}
	sources := map[string]policy.Source{}
	var together []string
	for _, f := range sets {
		dir := filepath.Dir(f)
		sources["examples/"+filepath.Base(dir)] = policy.Source{Paths: []string{dir}}
		if filepath.Base(dir) != "incidents" { // its README: load it on its own
			together = append(together, dir)
		}
	}
	sources["examples together"] = policy.Source{Paths: together}
	return sources
}

// A policy that reads the body whole must still decide each large body on
// its own: such inputs are kept out of the cache (their key would be the
// body), and a byte past the key budget must not be lost.
func TestLargeBodiesAreDecidedUncached(t *testing.T) {
	dir := t.TempDir()
	src := "package countersign\n\ndeny contains \"marker\" if contains(input.request.body, \"MARKER\")\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(t.Context(), policy.Options{Source: policy.Source{Paths: []string{dir}}, EvalTimeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !policy.Cacheable(e) {
		t.Fatal("the policy's decisions are not cacheable at all")
	}
	doc := func(body string) map[string]any {
		return map[string]any{"request": map[string]any{"body": body, "tunnel": false}}
	}
	for _, size := range []int{100, 16 << 10, 1 << 20} {
		plain := strings.Repeat("x", size)
		marked := plain[:size-6] + "MARKER"
		for range 2 {
			if d := e.DecideDocument(t.Context(), doc(plain)); d.Verdict != policy.VerdictAllow {
				t.Errorf("%d bytes without the marker: %s, want allow", size, d.Verdict)
			}
			if d := e.DecideDocument(t.Context(), doc(marked)); d.Verdict != policy.VerdictDeny {
				t.Errorf("%d bytes ending in the marker: %s, want deny", size, d.Verdict)
			}
		}
	}
	// Values the old quoting told apart must stay apart.
	list := func(v ...any) map[string]any {
		return map[string]any{"request": map[string]any{"body": v, "tunnel": false}}
	}
	src2 := "package countersign\n\ndeny contains \"two\" if count(input.request.body) == 2\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d := e.DecideDocument(t.Context(), list("a", "b")); d.Verdict != policy.VerdictDeny {
			t.Errorf(`["a","b"]: %s, want deny`, d.Verdict)
		}
		if d := e.DecideDocument(t.Context(), list(`a",s1:b`)); d.Verdict != policy.VerdictAllow {
			t.Errorf(`one string that spells a list: %s, want allow`, d.Verdict)
		}
		if d := e.DecideDocument(t.Context(), list("a,s1:b")); d.Verdict != policy.VerdictAllow {
			t.Errorf(`one string that spells the encoding of a list: %s, want allow`, d.Verdict)
		}
	}
}

// The cache answers as evaluation would for documents the proxy does not
// build itself (policy eval --input, replays, other providers): a typed map
// on a path the policy reads, and a number OPA cannot represent in a member
// it does not read.
func TestCacheOnUnusualDocuments(t *testing.T) {
	dir := t.TempDir()
	src := "package countersign\n\ndeny contains \"prod\" if input.action.labels.team == \"prod\"\n\ndeny contains \"delete\" if input.request.method == \"DELETE\"\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := policy.Options{Source: policy.Source{Paths: []string{dir}}, EvalTimeout: time.Minute}
	cached, err := policy.New(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoCache = true
	uncached, err := policy.New(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(team any, n json.Number) map[string]any {
		return map[string]any{
			"request": map[string]any{"method": "GET", "tunnel": false},
			"action":  map[string]any{"provider": "x", "labels": team},
			"session": map[string]any{"n": n},
		}
	}
	for _, d := range []map[string]any{
		doc(map[string]string{"team": "dev"}, "1"),
		doc(map[string]string{"team": "prod"}, "1"),
		doc(map[string][]string{"team": {"dev"}}, "1"),
		doc(map[string]any{"team": "dev"}, "1"),
		doc(map[string]any{"team": "dev"}, "1e999999999"),
	} {
		got, want := cached.DecideDocument(t.Context(), d), uncached.DecideDocument(t.Context(), d)
		if got.Verdict != want.Verdict || (got.Err == nil) != (want.Err == nil) {
			t.Errorf("%v %v: cached %s (%v), uncached %s (%v)", d["action"], d["session"], got.Verdict, got.Err, want.Verdict, want.Err)
		}
	}
	// The same through Decide, as the proxy builds inputs: params (from a
	// JSON-protocol body) the policy does not read.
	for _, n := range []json.Number{"1", "1e999999999"} {
		r := &action.Request{Method: "POST", Host: "api.example.test", Port: 443, Path: "/"}
		a := action.Action{Provider: "aws", Params: map[string]any{"n": n}}
		in := func() *policy.Input { return policy.NewInput(r, a, nil, time.Unix(0, 0)) }
		got, want := cached.Decide(t.Context(), in()), uncached.Decide(t.Context(), in())
		if got.Verdict != want.Verdict || (got.Err == nil) != (want.Err == nil) {
			t.Errorf("params n=%s: cached %s (%v), uncached %s (%v)", n, got.Verdict, got.Err, want.Verdict, want.Err)
		}
	}
}

// The decision cache against the example sets, with requests that differ
// from each other in one place each (a header, the path, the query, the
// body), all decided in one engine: a key that left out a field a rule
// reads would answer a variant with another request's decision (noted by
// review: the golden requests alone never share a key).
func TestCachedDecisionsEqualUncachedAcrossVariants(t *testing.T) {
	files, cls, sess, now := goldenCorpus(t)
	variants := []func(*action.Request){
		func(r *action.Request) {},
		func(r *action.Request) { r.Header.Set("X-Variant", "1") },
		func(r *action.Request) { r.Path += "x"; r.RawPath = "" },
		func(r *action.Request) { r.Query.Set("select", "id,api_keys(*)") },
		func(r *action.Request) {
			if len(r.Body) > 0 {
				r.Body = append(bytes.Clone(r.Body), ' ')
				r.BodySize++
				r.BodySHA256 = nil
			}
		},
	}
	var inputs []*policy.Input
	var names []string
	for _, f := range files {
		raw, _ := golden.Read(t, f)
		for i, v := range variants {
			ar, err := golden.Request(raw, golden.Options{BodyLimit: golden.DefaultBodyLimit})
			if err != nil {
				break
			}
			if ar.Query == nil {
				ar.Query = url.Values{}
			}
			v(ar)
			inputs = append(inputs, policy.NewInput(ar, cls.Classify(ar), sess, now))
			names = append(names, fmt.Sprintf("%s/%d", filepath.Base(f), i))
		}
	}
	srcs := exampleSources(t)
	for _, name := range []string{"examples together", "examples/incidents"} {
		t.Run(name, func(t *testing.T) {
			cached, err := policy.New(t.Context(), policy.Options{Source: srcs[name], EvalTimeout: time.Minute}, nil)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := policy.New(t.Context(), policy.Options{Source: srcs[name], EvalTimeout: time.Minute, NoCache: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for pass := range 2 {
				for i, in := range inputs {
					got, want := cached.Decide(t.Context(), in), plain.Decide(t.Context(), in)
					if diff := cmp.Diff(summarise(want), summarise(got)); diff != "" {
						t.Errorf("pass %d, %s: cached decision differs (-uncached +cached):\n%s", pass, names[i], diff)
					}
				}
			}
		})
	}
}
