package session

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listener records whether anything connected to it; it answers nothing
// useful, so the client fails after connecting.
type listener struct {
	ln   net.Listener
	mu   sync.Mutex
	seen bool
}

func listen(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request line, then refuse: the client has shown
			// where it sends its requests.
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = bufio.NewReader(c).ReadByte()
			l.mu.Lock()
			l.seen = true
			l.mu.Unlock()
			_, _ = c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	return l
}

func (l *listener) addr() string { return l.ln.Addr().String() }

// reset forgets earlier connections, for the next case.
func (l *listener) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = false
}

func (l *listener) reached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen
}

// where runs a client that fetches http://target.invalid/ with the proxy
// variables pointing at env and says which listener it went to: "env",
// "other" or "direct" (neither: it looked the host up itself and failed).
func where(t *testing.T, home string, extra []string, args func(url string) []string, other *listener) string {
	t.Helper()
	other.reset()
	envProxy := listen(t)
	p := "http://" + envProxy.addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := args("http://target.invalid/")
	cmd := exec.CommandContext(ctx, a[0], a[1:]...)
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"http_proxy=" + p, "HTTP_PROXY=" + p, "https_proxy=" + p, "HTTPS_PROXY=" + p}, extra...)
	cmd.Dir = home
	_ = cmd.Run() // it fails in every case; where it went is the result
	switch {
	case envProxy.reached():
		return "env"
	case other.reached():
		return "other"
	default:
		return "direct"
	}
}

// scratchHome writes files (paths under a new home; "$H" in a content
// stands for the home) and returns the home and extra, NAME=path pairs
// whose paths are made absolute under it.
func scratchHome(t *testing.T, files map[string]string, extra []string) (string, []string) {
	t.Helper()
	home := t.TempDir()
	for p, content := range files {
		write(t, filepath.Join(home, p), strings.ReplaceAll(content, "$H", home))
	}
	env := make([]string, len(extra))
	for i, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[i] = k + "=" + filepath.Join(home, v)
	}
	return home, env
}

