package testinfra

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GitHTTP serves the bare repositories under root over git's smart HTTP
// protocol with the real `git http-backend`, pushes included.
func GitHTTP(root string) (http.Handler, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("find git's exec path (is git installed?): %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("git-http-backend: %w", err)
	}
	return &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}, nil
}

// NewBareRepo creates root/name (a bare repository that accepts pushes over
// HTTP) with one commit on main, and returns its path.
func NewBareRepo(root, name string) (string, error) {
	bare := filepath.Join(root, name)
	work, err := os.MkdirTemp("", "countersign-git-work-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	steps := [][]string{
		{"git", "init", "-q", "--bare", "-b", "main", bare},
		{"git", "-C", bare, "config", "http.receivepack", "true"},
		{"git", "init", "-q", "-b", "main", work},
		{"git", "-C", work, "commit", "-q", "--allow-empty", "-m", "initial"},
		{"git", "-C", work, "push", "-q", bare, "main"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Env = append(os.Environ(), GitIdentity()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	return bare, nil
}

// GitIdentity is an author and committer for test commits.
func GitIdentity() []string {
	return []string{
		"GIT_AUTHOR_NAME=Agent", "GIT_AUTHOR_EMAIL=agent@example.test",
		"GIT_COMMITTER_NAME=Agent", "GIT_COMMITTER_EMAIL=agent@example.test",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
	}
}
