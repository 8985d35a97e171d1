package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/hostport"
)

// maxHold is the longest approval.hold allowed. AWS rejects SigV4 requests
// signed more than about five minutes earlier, so a request held longer could
// never be forwarded; 4m leaves room for clock skew and the upstream call.
const maxHold = 4 * time.Minute

// Body limit bounds: below 1 KiB policies cannot see a typical JSON request;
// above 1 GiB a few concurrent requests exhaust memory.
const (
	minBodyLimit = KiB
	maxBodyLimit = GiB
)

// Validate reports every problem with c at once as an *Error, each with its
// key path and, for keys the file set, the file and line (from c.Source). It
// changes nothing. It returns nil when c is usable.
func (c *Config) Validate() error {
	v := &validator{c: c}

	v.listen("listen", c.Listen)
	if c.StateDir == "" {
		v.add("state_dir", "must not be empty")
	}
	switch {
	case c.CA.Cert != "" && c.CA.Key == "":
		v.add("ca.cert", "set without ca.key (set both, or neither to use the CA in state_dir)")
	case c.CA.Cert == "" && c.CA.Key != "":
		v.add("ca.key", "set without ca.cert (set both, or neither to use the CA in state_dir)")
	}

	v.paths("upstream.ca_files", c.Upstream.CAFiles)
	v.positive("upstream.timeout", c.Upstream.Timeout)
	for _, host := range sortedKeys(c.Upstream.Resolve) {
		key := fmt.Sprintf("upstream.resolve[%q]", host)
		if !validHostPort(host) {
			v.add(key, fmt.Sprintf("invalid host %q (want host or host:port, as in the request)", host))
		}
		if addr := c.Upstream.Resolve[host]; !validResolveTarget(addr) {
			v.add(key, fmt.Sprintf("invalid address %q (want host:port or an IP address)", addr))
		}
	}

	v.paths("policy.paths", c.Policy.Paths)
	if c.Policy.Bundle.URL != "" {
		if !validHTTPURL(c.Policy.Bundle.URL) {
			v.add("policy.bundle.url", fmt.Sprintf("want an absolute http:// or https:// URL, got %q", c.Policy.Bundle.URL))
		}
	} else if c.Policy.Bundle.Resource != "" {
		v.add("policy.bundle.resource", "set without policy.bundle.url")
	}
	v.positive("policy.bundle.polling", c.Policy.Bundle.Polling)
	v.oneOf("policy.on_error", c.Policy.OnError, "deny", "allow")
	v.oneOf("policy.mode", c.Policy.Mode, "enforce", "shadow")
	v.positive("policy.eval_timeout", c.Policy.EvalTimeout)

	if c.Inspect.BodyLimit < minBodyLimit || c.Inspect.BodyLimit > maxBodyLimit {
		v.add("inspect.body_limit", fmt.Sprintf("%s is out of range (%s to %s)", c.Inspect.BodyLimit, minBodyLimit, maxBodyLimit))
	}
	for i, pattern := range c.Inspect.MITM {
		if !validHostGlob(pattern) {
			v.add(fmt.Sprintf("inspect.mitm[%d]", i), fmt.Sprintf("invalid host pattern %q (use *, *.example.com or api.example.com, without scheme or port)", pattern))
		}
	}

	a := c.Approval
	v.listen("approval.listen", a.Listen)
	if a.Listen == c.Listen && validListen(a.Listen) && !strings.HasSuffix(a.Listen, ":0") {
		v.add("approval.listen", fmt.Sprintf("same address as listen (%s)", c.Listen))
	}
	if a.PublicURL != "" {
		if !validHTTPURL(a.PublicURL) {
			v.add("approval.public_url", fmt.Sprintf("want an absolute http:// or https:// URL without query or fragment, got %q", a.PublicURL))
		}
	}
	if v.positive("approval.hold", a.Hold) {
		if a.Hold >= maxHold {
			v.add("approval.hold", fmt.Sprintf("%s is too long: AWS rejects SigV4 requests signed more than ~5 minutes earlier (keep it under %s)", a.Hold, maxHold))
		}
		if a.Expire > 0 && a.Hold > a.Expire {
			v.add("approval.hold", fmt.Sprintf("%s exceeds approval.expire (%s)", a.Hold, a.Expire), "approval.expire")
		}
	}
	if v.positive("approval.grant_ttl", a.GrantTTL) && a.GrantTTL > maxGrantTTL {
		// The stores drop a settled approval a week after its deadline;
		// a grant must not outlive the record it is checked against.
		v.add("approval.grant_ttl", fmt.Sprintf("%s is too long: at most %s", a.GrantTTL, maxGrantTTL))
	}
	v.positive("approval.expire", a.Expire)
	for i, id := range a.Approvers {
		if id == "" || strings.ContainsFunc(id, isSpace) {
			v.add(fmt.Sprintf("approval.approvers[%d]", i), fmt.Sprintf("want a Slack user ID such as U012AB3CD, got %q", id))
		}
	}
	if a.Operator != "" && !slackUserID.MatchString(a.Operator) {
		// Compared with the IDs in Slack's callbacks as they are: a
		// misspelt one (u0ops, <@U0OPS>, slack:U0OPS) would make the
		// token holder's CLI and Slack approvals two people's (found by
		// review).
		v.add("approval.operator", fmt.Sprintf("want the Slack user ID of whoever holds the admin token, as Slack shows it (U012AB3CD, or W… on Enterprise Grid), got %q", a.Operator))
	}
	s := a.Slack
	if s.WebhookURL != "" && !validHTTPURL(s.WebhookURL) {
		// The webhook URL is a credential: never echo it.
		v.add("approval.slack.webhook_url", "want an absolute https:// (or http://) URL")
	}
	if s.BotToken != "" {
		if s.SigningSecret == "" {
			v.add("approval.slack.bot_token", "needs approval.slack.signing_secret (to verify Slack's button callbacks)")
		}
		if s.Channel == "" {
			v.add("approval.slack.bot_token", "needs approval.slack.channel (the channel ID to post to)")
		}
	}

	names := map[string]int{}
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.Name == "":
			v.add(key+".name", "must not be empty")
		case strings.ContainsAny(cl.Name, ":") || strings.ContainsFunc(cl.Name, isSpace):
			v.add(key+".name", fmt.Sprintf("%q: a proxy user name cannot contain \":\" or spaces", cl.Name))
		default:
			if first, dup := names[cl.Name]; dup {
				v.add(key+".name", fmt.Sprintf("%q is also the name of clients[%d]", cl.Name, first))
			} else {
				names[cl.Name] = i
			}
		}
		switch {
		case cl.Password == "" && cl.PasswordFile == "":
			v.add(key, "set password (e.g. ${NAME}) or password_file")
		case cl.Password != "" && cl.PasswordFile != "":
			v.add(key, "set only one of password and password_file")
		}
	}

	for i, host := range c.Kubernetes.Hosts {
		if !validHostPort(host) {
			v.add(fmt.Sprintf("kubernetes.hosts[%d]", i), fmt.Sprintf("invalid host %q (want host or host:port, not a URL)", host))
		}
	}

	for i, host := range c.GitHub.Hosts {
		if _, err := hostport.Canonical(host); err != nil {
			v.add(fmt.Sprintf("github.hosts[%d]", i), fmt.Sprintf("invalid host %q (want a host name such as github.acme.example, not a URL or host:port)", host))
		}
	}

	for i, p := range c.Isolate.Expose {
		if !filepath.IsAbs(p) {
			v.add(fmt.Sprintf("isolate.expose[%d]", i), fmt.Sprintf("want an absolute path (or ~/…), got %q", p))
		}
	}

	if c.State != "" && !validPostgresURL(c.State) {
		// The URL may hold a password: never echo it.
		v.add("state", `want "" (embedded) or a postgres:// or postgresql:// URL with a host`)
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "console", "json")

	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