// checkReported checks that ProxyOverrides, for home and extra, reports
// want as the setting of the last override mine picks ("" none), without
// problems, and shows no password.
func checkReported(t *testing.T, home string, extra []string, want string, mine func(Override) bool) {
	t.Helper()
	overrides, problems := ProxyOverrides(append([]string{"HOME=" + home}, extra...))
	if len(problems) > 0 {
		t.Errorf("problems: %v", problems)
	}
	reported := ""
	for _, ov := range overrides {
		if mine(ov) {
			reported = ov.Setting
		}
		if strings.Contains(ov.String(), "s3cret") {
			t.Errorf("a password is shown: %v", ov)
		}
	}
	if reported != want {
		t.Errorf("reported %q, want %q (all: %v)", reported, want, overrides)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCurlOverridesAsCurlReadsThem checks the reading of ~/.curlrc against
// real curl: for each file, whether curl still used the proxy variables,
// and what ProxyOverrides reported.
func TestCurlOverridesAsCurlReadsThem(t *testing.T) {
	other := listen(t)
	o := other.addr()
	cases := []struct {
		name string
		// files maps a path under the scratch home to its content.
		files map[string]string
		extra []string
		// want is where curl went; report the Setting reported ("" none).
		want, report string
	}{
		{name: "no file", want: "env"},
		{name: "noproxy star", files: map[string]string{".curlrc": "noproxy = \"*\"\n"}, want: "direct", report: "noproxy *"},
		{name: "noproxy dashes", files: map[string]string{".curlrc": "--noproxy target.invalid\n"}, want: "direct", report: "noproxy target.invalid"},
		{name: "noproxy other host", files: map[string]string{".curlrc": "noproxy=elsewhere.invalid\n"}, want: "env", report: "noproxy elsewhere.invalid"},
		{name: "proxy colon quoted", files: map[string]string{".curlrc": "proxy: \"http://" + o + "\"\n"}, want: "other", report: "proxy http://" + o},
		{name: "short x", files: map[string]string{".curlrc": "-x http://" + o + "\n"}, want: "other", report: "x http://" + o},
		{name: "long indented", files: map[string]string{".curlrc": "  --proxy http://" + o + "\n"}, want: "other", report: "proxy http://" + o},
		{name: "dashed with equals is unknown to curl", files: map[string]string{".curlrc": "--proxy=http://" + o + "\n"}, want: "env"},
		{name: "undashed equals", files: map[string]string{".curlrc": "proxy=http://" + o + "\n"}, want: "other", report: "proxy http://" + o},
		{name: "credentials masked", files: map[string]string{".curlrc": "proxy = http://alice:s3cret-pass@" + o + "\n"}, want: "other", report: "proxy http://alice:[redacted]@" + o},
		{name: "socks5", files: map[string]string{".curlrc": "socks5-hostname = " + o + "\n"}, want: "other", report: "socks5-hostname " + o},
		{name: "commented", files: map[string]string{".curlrc": "# proxy = http://" + o + "\n  # noproxy *\n"}, want: "env"},
		// curl reads the first file that exists; which names it tries
		// changed between versions, so every one is reported.
		{name: "CURL_HOME first", files: map[string]string{"ch/.curlrc": "silent\n", ".curlrc": "noproxy *\n"},
			extra: []string{"CURL_HOME=ch"}, want: "env", report: "noproxy *"},
		{name: "XDG curlrc", files: map[string]string{"xdg/.curlrc": "noproxy *\n"},
			extra: []string{"XDG_CONFIG_HOME=xdg"}, want: "direct", report: "noproxy *"},
		{name: "HOME/.config/curlrc", files: map[string]string{".config/curlrc": "noproxy *\n"}, want: "direct", report: "noproxy *"},
		// Found by review: forms curl takes that were missed, and one it
		// does not that was reported.
		{name: "grouped short options", files: map[string]string{".curlrc": "-sx http://" + o + "\n"}, want: "other", report: "x http://" + o},
		{name: "-X is not -x", files: map[string]string{".curlrc": "-X POST\n"}, want: "env"},
		{name: "upper case", files: map[string]string{".curlrc": "PROXY = http://" + o + "\n"}, want: "other", report: "proxy http://" + o},
		{name: "abbreviated", files: map[string]string{".curlrc": "noprox *\n"}, want: "direct", report: "noproxy *"},
		{name: "ambiguous abbreviation", files: map[string]string{".curlrc": "pro http://" + o + "\n"}, want: "env"},
		{name: "vertical tab", files: map[string]string{".curlrc": "\vproxy = http://" + o + "\n"}, want: "other", report: "proxy http://" + o},
		{name: "form feed separator", files: map[string]string{".curlrc": "proxy\fhttp://" + o + "\n"}, want: "other", report: "proxy http://" + o},
		{name: "config include", files: map[string]string{".curlrc": "config = $H/inc\n", "inc": "noproxy *\n"}, want: "direct", report: "noproxy *"},
		{name: "-K include", files: map[string]string{".curlrc": "-K $H/inc\n", "inc": "noproxy *\n"}, want: "direct", report: "noproxy *"},
		{name: "preproxy", files: map[string]string{".curlrc": "preproxy = socks5://" + o + "\n"}, want: "other", report: "preproxy socks5://" + o},
		{name: "credentials without a scheme masked", files: map[string]string{".curlrc": "proxy = alice:s3cret-pass@" + o + "\n"}, want: "other", report: "proxy alice:[redacted]@" + o},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home, extra := scratchHome(t, c.files, c.extra)
			got := where(t, home, extra, func(u string) []string {
				return []string{"curl", "-sS", "--max-time", "10", "-o", "/dev/null", u}
			}, other)
			if got != c.want {
				t.Errorf("curl went %s, want %s", got, c.want)
			}
			checkReported(t, home, extra, c.report, func(ov Override) bool { return ov.Tool == "curl" })
		})
	}
}

// A file that includes itself many times is read once (found by review: it
// was read N^4 times).
func TestCurlIncludesAreReadOnce(t *testing.T) {
	home := t.TempDir()
	rc := filepath.Join(home, ".curlrc")
	write(t, rc, "noproxy *\n"+strings.Repeat("-K "+rc+"\n", 100))
	got, problems := ProxyOverrides([]string{"HOME=" + home})
	if len(problems) != 0 || len(got) != 1 {
		t.Errorf("got %d overrides (%v), problems %v; want the one setting once", len(got), got, problems)
	}
}

// Repeated keys in a kubeconfig, which kubectl takes (the last wins), do
// not hide a proxy-url (found by review).
func TestKubeconfigWithRepeatedKeys(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".kube", "config"), `users: []
clusters:
- name: prod
  cluster:
    server: https://prod
    proxy-url: http://127.0.0.1:1
users: []
`)
	got, problems := ProxyOverrides([]string{"HOME=" + home})
	if len(problems) != 0 || len(got) != 1 || got[0].Line != 6 {
		t.Errorf("got %v, problems %v; want prod's proxy-url at line 6", got, problems)
	}
}

// A FIFO where a configuration file would be is skipped, not opened (which
// would block run and doctor: found by review).
func TestProxyOverridesSkipsAFIFO(t *testing.T) {
	home := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(home, ".curlrc"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		ProxyOverrides([]string{"HOME=" + home})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ProxyOverrides blocked on a FIFO")
	}
}

