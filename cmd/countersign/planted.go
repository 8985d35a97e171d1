package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/termtext"
)

// A session's agent can write its working directory, and a later `run`
// there reads ./countersign.yaml and ./policies (or the paths that file
// names) when no flag says otherwise: a file the agent creates there would
// be the next session's configuration or policy. countersign cannot tell
// the agent's writes from the user's, so it notes what changed while the
// session ran and says so when it ends. It is a tripwire, not a lock: a
// process the agent leaves running (without --isolate) can write later.

// maxDiscoveryEntries bounds the walk; past it the snapshot says it is
// incomplete, and the end of the session says so.
const maxDiscoveryEntries = 10000

// maxDiscoveryDepth bounds directory links that lead back up.
const maxDiscoveryDepth = 32

// fileState is what is compared of a file: a change of any is a change.
// ctime and the inode catch a rewrite that keeps size and modification
// time (touch -d), which a program cannot fake.
type fileState struct {
	size  int64
	mod   time.Time
	mode  fs.FileMode
	ino   uint64
	ctime int64
	link  string // where a symbolic link points
}

// discovery maps the paths a later run reads by default to their state.
type discovery struct {
	files map[string]fileState
	// truncated is set when the walk stopped at limit entries.
	truncated bool
	limit     int
}

// snapshotDiscovery records ./countersign.yaml and everything under
// ./policies in dir, and under extra (policy paths a configuration file
// there names), following symbolic links as the loaders do and leaving out
// hidden entries, which they do not read.
func snapshotDiscovery(dir string, extra []string) discovery {
	return snapshotWithin(dir, extra, maxDiscoveryEntries)
}

// snapshotWithin is snapshotDiscovery with at most limit entries.
func snapshotWithin(dir string, extra []string, limit int) discovery {
	d := discovery{files: map[string]fileState{}, limit: limit}
	d.add(dir, config.DefaultFile, 0)
	d.add(dir, "policies", 0)
	for _, p := range extra {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = p // outside the directory: named in full
		}
		d.add(dir, rel, 0)
	}
	return d
}

// add records rel (relative to dir, or absolute) and, for a directory,
// what it holds.
func (d *discovery) add(dir, rel string, depth int) {
	if _, seen := d.files[rel]; seen {
		return
	}
	if len(d.files) >= d.limit || depth > maxDiscoveryDepth {
		d.truncated = true
		return
	}
	p := rel
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, rel)
	}
	lfi, err := os.Lstat(p)
	if err != nil {
		return
	}
	var st fileState
	fi := lfi
	if lfi.Mode()&fs.ModeSymlink != 0 {
		st.link, _ = os.Readlink(p)
		if target, err := os.Stat(p); err == nil {
			fi = target
		}
	}
	st.mode = fi.Mode()
	st.ino, st.ctime = inodeAndCtime(fi)
	if !fi.IsDir() {
		// A directory's size and times change with its entries, which
		// are listed themselves.
		st.size, st.mod = fi.Size(), fi.ModTime()
	} else {
		st.ctime = 0
	}
	d.files[rel] = st
	if !fi.IsDir() {
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // hidden: not read by the policy loader
		}
		d.add(dir, filepath.Join(rel, e.Name()), depth+1)
	}
}

// changedSince lists, sorted, the paths created, changed or removed since
// before.
func (d discovery) changedSince(before discovery) []change {
	var out []change
	for _, p := range slices.Sorted(maps.Keys(d.files)) {
		old, ok := before.files[p]
		switch {
		case !ok:
			out = append(out, change{p, "new"})
		case old != d.files[p]:
			out = append(out, change{p, "changed"})
		}
	}
	for _, p := range slices.Sorted(maps.Keys(before.files)) {
		if _, ok := d.files[p]; !ok {
			out = append(out, change{p, "removed"})
		}
	}
	return out
}

// change is one path that changed, and how.
type change struct{ path, what string }

// String quotes the path, which is the agent's to choose.
func (c change) String() string { return fmt.Sprintf("%q (%s)", termtext.Line(c.path, 200), c.what) }

// changeList is changes for the audit record, at most limit of them.
func changeList(changes []change, limit int) []string {
	out := make([]string, 0, min(len(changes), limit))
	for _, c := range changes[:min(len(changes), limit)] {
		out = append(out, c.String())
	}
	return out
}

// plantedWarning is the end-of-session warning about changes, or "".
func plantedWarning(changes []change, truncated bool) string {
	var parts []string
	if len(changes) > 0 {
		list := strings.Join(changeList(changes, 5), ", ")
		if more := len(changes) - 5; more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		parts = append(parts, "while the session ran, files that a later `countersign run` in this directory reads changed: "+list+".")
	}
	if truncated {
		parts = append(parts, "the policy directories hold more entries than countersign checks, so some were not checked.")
	}
	if len(parts) == 0 {
		return ""
	}
	return "countersign: " + strings.Join(parts, " ") +
		" Check them before the next session, or keep the configuration and policies outside the agent's working directory (--config, policy.paths)."
}

// namedPolicyPaths are the policy paths that ./countersign.yaml in cwd
// names, when that is the file cfg came from: a later run there reads them.
func namedPolicyPaths(cfg *config.Config, cwd string) []string {
	if cfg.Source.File == "" || !cfg.IsSet("policy.paths") {
		return nil
	}
	abs, err := filepath.Abs(cfg.Source.File)
	if err != nil || abs != filepath.Join(cwd, config.DefaultFile) {
		return nil
	}
	return cfg.Policy.Paths
}
