package docgen

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite docs/policy.md")

// TestPolicyDocUpToDate fails when docs/policy.md differs from what the
// golden captures, the library's METADATA and the template produce.
func TestPolicyDocUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	got, err := PolicyDoc(root)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "docs", "policy.md")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with `go test ./internal/docgen -update`)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("docs/policy.md is out of date; run `go test ./internal/docgen -update` (-committed +generated):\n%s", diff)
	}
}

// TestPolicyDocShowsEveryProvider checks the generated examples: one per
// provider, with the action's provider and no credential.
func TestPolicyDocShowsEveryProvider(t *testing.T) {
	got, err := PolicyDoc(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(got)
	for _, p := range []string{"aws", "kubernetes", "github", "graphql", "git", "mcp", "http"} {
		if !strings.Contains(doc, `"provider": "`+p+`"`) {
			t.Errorf("no example shows provider %q", p)
		}
	}
	for _, secret := range []string{"Signature=", "ghp_", "Bearer ey"} {
		if strings.Contains(doc, secret) {
			t.Errorf("the document shows a credential (%q)", secret)
		}
	}
	if !strings.Contains(doc, "### `countersign.lib.hosts`") {
		t.Error("the helper library section lacks countersign.lib.hosts")
	}
}
