package approval

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateToken returns the admin token stored at path, creating a fresh
// 256-bit token (file mode 0600) when the file does not exist. A token file
// that others can read is refused: whoever holds the token can approve.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("admin token %s: %w", path, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("admin token %s is readable by others (mode %v); run: chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("admin token %s is too short; delete it and countersign will create a new one", path)
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return "", fmt.Errorf("read admin token %s: %w", path, err)
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create state directory for admin token: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	tok := hex.EncodeToString(raw)
	// The token is written to a temporary file (created 0600) and then
	// linked into place. Link, unlike rename, fails if the path exists, so
	// the token file appears whole or not at all: a second countersign that
	// starts at the same moment reads a complete token, never an empty file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*")
	if err != nil {
		return "", fmt.Errorf("create admin token %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write admin token %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write admin token %s: %w", path, err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		// Another countersign process created it first: use theirs.
		return LoadOrCreateToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("create admin token %s: %w", path, err)
	}
	return tok, nil
}

// ReadToken reads an existing admin token without creating one.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w (is countersign running with this state_dir?)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
