package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/countersign/countersign/internal/redact"
)

// Override is a client's own proxy setting, read from its configuration
// file, that the client prefers to the proxy variables ChildEnv sets: the
// requests it covers go around countersign unless the agent runs under
// --isolate, where they fail instead.
type Override struct {
	// Tool is the client that reads the setting: curl, wget or kubectl.
	Tool string
	// File and Line say where the setting is (Line 0: unknown).
	File string
	Line int
	// Setting is the setting as written, credentials masked.
	Setting string
	// Effect says what the client does because of it.
	Effect string
}

func (o Override) String() string {
	where := o.File
	if o.Line > 0 {
		where = fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	return fmt.Sprintf("%s: %s: %s", where, o.Setting, o.Effect)
}

// maxConfigFile bounds what is read of one configuration file: these are
// hand-written files, and one past this is not read at all.
const maxConfigFile = 1 << 20

// ProxyOverrides lists the proxy settings of curl's, wget's and kubectl's
// configuration files, found as those clients find them from env (HOME,
// CURL_HOME, XDG_CONFIG_HOME, WGETRC, KUBECONFIG), that take precedence over
// the proxy variables. Environment variables cannot override them, and
// rewriting a user's files is not countersign's to do, so they are
// reported: `run` warns and `doctor` fails. Files that are missing or
// unreadable are skipped; problems list what a file could not be read for.
func ProxyOverrides(env []string) (overrides []Override, problems []string) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if name, v, ok := strings.Cut(env[i], "="); ok && name == k {
				return v
			}
		}
		return ""
	}
	home := get("HOME")
	add := func(o []Override, err error) {
		overrides = append(overrides, o...)
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if f := curlrc(get("CURL_HOME"), get("XDG_CONFIG_HOME"), home); f != "" {
		add(curlOverrides(f))
	}
	for _, f := range wgetrcs(get("WGETRC"), home) {
		add(wgetOverrides(f))
	}
	for _, f := range kubeconfigs(get("KUBECONFIG"), home) {
		add(kubeconfigOverrides(f))
	}
	return overrides, problems
}

// readConfig reads a configuration file; a missing one is nil, nil.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil // a FIFO or a device would block or never end
	} else if fi.Size() > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not read for proxy settings", path, maxConfigFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not read for proxy settings", path, maxConfigFile)
	}
	return data, nil
}

// curlrc is the one file curl reads its default options from: the first
// of $CURL_HOME/.curlrc, $XDG_CONFIG_HOME/.curlrc (or curlrc) and $HOME/.curlrc that
// exists (curl(1), --config).
func curlrc(curlHome, xdg, home string) string {
	var candidates []string
	if curlHome != "" {
		candidates = append(candidates, filepath.Join(curlHome, ".curlrc"))
	}
	if xdg != "" {
		// curl 7.73 to 8.x read .curlrc there; the manual of later ones
		// names curlrc.
		candidates = append(candidates, filepath.Join(xdg, ".curlrc"), filepath.Join(xdg, "curlrc"))
	}
	if home != "" {
		candidates = append(candidates, filepath.Join(home, ".curlrc"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// curlOverrides reads curl's options that replace or bypass the proxy
// variables: a proxy of its own (-x, --proxy, --socks*) or hosts it
// reaches directly (--noproxy).
func curlOverrides(path string) ([]Override, error) {
	data, err := readConfig(path)
	if err != nil || data == nil {
		return nil, err
	}
	var out []Override
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, maxConfigFile)
	for n := 1; sc.Scan(); n++ {
		name, value, ok := curlOption(sc.Text())
		if !ok {
			continue
		}
		setting := name + " " + redact.String(value)
		switch name {
		case "noproxy":
			hosts := "hosts matching " + fmt.Sprintf("%q", value)
			if strings.TrimSpace(value) == "*" {
				hosts = "every host"
			}
			out = append(out, Override{Tool: "curl", File: path, Line: n, Setting: setting,
				Effect: "curl connects directly to " + hosts + ", around countersign"})
		case "proxy", "x", "proxy1.0", "socks4", "socks4a", "socks5", "socks5-hostname":
			out = append(out, Override{Tool: "curl", File: path, Line: n, Setting: setting,
				Effect: "curl sends its requests to " + redact.String(value) + " instead of countersign"})
		}
	}
	return out, nil
}

// curlOption parses one line of a curl config file as curl does: an
// option, with or without its leading dashes, then whitespace, '=' or ':',
// then its parameter, quoted or up to whitespace. Short options keep no
// dash ("x").
func curlOption(line string) (name, value string, ok bool) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' || line[0] == '/' || line[0] == '\r' {
		return "", "", false
	}
	// Only an option without dashes may end at '=' or ':' ("proxy=…");
	// "--proxy=…" is one unknown word to curl.
	seps := " \t\r=:"
	if line[0] == '-' {
		seps = " \t\r"
	}
	end := strings.IndexAny(line, seps)
	if end < 0 {
		end = len(line)
	}
	name, rest := line[:end], line[end:]
	switch {
	case strings.HasPrefix(name, "--"):
		name = name[2:]
	case strings.HasPrefix(name, "-"):
		name = name[1:]
		if len(name) > 1 { // -xHOST
			name, rest = name[:1], name[1:]+rest
		}
	}
	rest = strings.TrimLeft(rest, seps)
	if strings.HasPrefix(rest, `"`) {
		var b strings.Builder
		for i := 1; i < len(rest); i++ {
			c := rest[i]
			if c == '"' {
				break
			}
			if c == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 't':
					c = '\t'
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 'v':
					c = '\v'
				default:
					c = rest[i]
				}
			}
			b.WriteByte(c)
		}
		return strings.ToLower(name), b.String(), true
	}
	if i := strings.IndexAny(rest, " \t\r"); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(name), rest, true
}

