package policy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// renameInto writes content to a staging file and renames it over path, as
// editors and deploy tools do.
func renameInto(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitAccepted waits for the next accepted reload and returns the decision
// for a GET under it.
func waitAccepted(t *testing.T, e *Engine, events *reloadEvents) Decision {
	t.Helper()
	for {
		ev := events.next(t)
		if ev.Err != nil {
			t.Fatalf("reload rejected: %v", ev.Err)
		}
		if ev.Revision == e.Revision() {
			return e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
		}
	}
}

func TestWatcherFollowsTheTree(t *testing.T) {
	events := newReloadEvents()
	e, dir := newEngine(t, Options{OnReload: events.on}, mod("package countersign\n"))
	w, err := NewWatcher(e, WatchOptions{Debounce: 20 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	steps := []struct {
		name   string
		change func()
		want   []string // deny messages after the reload
	}{
		{
			name:   "edit in place",
			change: func() { writeFiles(t, dir, mod("package countersign\n\ndeny contains \"root\"\n")) },
			want:   []string{"root"},
		},
		{
			name: "new subdirectory",
			change: func() {
				writeFiles(t, dir, map[string]string{"sub/extra.rego": "package countersign\n\ndeny contains \"sub\"\n"})
			},
			want: []string{"root", "sub"},
		},
		{
			name: "file in a directory created after the watcher started",
			change: func() {
				renameInto(t, filepath.Join(dir, "sub", "deeper", "more.rego"), "package countersign\n\ndeny contains \"deeper\"\n")
			},
			want: []string{"deeper", "root", "sub"},
		},
		{
			name:   "data file",
			change: func() { renameInto(t, filepath.Join(dir, "sub", "deeper", "data.json"), `{"n": 1}`) },
			want:   []string{"deeper", "root", "sub"},
		},
		{
			name: "subdirectory removed",
			change: func() {
				if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"root"},
		},
		{
			name: "root directory replaced as a whole",
			change: func() {
				next := filepath.Join(filepath.Dir(dir), "next")
				writeFiles(t, next, mod("package countersign\n\ndeny contains \"replaced\"\n"))
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				// The removal alone is a rejected reload (the directory is
				// gone); wait for it so the rename is a separate event.
				if ev := events.next(t); ev.Err == nil {
					t.Fatalf("reload with the policy directory removed was accepted: %+v", ev)
				}
				if err := os.Rename(next, dir); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"replaced"},
		},
		{
			name:   "edit after the replacement",
			change: func() { writeFiles(t, dir, mod("package countersign\n\ndeny contains \"again\"\n")) },
			want:   []string{"again"},
		},
	}
	for _, st := range steps {
		st.change()
		d := waitAccepted(t, e, events)
		got := d.Messages()
		slices.Sort(got)
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: deny = %q, want %q", st.name, got, st.want)
		}
	}
}

func TestWatcherRootFile(t *testing.T) {
	events := newReloadEvents()
	dir := t.TempDir()
	file := filepath.Join(dir, "only.rego")
	writeFiles(t, dir, map[string]string{"only.rego": "package countersign\n", "other.rego": "this is not rego"})
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{file}}, EvalTimeout: testEvalTimeout, OnReload: events.on}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(e, WatchOptions{Debounce: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	renameInto(t, file, "package countersign\n\ndeny contains \"file\"\n")
	if got := waitAccepted(t, e, events).Messages(); !slices.Equal(got, []string{"file"}) {
		t.Errorf("deny = %q, want [file]", got)
	}
}

// TestWatcherDebounce drives the event loop with a fake clock: a burst of
// events is one reload once the files are quiet, a steady stream still
// reloads every MaxDelay, and editor swap files and chmods are ignored.
func TestWatcherDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := "/policies"
		var reloads atomic.Int32
		w := &Watcher{
			opts:   WatchOptions{Debounce: 200 * time.Millisecond, MaxDelay: 2 * time.Second},
			logger: zap.NewNop(),
			roots:  map[string]bool{root: true},
			reload: func(context.Context) { reloads.Add(1) },
			stop:   make(chan struct{}),
			done:   make(chan struct{}),
		}
		events := make(chan fsnotify.Event)
		errs := make(chan error)
		go w.loop(t.Context(), events, errs)
		write := func(name string, op fsnotify.Op) {
			events <- fsnotify.Event{Name: filepath.Join(root, name), Op: op}
		}
		expect := func(what string, want int32) {
			t.Helper()
			synctest.Wait()
			if got := reloads.Load(); got != want {
				t.Fatalf("%s: %d reloads, want %d", what, got, want)
			}
		}

		// A burst of five events 50ms apart: nothing until 200ms of quiet.
		for range 5 {
			write("policy.rego", fsnotify.Write)
			time.Sleep(50 * time.Millisecond)
		}
		expect("during the burst", 0)
		time.Sleep(151 * time.Millisecond)
		expect("after the burst", 1)

		// Swap files, backups and chmods change nothing.
		write(".policy.rego.swp", fsnotify.Write)
		write("policy.rego~", fsnotify.Create)
		write("4913", fsnotify.Create)
		write("policy.rego", fsnotify.Chmod)
		events <- fsnotify.Event{Name: "/elsewhere/x.rego", Op: fsnotify.Write}
		time.Sleep(time.Second)
		expect("after junk", 1)

		// A write every 100ms for 5s: reloads every 2s, then once more.
		for range 50 {
			write("policy.rego", fsnotify.Write)
			time.Sleep(100 * time.Millisecond)
		}
		expect("during a steady stream", 3)
		time.Sleep(time.Second)
		expect("after the stream", 4)

		// A watch error (an overflow) reloads to be sure.
		errs <- fsnotify.ErrEventOverflow
		time.Sleep(time.Second)
		expect("after an overflow", 5)

		close(w.stop)
		<-w.done
	})
}

