package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Pinned policy directories (Options.PinPaths).
//
// Under run --isolate the agent cannot write a read-only policy, but it may
// rename a directory that contains one and put its own in its place. A
// check of the path before each reload does not close that: OPA's loader
// opens the path again afterwards, and an agent swapping directories in a
// loop wins some of the reloads someone else triggers. So each directory is
// opened once, at start, as an os.Root, and every load reads through it:
// whatever the path names later, the files read are the pinned directory's.
// os.Root also refuses symbolic links out of the directory, which would
// lead to files the agent may be able to write.

// pins are the pinned directories, by the path they were loaded from.
type pins struct {
	dirs []pinnedDir // longest path first, so nested pins resolve to the deepest
}

type pinnedDir struct {
	path string // as policyDir gives it: cleaned, relative or absolute as configured
	info os.FileInfo
	root *os.Root
}

// pinDirs opens the directory of each policy path.
func pinDirs(paths []string) (*pins, error) {
	p := &pins{}
	for _, path := range paths {
		dir, fi, err := policyDir(path)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("policy path %s: %w", path, err)
		}
		if slices.ContainsFunc(p.dirs, func(d pinnedDir) bool { return d.path == dir }) {
			continue
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("policy path %s: %w", path, err)
		}
		// The handle must be the directory that was checked: a swap
		// between the Stat and the open would otherwise pin the agent's.
		if rfi, err := root.Stat("."); err != nil || !os.SameFile(rfi, fi) {
			root.Close()
			p.close()
			return nil, fmt.Errorf("policy path %s: %s changed while countersign opened it; start again", path, dir)
		}
		p.dirs = append(p.dirs, pinnedDir{path: dir, info: fi, root: root})
	}
	slices.SortFunc(p.dirs, func(a, b pinnedDir) int { return len(b.path) - len(a.path) })
	return p, nil
}

// policyDir is p when it is a directory, else the directory holding it,
// and what is there now.
func policyDir(p string) (string, os.FileInfo, error) {
	p = filepath.Clean(p)
	fi, err := os.Stat(p)
	if err != nil {
		return "", nil, err
	}
	if fi.IsDir() {
		return p, fi, nil
	}
	dir := filepath.Dir(p)
	fi, err = os.Stat(dir)
	return dir, fi, err
}

// check fails when a pinned directory is no longer at its path. Loading
// would still read the pinned one; the check is there to say so, and to
// keep the policy in force rather than reload from a directory the user no
// longer sees at that path.
func (p *pins) check(paths []string) error {
	if p == nil {
		return nil
	}
	for _, path := range paths {
		dir, fi, err := policyDir(path)
		if err != nil {
			return fmt.Errorf("policy path %s: %w", path, err)
		}
		for _, d := range p.dirs {
			if d.path == dir && !os.SameFile(d.info, fi) {
				return fmt.Errorf("policy path %s: %s is not the directory countersign loaded at start (it was moved or replaced); keeping the policy in force, restart countersign to load what is there now", path, dir)
			}
		}
	}
	return nil
}

// fs is the file tree loads read from: nil (the operating system's) when
// nothing is pinned.
func (p *pins) fs() fs.FS {
	if p == nil {
		return nil
	}
	return pinnedFS{p}
}

func (p *pins) close() {
	if p == nil {
		return
	}
	for _, d := range p.dirs {
		d.root.Close()
	}
}

var errLinkOut = errors.New("a symbolic link out of the policy directory, refused under run --isolate (the agent may be able to write where it leads); copy the file into the directory")

// pinnedFS serves OPA's loader. The loader hands it the paths as
// configured, absolute or relative, which fs.ValidPath would refuse; a
// path inside a pinned directory is opened through its root, any other
// (a path added by a later reload) from the operating system.
type pinnedFS struct{ p *pins }

func (f pinnedFS) Open(name string) (fs.File, error) {
	clean := filepath.Clean(name)
	for _, d := range f.p.dirs {
		rel, ok := relativeTo(d.path, clean)
		if !ok {
			continue
		}
		file, err := d.root.Open(rel)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				// Name the path as the user knows it, not as the root saw it.
				if strings.Contains(pe.Err.Error(), "escapes") {
					// os.Root's error for it is unexported.
					return nil, &fs.PathError{Op: pe.Op, Path: name, Err: errLinkOut}
				}
				return nil, &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
			}
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		return file, nil
	}
	return os.Open(name)
}

// relativeTo returns name relative to dir, if name is dir or below it.
// Both are clean and both relative or both absolute, as the loader joins
// names onto the configured paths; filepath.Rel fails on a mix.
func relativeTo(dir, name string) (string, bool) {
	rel, err := filepath.Rel(dir, name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}
