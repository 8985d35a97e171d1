package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"

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
	for _, f := range curlrcs(get("CURL_HOME"), get("XDG_CONFIG_HOME"), home) {
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
	// Only regular files: opening a FIFO would block (found by review),
	// and a device may never end.
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil
	}
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

// curlrcs are the files curl may read its default options from: curl
// reads the first of them that exists, and which names it tries changed
// between versions (7.88 reads $XDG_CONFIG_HOME/.curlrc and
// $HOME/.config/curlrc, later manuals name $XDG_CONFIG_HOME/curlrc), so
// every one that exists is reported.
func curlrcs(curlHome, xdg, home string) []string {
	var candidates []string
	if curlHome != "" {
		candidates = append(candidates, filepath.Join(curlHome, ".curlrc"))
	}
	if xdg != "" {
		candidates = append(candidates, filepath.Join(xdg, ".curlrc"), filepath.Join(xdg, "curlrc"))
	}
	if home != "" {
		candidates = append(candidates, filepath.Join(home, ".curlrc"), filepath.Join(home, ".config", "curlrc"))
	}
	var out []string
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// maxIncludes bounds how deep config files including others are followed.
const maxIncludes = 4

// curlOverrides reads curl's options that replace or bypass the proxy
// variables: a proxy of its own (-x, --proxy, --socks*) or hosts it
// reaches directly (--noproxy), in path and the files it includes
// (--config, -K).
func curlOverrides(path string) ([]Override, error) {
	read := map[string]bool{}
	return curlFile(path, 0, read)
}

// maxCurlFiles bounds the files one curlrc and its includes read (found by
// review: a file including itself many times over was read N^4 times).
const maxCurlFiles = 32

func curlFile(path string, depth int, read map[string]bool) ([]Override, error) {
	if read[path] || len(read) >= maxCurlFiles {
		return nil, nil
	}
	read[path] = true
	data, err := readConfig(path)
	if err != nil || data == nil {
		return nil, err
	}
	var out []Override
	var problems []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, maxConfigFile)
	for n := 1; sc.Scan(); n++ {
		for _, o := range curlOptions(sc.Text()) {
			setting := o.name + " " + maskProxy(o.value)
			switch o.name {
			case "noproxy":
				hosts := "hosts matching " + fmt.Sprintf("%q", o.value)
				if strings.TrimSpace(o.value) == "*" {
					hosts = "every host"
				}
				out = append(out, Override{Tool: "curl", File: path, Line: n, Setting: setting,
					Effect: "curl connects directly to " + hosts + ", around countersign"})
			case "proxy", "x", "proxy1.0", "socks4", "socks4a", "socks5", "socks5-hostname":
				out = append(out, Override{Tool: "curl", File: path, Line: n, Setting: setting,
					Effect: "curl sends its requests to " + maskProxy(o.value) + " instead of countersign"})
			case "preproxy":
				out = append(out, Override{Tool: "curl", File: path, Line: n, Setting: setting,
					Effect: "curl reaches the proxy through " + maskProxy(o.value) + ": if that is not this machine, its requests go to another machine's loopback instead of countersign"})
			case "config", "K":
				if depth >= maxIncludes || o.value == "" || o.value == "-" {
					continue
				}
				inc, err := curlFile(o.value, depth+1, read)
				out = append(out, inc...)
				if err != nil {
					problems = append(problems, err.Error())
				}
			}
		}
	}
	if len(problems) > 0 {
		return out, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

type curlOption struct{ name, value string }

// curlSpace is what curl's config parser skips as white space (ISSPACE).
const curlSpace = " \t\n\v\f\r"

// curlShortWithArg are curl's short options that take an argument: in a
// group (-sx URL) the first of them takes the rest.
const curlShortWithArg = "EKCbcdDFPHhmoUQreXYytzTuAwx"

// curlOptions parses one line of a curl config file as curl does: an
// option, with or without its leading dashes (long names in any case, and
// abbreviated when the abbreviation is unambiguous; short ones grouped),
// then white space, or '=' or ':' after an undashed name, then its
// parameter, quoted or up to white space.
func curlOptions(line string) []curlOption {
	line = strings.TrimLeft(line, curlSpace)
	if line == "" || line[0] == '#' || line[0] == '/' {
		return nil
	}
	dashed := line[0] == '-'
	seps := curlSpace
	if !dashed {
		seps += "=:"
	}
	end := strings.IndexAny(line, seps)
	if end < 0 {
		end = len(line)
	}
	word, rest := line[:end], strings.TrimLeft(line[end:], seps)
	param := curlParam(rest)
	switch {
	case strings.HasPrefix(word, "--"):
		return []curlOption{{curlLong(word[2:]), param}}
	case dashed && len(word) > 1:
		// A group of short options: -sSx URL, -xURL.
		for i := 1; i < len(word); i++ {
			c := word[i]
			if strings.IndexByte(curlShortWithArg, c) >= 0 {
				if i+1 < len(word) {
					param = word[i+1:]
				}
				return []curlOption{{string(c), param}}
			}
		}
		return nil
	case dashed:
		return nil
	}
	return []curlOption{{curlLong(word), param}}
}

// curlParam reads a parameter: in double quotes with backslash escapes, or
// up to white space.
func curlParam(rest string) string {
	if !strings.HasPrefix(rest, `"`) {
		if i := strings.IndexAny(rest, curlSpace); i >= 0 {
			return rest[:i]
		}
		return rest
	}
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
	return b.String()
}

// curlNear are curl's long options that share their first letters with
// the ones read here (curl 7.88's list, and later additions): an
// abbreviation is one option's when no other starts with it.
var curlNear = []string{
	"config", "connect-timeout", "connect-to", "continue-at",
	"no-alpn", "no-buffer", "no-clobber", "no-keepalive", "no-npn", "no-progress-meter", "no-sessionid", "noproxy",
	"preproxy", "progress-bar", "proto", "proto-default", "proto-redir",
	"proxy", "proxy-anyauth", "proxy-basic", "proxy-cacert", "proxy-capath", "proxy-cert", "proxy-cert-type",
	"proxy-ciphers", "proxy-crlfile", "proxy-digest", "proxy-header", "proxy-http2", "proxy-insecure", "proxy-key",
	"proxy-key-type", "proxy-negotiate", "proxy-ntlm", "proxy-pass", "proxy-pinnedpubkey", "proxy-service-name",
	"proxy-ssl-allow-beast", "proxy-ssl-auto-client-cert", "proxy-tls13-ciphers", "proxy-tlsauthtype",
	"proxy-tlspassword", "proxy-tlsuser", "proxy-tlsv1", "proxy-user", "proxy1.0", "proxytunnel",
	"socks4", "socks4a", "socks5", "socks5-basic", "socks5-gssapi", "socks5-gssapi-nec", "socks5-gssapi-service", "socks5-hostname",
}

// curlLong resolves a long option name as curl 7.x does: in any case, and
// an unambiguous abbreviation to the option it abbreviates.
func curlLong(name string) string {
	name = strings.ToLower(name)
	if slices.Contains(curlNear, name) {
		return name
	}
	match := ""
	for _, o := range curlNear {
		if strings.HasPrefix(o, name) {
			if match != "" {
				return name // ambiguous: curl refuses it
			}
			match = o
		}
	}
	if match != "" {
		return match
	}
	return name
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
		setting := strings.TrimSpace(k) + " = " + maskProxy(v)
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
				Effect: "wget sends its requests to " + maskProxy(v) + " instead of countersign"})
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
	// Decoded as client-go decodes it, anchors, aliases and merge keys
	// resolved (found by review: proxy-url: *alias was missed); the
	// nodes give the line where the setting is written, when it is.
	// client-go converts YAML to JSON with sigs.k8s.io/yaml, which
	// takes the last of repeated keys (found by review: yaml.v3 refuses
	// them, and kubectl used the proxy).
	var doc struct {
		Clusters []struct {
			Name    string `json:"name"`
			Cluster struct {
				ProxyURL string `json:"proxy-url"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := k8syaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not read for proxy settings: %w", path, err)
	}
	// The node tree, which repeated keys do not stop, gives lines.
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	_, clusters := lastEntry(&root, "clusters")
	var out []Override
	for i, c := range doc.Clusters {
		if c.Cluster.ProxyURL == "" {
			continue
		}
		line := 0
		if clusters != nil && clusters.Kind == yaml.SequenceNode && i < len(clusters.Content) {
			if _, m := lastEntry(clusters.Content[i], "cluster"); m != nil {
				line = m.Line
				if k, _ := lastEntry(m, "proxy-url"); k != nil {
					line = k.Line
				}
			}
		}
		out = append(out, Override{Tool: "kubectl", File: path, Line: line,
			Setting: fmt.Sprintf("cluster %q proxy-url %s", c.Name, maskProxy(c.Cluster.ProxyURL)),
			Effect:  "kubectl sends that cluster's requests to " + maskProxy(c.Cluster.ProxyURL) + " instead of countersign"})
	}
	return out, nil
}

// lastEntry returns the last key named key of a mapping node (the
// document node's mapping for a document) and its value, aliases followed;
// nils when there is none.
func lastEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			k, v = n.Content[j], n.Content[j+1]
		}
	}
	if v != nil && v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	return k, v
}

// maskProxy masks the password of a proxy setting's value, with or without
// a scheme (curl takes user:password@host:port), and credential shapes in
// the rest (found by review: a scheme-less one reached the audit log).
func maskProxy(v string) string {
	prefix, rest := "", v
	if i := strings.Index(v, "://"); i >= 0 {
		prefix, rest = v[:i+3], v[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		if hasPassword {
			user += ":" + redactedPassword
		}
		rest = user + "@" + rest[at+1:]
	}
	return redact.Shown(prefix + rest)
}

// redactedPassword stands for a masked proxy password.
const redactedPassword = "[redacted]"
