package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/countersign/countersign/action"
)

const (
	pinDenyDeletes = "package countersign\n\ndeny contains \"no deletes\" if input.request.method == \"DELETE\"\n"
	pinAllowAll    = "package countersign\n"
)

func writePinned(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func deleteVerdict(t *testing.T, s *set) Verdict {
	t.Helper()
	e := emptyEngine(Options{OnError: VerdictDeny, EvalTimeout: time.Second, Now: time.Now, NoCache: true}, zap.NewNop())
	e.cur.Store(s)
	return e.Decide(t.Context(), NewInput(&action.Request{Method: "DELETE", Host: "h", Path: "/"}, action.Action{Provider: "http"}, nil, time.Unix(0, 0))).Verdict
}

// TestPinnedLoadReadsThePinnedDirectory: the check of the path before a
// reload can pass and the path be swapped before the loader opens it (an
// agent renaming directories in a loop). The load itself must then still
// read the directory pinned at start.
func TestPinnedLoadReadsThePinnedDirectory(t *testing.T) {
	for _, asFile := range []bool{false, true} {
		root := t.TempDir()
		dir := filepath.Join(root, "proj", "policies")
		writePinned(t, filepath.Join(dir, "policy.rego"), pinDenyDeletes)
		path := dir
		if asFile {
			path = filepath.Join(dir, "policy.rego")
		}
		src := Source{Paths: []string{path}}
		e, err := New(t.Context(), Options{Source: src, PinPaths: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pins.close)
		if err := e.pins.check(src.Paths); err != nil {
			t.Fatal(err)
		}
		// The check passed; now the agent swaps the directory.
		if err := os.Rename(filepath.Join(root, "proj"), filepath.Join(root, "proj-old")); err != nil {
			t.Fatal(err)
		}
		writePinned(t, filepath.Join(dir, "policy.rego"), pinAllowAll)

		pinned, _, err := compileAndTest(t.Context(), src, e.pins.fs(), nil)
		if err != nil {
			t.Fatalf("file %v: load through the pins: %v", asFile, err)
		}
		if v := deleteVerdict(t, pinned); v != VerdictDeny {
			t.Errorf("file %v: loaded through the pins, DELETE is %s; the agent's directory was read", asFile, v)
		}
		if !slices.Contains(pinned.files, filepath.Join(dir, "policy.rego")) {
			t.Errorf("file %v: modules %v, want them named by the configured path", asFile, pinned.files)
		}
		// The control: by path, the agent's policy is what loads.
		byPath, _, err := compileAndTest(t.Context(), src, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := deleteVerdict(t, byPath); v != VerdictAllow {
			t.Fatalf("file %v: the swapped-in policy by path gives DELETE %s; the test does not swap", asFile, v)
		}
	}
}

// TestPinnedModulesKeepTheirNames: module names (in Files, errors and
// audit records) are the configured paths, relative or absolute, as
// without pins.
func TestPinnedModulesKeepTheirNames(t *testing.T) {
	root := t.TempDir()
	writePinned(t, filepath.Join(root, "policies", "a.rego"), pinDenyDeletes)
	writePinned(t, filepath.Join(root, "policies", "sub", "b.rego"), "package countersign\n\ndeny contains \"b\" if input.request.method == \"PURGE\"\n")
	writePinned(t, filepath.Join(root, "top.rego"), "package countersign\n\ndeny contains \"t\" if input.request.method == \"TRACE\"\n")
	writePinned(t, filepath.Join(root, "broken", "c.rego"), "package countersign\n\ndeny contains \"c\" if {\n")
	t.Chdir(root)
	for _, paths := range [][]string{
		{"policies", "top.rego"},
		{filepath.Join(root, "policies"), filepath.Join(root, "top.rego")},
		{"./policies/", "./top.rego"},
	} {
		names := map[bool][]string{}
		for _, pin := range []bool{false, true} {
			e, err := New(t.Context(), Options{Source: Source{Paths: paths}, PinPaths: pin}, nil)
			if err != nil {
				t.Fatalf("paths %v, pin %v: %v", paths, pin, err)
			}
			t.Cleanup(e.pins.close)
			for _, f := range e.Files() {
				if !strings.HasPrefix(f, "builtin:") {
					names[pin] = append(names[pin], f)
				}
			}
		}
		if !slices.Equal(names[false], names[true]) || len(names[true]) != 3 {
			t.Errorf("paths %v: modules %v unpinned, %v pinned", paths, names[false], names[true])
		}
	}
	_, errUnpinned := New(t.Context(), Options{Source: Source{Paths: []string{"broken"}}}, nil)
	_, errPinned := New(t.Context(), Options{Source: Source{Paths: []string{"broken"}}, PinPaths: true}, nil)
	if errUnpinned == nil || errPinned == nil || errUnpinned.Error() != errPinned.Error() || !strings.Contains(errPinned.Error(), filepath.Join("broken", "c.rego")) {
		t.Errorf("a syntax error reads %q unpinned and %q pinned; want the same, naming the file", errUnpinned, errPinned)
	}
}

// TestPinnedDirectoryRefusesLinksOut: a symbolic link from a pinned
// directory to a file outside it leads where the agent may write; it is
// refused, naming the link, where without pins it is followed.
func TestPinnedDirectoryRefusesLinksOut(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policies")
	writePinned(t, filepath.Join(dir, "a.rego"), pinDenyDeletes)
	writePinned(t, filepath.Join(root, "elsewhere", "x.rego"), pinAllowAll)
	if err := os.Symlink(filepath.Join("..", "elsewhere", "x.rego"), filepath.Join(dir, "x.rego")); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}}, nil); err != nil {
		t.Fatalf("unpinned: %v", err)
	}
	_, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}, PinPaths: true}, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "x.rego")) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("pinned, a link out of the directory: %v; want it refused, naming the link", err)
	}
	t.Log(err)
	// A link that stays inside is followed.
	if err := os.Remove(filepath.Join(dir, "x.rego")); err != nil {
		t.Fatal(err)
	}
	writePinned(t, filepath.Join(dir, "lib", "y.rego"), "package countersign\n\ndeny contains \"y\" if input.request.method == \"PURGE\"\n")
	if err := os.Symlink(filepath.Join("lib", "y.rego"), filepath.Join(dir, "y.rego")); err != nil {
		t.Fatal(err)
	}
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{filepath.Join(dir, "y.rego")}}, PinPaths: true}, nil)
	if err != nil {
		t.Fatalf("pinned, a link inside the directory: %v", err)
	}
	e.pins.close()
}

