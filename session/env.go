package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// systemBundles are where common distributions keep the system CA bundle.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
	"/etc/ssl/cert.pem",                                 // macOS, Alpine
}

// WriteCABundle writes the system CA bundle followed by the countersign CA
// certificate to dir/ca-bundle.pem (mode 0644) and returns its path. Tools
// that take one bundle file (curl, git, Python requests, the AWS CLI) then
// trust both the real internet and countersign's interception. Only the CA
// certificate is written, never its key.
func WriteCABundle(dir string, caPEM []byte, extraRoots ...[]byte) (string, error) {
	var b bytes.Buffer
	for _, p := range systemBundles {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read system CA bundle %s: %w", p, err)
		}
		b.Write(data)
		if !bytes.HasSuffix(data, []byte("\n")) {
			b.WriteByte('\n')
		}
		break
	}
	for _, r := range extraRoots {
		b.Write(r)
		b.WriteByte('\n')
	}
	b.WriteString("# countersign local CA\n")
	b.Write(caPEM)
	path := filepath.Join(dir, "ca-bundle.pem")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	return path, nil
}

// EnvOptions describes what the child of `countersign run` is given.
type EnvOptions struct {
	// ProxyURL carries the session's credentials:
	// http://<session-id>:<password>@127.0.0.1:<port>.
	ProxyURL string
	// CABundle is the file written by WriteCABundle.
	CABundle string
	// CACert is the countersign CA certificate alone (for NODE_EXTRA_CA_CERTS,
	// which adds to Node's own roots).
	CACert    string
	SessionID string
	// NoProxy lists hosts the child may reach without the proxy; empty means
	// none (everything is decided by policy).
	NoProxy []string
	// GitProxyKeys are URL-specific proxy settings of git's configuration
	// (http.<url>.proxy, see GitURLProxies), which git prefers to
	// http.proxy: each is set to ProxyURL too.
	GitProxyKeys []string
}

// proxyVars are the variables Go, curl, git, Python, Node (with a proxy
// agent), the AWS CLI and most other clients read.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"}

// toolProxyVars are the proxy settings of package managers, which each
// tool prefers to HTTPS_PROXY: an inherited npm_config_https_proxy or
// PIP_PROXY would send that tool's traffic around countersign. npm reads
// its variables in any letter case, so inherited ones are dropped whatever
// their case (see caseless).
var toolProxyVars = []string{"npm_config_proxy", "npm_config_https_proxy", "PIP_PROXY", "CARGO_HTTP_PROXY", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY"}

// caseless are the variables some tool reads in any letter case.
func caseless(k string) bool { return strings.HasPrefix(strings.ToLower(k), "npm_config_") }

// caVars point every common runtime at the CA bundle.
var caVars = []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "NPM_CONFIG_CAFILE", "CARGO_HTTP_CAINFO", "HEX_CACERTS_PATH"}

// ChildEnv returns base with the proxy and CA variables of opts set and any
// inherited values of the same variables replaced, so an inherited NO_PROXY
// or SSL_CERT_DIR cannot route around or past countersign.
func ChildEnv(base []string, opts EnvOptions) []string {
	set := map[string]string{}
	for _, k := range proxyVars {
		set[k] = opts.ProxyURL
	}
	noProxy := strings.Join(opts.NoProxy, ",")
	set["NO_PROXY"] = noProxy
	set["no_proxy"] = noProxy
	for _, k := range caVars {
		set[k] = opts.CABundle
	}
	for _, k := range toolProxyVars {
		set[k] = opts.ProxyURL
	}
	set["npm_config_noproxy"] = noProxy
	set["NODE_EXTRA_CA_CERTS"] = opts.CACert
	// Node 24+ honours the proxy variables natively when this is set.
	set["NODE_USE_ENV_PROXY"] = "1"
	set["COUNTERSIGN_SESSION"] = opts.SessionID

	folded := map[string]bool{}
	for k := range set {
		if caseless(k) {
			folded[strings.ToLower(k)] = true
		}
	}
	// git prefers http.proxy from ~/.gitconfig to the environment; a
	// setting given in the environment (as by git -c) comes before both.
	gitConfig(base, set, "http.proxy", opts.ProxyURL)
	for _, k := range opts.GitProxyKeys {
		gitConfig(base, set, k, opts.ProxyURL)
	}

	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || folded[strings.ToLower(k)] {
			continue
		}
		// SSL_CERT_DIR would add roots behind our back but cannot remove
		// ours; drop it so SSL_CERT_FILE is the single source.
		if k == "SSL_CERT_DIR" {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range sortedKeys(set) {
		out = append(out, k+"="+set[k])
	}
	return out
}

// gitConfig adds key=value to the settings git reads from the environment
// (GIT_CONFIG_COUNT, GIT_CONFIG_KEY_n, GIT_CONFIG_VALUE_n, and
// GIT_CONFIG_PARAMETERS when base has one) in set, after any that base
// already holds.
func gitConfig(base []string, set map[string]string, key, value string) {
	n := 0
	if c, ok := set["GIT_CONFIG_COUNT"]; ok {
		n, _ = strconv.Atoi(c) // ours, added before
	} else {
		for _, kv := range base {
			if k, v, _ := strings.Cut(kv, "="); k == "GIT_CONFIG_COUNT" {
				if c, err := strconv.Atoi(v); err == nil && c > 0 && c < 1000 {
					n = c
				}
			}
		}
	}
	set["GIT_CONFIG_COUNT"] = strconv.Itoa(n + 1)
	set[fmt.Sprintf("GIT_CONFIG_KEY_%d", n)] = key
	set[fmt.Sprintf("GIT_CONFIG_VALUE_%d", n)] = value
	// Settings inherited from `git -c` (a hook, an alias, a wrapper) come
	// after those and would win: ours goes last among them.
	params, ok := set["GIT_CONFIG_PARAMETERS"]
	if !ok {
		for _, kv := range base {
			if k, v, _ := strings.Cut(kv, "="); k == "GIT_CONFIG_PARAMETERS" && strings.TrimSpace(v) != "" {
				params, ok = v, true
			}
		}
	}
	if ok {
		set["GIT_CONFIG_PARAMETERS"] = params + " " + shellQuote(key+"="+value) // the form every git reads
	}
}

// GitURLProxies lists the URL-specific proxy settings (http.<url>.proxy)
// of the git configuration env and dir see: git prefers them to
// http.proxy, so a corporate proxy set for one host in ~/.gitconfig would
// take that host's traffic around countersign. It returns nothing when git
// is not installed or says nothing in time.
func GitURLProxies(ctx context.Context, env []string, dir string) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "config", "-z", "--get-regexp", `^http\..+\.proxy$`)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.Output()
	if err != nil {
		return nil // none set (exit 1), no git, or no answer
	}
	var keys []string
	for entry := range strings.SplitSeq(string(out), "\x00") {
		// -z: "key\nvalue", entries NUL-terminated.
		if k, _, _ := strings.Cut(entry, "\n"); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// shellQuote quotes s as git writes GIT_CONFIG_PARAMETERS: in single
// quotes, each quote in s closing them, escaped, and opening them again.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
