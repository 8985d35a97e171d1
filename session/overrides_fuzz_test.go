package session

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzClientConfig feeds one file as ~/.curlrc, ~/.wgetrc and
// ~/.kube/config: reading them never panics, every override names a line
// of the file, and a proxy password in a URL is never shown.
func FuzzClientConfig(f *testing.F) {
	for _, seed := range []string{
		"noproxy = \"*\"\n",
		"# curl defaults\n--silent\n-x http://u:s3cr3t-fuzz@proxy.example:3128\nproxy: \"http://p.example\\\"x\"\n",
		"use_proxy = off\nno_proxy = .corp.example,localhost\nhttps_proxy = http://u:s3cr3t-fuzz@proxy.example:3128/\n",
		"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: LS0t\n    server: https://127.0.0.1:6443\n    proxy-url: http://u:s3cr3t-fuzz@proxy.example:3128\n  name: kind-kind\ncontexts:\n- context: {cluster: kind-kind, user: kind-kind}\n  name: kind-kind\ncurrent-context: kind-kind\n",
		"clusters: [{name: a, cluster: {proxy-url: [1, 2]}}, {name: b, cluster: 7}]\n",
		"-xhttp://h:1\n\"unterminated\n-",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		home := t.TempDir()
		for _, p := range []string{".curlrc", ".wgetrc", filepath.Join(".kube", "config")} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(home, p)), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, p), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		overrides, _ := ProxyOverrides([]string{"HOME=" + home, "WGETRC=" + filepath.Join(home, ".wgetrc")})
		for _, o := range overrides {
			if o.Line < 0 || o.Line > lines {
				t.Errorf("override %v: line %d of a %d-line file", o, o.Line, lines)
			}
			if bytes.Contains(data, []byte("://u:s3cr3t-fuzz@")) && strings.Contains(o.String(), "://u:s3cr3t-fuzz@") {
				t.Errorf("override %v shows the proxy password", o)
			}
		}
	})
}
