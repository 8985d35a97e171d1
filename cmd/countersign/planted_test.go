package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestChangedConfigFilesAreNamed(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policies", "kept.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "policies", "edited.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "policies", "gone.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not read by countersign\n")
	before := snapshotDiscovery(dir)
	if got := snapshotDiscovery(dir).changedSince(before); len(got) != 0 {
		t.Fatalf("nothing changed, but %v", got)
	}

	writeFile(t, filepath.Join(dir, "countersign.yaml"), "policy:\n  on_error: allow\n")
	writeFile(t, filepath.Join(dir, "policies", "allow.rego"), "package countersign\nallow := true\n")
	// Same size, later time: a rewrite is a change.
	later := time.Now().Add(time.Minute)
	writeFile(t, filepath.Join(dir, "policies", "edited.rego"), "package countersigX\n")
	if err := os.Chtimes(filepath.Join(dir, "policies", "edited.rego"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "policies", "gone.rego")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "notes.txt"), "changed, and nobody minds\n")

	got := snapshotDiscovery(dir).changedSince(before)
	want := []string{"countersign.yaml (new)", "policies/allow.rego (new)", "policies/edited.rego (changed)", "policies/gone.rego (removed)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	w := plantedWarning(got)
	for _, name := range want {
		if !strings.Contains(w, name) {
			t.Errorf("the warning does not name %s: %s", name, w)
		}
	}
}

// File names are the agent's: the warning shows them as text, and a long
// list is cut.
func TestPlantedWarningShowsNamesAsText(t *testing.T) {
	changes := []string{"policies/\x1b]0;pwned\x07.rego (new)"}
	for i := range 9 {
		changes = append(changes, "policies/p"+string(rune('a'+i))+".rego (new)")
	}
	w := plantedWarning(changes)
	if strings.ContainsAny(w, "\x1b\x07") {
		t.Errorf("control characters reach the terminal: %q", w)
	}
	if !strings.Contains(w, "and 5 more") {
		t.Errorf("the list is not cut: %s", w)
	}
	if plantedWarning(nil) != "" {
		t.Error("a warning with nothing changed")
	}
}
