//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeMajor is the major version of the node on PATH.
func nodeMajor(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "-p", "process.versions.node.split('.')[0]").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// doctor checks every client the suite installs through a proxy of its
// own; nothing reaches any upstream.
func TestDoctorChecksTheClients(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	r := w.run("doctor")
	for _, c := range []string{"curl", "git", "aws", "kubectl", "gh", "python", "go"} {
		if !regexp.MustCompile(`(?m)^  ` + c + `\s+ok\s+uses the proxy and trusts the countersign CA$`).MatchString(r.stdout) {
			t.Errorf("doctor does not report %s as ok:\n%s%s", c, r.stdout, r.stderr)
		}
	}
	// Node's fetch uses the proxy variables from Node 24 on.
	wantCode := 0
	nodeLine := regexp.MustCompile(`(?m)^  node\s+ok\s+uses the proxy`)
	if nodeMajor(t) < 24 {
		wantCode = 1
		nodeLine = regexp.MustCompile(`(?m)^  node\s+FAIL\s+does not use the proxy; hint: Node's fetch reads HTTPS_PROXY from Node 24 on`)
	}
	if !nodeLine.MatchString(r.stdout) {
		t.Errorf("doctor's node line does not match %s:\n%s", nodeLine, r.stdout)
	}
	if r.code != wantCode {
		t.Errorf("doctor exit code %d, want %d\n%s%s", r.code, wantCode, r.stdout, r.stderr)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("an upstream saw %d requests during doctor", n)
	}
}

// doctor -- CMD reports, per host, how CMD's requests arrived; they are
// refused, so nothing is sent.
func TestDoctorReportsHowCMDArrives(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	otherCA := filepath.Join(w.dir, "upstream-ca.pem")
	tests := []struct {
		name string
		cmd  []string
		want string
	}{
		{"trusted", []string{"curl", "-sS", "https://api.github.com/repos/acme/shop"},
			`(?m)^  ok\s+api\.github\.com\s+through the proxy, trusts the CA \(requests: 1, refused by doctor\)$`},
		{"another CA", []string{"curl", "-sS", "--cacert", otherCA, "https://api.github.com/repos/acme/shop"},
			`(?m)^  FAIL\s+api\.github\.com\s+through the proxy, but the TLS handshake with the client failed \(does the client trust the countersign CA\?\)$`},
		{"no proxy", []string{"curl", "-sS", "--noproxy", "*", "https://api.github.com.invalid/"},
			`(?m)^  FAIL  no request came through the proxy`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.run(append([]string{"doctor", "--"}, tt.cmd...)...)
			if !regexp.MustCompile(tt.want).MatchString(r.stdout) {
				t.Errorf("doctor -- %s: output does not match %s:\n%s%s", strings.Join(tt.cmd, " "), tt.want, r.stdout, r.stderr)
			}
			if tt.name != "trusted" && r.code != 1 {
				t.Errorf("doctor exit code %d, want 1", r.code)
			}
		})
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("an upstream saw %d requests during doctor", n)
	}
}

// Settings in the user's own client configuration that the proxy
// variables cannot override (a kubeconfig's proxy-url, ~/.curlrc's
// noproxy) fail doctor, and `run` warns about them and records them with
// the session.
func TestClientProxySettingsAreReported(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	home := filepath.Join(w.dir, "home")
	mustWrite(t, filepath.Join(home, ".kube", "config"), `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example.test:6443
    proxy-url: http://ops:hunter2-proxy-pass@corp-proxy.example.test:3128
`)
	mustWrite(t, filepath.Join(home, ".curlrc"), "noproxy = \"*\"\n")

	r := w.run("doctor")
	if r.code != 1 {
		t.Errorf("doctor exit code %d, want 1", r.code)
	}
	for _, want := range []string{
		`(?m)^  curl\s+FAIL\s+does not use the proxy; hint: check ~/\.curlrc`,
		`(?m)^client configuration \(preferred to the proxy variables\):$`,
		`(?m)^  FAIL  \S+/home/\.kube/config:7: cluster "prod" proxy-url http://ops:\[redacted\]@corp-proxy\.example\.test:3128: kubectl sends that cluster's requests to`,
		`(?m)^  FAIL  \S+/home/\.curlrc:1: noproxy \*: curl connects directly to every host, around countersign$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("doctor's output does not match %s:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	r = w.run("run", "--", "true")
	if r.code != 0 {
		t.Fatalf("run exit code %d:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "countersign: warning: these settings send some of the agent's requests around countersign") ||
		!strings.Contains(r.stderr, `cluster "prod" proxy-url`) || !strings.Contains(r.stderr, ".curlrc:1: noproxy *") {
		t.Errorf("run does not warn about the settings:\n%s", r.stderr)
	}
	log := w.auditLog()
	if strings.Contains(log, "hunter2") || strings.Contains(r.stderr+r.stdout, "hunter2") {
		t.Error("the proxy password was recorded or shown")
	}
	started := regexp.MustCompile(`"detail":"started"[^\n]*"client_proxy_overrides":\[[^\n]*/home/\.kube/config:7: cluster \\"prod\\" proxy-url`)
	if !started.MatchString(log) {
		t.Errorf("the session's started record does not list the settings:\n%s", log)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("an upstream saw %d requests", n)
	}
}
