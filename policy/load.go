package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	countersign "github.com/countersign/countersign"
)

// Package is the Rego package countersign evaluates.
const Package = "countersign"

// decisionQuery reads the three rules in one evaluation and keeps their raw
// values, so that a rule of the wrong type is detected instead of silently
// ignored. Each comprehension holds the rule's value, or nothing when the
// rule is undefined. (A wrapper module with default rules did the same at
// twice the cost: each of its four rules went through OPA's rule
// evaluation and cache, about 50 allocations per decision. One expression
// costs four fewer than three.)
const decisionQuery = "decision := [" +
	"[x | x := data.countersign.deny], " +
	"[x | x := data.countersign.approve], " +
	"[x | x := data.countersign.allow]]"

// disabledBuiltins reach outside the process; a policy must not make network
// calls or learn about its host (SPEC 10.1). The JSON Schema built-ins
// follow "$ref": "file:///…" and would read local files into a decision
// (and its message to the agent).
var disabledBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "json.match_schema", "json.verify_schema"}

// Capabilities returns OPA's capabilities for this version without the
// built-ins that reach outside the process.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return slices.Contains(disabledBuiltins, b.Name)
	})
	caps.AllowNet = []string{}
	return caps
}

// Source says where policies come from.
type Source struct {
	// Paths are files and directories of .rego modules and .json/.yaml data,
	// loaded with OPA's loader (so data.json in dir a/b lands at data.a.b).
	Paths []string
	// Builtin, when true and Paths is empty, uses the embedded default policy.
	Builtin bool
	// Bundle, when set, is an OPA bundle's content compiled together with
	// Paths (see bundle.go).
	Bundle *Bundle
}

// userSupplied reports whether the source names policies of its own, in
// which case the built-in default policy and the library's tests stay out.
func (s Source) userSupplied() bool { return len(s.Paths) > 0 || s.Bundle != nil }

// set is one compiled, immutable policy set.
type set struct {
	compiler     *ast.Compiler
	store        storage.Store
	query        rego.PreparedEvalQuery
	revision     string
	definesAllow bool
	files        []string
	// cache holds decisions keyed on the input fields this set reads; nil
	// when the set's decisions cannot be cached (see cache.go).
	cache *decisionCache
	// consts holds the values of the rules that are the same in every
	// evaluation (see consts.go); nil when there are none.
	consts *constRules
}

func (s Source) validate() error {
	if !s.userSupplied() && !s.Builtin {
		return errors.New("no policy given: pass --policy DIR or set policy.paths")
	}
	return nil
}

// isTestFile reports whether a loader path is a Rego test, which is compiled
// by `policy test` but not into the running policy.
func isTestFile(abspath string, info fs.FileInfo, depth int) bool {
	return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
}

// isHidden skips dot-files and dot-directories (editor swap files, .git),
// except the explicitly named root.
func isHidden(abspath string, info fs.FileInfo, depth int) bool {
	return depth > 0 && strings.HasPrefix(info.Name(), ".")
}

func excludeTestsAndHidden(abspath string, info fs.FileInfo, depth int) bool {
	return isHidden(abspath, info, depth) || isTestFile(abspath, info, depth)
}

// loadFiles loads the user's policies (or the default) plus the embedded
// helper library. filter decides which files count (tests or not). fsys,
// when not nil, is where the user's paths are read (pinnedFS); else the
// operating system's file tree.
func loadFiles(src Source, filter loader.Filter, fsys fs.FS) (modules map[string]*ast.Module, raw map[string][]byte, docs map[string]any, err error) {
	caps := Capabilities()
	modules = map[string]*ast.Module{}
	raw = map[string][]byte{}
	docs = map[string]any{}

	add := func(res *loader.Result, prefix string) {
		for key, f := range res.Modules {
			// The loader keys modules by their path with the leading "/"
			// trimmed; f.Name is the path as loaded, which is what Files
			// and error messages should show.
			name := f.Name
			if name == "" {
				name = key
			}
			modules[prefix+name] = f.Parsed
			raw[prefix+name] = f.Raw
		}
	}

	if len(src.Paths) > 0 {
		for _, p := range src.Paths {
			info, err := statPath(fsys, p)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("policy path %s: %w", p, err)
			}
			if !info.IsDir() {
				if why := oddFile(fsys, p, info); why != "" {
					return nil, nil, nil, fmt.Errorf("policy path %s: %s", p, why)
				}
			}
		}
		// OPA's loader reads a .tar.gz among the files as a bundle,
		// unsigned and with its tests: refused, bundles come through
		// policy.bundle.
		var archive, odd string
		userFilter := func(abspath string, info fs.FileInfo, depth int) bool {
			if filter(abspath, info, depth) {
				return true
			}
			if info.IsDir() {
				return false
			}
			if strings.HasSuffix(info.Name(), ".tar.gz") || strings.HasSuffix(info.Name(), ".tgz") {
				if archive == "" {
					archive = abspath
				}
				return true
			}
			// OPA's loader reads every file it is given, links followed
			// and whatever its size: a FIFO would hang the load (a
			// reload, in the proxy) and /dev/zero fill the memory (found
			// by review). Only regular files of a sane size are read.
			if why := oddFile(fsys, abspath, info); why != "" {
				if odd == "" {
					odd = abspath + ": " + why
				}
				return true
			}
			return false
		}
		fl := loader.NewFileLoader()
		if fsys != nil {
			fl = fl.WithFS(fsys)
		}
		res, err := fl.
			WithRegoVersion(ast.RegoV1).
			WithCapabilities(caps).
			WithProcessAnnotation(true).
			Filtered(src.Paths, userFilter)
		if err != nil {
			return nil, nil, nil, err
		}
		if archive != "" {
			return nil, nil, nil, fmt.Errorf("policy file %s: an archive (a bundle?) among the policy files; load bundles with policy.bundle, which checks their signature, or unpack it", archive)
		}
		if odd != "" {
			return nil, nil, nil, fmt.Errorf("policy file %s; remove it from the policy directory", odd)
		}
		add(res, "")
		docs = res.Documents
	}

	// The library's own tests run with the built-in tree only: a user's
	// `policy test` reports the user's tests.
	if src.Bundle != nil {
		if docs, err = addBundle(src.Bundle, filter, caps, modules, raw, docs); err != nil {
			return nil, nil, nil, err
		}
	}

	libFilter := filter
	if src.userSupplied() {
		libFilter = excludeTestsAndHidden
	}
	lib, err := loader.NewFileLoader().
		WithFS(countersign.Rego).
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(caps).
		WithProcessAnnotation(true).
		Filtered([]string{"rego/lib"}, libFilter)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load built-in library: %w", err)
	}
	dropOverriddenLib(lib, modules)
	add(lib, "builtin:")

	if !src.userSupplied() {
		def, err := loader.NewFileLoader().
			WithFS(countersign.Rego).
			WithRegoVersion(ast.RegoV1).
			WithCapabilities(caps).
			WithProcessAnnotation(true).
			Filtered([]string{"rego/default"}, filter)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load built-in default policy: %w", err)
		}
		add(def, "builtin:")
	}
	return modules, raw, docs, nil
}

