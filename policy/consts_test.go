package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/policy"
)

// constsPolicy exercises what the constant-rule values must get right: a
// default beside a rule, an undefined rule, a rule that fails, data, a with
// that replaces a constant or a built-in it calls for one expression, and
// functions.
const constsPolicy = `package countersign

import data.countersign.lib.hosts

default limit := 3

limit := data.countersign.limits.default_limit

names := {"api.github.com", "sts.amazonaws.com"}

count_names := count(names)

never := 1 if false

broken := 1 / 0

twice(x) := x * 2

doubled := twice(limit)

on_list if input.request.host in names

deny contains "on list" if on_list

deny contains "replaced" if {
	not on_list with data.countersign.names as {"nowhere.example"}
	on_list
}

fake_count(_) := 7

deny contains "mocked" if {
	input.request.method == "PUT"
	count_names == 7 with count as fake_count
}

deny contains "undefined" if {
	not never
	input.request.method == "DELETE"
}

deny contains "broken" if {
	input.request.method == "PATCH"
	broken > 0
}

approve contains sprintf("limit %d doubled %d of %d", [limit, doubled, count_names]) if hosts.is_infrastructure(input.request.host)
`

// TestConstRulesDecideAsEvaluated: the values of constant rules, computed
// once per policy set, must give every decision that evaluating the rules
// in each request gives, over the golden corpus and every example set.
func TestConstRulesDecideAsEvaluated(t *testing.T) {
	inputs := goldenInputs(t)
	sources := exampleSources(t)
	sources["default"] = policy.Source{Builtin: true}
	dir := t.TempDir()
	for name, src := range map[string]string{
		"p.rego":    constsPolicy,
		"data.json": `{"countersign": {"limits": {"default_limit": 5}}}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sources["consts"] = policy.Source{Paths: []string{dir}}
	outcomes := map[string]bool{}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			e, err := policy.New(t.Context(), policy.Options{Source: src, EvalTimeout: time.Minute, NoCache: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if policy.ConstRules(e) == 0 {
				t.Fatal("no rule of this set was found constant; every set has some")
			}
			for f, in := range inputs {
				got, want := e.Decide(t.Context(), in), policy.DecideWithoutConsts(e, t.Context(), in)
				if diff := cmp.Diff(summarise(want), summarise(got)); diff != "" {
					t.Errorf("%s: decided differently with constant rule values (-evaluated +constants):\n%s", filepath.Base(f), diff)
				}
				if name == "consts" {
					for _, r := range got.Reasons {
						outcomes[r.Message] = true
					}
				}
			}
		})
	}
	// The consts policy must have taken each of its branches somewhere in
	// the corpus, or the comparison above proved less than it claims.
	for _, want := range []string{"on list", "replaced", "mocked", "undefined", "policy error", "limit 5 doubled 10 of 2"} {
		found := false
		for got := range outcomes {
			found = found || strings.Contains(got, want)
		}
		if !found {
			t.Errorf("no golden request produced %q under the consts policy; reasons seen: %v", want, outcomes)
		}
	}
}

// TestConstRulesAreSharedSafely: evaluations running at once read the same
// constant values (run under -race).
func TestConstRulesAreSharedSafely(t *testing.T) {
	inputs := goldenInputs(t)
	src := exampleSources(t)["examples together"]
	e, err := policy.New(t.Context(), policy.Options{Source: src, EvalTimeout: time.Minute, NoCache: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	for f, in := range inputs {
		want[f] = summarise(e.Decide(t.Context(), in))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(inputs))
	for range 4 {
		wg.Go(func() {
			for f, in := range inputs {
				if diff := cmp.Diff(want[f], summarise(e.Decide(t.Context(), in))); diff != "" {
					errs <- filepath.Base(f) + ": " + diff
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
