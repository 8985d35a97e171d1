package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadOptions says which file to load and how to resolve what it refers to.
type LoadOptions struct {
	// Path is the file to read; "" means no file, so Load returns the
	// defaults (with state_dir and audit.path resolved).
	Path string
	// Getenv looks up the variables referenced as ${NAME}; pass
	// os.LookupEnv. Nil means an empty environment: every reference is a
	// problem.
	Getenv func(string) (string, bool)
	// Home replaces a leading "~" in paths. When it is empty, such a path
	// (including the default state_dir) is a problem.
	Home string
	// UnsetSecretsEmpty makes an unset variable in a secret key (Slack's
	// tokens, clients' passwords, state, the bundle's token and key) an
	// empty value rather than a problem, for commands that use none of
	// them (approvers do not have the service's secrets); an unset one
	// elsewhere (state_dir, the CA's paths) is still a problem (found by
	// review: `ca init` made a CA in the working directory).
	UnsetSecretsEmpty bool
}

// Load returns the defaults overlaid with the file at opts.Path. It does not
// call Validate: flags come between the two. A file that cannot be read
// yields the wrapped os error (errors.Is(err, fs.ErrNotExist) works); problems
// with its content yield an *Error listing all of them.
//
// A key whose value is null (written as "key:" with nothing after it, or
// "key: ~") is treated as absent and keeps its default. A list in the file
// replaces the default list; it is not appended to.
func Load(opts LoadOptions) (*Config, error) {
	var data []byte
	if opts.Path != "" {
		b, err := os.ReadFile(opts.Path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		data = b
	}
	return load(opts.Path, data, opts)
}

// load is Load on the bytes of file.
func load(file string, data []byte, opts LoadOptions) (*Config, error) {
	cfg := Default()
	d := &decoder{file: file, getenv: opts.Getenv, lines: map[string]int{}, literals: map[string]int{}, unsetSecretsEmpty: opts.UnsetSecretsEmpty}
	if root := d.parse(data); root != nil {
		d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	}
	d.resolvePaths(&cfg, opts.Home)
	if len(d.problems) > 0 {
		return nil, &Error{Problems: d.problems}
	}
	cfg.Source.File = file
	if len(d.lines) > 0 {
		cfg.Source.Lines = d.lines
	}
	cfg.Source.Secrets = inlineSecrets(&cfg, d.literals)
	cfg.Source.SecretEnv = d.secretEnv
	return &cfg, nil
}

// secretKey matches the keys whose values are secrets, or may hold one.
// envRef is a ${NAME} reference.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

var secretKey = regexp.MustCompile(`^(approval\.slack\.(webhook_url|bot_token|signing_secret)|policy\.bundle\.token|policy\.bundle\.verification\.key|clients\[[0-9]+\]\.password|state)$`)

// inlineSecrets returns, in file order, the keys of literals (key → line of
// a value written without ${NAME}) whose value in cfg is a secret.
func inlineSecrets(cfg *Config, literals map[string]int) []string {
	var keys []string
	for key := range literals {
		switch key {
		case "state":
			// A URL is a secret only for the password it may carry, in
			// its user part or as a parameter (pgx reads both, and the
			// key=value form).
			hasPassword := strings.Contains(strings.ToLower(cfg.State), "password=")
			if u, err := url.Parse(cfg.State); err == nil && u.User != nil {
				_, ok := u.User.Password()
				hasPassword = hasPassword || ok
			}
			if !hasPassword {
				continue
			}
		case "policy.bundle.verification.key":
			// A public key is not a secret, and a file is checked by
			// whoever reads it; an HMAC key written out is.
			v := cfg.Policy.Bundle.Verification
			if !strings.HasPrefix(strings.ToUpper(v.Algorithm), "HS") || filepath.IsAbs(v.Key) {
				continue
			}
		}
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(literals[a], literals[b]), strings.Compare(a, b))
	})
	return keys
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	configType   = reflect.TypeFor[Config]()
)

// decoder walks a yaml.Node against the Config struct, collecting problems
// instead of stopping at the first.
type decoder struct {
	file     string
	getenv   func(string) (string, bool)
	lines    map[string]int // key path → line, for Source.Lines
	literals map[string]int // secret key path → line, when written without ${NAME}
	// secretEnv are the variables that secret keys' values name.
	secretEnv         []string
	unsetSecretsEmpty bool
	problems          []Problem
}

func (d *decoder) add(line int, key, msg string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: key, Msg: msg})
}

// addKey reports a problem found after decoding, at the key's line if the
// file set it.
func (d *decoder) addKey(key, msg string) {
	line := d.lines[key]
	file := d.file
	if line == 0 {
		file = ""
	}
	d.problems = append(d.problems, Problem{File: file, Line: line, Key: key, Msg: msg})
}

var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

func (d *decoder) syntax(err error) {
	msg := err.Error()
	line := 0
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.add(line, "", "invalid YAML: "+msg)
}

