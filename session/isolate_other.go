//go:build !linux

package session

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"
)

// Isolated is a child running under [StartIsolated]; on this system there
// is none.
type Isolated struct{}

// StartIsolated returns [ErrIsolationUnsupported]: only Linux has the
// namespaces --isolate needs.
func StartIsolated(context.Context, IsolateOptions, *zap.Logger) (*Isolated, error) {
	return nil, ErrIsolationUnsupported
}

// Signal does nothing.
func (*Isolated) Signal(os.Signal) error { return ErrIsolationUnsupported }

// Wait returns [ErrIsolationUnsupported].
func (*Isolated) Wait() (int, error) { return 1, ErrIsolationUnsupported }

// IsolateInit exists only on Linux.
func IsolateInit() int {
	fmt.Fprintln(os.Stderr, "countersign:", ErrIsolationUnsupported)
	return 2
}

func userNSHint() string { return "user namespaces need Linux" }

// InOwnGroup reports false.
func (*Isolated) InOwnGroup() bool { return false }
