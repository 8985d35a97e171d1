package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// WatchOptions configures a Watcher.
type WatchOptions struct {
	// Debounce is how long the files must stay quiet before a reload
	// (default 200ms): editors and deploy tools write several events per
	// save.
	Debounce time.Duration
	// MaxDelay bounds how long a steady stream of changes can put a reload
	// off (default 2s).
	MaxDelay time.Duration
	// Recheck is how often the watches on the configured paths' parent
	// directories are checked (default 2s): one whose directory was moved
	// away and back is lost to inotify, and is added again with a reload.
	Recheck time.Duration
}

// Watcher reloads an Engine when its policy files change. It watches every
// policy directory recursively (new subdirectories too), the parent of each
// configured path (so a directory or file that is replaced as a whole is
// picked up again), and waits for a burst of changes to settle before it
// calls Engine.Reload, which compiles, tests and swaps, or keeps the last
// good policy.
type Watcher struct {
	engine *Engine
	opts   WatchOptions
	logger *zap.Logger
	fsw    *fsnotify.Watcher

	// roots are the configured paths (absolute). A root directory is
	// watched recursively; a root file through its parent directory.
	roots map[string]bool // path → is a directory
	// parents are the roots' parent directories, which must stay watched.
	parents map[string]bool

	// reload is Engine.Reload, replaced in tests.
	reload func(context.Context)

	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewWatcher starts watching the engine's policy paths. Close stops it.
func NewWatcher(e *Engine, opts WatchOptions, logger *zap.Logger) (*Watcher, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 2 * time.Second
	}
	if opts.MaxDelay < opts.Debounce {
		opts.MaxDelay = max(2*time.Second, opts.Debounce)
	}
	e.mu.Lock()
	paths := e.opts.Source.Paths
	e.mu.Unlock()
	if len(paths) == 0 {
		return nil, errors.New("watch policy: no policy paths to watch")
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch policy: %w", err)
	}
	w := &Watcher{
		engine: e, opts: opts, logger: logger.Named("policy-watch"), fsw: fsw,
		roots: map[string]bool{}, parents: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.reload = func(ctx context.Context) { _ = e.Reload(ctx) }
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			fsw.Close()
			return nil, fmt.Errorf("watch policy %s: %w", p, err)
		}
		info, err := os.Stat(abs)
		if err != nil {
			fsw.Close()
			return nil, fmt.Errorf("watch policy %s: %w", p, err)
		}
		w.roots[abs] = info.IsDir()
		w.parents[filepath.Dir(abs)] = true
		if err := w.add(filepath.Dir(abs)); err != nil {
			fsw.Close()
			return nil, err
		}
		if info.IsDir() {
			w.addTree(abs)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.loop(ctx, fsw.Events, fsw.Errors)
	return w, nil
}

// Close stops watching; a reload in progress is cancelled (and not
// reported as rejected). No goroutine outlives Close.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		w.cancel()
		close(w.stop)
		<-w.done
		err = w.fsw.Close()
	})
	return err
}

func (w *Watcher) add(dir string) error {
	if err := w.fsw.Add(dir); err != nil {
		return fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	return nil
}

// addTree watches dir and its subdirectories, skipping hidden ones as the
// loader does. A symlinked dir (policies -> v2, as deploy tools switch
// versions) is watched at its target, which becomes a root too: the files
// that change are there. Called before the loop starts or from it.
func (w *Watcher) addTree(dir string) {
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		if _, known := w.roots[real]; !known {
			w.roots[real] = true
		}
		dir = real
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.add(p); err != nil {
			// Typically the inotify watch limit; the directory's own
			// changes are then only seen with the next change elsewhere.
			w.logger.Warn("cannot watch a policy directory", zap.String("dir", p), zap.Error(err))
		}
		return nil
	})
}

// loop debounces change events into reloads until stop.
func (w *Watcher) loop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error) {
	defer close(w.done)
	var timer *time.Timer
	var timerC <-chan time.Time
	var first time.Time
	schedule := func() {
		now := time.Now()
		if timer == nil {
			first = now
			timer = time.NewTimer(w.opts.Debounce)
			timerC = timer.C
			return
		}
		wait := min(w.opts.Debounce, first.Add(w.opts.MaxDelay).Sub(now))
		timer.Reset(max(wait, 0))
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var recheckC <-chan time.Time
	if w.opts.Recheck > 0 {
		recheck := time.NewTicker(w.opts.Recheck)
		defer recheck.Stop()
		recheckC = recheck.C
	}
	for {
		select {
		case <-w.stop:
			return
		case <-recheckC:
			if w.rewatch() {
				schedule()
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				schedule()
			}
		case err, ok := <-errs:
			if !ok {
				return
			}
			// An overflow means events were lost: reload to be sure.
			w.logger.Warn("policy watch error; reloading to be sure", zap.Error(err))
			schedule()
		case <-timerC:
			timer, timerC = nil, nil
			w.reload(ctx)
		}
	}
}

// rewatch adds again the watch of every parent directory that inotify
// dropped (the directory was moved or removed: IN_MOVE_SELF ends a watch),
// and reports whether it added one, which calls for a reload: what changed
// meanwhile was not seen (found by review: `mv proj proj.x; mv proj.x
// proj` stopped every later reload of a root file in proj, silently).
func (w *Watcher) rewatch() bool {
	watched := map[string]bool{}
	for _, d := range w.fsw.WatchList() {
		watched[filepath.Clean(d)] = true
	}
	added := false
	for dir := range w.parents {
		if watched[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil {
			// Not back yet: the next check tries again, and Reload
			// reports the missing files meanwhile.
			continue
		}
		w.logger.Warn("a policy directory's watch was lost (the directory was moved away and back); watching it again and reloading", zap.String("dir", dir))
		for root, isDir := range w.roots {
			if isDir && filepath.Dir(root) == dir {
				w.addTree(root)
			}
		}
		added = true
	}
	return added
}

// relevant reports whether an event may change the policy set, and watches
// directories that appear inside a root.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	if w.parents[name] && (ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove)) {
		// A watched parent moved: its watch is gone; take it up again at
		// once if the directory is back.
		w.rewatch()
		return true
	}
	base := filepath.Base(name)
	if editorJunk(base) {
		return false
	}
	if isDir, ok := w.roots[name]; ok {
		// A root itself was created, removed or replaced.
		if isDir && ev.Has(fsnotify.Create) {
			w.addTree(name)
		}
		return true
	}
	for root, isDir := range w.roots {
		if !isDir {
			// A root file is watched through its parent: only its own name
			// counts, plus Kubernetes ConfigMap's "..data" link swap.
			if filepath.Dir(root) == filepath.Dir(name) && strings.HasPrefix(base, "..") {
				return true
			}
			continue
		}
		if !within(root, name) {
			continue
		}
		if ev.Has(fsnotify.Create) && !strings.HasPrefix(base, ".") {
			if info, err := os.Stat(name); err == nil && info.IsDir() {
				w.addTree(name)
			}
		}
		return true
	}
	return false
}

// within reports whether p is inside dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// editorJunk names files editors write next to the ones being edited
// (swap, backup and lock files, vim's write test "4913").
func editorJunk(base string) bool {
	switch {
	case strings.HasSuffix(base, "~"),
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"), strings.HasSuffix(base, ".swo"),
		strings.HasPrefix(base, ".#"),
		base == "4913":
		return true
	}
	return false
}