type validator struct {
	c        *Config
	problems []Problem
}

// add records a problem with key. The line is that of key in the file, else
// that of the first of also the file set, else that of key's nearest
// ancestor the file set.
// maxGrantTTL is the longest approval.grant_ttl: less than the week the
// approval stores keep a settled approval (approval.SettledRetention).
const maxGrantTTL = 24 * time.Hour

func (v *validator) add(key, msg string, also ...string) {
	v.problems = append(v.problems, v.c.problem(key, msg, also...))
}

// problem is msg about key, at the line of key in the file, else that of
// the first of also the file set, else that of key's nearest ancestor the
// file set.
func (c *Config) problem(key, msg string, also ...string) Problem {
	line := c.Source.Lines[key]
	for _, k := range also {
		if line == 0 {
			line = c.Source.Lines[k]
		}
	}
	for k := key; line == 0 && k != ""; {
		k = parentKey(k)
		line = c.Source.Lines[k]
	}
	file := ""
	if line > 0 {
		file = c.Source.File
	}
	return Problem{File: file, Line: line, Key: key, Msg: msg}
}

// Where names key for a message about its value: "file:line: key", or
// "key" alone when the file did not set it (a default, a flag).
func (c *Config) Where(key string) string {
	p := c.problem(key, "")
	return strings.TrimSuffix(p.String(), ": ")
}