// A pinned directory reached while walking another (a policy path inside
// another one) is loaded whole, as without pins: through its own root it is
// ".", which the loader would skip as a hidden name.
func TestPinnedNestedDirectories(t *testing.T) {
	root := t.TempDir()
	writePinned(t, filepath.Join(root, "policies", "a.rego"), pinDenyDeletes)
	writePinned(t, filepath.Join(root, "policies", "extra", "x.rego"), "package countersign\n\ndeny contains \"x\" if input.request.method == \"PURGE\"\n")
	writePinned(t, filepath.Join(root, "policies", "extra", "y.rego"), "package countersign\n\ndeny contains \"y\" if input.request.method == \"TRACE\"\n")
	paths := []string{filepath.Join(root, "policies"), filepath.Join(root, "policies", "extra", "x.rego")}
	files := map[bool][]string{}
	for _, pin := range []bool{false, true} {
		e, err := New(t.Context(), Options{Source: Source{Paths: paths}, PinPaths: pin}, nil)
		if err != nil {
			t.Fatalf("pin %v: %v", pin, err)
		}
		t.Cleanup(e.pins.close)
		files[pin] = e.Files()
	}
	if !slices.Equal(files[false], files[true]) || !slices.Contains(files[true], filepath.Join(root, "policies", "extra", "y.rego")) {
		t.Errorf("modules unpinned %v, pinned %v; want the same, y.rego among them", files[false], files[true])
	}
}

// A FIFO among the policies (hidden, so never read) does not block a
// pinned load: the loader looks at it by name, without opening it.
func TestPinnedLoadSkipsAHiddenFIFO(t *testing.T) {
	root := t.TempDir()
	writePinned(t, filepath.Join(root, "policies", "a.rego"), pinDenyDeletes)
	if err := syscall.Mkfifo(filepath.Join(root, "policies", ".fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		e, err := New(context.Background(), Options{Source: Source{Paths: []string{filepath.Join(root, "policies")}}, PinPaths: true}, nil)
		if err == nil {
			e.pins.close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		// The open of a FIFO without a writer never returns; unblock it.
		f, _ := os.OpenFile(filepath.Join(root, "policies", ".fifo"), os.O_WRONLY, 0)
		if f != nil {
			f.Close()
		}
		<-done
		t.Fatal("a pinned load opened a hidden FIFO and blocked on it")
	}
}

// Paths the loader and the system would read differently, and names
// outside every pin, are refused under pins rather than read.
func TestPinnedPathsRefused(t *testing.T) {
	root := t.TempDir()
	writePinned(t, filepath.Join(root, "policies", "a.rego"), pinDenyDeletes)
	if err := os.Mkdir(filepath.Join(root, "other"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		root + "/other/../policies", // not filepath.Join, which cleans it
		filepath.Join(root, "policies") + ":x",
	} {
		if _, err := New(t.Context(), Options{Source: Source{Paths: []string{path}}, PinPaths: true}, nil); err == nil {
			t.Errorf("pinned %s: loaded, want it refused", path)
		}
		if strings.Contains(path, "..") {
			if _, err := New(t.Context(), Options{Source: Source{Paths: []string{path}}}, nil); err != nil {
				t.Errorf("unpinned %s: %v", path, err)
			}
		}
	}
	// "../policies" from inside another directory goes up first: allowed.
	t.Chdir(filepath.Join(root, "other"))
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{filepath.Join("..", "policies")}}, PinPaths: true}, nil)
	if err != nil {
		t.Fatalf("../policies: %v", err)
	}
	t.Cleanup(e.pins.close)
	if _, err := fs.Stat(e.pins.fs(), filepath.Join(root, "other")); err == nil {
		t.Error("a name outside every pinned directory was read")
	}
}
