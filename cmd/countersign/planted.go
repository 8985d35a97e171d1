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
// there reads ./countersign.yaml and ./policies when no flag says
// otherwise: a file the agent creates there would be the next session's
// configuration or policy. countersign cannot tell the agent's writes from
// the user's, so it notes what changed while the session ran and says so
// when it ends.

// maxDiscoveryFiles bounds the walk of ./policies.
const maxDiscoveryFiles = 10000

// fileState is what is compared of a file: a change of any is a change.
type fileState struct {
	size int64
	mod  time.Time
	mode fs.FileMode
}

// discovery maps the paths (relative to the working directory) that a later
// run reads by default to their state.
type discovery map[string]fileState

// snapshotDiscovery records ./countersign.yaml and everything under
// ./policies in dir.
func snapshotDiscovery(dir string) discovery {
	d := discovery{}
	add := func(rel string, fi fs.FileInfo) {
		st := fileState{mode: fi.Mode()}
		if !fi.IsDir() {
			// A directory's size and time change with its entries, which
			// are listed themselves.
			st.size, st.mod = fi.Size(), fi.ModTime()
		}
		d[rel] = st
	}
	if fi, err := os.Lstat(filepath.Join(dir, config.DefaultFile)); err == nil {
		add(config.DefaultFile, fi)
	}
	root := filepath.Join(dir, "policies")
	_ = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if len(d) > maxDiscoveryFiles {
			return filepath.SkipAll
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		if rel, err := filepath.Rel(dir, p); err == nil {
			add(rel, fi)
		}
		return nil
	})
	return d
}

// changedSince lists, sorted, the paths created, changed or removed since
// before, each with what happened to it.
func (d discovery) changedSince(before discovery) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(d)) {
		old, ok := before[p]
		switch {
		case !ok:
			out = append(out, p+" (new)")
		case old != d[p]:
			out = append(out, p+" (changed)")
		}
	}
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if _, ok := d[p]; !ok {
			out = append(out, p+" (removed)")
		}
	}
	return out
}

// plantedWarning is the end-of-session warning about changes, or "".
// File names are the agent's to choose: they are shown as text.
func plantedWarning(changes []string) string {
	if len(changes) == 0 {
		return ""
	}
	shown := changes[:min(len(changes), 5)]
	names := make([]string, len(shown))
	for i, c := range shown {
		names[i] = termtext.Line(c, 120)
	}
	list := strings.Join(names, ", ")
	if more := len(changes) - len(shown); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return "countersign: while the session ran, files that a later `countersign run` in this directory reads changed: " + list +
		". Check them before the next session, or keep the configuration and policies outside the agent's working directory (--config, policy.paths)."
}
