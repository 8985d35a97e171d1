//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/testinfra"
)

// gitPolicy protects main the way INCIDENTS #6 asks: no update, force
// push or deletion of refs/heads/main, whatever the rest of the push, and
// no push whose ref updates could not all be read.
const gitPolicy = `package countersign

deny contains {"id": "GIT-001", "msg": "changing main is not allowed; push a branch and open a pull request"} if {
	input.action.provider == "git"
	some u in input.action.updates
	u.ref == "refs/heads/main"
}

deny contains {"id": "GIT-002", "msg": "the push's ref updates could not be read"} if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	input.action.parse_error
}

deny contains {"id": "GIT-003", "msg": "the secret repository may not be read"} if {
	input.action.provider == "git"
	input.action.repo == "secret"
}
`

const receivePackPath = "/repo.git/git-receive-pack"

// gitIn runs git outside countersign (local work: commits, branches).
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command("git", append([]string{"-C", dir}, args...)...)
	c.Env = append(c.Environ(), testinfra.GitIdentity()...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestGitPushBranchAllowedMainProtected(t *testing.T) {
	w := newWorld(t, gitPolicy, "")
	bare := filepath.Join(w.gitRoot, "repo.git")
	clone := filepath.Join(w.dir, "clone")
	if r := w.run("run", "--", "git", "clone", "-q", "https://git.example.test/repo.git", clone); r.code != 0 {
		t.Fatalf("git clone through countersign: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mainBefore := gitIn(t, bare, "rev-parse", "refs/heads/main")

	// A feature branch is pushed: it reaches the upstream and lands.
	gitIn(t, clone, "checkout", "-q", "-b", "feature")
	gitIn(t, clone, "commit", "-q", "--allow-empty", "-m", "agent feature")
	r := w.run("run", "--", "git", "-C", clone, "push", "origin", "feature")
	if r.code != 0 {
		t.Fatalf("git push origin feature: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", receivePackPath); n != 1 {
		t.Fatalf("upstream saw %d receive-pack POSTs after the allowed push, want 1", n)
	}
	if got, want := gitIn(t, bare, "rev-parse", "refs/heads/feature"), gitIn(t, clone, "rev-parse", "HEAD"); got != want {
		t.Errorf("upstream feature is %s, want %s", got, want)
	}

	// Pushes that change main are refused with git's own "remote rejected"
	// line and the policy's reason, and never reach the upstream.
	gitIn(t, clone, "checkout", "-q", "main")
	gitIn(t, clone, "commit", "-q", "--allow-empty", "-m", "agent change on main")
	const reason = "(countersign: denied by policy GIT-001: changing main is not allowed; push a branch and open a pull request."
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "update", args: []string{"push", "origin", "main"}, want: " ! [remote rejected] main -> main " + reason},
		{name: "force", args: []string{"push", "--force", "origin", "feature:main"}, want: " ! [remote rejected] feature -> main " + reason},
		{name: "delete", args: []string{"push", "origin", ":main"}, want: " ! [remote rejected] main " + reason},
		{name: "among other refs", args: []string{"push", "origin", "main", "main:refs/heads/other"}, want: " ! [remote rejected] main -> other " + reason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infoRefs := w.up.Count("GET", "/repo.git/info/refs")
			r := w.run(append([]string{"run", "--", "git", "-C", clone}, tt.args...)...)
			t.Logf("git %s:\n%s", strings.Join(tt.args, " "), r.stderr)
			if r.code == 0 {
				t.Fatalf("git %s succeeded:\n%s%s", strings.Join(tt.args, " "), r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("git %s does not show the reason; want %q in\n%s", strings.Join(tt.args, " "), tt.want, r.stderr)
			}
			if n := w.up.Count("POST", receivePackPath); n != 1 {
				t.Errorf("upstream saw %d receive-pack POSTs, want still 1", n)
			}
			// The ref advertisement git asks for first carries no updates:
			// it is allowed, and only the push itself is refused.
			if n := w.up.Count("GET", "/repo.git/info/refs"); n != infoRefs+1 {
				t.Errorf("upstream saw %d more info/refs GETs, want 1", n-infoRefs)
			}
			if got := gitIn(t, bare, "rev-parse", "refs/heads/main"); got != mainBefore {
				t.Errorf("upstream main moved from %s to %s", mainBefore, got)
			}
		})
	}
	if out := gitIn(t, bare, "for-each-ref", "--format=%(refname)"); strings.Contains(out, "refs/heads/other") {
		t.Errorf("part of a denied push landed: %s", out)
	}
	audit := w.auditLog()
	for _, s := range []string{`"GIT-001"`, `"refs/heads/main"`, `"kind":"delete"`} {
		if !strings.Contains(audit, s) {
			t.Errorf("audit log lacks %s", s)
		}
	}
}

func TestGitFetchDeniedShowsReason(t *testing.T) {
	w := newWorld(t, gitPolicy, "")
	if _, err := testinfra.NewBareRepo(w.gitRoot, "secret.git"); err != nil {
		t.Fatal(err)
	}
	r := w.run("run", "--", "git", "clone", "-q", "https://git.example.test/secret.git", filepath.Join(w.dir, "secret"))
	if r.code == 0 {
		t.Fatalf("git clone of a denied repository succeeded:\n%s%s", r.stdout, r.stderr)
	}
	const want = "fatal: remote error: countersign: denied by policy GIT-003: the secret repository may not be read."
	if !strings.Contains(r.stderr, want) {
		t.Errorf("git clone does not show the reason; want %q in\n%s", want, r.stderr)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}
