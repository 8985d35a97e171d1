//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package mitm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A CA key that belongs to another user is refused: planted in a shared
// state directory, it would be theirs (found by review). Changing a file's
// owner needs root, as CI runs; elsewhere only the lock is checked.
func TestLoadRefusesAKeyOfAnotherUser(t *testing.T) {
	_, certPath, keyPath := newTestCA(t, fixedNow)
	if os.Geteuid() == 0 {
		if err := os.Chown(keyPath, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(certPath, keyPath); err == nil || !strings.Contains(err.Error(), "belongs to another user") {
			t.Errorf("Load of a key owned by uid 65534 = %v, want it refused", err)
		}
	}

	// The lock is not taken through a planted link.
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "created-by-lock")
	if err := os.Symlink(target, filepath.Join(dir, ".ca.lock")); err != nil {
		t.Fatal(err)
	}
	_, _, _ = LoadOrCreate(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), fixedNow)
	if _, err := os.Lstat(target); err == nil {
		t.Error("the lock was created through a planted link")
	}
}
