package github

import (
	"flag"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// goldenProvider is the provider the golden files are classified with:
// ghe.example.test is a configured Enterprise Server host.
func goldenProvider() *Provider {
	return New(Options{EnterpriseHosts: []string{"ghe.example.test"}})
}

// TestGolden classifies each request captured from gh (testdata/*.txt) and
// compares the action with the expected JSON after the separator.
func TestGolden(t *testing.T) {
	c := action.NewClassifier(goldenProvider())
	golden.Run(t, "testdata/*.txt", golden.Options{}, func(_ *testing.T, r *action.Request) action.Action {
		return c.Classify(r)
	}, *update)
}