// wgetrcs are the files wget reads its settings from, the later winning:
// the system file, then $WGETRC or else ~/.wgetrc (wget(1), Startup File).
func wgetrcs(wgetrc, home string) []string {
	files := []string{"/etc/wgetrc"}
	switch {
	case wgetrc != "":
		files = append(files, wgetrc)
	case home != "":
		files = append(files, filepath.Join(home, ".wgetrc"))
	}
	return files
}

// wgetOverrides reads wget's commands that replace or bypass the proxy
// variables. wget ignores case, '-' and '_' in command names.
func wgetOverrides(path string) ([]Override, error) {
	data, err := readConfig(path)
	if err != nil || data == nil {
		return nil, err
	}
	var out []Override
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, maxConfigFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		name := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(k)))
		setting := strings.TrimSpace(k) + " = " + redact.String(v)
		switch name {
		case "useproxy":
			if off := strings.ToLower(v); off == "off" || off == "no" || off == "0" {
				out = append(out, Override{Tool: "wget", File: path, Line: n, Setting: setting,
					Effect: "wget ignores the proxy variables and connects directly, around countersign"})
			}
		case "noproxy":
			out = append(out, Override{Tool: "wget", File: path, Line: n, Setting: setting,
				Effect: fmt.Sprintf("wget connects directly to hosts matching %q, around countersign", v)})
		case "httpproxy", "httpsproxy":
			out = append(out, Override{Tool: "wget", File: path, Line: n, Setting: setting,
				Effect: "wget sends its requests to " + redact.String(v) + " instead of countersign"})
		}
	}
	return out, nil
}

// kubeconfigs are the files kubectl merges: those $KUBECONFIG lists, or
// else ~/.kube/config.
func kubeconfigs(list, home string) []string {
	if list != "" {
		var files []string
		for f := range strings.SplitSeq(list, string(filepath.ListSeparator)) {
			if f != "" {
				files = append(files, f)
			}
		}
		return files
	}
	if home == "" {
		return nil
	}
	return []string{filepath.Join(home, ".kube", "config")}
}

// kubeconfigOverrides lists the clusters of a kubeconfig that set
// proxy-url, which kubectl (client-go) uses instead of HTTPS_PROXY.
func kubeconfigOverrides(path string) ([]Override, error) {
	data, err := readConfig(path)
	if err != nil || data == nil {
		return nil, err
	}
	var doc struct {
		Clusters []struct {
			Name    string    `yaml:"name"`
			Cluster yaml.Node `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not read for proxy settings: %w", path, err)
	}
	var out []Override
	for _, c := range doc.Clusters {
		m := &c.Cluster
		if m.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k, v := m.Content[i], m.Content[i+1]; k.Value == "proxy-url" && v.Kind == yaml.ScalarNode && v.Value != "" {
				out = append(out, Override{Tool: "kubectl", File: path, Line: k.Line,
					Setting: fmt.Sprintf("cluster %q proxy-url %s", c.Name, redact.String(v.Value)),
					Effect:  "kubectl sends that cluster's requests to " + redact.String(v.Value) + " instead of countersign"})
			}
		}
	}
	return out, nil
}
