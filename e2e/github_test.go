//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// githubPolicy denies by GitHub operationId and by what the classifier read
// from the body, never by raw method or path.
const githubPolicy = `package countersign

deny contains {"id": "GH-001", "msg": "agents may not delete repositories"} if {
	input.action.provider == "github"
	input.action.operation == "repos/delete"
}

deny contains {"id": "GH-002", "msg": "agents may not make repositories public"} if {
	input.action.provider == "github"
	input.action.public_exposure
}

deny contains {"id": "GH-003", "msg": "agents may not delete refs"} if {
	input.action.provider == "github"
	"deleteRef" in input.action.fields
}
`

// gh runs the real gh CLI through countersign run, with a fake token for
// api.github.com and no prompts or update checks.
func (w *world) gh(args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), time.Minute)
	defer cancel()
	c := w.cmd(ctx, append([]string{"run", "--", "gh"}, args...)...)
	c.Env = append(c.Env,
		"GH_TOKEN=ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE",
		"GH_NO_UPDATE_NOTIFIER=1", "GH_PROMPT_DISABLED=1", "NO_COLOR=1", "GH_PAGER=cat")
	return runCmd(w.t, c)
}

func TestGitHubGhAPIDeleteRepoDenied(t *testing.T) {
	w := newWorld(t, githubPolicy, "")

	r := w.gh("api", "repos/acme/shop")
	if r.code != 0 || !strings.Contains(r.stdout, `"full_name":"acme/shop"`) {
		t.Fatalf("gh api repos/acme/shop: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("GET", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d GETs of the repository, want 1", n)
	}

	r = w.gh("api", "-X", "DELETE", "repos/acme/shop")
	const want = "gh: countersign: denied by policy GH-001: agents may not delete repositories."
	if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "(HTTP 403)") {
		t.Fatalf("gh api -X DELETE did not show the reason: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("gh printed:\n%s", r.stderr)
	if n := w.up.Count("DELETE", ""); n != 0 {
		t.Errorf("upstream saw %d DELETEs, want 0", n)
	}
	log := w.auditLog()
	for _, s := range []string{`"operation":"repos/delete"`, `"GH-001"`} {
		if !strings.Contains(log, s) {
			t.Errorf("audit log lacks %s:\n%s", s, log)
		}
	}
}

// INCIDENTS #5: the Nx malware flipped private repositories to public.
func TestGitHubGhRepoEditVisibilityPublicDenied(t *testing.T) {
	w := newWorld(t, githubPolicy, "")
	r := w.gh("repo", "edit", "acme/shop", "--visibility", "public")
	if r.code == 0 || !strings.Contains(r.stderr, "countersign: denied by policy GH-002: agents may not make repositories public") {
		t.Fatalf("gh repo edit --visibility public was not denied with the reason: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("gh printed:\n%s", r.stderr)
	if n := w.up.Count("PATCH", "/repos/acme/shop"); n != 0 {
		t.Errorf("upstream saw %d PATCHes, want 0", n)
	}

	// A description change is not exposure and goes through.
	r = w.gh("api", "-X", "PATCH", "repos/acme/shop", "-f", "description=shop front end")
	if r.code != 0 {
		t.Fatalf("gh api -X PATCH description: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("PATCH", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d PATCHes, want 1", n)
	}
}

func TestGitHubGhAPIGraphQL(t *testing.T) {
	w := newWorld(t, githubPolicy, "")
	r := w.gh("api", "graphql", "-f", "query=query{viewer{login}}")
	if r.code != 0 || !strings.Contains(r.stdout, `"login": "octocat"`) && !strings.Contains(r.stdout, `"login":"octocat"`) {
		t.Fatalf("gh api graphql viewer: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", "/graphql"); n != 1 {
		t.Errorf("upstream saw %d GraphQL requests, want 1", n)
	}

	r = w.gh("api", "graphql", "-f", "query=mutation($id:ID!){deleteRef(input:{refId:$id}){clientMutationId}}", "-f", "id=REF_kwDOAbc")
	if r.code == 0 || !strings.Contains(r.stderr, "countersign: denied by policy GH-003: agents may not delete refs") {
		t.Fatalf("gh api graphql deleteRef was not denied with the reason: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("gh printed:\n%s", r.stderr)
	if n := w.up.Count("POST", "/graphql"); n != 1 {
		t.Errorf("upstream saw %d GraphQL requests, want 1 (the mutation must not arrive)", n)
	}
	if log := w.auditLog(); !strings.Contains(log, `"provider":"github"`) || !strings.Contains(log, `"operation":"deleteRef"`) {
		t.Errorf("audit log lacks the GitHub GraphQL action:\n%s", log)
	}
}
