//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package audit

import (
	"errors"
	"path/filepath"
	"testing"
)

// A second writer on one log is refused while the first holds it, and
// welcome once it is closed.
func TestOpenLocksFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	first := openTestLog(t, Options{Path: path})
	if second, err := Open(Options{Path: path}, nil); !errors.Is(err, ErrInUse) {
		if second != nil {
			_ = second.Close()
		}
		t.Fatalf("second Open() error = %v, want ErrInUse", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openTestLog(t, Options{Path: path})
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
}
