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
		if upAfterName(path) {
			p.close()
			return nil, fmt.Errorf("policy path %s: under run --isolate a policy path may not go up (..) after a directory name, which the loader and the system resolve differently through a link; give the path without it", path)
		}
		if strings.Contains(path, ":") {
			// OPA's loader reads "a:b" as data prefix a and path b.
			p.close()
			return nil, fmt.Errorf("policy path %s: under run --isolate a policy path may not contain ':'", path)
		}
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

// upAfterName reports a ".." that follows another element ("a/../b"),
// which filepath.Clean removes but the system resolves through a as a link.
func upAfterName(p string) bool {
	named := false
	for _, e := range strings.Split(filepath.ToSlash(p), "/") {
		switch e {
		case "..":
			if named {
				return true
			}
		case "", ".":
		default:
			named = true
		}
	}
	return false
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

var _ fs.StatFS = pinnedFS{}

func (p *pins) close() {
	if p == nil {
		return
	}
	for _, d := range p.dirs {
		d.root.Close()
	}
}

var errLinkOut = errors.New("a symbolic link that is absolute or leads out of the policy directory, refused under run --isolate (the agent may be able to write where it leads); copy the file into the directory, or list the directory it leads to in policy.paths")

// pinnedFS serves OPA's loader. The loader hands it the paths as
// configured, absolute or relative, which fs.ValidPath would refuse. Every
// one is inside a pinned directory and opened through its root; any other
// is an error, never a read of whatever the path names now.
type pinnedFS struct{ p *pins }

// resolve finds the pinned directory holding name, deepest first.
func (f pinnedFS) resolve(name string) (*os.Root, string, error) {
	clean := filepath.Clean(name)
	for _, d := range f.p.dirs {
		if rel, ok := relativeTo(d.path, clean); ok {
			return d.root, rel, nil
		}
	}
	return nil, "", &fs.PathError{Op: "open", Path: name, Err: errors.New("not in a policy directory pinned at start")}
}

func (f pinnedFS) Open(name string) (fs.File, error) {
	root, rel, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	file, err := root.Open(rel)
	if err != nil {
		return nil, pinError(name, err)
	}
	return namedFile{File: file, name: filepath.Base(name)}, nil
}

// Stat spares the loader an open per entry it looks at: a FIFO or an
// unreadable file among the policies is skipped by its name, as without
// pins, instead of blocking or failing the open.
func (f pinnedFS) Stat(name string) (fs.FileInfo, error) {
	root, rel, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	fi, err := root.Stat(rel)
	if err != nil {
		return nil, pinError(name, err)
	}
	return namedInfo{FileInfo: fi, name: filepath.Base(name)}, nil
}

// pinError names the path as the user knows it, not as the root saw it.
func pinError(name string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return fmt.Errorf("open %s: %w", name, err)
	}
	if strings.Contains(pe.Err.Error(), "escapes") { // os.Root's error for it is unexported
		return &fs.PathError{Op: pe.Op, Path: name, Err: errLinkOut}
	}
	return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
}

// namedFile and namedInfo carry the name the loader asked for. A pinned
// directory reached inside another pinned one is its root's "."; the
// loader would take that name for a hidden file and skip the directory.
type namedFile struct {
	*os.File
	name string
}

func (f namedFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return namedInfo{FileInfo: fi, name: f.name}, nil
}

type namedInfo struct {
	fs.FileInfo
	name string
}

func (i namedInfo) Name() string { return i.name }

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
