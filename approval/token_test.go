package approval

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "admin-token")
	tok, err := LoadOrCreateToken(path)
	if err != nil {
		t.Fatalf("LoadOrCreateToken() error = %v", err)
	}
	raw, err := hex.DecodeString(tok)
	if err != nil || len(raw) < 32 {
		t.Errorf("token %q: %d bytes of hex (err %v), want at least 32 (256 bits)", tok, len(raw), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("token file mode = %v, want 0600", perm)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode = %v (%v), want 0700", di.Mode().Perm(), err)
	}

	if entries, err := os.ReadDir(filepath.Dir(path)); err != nil || len(entries) != 1 {
		t.Errorf("state directory holds %v (%v), want only the token file", entries, err)
	}

	again, err := LoadOrCreateToken(path)
	if err != nil || again != tok {
		t.Errorf("second LoadOrCreateToken() = %q, %v; want the same token %q", again, err, tok)
	}
	read, err := ReadToken(path)
	if err != nil || read != tok {
		t.Errorf("ReadToken() = %q, %v; want %q", read, err, tok)
	}
}

func TestLoadOrCreateTokenFresh(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateToken(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateToken(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two new token files hold the same token")
	}
}

func TestLoadOrCreateTokenRefuses(t *testing.T) {
	long := strings.Repeat("ab", 32)
	tests := []struct {
		name        string
		content     string
		mode        fs.FileMode
		wantErr     bool
		wantMessage string
	}{
		{name: "0600", content: long + "\n", mode: 0o600},
		{name: "0400", content: long, mode: 0o400},
		{name: "group readable", content: long, mode: 0o640, wantErr: true, wantMessage: "chmod 600"},
		{name: "world readable", content: long, mode: 0o604, wantErr: true, wantMessage: "chmod 600"},
		{name: "group writable", content: long, mode: 0o620, wantErr: true, wantMessage: "chmod 600"},
		{name: "0644", content: long, mode: 0o644, wantErr: true, wantMessage: "chmod 600"},
		{name: "too short", content: strings.Repeat("a", 31) + "\n", mode: 0o600, wantErr: true, wantMessage: "too short"},
		{name: "empty", content: "", mode: 0o600, wantErr: true, wantMessage: "too short"},
		{name: "only space", content: strings.Repeat(" ", 40), mode: 0o600, wantErr: true, wantMessage: "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin-token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			tok, err := LoadOrCreateToken(path)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("LoadOrCreateToken() = %q, %v; want error %v", tok, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMessage) {
					t.Errorf("error %q, want it to say %q", err, tt.wantMessage)
				}
				if b, _ := os.ReadFile(path); string(b) != tt.content {
					t.Errorf("a refused token file was rewritten to %q", b)
				}
				return
			}
			if tok != strings.TrimSpace(tt.content) {
				t.Errorf("LoadOrCreateToken() = %q, want %q", tok, strings.TrimSpace(tt.content))
			}
		})
	}
}

// Two processes starting at once share one token: neither reads the other's
// half-written file.
func TestLoadOrCreateTokenConcurrent(t *testing.T) {
	for i := range 50 {
		path := filepath.Join(t.TempDir(), "admin-token")
		const n = 8
		toks := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range n {
			wg.Go(func() {
				<-start
				toks[j], errs[j] = LoadOrCreateToken(path)
			})
		}
		close(start)
		wg.Wait()
		for j := range n {
			if errs[j] != nil {
				t.Fatalf("round %d: LoadOrCreateToken() error = %v", i, errs[j])
			}
			if toks[j] != toks[0] {
				t.Fatalf("round %d: tokens differ: %q and %q", i, toks[0], toks[j])
			}
		}
	}
}

func TestReadTokenMissing(t *testing.T) {
	_, err := ReadToken(filepath.Join(t.TempDir(), "admin-token"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadToken(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestTokenEqual(t *testing.T) {
	tests := []struct {
		got, want string
		equal     bool
	}{
		{"abc", "abc", true},
		{"abd", "abc", false},
		{"ab", "abc", false},
		{"abcd", "abc", false},
		{"", "abc", false},
	}
	for _, tt := range tests {
		if got := tokenEqual(tt.got, tt.want); got != tt.equal {
			t.Errorf("tokenEqual(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.equal)
		}
	}
}
