// Package countersign holds the Rego sources that ship inside the binary: the
// helper library under rego/lib (importable by user policies as
// data.countersign.lib...) and the built-in default policy under rego/default,
// used when no policy is configured.
//
// The Go code lives in the sub-packages; this package exists only because
// the embed directive cannot reach a parent directory.
package countersign

import "embed"

// Rego is the embedded rego/ tree.
//
//go:embed rego/lib/*.rego rego/default/*.rego
var Rego embed.FS
