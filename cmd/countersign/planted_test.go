package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func changeNames(cs []change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.path + " (" + c.what + ")"
	}
	return out
}

func TestChangedConfigFilesAreNamed(t *testing.T) {
	dir := t.TempDir()
	shared := t.TempDir() // where a policies link leads
	writeFile(t, filepath.Join(dir, "policies", "kept.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "policies", "edited.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "policies", "gone.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "policies", ".git", "objects"), "not read by the loader\n")
	writeFile(t, filepath.Join(shared, "lib.rego"), "package countersign.lib\n")
	if err := os.Symlink(shared, filepath.Join(dir, "policies", "shared")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rules", "named.rego"), "package countersign\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not read by countersign\n")
	named := []string{"rules"}
	before := snapshotDiscovery(dir, named)
	if got := snapshotDiscovery(dir, named).changedSince(before); len(got) != 0 {
		t.Fatalf("nothing changed, but %v", got)
	}

	writeFile(t, filepath.Join(dir, "countersign.yaml"), "policy:\n  on_error: allow\n")
	writeFile(t, filepath.Join(dir, "policies", "allow.rego"), "package countersign\nallow := true\n")
	// Same size, and the old time put back (touch -d): the inode's change
	// time still tells.
	fi, err := os.Stat(filepath.Join(dir, "policies", "edited.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "policies", "edited.rego"), "package countersigX\n")
	if err := os.Chtimes(filepath.Join(dir, "policies", "edited.rego"), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "policies", "gone.rego")); err != nil {
		t.Fatal(err)
	}
	// Through the link, and in the directory the configuration names.
	writeFile(t, filepath.Join(shared, "lib.rego"), "package countersign.lib\nallow := true\n")
	writeFile(t, filepath.Join(dir, "rules", "more.rego"), "package countersign\n")
	// Not read by a later run: not named.
	writeFile(t, filepath.Join(dir, "notes.txt"), "changed, and nobody minds\n")
	writeFile(t, filepath.Join(dir, "policies", ".git", "objects"), "changed too\n")

	got := changeNames(snapshotDiscovery(dir, named).changedSince(before))
	want := []string{
		"countersign.yaml (new)",
		"policies/allow.rego (new)",
		"policies/edited.rego (changed)",
		"policies/shared/lib.rego (changed)",
		"rules/more.rego (new)",
		"policies/gone.rego (removed)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

// Past the bound the snapshot is incomplete, and the end of the session
// says so even when nothing it saw changed.
func TestDiscoveryBeyondItsBoundIsReported(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		writeFile(t, filepath.Join(dir, "policies", "d"+strconv.Itoa(i%3), "f"+strconv.Itoa(i)+".rego"), "package countersign\n")
	}
	if d := snapshotWithin(dir, nil, 20); d.truncated {
		t.Fatalf("16 entries marked incomplete under a bound of 20")
	}
	d := snapshotWithin(dir, nil, 10)
	if !d.truncated || len(d.files) != 10 {
		t.Fatalf("truncated %v with %d entries, want true and 10", d.truncated, len(d.files))
	}
	if w := plantedWarning(nil, d.truncated); !strings.Contains(w, "some were not checked") {
		t.Errorf("warning = %q", w)
	}
}

// File names are the agent's: each is quoted and shown as text, so none
// can pass for several entries or move the cursor, and a long list is cut.
func TestPlantedWarningShowsNamesAsText(t *testing.T) {
	changes := []change{{"policies/\x1b]0;pwned\x07.rego", "new"}, {`policies/a.rego (removed), policies/b.rego`, "new"}}
	for i := range 8 {
		changes = append(changes, change{"policies/p" + string(rune('a'+i)) + ".rego", "new"})
	}
	w := plantedWarning(changes, false)
	if strings.ContainsAny(w, "\x1b\x07") {
		t.Errorf("control characters reach the terminal: %q", w)
	}
	if !strings.Contains(w, `"policies/a.rego (removed), policies/b.rego" (new)`) {
		t.Errorf("a name is not quoted whole: %s", w)
	}
	if !strings.Contains(w, "and 5 more") {
		t.Errorf("the list is not cut: %s", w)
	}
	if plantedWarning(nil, false) != "" {
		t.Error("a warning with nothing changed")
	}
}
