package session

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRegistryAuthenticate(t *testing.T) {
	alice := &Info{ID: "s-alice", Name: "alice/claude"}
	anon := &Info{ID: "anonymous", Name: "anonymous"}
	tests := []struct {
		name          string
		reg           *Registry
		user, pass    string
		present, ok   bool
		wantSessionID string
	}{
		{"right password", NewRegistry(nil, Credential{"s-alice", "pw", alice}), "s-alice", "pw", true, true, "s-alice"},
		{"wrong password", NewRegistry(nil, Credential{"s-alice", "pw", alice}), "s-alice", "pW", true, false, ""},
		{"unknown user", NewRegistry(nil, Credential{"s-alice", "pw", alice}), "s-bob", "pw", true, false, ""},
		{"no credentials, no anonymous", NewRegistry(nil, Credential{"s-alice", "pw", alice}), "", "", false, false, ""},
		{"anonymous allowed when no clients", NewRegistry(anon), "", "", false, true, "anonymous"},
		{"anonymous refused once clients exist", NewRegistry(anon, Credential{"s-alice", "pw", alice}), "", "", false, false, ""},
		{"empty password never matches", NewRegistry(nil, Credential{"s-alice", "pw", alice}), "s-alice", "", true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := tt.reg.Authenticate(tt.user, tt.pass, tt.present)
			if ok != tt.ok {
				t.Fatalf("Authenticate(%q, %q, %v) ok = %v, want %v", tt.user, tt.pass, tt.present, ok, tt.ok)
			}
			if ok && s.ID != tt.wantSessionID {
				t.Errorf("session = %s, want %s", s.ID, tt.wantSessionID)
			}
		})
	}
}

func TestNewIDAndPasswordAreUniqueAndLongEnough(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, pw := NewID(), NewPassword()
		if !strings.HasPrefix(id, "s-") || len(pw) < 32 || seen[id] || seen[pw] {
			t.Fatalf("id %q password %q (len %d) not unique or too short", id, pw, len(pw))
		}
		seen[id], seen[pw] = true, true
	}
}

func TestDefaultName(t *testing.T) {
	for _, tt := range []struct{ user, cmd, want string }{
		{"alice", "/usr/local/bin/claude", "alice/claude"},
		{"alice", "aider", "alice/aider"},
		{"", "codex", "codex"},
	} {
		if got := DefaultName(tt.user, tt.cmd); got != tt.want {
			t.Errorf("DefaultName(%q, %q) = %q, want %q", tt.user, tt.cmd, got, tt.want)
		}
	}
}

func TestChildEnvReplacesInheritedProxyAndCAVariables(t *testing.T) {
	base := []string{
		"PATH=/usr/bin", "HOME=/home/a",
		"HTTPS_PROXY=http://elsewhere:3128", "no_proxy=*", "NO_PROXY=.internal",
		"SSL_CERT_FILE=/etc/other.pem", "SSL_CERT_DIR=/etc/ssl/certs", "NODE_EXTRA_CA_CERTS=/x.pem",
	}
	env := ChildEnv(base, EnvOptions{ProxyURL: "http://s-1:pw@127.0.0.1:4000", CABundle: "/tmp/b.pem", CACert: "/tmp/ca.pem", SessionID: "s-1"})
	get := func(k string) []string {
		var vs []string
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				vs = append(vs, v)
			}
		}
		return vs
	}
	want := map[string]string{
		"HTTP_PROXY": "http://s-1:pw@127.0.0.1:4000", "HTTPS_PROXY": "http://s-1:pw@127.0.0.1:4000",
		"http_proxy": "http://s-1:pw@127.0.0.1:4000", "https_proxy": "http://s-1:pw@127.0.0.1:4000",
		"NO_PROXY": "", "no_proxy": "",
		"SSL_CERT_FILE": "/tmp/b.pem", "REQUESTS_CA_BUNDLE": "/tmp/b.pem", "CURL_CA_BUNDLE": "/tmp/b.pem",
		"AWS_CA_BUNDLE": "/tmp/b.pem", "GIT_SSL_CAINFO": "/tmp/b.pem", "NODE_EXTRA_CA_CERTS": "/tmp/ca.pem",
		"COUNTERSIGN_SESSION": "s-1", "PATH": "/usr/bin", "HOME": "/home/a",
	}
	for k, v := range want {
		if got := get(k); !slices.Equal(got, []string{v}) {
			t.Errorf("%s = %q, want exactly [%q]", k, got, v)
		}
	}
	if got := get("SSL_CERT_DIR"); len(got) != 0 {
		t.Errorf("SSL_CERT_DIR kept: %q", got)
	}
}