func (v *validator) listen(key, addr string) {
	if !validListen(addr) {
		v.add(key, fmt.Sprintf("want host:port (e.g. 127.0.0.1:8080 or :8080), got %q", addr))
	}
}

// positive reports a duration that is not greater than zero and returns
// whether d is fine.
func (v *validator) positive(key string, d time.Duration) bool {
	if d <= 0 {
		v.add(key, fmt.Sprintf("must be greater than 0, got %s", d))
		return false
	}
	return true
}

func (v *validator) oneOf(key, got string, want ...string) {
	if !slices.Contains(want, got) {
		quoted := make([]string, len(want))
		for i, w := range want {
			quoted[i] = strconv.Quote(w)
		}
		v.add(key, fmt.Sprintf("want one of %s, got %q", strings.Join(quoted, ", "), got))
	}
}

func (v *validator) paths(key string, paths []string) {
	for i, p := range paths {
		if p == "" {
			v.add(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
	}
}

// parentKey strips the last element of a key path: "a.b" → "a",
// "a[1]" → "a", `a["x.y"]` → "a".
func parentKey(key string) string {
	switch {
	case strings.HasSuffix(key, `"]`):
		if i := strings.LastIndex(key, `["`); i >= 0 {
			return key[:i]
		}
	case strings.HasSuffix(key, "]"):
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// slackUserID is the shape of a Slack user ID.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validListen reports whether addr is host:port with a numeric port, where
// host may be empty (all interfaces), an IP address or a host name.
func validListen(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !validPort(port, true) {
		return false
	}
	return host == "" || validIP(host) || validHostname(host)
}

func validPort(port string, zeroOK bool) bool {
	if port == "" || len(port) > 5 || strings.TrimLeft(port, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return false
	}
	return n > 0 || zeroOK
}

func validIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validHostname reports whether h is a DNS name (or an IPv4 address, which
// has the same shape): dot-separated labels of letters, digits, "-" and "_".
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validHostPort reports whether s is host:port or a bare host. IPv6
// addresses with a port are bracketed.
func validHostPort(s string) bool {
	if host, port, err := net.SplitHostPort(s); err == nil {
		return validPort(port, false) && (validIP(host) || validHostname(host))
	}
	return validHostname(s) || validIP(s)
}

// validResolveTarget reports whether s is host:port or an IP address.
func validResolveTarget(s string) bool {
	if validIP(s) {
		return true
	}
	host, port, err := net.SplitHostPort(s)
	return err == nil && validPort(port, false) && (validIP(host) || validHostname(host))
}

// validHostGlob reports whether s is "*", "*." followed by a host name, or a
// host name.
func validHostGlob(s string) bool {
	if s == "*" {
		return true
	}
	return validHostname(strings.TrimPrefix(s, "*.")) || validIP(s)
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

func validPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host != ""
}

// ClientPasswords returns the proxy password of every client by name: the
// password key, or the content of password_file read with readFile (nil means
// os.ReadFile) without its trailing newline. It reports every client it could
// not resolve, each error wrapped so that errors.Is works on read failures.
func (c *Config) ClientPasswords(readFile func(string) ([]byte, error)) (map[string]string, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	passwords := make(map[string]string, len(c.Clients))
	var errs []error
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		if _, dup := passwords[cl.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate client name %q", c.Where(key+".name"), cl.Name))
			continue
		}
		switch {
		case cl.Password != "" && cl.PasswordFile != "":
			errs = append(errs, fmt.Errorf("%s: both password and password_file are set", c.Where(key)))
		case cl.Password != "":
			passwords[cl.Name] = cl.Password
		case cl.PasswordFile != "":
			b, err := readFile(cl.PasswordFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.Where(key+".password_file"), err))
				continue
			}
			pw := strings.TrimRight(string(b), "\r\n")
			if pw == "" {
				errs = append(errs, fmt.Errorf("%s: %s is empty", c.Where(key+".password_file"), cl.PasswordFile))
				continue
			}
			passwords[cl.Name] = pw
		default:
			errs = append(errs, fmt.Errorf("%s: no password or password_file", c.Where(key)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return passwords, nil
}