// TestWgetOverridesAsWgetReadsThem does the same for wget and ~/.wgetrc.
func TestWgetOverridesAsWgetReadsThem(t *testing.T) {
	other := listen(t)
	o := other.addr()
	cases := []struct {
		name         string
		files        map[string]string
		extra        []string
		want, report string
	}{
		{name: "no file", want: "env"},
		{name: "use_proxy off", files: map[string]string{".wgetrc": "use_proxy = off\n"}, want: "direct", report: "use_proxy = off"},
		{name: "Use-Proxy No", files: map[string]string{".wgetrc": "Use-Proxy=No\n"}, want: "direct", report: "Use-Proxy = No"},
		{name: "use_proxy on", files: map[string]string{".wgetrc": "use_proxy = on\n"}, want: "env"},
		{name: "no_proxy", files: map[string]string{".wgetrc": "no_proxy = target.invalid\n"}, want: "direct", report: "no_proxy = target.invalid"},
		{name: "http_proxy", files: map[string]string{".wgetrc": "http_proxy = http://" + o + "/\n"}, want: "other", report: "http_proxy = http://" + o + "/"},
		{name: "commented", files: map[string]string{".wgetrc": "#use_proxy = off\n"}, want: "env"},
		{name: "WGETRC instead of home", files: map[string]string{"w/rc": "\n", ".wgetrc": "use_proxy = off\n"},
			extra: []string{"WGETRC=w/rc"}, want: "env"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home, extra := scratchHome(t, c.files, c.extra)
			got := where(t, home, extra, func(u string) []string {
				return []string{"wget", "-q", "--tries=1", "--timeout=10", "-O", "/dev/null", u}
			}, other)
			if got != c.want {
				t.Errorf("wget went %s, want %s", got, c.want)
			}
			checkReported(t, home, extra, c.report, func(ov Override) bool { return ov.Tool == "wget" && ov.File != "/etc/wgetrc" })
		})
	}
}

func TestKubeconfigOverrides(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".kube", "config"), `apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://dev.example:6443
- name: prod
  cluster:
    server: https://prod.example:6443
    proxy-url: http://bob:hunter2-secret@corp-proxy.example:3128
`)
	other := filepath.Join(home, "other.yaml")
	write(t, other, "clusters:\n- name: lab\n  cluster: {server: 'https://lab', proxy-url: 'socks5://127.0.0.1:1080'}\n")
	broken := filepath.Join(home, "broken.yaml")
	write(t, broken, "clusters: [\n")

	got, problems := ProxyOverrides([]string{"HOME=" + home})
	if len(problems) != 0 || len(got) != 1 {
		t.Fatalf("got %v, problems %v; want prod's proxy-url", got, problems)
	}
	if g := got[0]; g.Line != 10 || !strings.Contains(g.Setting, `cluster "prod"`) || strings.Contains(g.String(), "hunter2") || !strings.Contains(g.Effect, "corp-proxy.example:3128") {
		t.Errorf("override %+v: want line 10, cluster prod, password masked", g)
	}

	// KUBECONFIG replaces ~/.kube/config; a file that is not YAML is named.
	got, problems = ProxyOverrides([]string{"HOME=" + home, "KUBECONFIG=" + other + ":" + filepath.Join(home, "missing") + ":" + broken})
	if len(got) != 1 || !strings.Contains(got[0].Setting, `cluster "lab"`) || got[0].Line != 3 {
		t.Errorf("got %v, want lab's proxy-url at line 3", got)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], broken) {
		t.Errorf("problems %v, want one naming %s", problems, broken)
	}

	// Anchors, aliases and merge keys, as client-go resolves them (found
	// by review).
	aliased := filepath.Join(home, "aliased.yaml")
	write(t, aliased, `proxies:
  corp: &corp http://corp-proxy.example:3128
base: &base
  server: https://x
  proxy-url: http://merged.example:3128
clusters:
- name: a
  cluster:
    server: https://a
    proxy-url: *corp
- name: b
  cluster:
    <<: *base
`)
	got, problems = ProxyOverrides([]string{"HOME=" + home, "KUBECONFIG=" + aliased})
	if len(problems) != 0 || len(got) != 2 || !strings.Contains(got[0].Effect, "corp-proxy.example") || !strings.Contains(got[1].Effect, "merged.example") {
		t.Errorf("got %v, problems %v; want both clusters' proxies", got, problems)
	}
}

func TestProxyOverridesReadsBoundedRegularFiles(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".curlrc"), strings.Repeat("# padding\n", maxConfigFile/10+1))
	got, problems := ProxyOverrides([]string{"HOME=" + home})
	if len(got) != 0 || len(problems) != 1 || !strings.Contains(problems[0], "larger than") {
		t.Errorf("got %v, problems %v; want the oversized file named", got, problems)
	}
	// A directory where the file would be is skipped, not an error.
	if err := os.Remove(filepath.Join(home, ".curlrc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(home, ".wgetrc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, problems := ProxyOverrides([]string{"HOME=" + home}); len(got) != 0 || len(problems) != 0 {
		t.Errorf("got %v, problems %v; want nothing", got, problems)
	}
}