// parse returns the top-level mapping of data, or nil when there is nothing
// to decode (an empty file, a syntax error).
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
	default:
		d.add(next.Line, "", "the file holds more than one YAML document (separated by ---); put every key in one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	root = deref(root)
	if root == nil || isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.add(root.Line, "", "want a mapping of keys at the top level, got "+describe(root))
		return nil
	}
	return root
}

// deref follows aliases. The parser only resolves anchors defined earlier,
// and an anchor may contain an alias to itself; the schema's finite depth
// (every struct, list and map is eventually made of scalars) bounds the walk
// even then.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a YAML document"
	}
}

func (d *decoder) wrongKind(n *yaml.Node, path, want string) {
	msg := fmt.Sprintf("want %s, got %s", want, describe(n))
	if want == "a list" && n.Kind == yaml.ScalarNode {
		msg += fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
	}
	d.add(n.Line, path, msg)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = deref(n)
	if n == nil || isNull(n) {
		return
	}
	t := v.Type()
	switch {
	case t == durationType || t == byteSizeType || t == prefixType:
		d.scalar(n, v, path)
	case t.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case t.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	case t.Kind() == reflect.Map:
		d.stringMap(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// key returns the name of a mapping key, or false after reporting why it is
// not one.
func (d *decoder) key(k *yaml.Node, path string) (string, bool) {
	k = deref(k)
	switch {
	case k == nil:
		return "", false
	case k.Kind != yaml.ScalarNode:
		d.add(k.Line, path, fmt.Sprintf("keys must be names, got %s", describe(k)))
		return "", false
	case k.ShortTag() == "!!merge":
		d.add(k.Line, path, "merge keys (<<) are not supported; write the keys out")
		return "", false
	}
	return k.Value, true
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongKind(n, path, "a mapping of keys")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name, ok := d.key(kn, path)
		if !ok {
			continue
		}
		child := joinKey(path, name)
		if first, dup := seen[name]; dup {
			d.add(kn.Line, child, fmt.Sprintf("duplicate key (first set on line %d)", first))
			continue
		}
		seen[name] = kn.Line
		f, ok := fieldIndex(v.Type(), name)
		if !ok {
			msg := "unknown key"
			if s := suggest(v.Type(), path, name); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			d.add(kn.Line, child, msg)
			continue
		}
		if dv := deref(vn); dv != nil && !isNull(dv) {
			d.lines[child] = kn.Line
		}
		d.decode(vn, v.Field(f), child)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.wrongKind(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if di := deref(item); di != nil && !isNull(di) {
			d.lines[p] = item.Line
		}
		d.decode(item, s.Index(i), p)
	}
	v.Set(s)
}

// stringMap decodes a mapping with arbitrary keys, such as upstream.resolve.
// Its key paths are written path["key"].
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongKind(n, path, "a mapping")
		return
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name, ok := d.key(kn, path)
		if !ok {
			continue
		}
		child := fmt.Sprintf("%s[%q]", path, name)
		if first, dup := seen[name]; dup {
			d.add(kn.Line, child, fmt.Sprintf("duplicate key (first set on line %d)", first))
			continue
		}
		seen[name] = kn.Line
		if dv := deref(vn); dv != nil && !isNull(dv) {
			d.lines[child] = kn.Line
		}
		ev := reflect.New(t.Elem()).Elem()
		d.decode(vn, ev, child)
		m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), ev)
	}
	v.Set(m)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.wrongKind(n, path, "a single value")
		return
	}
	getenv := d.getenv
	if d.unsetSecretsEmpty && secretKey.MatchString(path) {
		getenv = func(k string) (string, bool) {
			if d.getenv == nil {
				return "", true
			}
			v, _ := d.getenv(k)
			return v, true
		}
	}
	s, errs := expandEnv(n.Value, getenv)
	for _, msg := range errs {
		d.add(n.Line, path, msg)
	}
	if len(errs) > 0 {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.add(n.Line, path, fmt.Sprintf("invalid duration %q (use e.g. 120s, 5m)", s))
			return
		}
		v.SetInt(int64(dur))
	case t == byteSizeType:
		b, err := ParseByteSize(s)
		if err != nil {
			d.add(n.Line, path, err.Error())
			return
		}
		v.SetInt(int64(b))
	case t == prefixType:
		p, err := parsePrefix(s)
		if err != nil {
			d.add(n.Line, path, err.Error())
			return
		}
		v.Set(reflect.ValueOf(p))
	case t.Kind() == reflect.String:
		v.SetString(s)
		if s != "" && !strings.Contains(n.Value, "${") && secretKey.MatchString(path) {
			d.literals[path] = n.Line
		}
		if secretKey.MatchString(path) {
			for _, m := range envRef.FindAllStringSubmatch(strings.ReplaceAll(n.Value, "$$", ""), -1) {
				if !slices.Contains(d.secretEnv, m[1]) {
					d.secretEnv = append(d.secretEnv, m[1])
				}
			}
		}
	case t.Kind() == reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.add(n.Line, path, fmt.Sprintf("want true or false, got %q", s))
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		i, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			d.add(n.Line, path, fmt.Sprintf("want an integer, got %q", s))
			return
		}
		v.SetInt(i)
	default:
		// Only reachable if a field of an unsupported type is added to
		// Config; the tests decode every field.
		d.add(n.Line, path, fmt.Sprintf("internal error: cannot decode into %s", t))
	}
}