// maxPolicyFile bounds one file of a policy directory: Rego and data
// documents, an inventory included, are far smaller.
const maxPolicyFile = 64 << 20

// oddFile says why a file of a policy directory is not to be read: not a
// regular file once links are followed, or larger than maxPolicyFile; ""
// when it may be.
func oddFile(fsys fs.FS, path string, info fs.FileInfo) string {
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := statPath(fsys, path)
		if err != nil {
			return "a link that cannot be followed (" + err.Error() + ")"
		}
		info = target
	}
	switch {
	case !info.Mode().IsRegular():
		return "not a regular file (" + info.Mode().Type().String() + ")"
	case info.Size() > maxPolicyFile:
		return fmt.Sprintf("%d bytes, more than %d", info.Size(), maxPolicyFile)
	}
	return ""
}

func statPath(fsys fs.FS, p string) (fs.FileInfo, error) {
	if fsys != nil {
		return fs.Stat(fsys, p)
	}
	return os.Stat(p)
}

// newStore holds the data documents as AST values: by default the in-memory
// store keeps Go values and converts the part a policy reads into AST on
// every read, in every evaluation (a policy reading data.countersign.github
// paid that conversion for each request).
func newStore(docs map[string]any) storage.Store {
	return inmem.NewFromObjectWithOpts(docs, inmem.OptReturnASTValuesOnRead(true))
}

// compile loads, compiles and prepares a policy set. Errors carry OPA's
// file:line messages.
func compile(ctx context.Context, src Source, fsys fs.FS) (*set, error) {
	if err := src.validate(); err != nil {
		return nil, err
	}
	modules, raw, docs, err := loadFiles(src, excludeTestsAndHidden, fsys)
	if err != nil {
		return nil, err
	}
	return compileModules(ctx, src, modules, raw, docs)
}

// compileModules compiles and prepares loaded policy modules (no tests).
func compileModules(ctx context.Context, src Source, modules map[string]*ast.Module, raw map[string][]byte, docs map[string]any) (*set, error) {
	if !declaresPackage(modules, Package) {
		return nil, fmt.Errorf("no policy module declares `package %s` (in %s); countersign evaluates data.%s.deny, .approve and .allow", Package, strings.Join(src.Paths, ", "), Package)
	}

	// Data that collides with a rule (countersign/data.json holding "deny"
	// next to a deny rule) is a compile error, as in `opa run` and in
	// RunTests; without the check the data would be silently shadowed.
	store := newStore(docs)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("open policy store: %w", err)
	}
	caps := Capabilities()
	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithEnablePrintStatements(false).
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn))
	compiler.Compile(modules)
	store.Abort(ctx, txn)
	if compiler.Failed() {
		return nil, compiler.Errors
	}

	query, err := rego.New(
		rego.Query(decisionQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
		rego.Capabilities(caps),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy query: %w", err)
	}

	files := make([]string, 0, len(modules))
	for name := range modules {
		files = append(files, name)
	}
	slices.Sort(files)

	return &set{
		compiler:     compiler,
		store:        store,
		query:        query,
		revision:     revision(files, raw, docs),
		definesAllow: definesRule(modules, Package, "allow"),
		cache:        newDecisionCache(planCache(compiler)),
		files:        files,
	}, nil
}

func declaresPackage(modules map[string]*ast.Module, pkg string) bool {
	want := ast.MustParseRef("data." + pkg)
	for _, m := range modules {
		if m.Package.Path.Equal(want) {
			return true
		}
	}
	return false
}

func definesRule(modules map[string]*ast.Module, pkg, rule string) bool {
	want := ast.MustParseRef("data." + pkg)
	for _, m := range modules {
		if !m.Package.Path.Equal(want) {
			continue
		}
		for _, r := range m.Rules {
			if r.Head.Name.String() == rule || (len(r.Head.Reference) > 0 && r.Head.Reference[0].Value.Compare(ast.Var(rule)) == 0) {
				return true
			}
		}
	}
	return false
}

// revision is a short, stable hash of the policy set: module names and bytes
// plus the data documents.
func revision(files []string, raw map[string][]byte, docs map[string]any) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(raw[f]))
		h.Write(raw[f])
	}
	// encoding/json sorts map keys, so this is deterministic.
	b, _ := json.Marshal(docs)
	h.Write(b)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