func TestWatcherNeedsPaths(t *testing.T) {
	e, err := New(t.Context(), Options{Source: Source{Builtin: true}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWatcher(e, WatchOptions{}, nil); err == nil {
		t.Error("NewWatcher(built-in policy) succeeded; there is nothing to watch")
	}
}

// A policy path that is a symlink to a directory is watched at its target,
// and followed when it is switched to another one.
func TestWatcherFollowsASymlinkedDirectory(t *testing.T) {
	events := newReloadEvents()
	base := t.TempDir()
	writeFiles(t, filepath.Join(base, "v1"), mod("package countersign\n"))
	link := filepath.Join(base, "policies")
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{link}}, OnReload: events.on, EvalTimeout: testEvalTimeout}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(e, WatchOptions{Debounce: 20 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	writeFiles(t, filepath.Join(base, "v1"), mod("package countersign\n\ndeny contains \"edited\"\n"))
	if got := waitAccepted(t, e, events).Messages(); !slices.Equal(got, []string{"edited"}) {
		t.Errorf("after an edit in the link's target: deny = %q, want [edited]", got)
	}

	// Switch the link to v2 atomically, then edit v2.
	writeFiles(t, filepath.Join(base, "v2"), mod("package countersign\n\ndeny contains \"v2\"\n"))
	tmp := filepath.Join(base, "policies.new")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if got := waitAccepted(t, e, events).Messages(); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("after switching the link: deny = %q, want [v2]", got)
	}
	writeFiles(t, filepath.Join(base, "v2"), mod("package countersign\n\ndeny contains \"v2 edited\"\n"))
	if got := waitAccepted(t, e, events).Messages(); !slices.Equal(got, []string{"v2 edited"}) {
		t.Errorf("after an edit in the new target: deny = %q, want [v2 edited]", got)
	}
}

// A root file's directory moved away and back loses its inotify watch; the
// watcher takes it up again and reloads, and later edits are seen (found
// by review: every later reload stopped, silently).
func TestWatcherSurvivesItsDirectoryMovingAwayAndBack(t *testing.T) {
	events := newReloadEvents()
	base := t.TempDir()
	dir := filepath.Join(base, "proj")
	file := filepath.Join(dir, "policy.rego")
	writeFiles(t, dir, map[string]string{"policy.rego": "package countersign\n"})
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{file}}, EvalTimeout: testEvalTimeout, OnReload: events.on}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(e, WatchOptions{Debounce: 20 * time.Millisecond, Recheck: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	watched := func() bool { return slices.Contains(w.fsw.WatchList(), dir) }
	if err := os.Rename(dir, dir+".x"); err != nil {
		t.Fatal(err)
	}
	// fsnotify ends the watch on IN_MOVE_SELF.
	for deadline := time.Now().Add(10 * time.Second); watched(); {
		if time.Now().After(deadline) {
			t.Fatal("the move did not end the watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Rename(dir+".x", dir); err != nil {
		t.Fatal(err)
	}
	// The watch is back once the directory is in the watch list again.
	for deadline := time.Now().Add(10 * time.Second); !watched(); {
		if time.Now().After(deadline) {
			t.Fatalf("the directory is not watched again: %v", w.fsw.WatchList())
		}
		time.Sleep(10 * time.Millisecond)
	}
	renameInto(t, file, "package countersign\n\ndeny contains \"edited after the move\"\n")
	for {
		if got := waitAccepted(t, e, events).Messages(); slices.Equal(got, []string{"edited after the move"}) {
			return
		}
	}
}
