//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The Kubernetes API server of these tests; newWorld resolves it to the
// fake (internal/testinfra/fake_kubernetes.go).
const kubeHost = "k8s.example.test"

const kubePolicy = `package countersign

deny contains {"id": "K8S-001", "msg": "deleting namespaces is not allowed"} if {
	input.action.provider == "kubernetes"
	input.action.operation == "delete"
	input.action.resource == "namespaces"
}

deny contains {"id": "K8S-002", "msg": "exec into pods is not allowed"} if {
	input.action.provider == "kubernetes"
	input.action.subresource in {"exec", "attach", "portforward"}
}

deny contains {"id": "K8S-003", "msg": "deleting in drone is not allowed"} if {
	input.action.provider == "kubernetes"
	input.action.namespace == "drone"
	input.action.destructive
	not input.action.dry_run
}
`

// kubeWorld is a world with a kubeconfig for kubectl: token auth against
// https://k8s.example.test, trusting the countersign CA (kubectl trusts only
// the kubeconfig's certificate-authority for a cluster that has one, not
// SSL_CERT_FILE).
func kubeWorld(t *testing.T, extraConfig string) (*world, string) {
	t.Helper()
	w := newWorld(t, kubePolicy, extraConfig, kubeHost)
	if r := w.run("ca", "init"); r.code != 0 {
		t.Fatalf("countersign ca init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	kubeconfig := filepath.Join(w.dir, "kubeconfig")
	mustWrite(t, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://%s
    certificate-authority: %s
users:
- name: agent
  user:
    token: fake-token-for-tests
contexts:
- name: test
  context: {cluster: test, user: agent, namespace: default}
current-context: test
`, kubeHost, filepath.Join(w.stateDir, "ca.pem")))
	return w, kubeconfig
}

func (w *world) kubectl(kubeconfig string, args ...string) result {
	w.t.Helper()
	return w.run(append([]string{"run", "--", "kubectl", "--kubeconfig", kubeconfig}, args...)...)
}

func TestKubectlGetAllowedDeleteNamespaceDenied(t *testing.T) {
	// The host is detected by path shape here; TestKubectlConfiguredHost
	// covers kubernetes.hosts.
	w, kc := kubeWorld(t, "")

	get := w.kubectl(kc, "get", "pods", "-n", "default")
	if get.code != 0 || !strings.Contains(get.stdout, "web") {
		t.Fatalf("kubectl get pods: code %d\nstdout %s\nstderr %s", get.code, get.stdout, get.stderr)
	}
	if n := w.up.Count("GET", "/api/v1/namespaces/default/pods"); n != 1 {
		t.Errorf("upstream saw %d pod lists, want 1", n)
	}

	del := w.kubectl(kc, "delete", "namespace", "prod")
	const line = "Error from server (Forbidden): countersign: denied by policy K8S-001: deleting namespaces is not allowed."
	if del.code == 0 || !strings.Contains(del.stderr, line) {
		t.Fatalf("kubectl delete namespace prod: code %d, want kubectl's Forbidden line %q\nstdout %s\nstderr %s", del.code, line, del.stdout, del.stderr)
	}
	t.Logf("kubectl delete namespace prod printed: %s", strings.TrimSpace(del.stderr))
	if n := w.up.Count("DELETE", ""); n != 0 {
		t.Errorf("upstream saw %d DELETEs, want 0", n)
	}
	audit := w.auditLog()
	if !strings.Contains(audit, `"verb":"delete"`) || !strings.Contains(audit, "K8S-001") {
		t.Errorf("the audit log lacks the classified, denied delete")
	}
	if strings.Contains(audit, "fake-token-for-tests") {
		t.Error("the bearer token is in the audit log")
	}
}

func TestKubectlConfiguredHost(t *testing.T) {
	w, kc := kubeWorld(t, "kubernetes:\n  hosts: [\""+kubeHost+"\"]\n")

	// /version has no Kubernetes-only path shape: it is classified as
	// Kubernetes only because the host is configured.
	v := w.kubectl(kc, "version")
	if v.code != 0 || !strings.Contains(v.stdout, "Server Version: v1.32.0") {
		t.Fatalf("kubectl version: code %d\nstdout %s\nstderr %s", v.code, v.stdout, v.stderr)
	}
	if !strings.Contains(w.auditLog(), `"path":"/version"`) {
		t.Errorf("GET /version was not classified as a Kubernetes request:\n%s", w.auditLog())
	}

	// Deletes in drone are denied, dry runs are not.
	del := w.kubectl(kc, "delete", "deployment", "web", "-n", "drone")
	if del.code == 0 || !strings.Contains(del.stderr, "Error from server (Forbidden): countersign: denied by policy K8S-003") {
		t.Fatalf("kubectl delete deployment: code %d\nstdout %s\nstderr %s", del.code, del.stdout, del.stderr)
	}
	dry := w.kubectl(kc, "delete", "deployment", "web", "-n", "drone", "--dry-run=server")
	if dry.code != 0 || !strings.Contains(dry.stdout, `deployment.apps "web" deleted (server dry run)`) {
		t.Fatalf("kubectl delete --dry-run=server: code %d\nstdout %s\nstderr %s", dry.code, dry.stdout, dry.stderr)
	}
	if n := w.up.Count("DELETE", "/apis/apps/v1/namespaces/drone/deployments/web"); n != 1 {
		t.Errorf("upstream saw %d deployment DELETEs, want only the dry run", n)
	}
}

func TestKubectlExecDenied(t *testing.T) {
	w, kc := kubeWorld(t, "")
	// kubectl ≥1.30 asks with a WebSocket GET, and falls back to a SPDY POST
	// when the upgrade fails; both must be denied and neither may arrive.
	r := w.kubectl(kc, "exec", "web", "-n", "default", "--", "cat", "/etc/secret")
	if r.code == 0 || !strings.Contains(r.stderr, "countersign: denied by policy K8S-002: exec into pods is not allowed") {
		t.Fatalf("kubectl exec: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("kubectl exec printed: %s", strings.TrimSpace(r.stderr))
	if n := w.up.Count("", "/api/v1/namespaces/default/pods/web/exec"); n != 0 {
		t.Errorf("upstream saw %d exec requests, want 0", n)
	}
	audit := w.auditLog()
	for _, method := range []string{"GET", "POST"} {
		if !strings.Contains(audit, `"method":"`+method+`","url":"https://`+kubeHost+`/api/v1/namespaces/default/pods/web/exec?`) {
			t.Errorf("the audit log has no %s exec request (WebSocket GET, then SPDY POST fallback)", method)
		}
	}
	if n := w.up.Count("GET", "/api/v1/namespaces/default/pods/web"); n != 1 {
		t.Errorf("upstream saw %d pod GETs, want kubectl's 1 before exec", n)
	}
}