func TestWriteCABundleHoldsSystemRootsAndOurCAButNoKey(t *testing.T) {
	dir := t.TempDir()
	ca := "-----BEGIN CERTIFICATE-----\nMIIBcountersign\n-----END CERTIFICATE-----\n"
	path, err := WriteCABundle(dir, []byte(ca))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != dir {
		t.Errorf("bundle written to %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), ca) {
		t.Error("bundle does not end with the countersign CA")
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Error("bundle contains a private key")
	}
	if strings.Count(string(b), "BEGIN CERTIFICATE") < 2 {
		t.Error("bundle has no system roots (is ca-certificates installed?)")
	}
}

// TestChildEnvOverridesToolProxySettings: package managers prefer their own
// proxy settings to HTTPS_PROXY, and git prefers http.proxy from
// ~/.gitconfig; inherited ones must not send the agent's traffic around
// countersign (found by review: npm, pip and cargo went to the inherited
// proxy).
func TestChildEnvOverridesToolProxySettings(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[http]\n\tproxy = http://corp.example:3128\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const corp, ours = "http://corp.example:3128", "http://s-1:pw@127.0.0.1:4000"
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"npm_config_https_proxy=" + corp, "NPM_CONFIG_PROXY=" + corp, "Npm_Config_Noproxy=registry.npmjs.org",
		"npm_config_cafile=/etc/other.pem", "PIP_PROXY=" + corp, "CARGO_HTTP_PROXY=" + corp, "YARN_HTTPS_PROXY=" + corp,
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=Alice",
	}
	env := ChildEnv(base, EnvOptions{ProxyURL: ours, CABundle: "/tmp/b.pem", CACert: "/tmp/ca.pem", SessionID: "s-1"})
	got := map[string][]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[strings.ToLower(k)] = append(got[strings.ToLower(k)], k+"="+v)
	}
	for _, want := range []string{
		"npm_config_https_proxy=" + ours, "npm_config_proxy=" + ours, "npm_config_noproxy=",
		"NPM_CONFIG_CAFILE=/tmp/b.pem", "PIP_PROXY=" + ours, "CARGO_HTTP_PROXY=" + ours, "YARN_HTTPS_PROXY=" + ours,
		"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_KEY_1=http.proxy", "GIT_CONFIG_VALUE_1=" + ours,
	} {
		k, _, _ := strings.Cut(want, "=")
		if vs := got[strings.ToLower(k)]; !slices.Equal(vs, []string{want}) {
			t.Errorf("%s in any case = %q, want exactly [%q]", k, vs, want)
		}
	}
	// git itself, with the inherited ~/.gitconfig, and with a proxy
	// inherited from `git -c` too (found by review: it won).
	gitProxy := func(env []string) string {
		t.Helper()
		cmd := exec.Command("git", "config", "--get", "http.proxy")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git config --get http.proxy: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := gitProxy(env); got != ours {
		t.Errorf("git's http.proxy = %q, want the session's proxy", got)
	}
	// A URL-specific proxy beats http.proxy in git, whatever the order
	// (found by review): it is overridden too.
	urlHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(urlHome, ".gitconfig"), []byte("[http \"https://github.com\"]\n\tproxy = "+corp+"\n[http \"https://gitlab.example.com/\"]\n\tproxy = "+corp+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	urlBase := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + urlHome}
	keys := GitURLProxies(t.Context(), urlBase, urlHome)
	if len(keys) != 2 {
		t.Fatalf("GitURLProxies = %q, want the two URL-specific settings", keys)
	}
	urlEnv := ChildEnv(urlBase, EnvOptions{ProxyURL: ours, CABundle: "/tmp/b.pem", CACert: "/tmp/ca.pem", SessionID: "s-1", GitProxyKeys: keys})
	for _, u := range []string{"https://github.com/acme/shop.git", "https://gitlab.example.com/acme/shop.git", "https://other.example/x.git"} {
		cmd := exec.Command("git", "config", "--get-urlmatch", "http.proxy", u)
		cmd.Env = urlEnv
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != ours {
			t.Errorf("git's proxy for %s = %q (%v), want the session's", u, out, err)
		}
	}
	if keys := GitURLProxies(t.Context(), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, t.TempDir()); len(keys) != 0 {
		t.Errorf("GitURLProxies with no such setting = %q", keys)
	}
	withParams := ChildEnv(append(slices.Clone(base), "GIT_CONFIG_PARAMETERS='http.proxy'='"+corp+"' 'user.email'='a@example.com'"),
		EnvOptions{ProxyURL: ours, CABundle: "/tmp/b.pem", CACert: "/tmp/ca.pem", SessionID: "s-1"})
	if got := gitProxy(withParams); got != ours {
		t.Errorf("git's http.proxy with an inherited git -c = %q, want the session's proxy", got)
	}
}