// parsePrefix parses a CIDR prefix, or a bare address as a prefix holding
// only that address. The result is masked (10.1.2.3/8 becomes 10.0.0.0/8).
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid address or CIDR prefix %q (use e.g. 127.0.0.0/8)", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR prefix %q (use e.g. 127.0.0.0/8)", s)
	}
	return p.Masked(), nil
}

// expandEnv replaces ${NAME} in s. "$$" is a literal "$", and so is a "$"
// followed by anything but "{". It returns one message per problem.
func expandEnv(s string, getenv func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var errs []string
	addErr := func(msg string) {
		if !slices.Contains(errs, msg) {
			errs = append(errs, msg)
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				addErr(`unterminated "${" (write "$$" for a literal "$")`)
				return s, errs
			}
			name := s[i+2 : i+2+end]
			i += end + 3
			if !validEnvName(name) {
				addErr(fmt.Sprintf(`invalid variable reference %q (want ${NAME}; write "$$" for a literal "$")`, "${"+name+"}"))
				continue
			}
			var val string
			ok := false
			if getenv != nil {
				val, ok = getenv(name)
			}
			if !ok {
				addErr(fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(val)
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), errs
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// resolvePaths expands "~" in the path keys, makes relative paths the file
// sets relative to the file's directory, and derives audit.path.
func (d *decoder) resolvePaths(c *Config, home string) {
	d.resolvePath(&c.StateDir, "state_dir", home)
	d.resolvePath(&c.CA.Cert, "ca.cert", home)
	d.resolvePath(&c.CA.Key, "ca.key", home)
	if c.Audit.Path != "-" {
		d.resolvePath(&c.Audit.Path, "audit.path", home)
	}
	d.resolvePath(&c.Policy.Bundle.CAFile, "policy.bundle.ca_file", home)
	for i := range c.Policy.Paths {
		d.resolvePath(&c.Policy.Paths[i], fmt.Sprintf("policy.paths[%d]", i), home)
	}
	for i := range c.Upstream.CAFiles {
		d.resolvePath(&c.Upstream.CAFiles[i], fmt.Sprintf("upstream.ca_files[%d]", i), home)
	}
	for i := range c.Clients {
		d.resolvePath(&c.Clients[i].PasswordFile, fmt.Sprintf("clients[%d].password_file", i), home)
	}
	for i := range c.Isolate.Expose {
		d.expandHome(&c.Isolate.Expose[i], fmt.Sprintf("isolate.expose[%d]", i), home)
	}
	if c.Audit.Path == "" && c.StateDir != "" {
		c.Audit.Path = filepath.Join(c.StateDir, "audit.jsonl")
	}
}

// resolvePath expands "~" in the path at key and, when the configuration
// file sets it to a relative path, makes it relative to the file's
// directory: `countersign run --config ~/cs/countersign.yaml` in an agent's
// repository must read ~/cs/policies, not the repository's policies/.
func (d *decoder) resolvePath(p *string, key, home string) {
	d.expandHome(p, key, home)
	if _, set := d.lines[key]; !set || d.file == "" || *p == "" || filepath.IsAbs(*p) || strings.HasPrefix(*p, "~") {
		return
	}
	abs, err := filepath.Abs(d.file)
	if err != nil {
		d.addKey(key, fmt.Sprintf("cannot resolve %q against the configuration file's directory: %v", *p, err))
		return
	}
	*p = filepath.Join(filepath.Dir(abs), *p)
}

func (d *decoder) expandHome(p *string, key, home string) {
	s := *p
	if !strings.HasPrefix(s, "~") {
		return
	}
	if s != "~" && !strings.HasPrefix(s, "~/") {
		d.addKey(key, fmt.Sprintf("cannot expand %q: only a leading ~/ is expanded", s))
		return
	}
	if home == "" {
		d.addKey(key, fmt.Sprintf("cannot expand %q: home directory unknown (use an absolute path)", s))
		return
	}
	*p = filepath.Join(home, s[1:])
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// yamlName returns the key of a struct field, or "" for fields that are not
// keys.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" && n == name {
			return i, true
		}
	}
	return 0, false
}

// suggest returns the key path the user probably meant by name under path:
// a sibling within edit distance 2, else the only key of that name elsewhere
// in the schema (hold at the top level means approval.hold).
func suggest(t reflect.Type, path, name string) string {
	if len(name) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for i := range t.NumField() {
		k := yamlName(t.Field(i))
		if k == "" {
			continue
		}
		if dist := levenshtein(name, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return joinKey(path, best)
	}
	var found []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			k := yamlName(f)
			if k == "" {
				continue
			}
			p := joinKey(prefix, k)
			if k == name {
				found = append(found, p)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != prefixType {
				walk(f.Type, p)
			}
		}
	}
	walk(configType, "")
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
