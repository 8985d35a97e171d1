// Package config loads and validates countersign.yaml (SPEC section 3).
//
// Loading happens in the order the house style prescribes: [Default] values,
// then the file ([Load]), then command-line flags (applied by the caller), then
// [Config.Validate]. Load reports problems with the file itself (syntax, unknown
// keys, values of the wrong kind or format, unset environment variables);
// Validate reports problems with the combined result (ranges, enumerations,
// keys that require each other). Both report every problem at once, each with
// the file, line and dotted key path (approval.slack.channel, clients[1].name)
// at fault.
//
// Every key is optional. Scalar values may reference environment variables as
// ${NAME}; "$$" is a literal "$" and a "$" not followed by "{" is literal too.
// Keys are never expanded.
//
// Paths: a leading "~/" (or a lone "~") in state_dir, ca.cert, ca.key,
// audit.path, policy.paths, upstream.ca_files and clients[].password_file is
// replaced by the home directory given in [LoadOptions]. A relative path
// the file sets (these keys and policy.bundle.ca_file) is relative to the
// directory holding the file, not to the process's working directory: the
// agent works in the latter. Defaults stay as written here; the command
// line looks for the default ./policies beside the file too.
//
// The package never reads the environment or flags itself: the caller passes
// an environment lookup function and the home directory in [LoadOptions].
package config

import (
	"maps"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultFile is the configuration file every command reads when --config is
// not given and the file exists in the working directory.
const DefaultFile = "countersign.yaml"

// DefaultServeListen is the proxy address of countersign serve when the file
// does not set listen (countersign run keeps the 127.0.0.1:0 default).
const DefaultServeListen = ":8080"

// Config is the content of countersign.yaml. Every field has a yaml tag naming
// its key; see SPEC section 3 for the meaning of each.
type Config struct {
	// Listen is the proxy's host:port; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// StateDir holds the CA, the admin token and the embedded state.
	StateDir   string     `yaml:"state_dir"`
	CA         CA         `yaml:"ca"`
	Upstream   Upstream   `yaml:"upstream"`
	Policy     Policy     `yaml:"policy"`
	Inspect    Inspect    `yaml:"inspect"`
	Approval   Approval   `yaml:"approval"`
	Audit      Audit      `yaml:"audit"`
	Clients    []Client   `yaml:"clients"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	GitHub     GitHub     `yaml:"github"`
	Isolate    Isolate    `yaml:"isolate"`
	// State is "" for the embedded store in StateDir, or a postgres:// URL
	// for a store shared by several serve replicas.
	State string `yaml:"state"`
	Log   Log    `yaml:"log"`

	// Source records where the values came from. It is not a key of the
	// file.
	Source Source `yaml:"-"`
}

// Source records which keys a configuration file set and where.
type Source struct {
	// File is the path passed to Load; "" when no file was read.
	File string
	// Lines maps the dotted path of every key the file set to a non-null
	// value ("listen", "approval", "approval.hold", "clients[0]",
	// "clients[0].name", `upstream.resolve["api.github.com:443"]`) to the
	// line it is on. A caller that overrides a key from a flag should delete
	// it here so that Validate does not blame the file for the flag's value.
	Lines map[string]int
	// Secrets lists the keys, in file order, whose secret the file holds
	// itself rather than through ${NAME}: Slack's webhook URL, bot token and
	// signing secret, the bundle token, an HMAC bundle key, clients'
	// passwords, and a password in state's URL. Whoever can read the file
	// can read them.
	Secrets []string
	// SecretEnv names the environment variables that secret keys take
	// their values from, whole or in part (${NAME} inside a longer value):
	// run leaves them out of the agent's environment by name, since part
	// of a secret is no value to look for (found by review).
	SecretEnv []string
}

// CA names the certificate authority used to intercept TLS. Both empty (the
// default) means the CA managed in StateDir; see [Config.CAPaths].
type CA struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Upstream configures connections from the proxy to the real APIs.
type Upstream struct {
	// CAFiles are extra PEM roots trusted when verifying upstream TLS, in
	// addition to the system roots.
	CAFiles []string      `yaml:"ca_files"`
	Timeout time.Duration `yaml:"timeout"`
	// AllowAddresses are exempt from the loopback/private/metadata address
	// guard. A bare address in the file is read as a single-address prefix.
	AllowAddresses []netip.Prefix `yaml:"allow_addresses"`
	// Resolve maps host or host:port to the address to dial instead, like
	// curl --resolve. A value that is a bare IP keeps the requested port; a
	// host:port value replaces both. A key without a port applies to every
	// port. Used by tests and the demo to send real API host names to local
	// fakes. Not in SPEC section 3.
	Resolve map[string]string `yaml:"resolve"`
}

// Policy configures where policies come from and how decisions are applied.
type Policy struct {
	// Paths are directories or files of .rego and data .json/.yaml. When the
	// file does not set policy.paths (see [Config.IsSet]) and ./policies does
	// not exist, the built-in policy applies.
	Paths  []string `yaml:"paths"`
	Bundle Bundle   `yaml:"bundle"`
	// OnError is "deny" or "allow": what an evaluation error, a timeout or a
	// malformed decision means.
	OnError string `yaml:"on_error"`
	// Mode is "enforce" or "shadow" (decide and audit, forward everything).
	Mode        string        `yaml:"mode"`
	EvalTimeout time.Duration `yaml:"eval_timeout"`
}

// Bundle names an optional OPA bundle service.
type Bundle struct {
	URL      string        `yaml:"url"`
	Resource string        `yaml:"resource"`
	Polling  time.Duration `yaml:"polling"`
	// Token is sent as a bearer token to the bundle service.
	Token string `yaml:"token"`
	// CAFile is a PEM file of extra roots for the service's certificate.
	CAFile string `yaml:"ca_file"`
	// Verification requires signed bundles (OPA's .signatures.json).
	Verification BundleVerification `yaml:"verification"`
}

// BundleVerification is the key bundles must be signed with, as in OPA's
// bundle verification config. An empty Key means bundles are not verified.
type BundleVerification struct {
	// Key is a PEM public key, an HMAC secret, or a file holding one.
	Key       string `yaml:"key"`
	KeyID     string `yaml:"key_id"`
	Algorithm string `yaml:"algorithm"`
	Scope     string `yaml:"scope"`
}

// Inspect configures what the proxy looks into.
type Inspect struct {
	// BodyLimit is how many body bytes are buffered for the policy; the rest
	// streams and the policy sees body_truncated=true.
	BodyLimit ByteSize `yaml:"body_limit"`
	// MITM lists host globs ("*", "*.example.com", "api.github.com") whose
	// TLS is intercepted; other hosts are tunnelled and the policy sees the
	// CONNECT only.
	MITM []string `yaml:"mitm"`
}

// Approval configures holding requests for a human.
type Approval struct {
	// Listen is the host:port of the approval page, admin API and Slack
	// callbacks.
	Listen string `yaml:"listen"`
	// PublicURL is the base URL for links; "" means http://<Listen>.
	PublicURL string `yaml:"public_url"`
	// Hold is how long the agent's request is kept open waiting.
	Hold time.Duration `yaml:"hold"`
	// GrantTTL is how long after the hold an approval still admits one
	// identical retry.
	GrantTTL time.Duration `yaml:"grant_ttl"`
	// Expire is when pending requests expire.
	Expire time.Duration `yaml:"expire"`
	// Approvers are the Slack user IDs allowed to approve; empty means anyone
	// with the link.
	Approvers []string `yaml:"approvers"`
	// Operator is the Slack user ID of whoever holds the admin token, so
	// that under the two-person rule their decisions with it and in Slack
	// count as one person's. Unset, a decision with the token and a Slack
	// user's never make a pair.
	Operator string `yaml:"operator"`
	Slack    Slack  `yaml:"slack"`
}

// Slack configures approval notifications in Slack. Every field is a secret
// or points at one; see [Config.Redacted].
type Slack struct {
	// WebhookURL is an incoming webhook (text with links only).
	WebhookURL string `yaml:"webhook_url"`
	// BotToken posts messages with buttons and needs SigningSecret and
	// Channel.
	BotToken      string `yaml:"bot_token"`
	Channel       string `yaml:"channel"`
	SigningSecret string `yaml:"signing_secret"`
}

// Audit configures the audit log.
type Audit struct {
	// Path is the JSON Lines file; "-" is standard output. Load sets it to
	// <state_dir>/audit.jsonl when the file leaves it empty.
	Path string `yaml:"path"`
	// Fsync makes every record durable before the request is forwarded.
	Fsync bool `yaml:"fsync"`
	// Journal, with Fsync, makes records durable through a 4 MiB file
	// beside the log (<path>.journal), overwritten in place, instead of an
	// fsync of the log per group: cheaper on Linux file systems. Linux
	// only; ignored elsewhere.
	Journal bool `yaml:"journal"`
}

// Client is a proxy credential accepted by countersign serve (SPEC section 9).
type Client struct {
	Name string `yaml:"name"`
	// Password and PasswordFile are exclusive; see [Config.ClientPasswords].
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Kubernetes configures Kubernetes classification.
type Kubernetes struct {
	// Hosts are API servers (host or host:port) classified as Kubernetes
	// besides detection by path.
	Hosts []string `yaml:"hosts"`
}

// GitHub configures GitHub classification.
type GitHub struct {
	// Hosts are GitHub Enterprise Server host names: every request to
	// them is classified as GitHub, REST (/api/v3) and GraphQL
	// (/api/graphql) alike. Without them GHES REST is still recognised by
	// its /api/v3 routes, but GHES GraphQL is reported as provider graphql.
	Hosts []string `yaml:"hosts"`
}

// Isolate configures `countersign run --isolate` (docs/isolation.md).
type Isolate struct {
	// Expose lists absolute paths that isolation hides by default but the
	// agent may still reach: a socket under /tmp or /run (the Docker
	// socket, a D-Bus bus), or the SSH agent's socket (SSH_AUTH_SOCK is
	// then kept too).
	Expose []string `yaml:"expose"`
}

// Log configures the operational log; the audit log is separate.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is console or json.
	Format string `yaml:"format"`
}

// Default returns the defaults of SPEC section 3. StateDir is "~/.countersign"
// and Audit.Path is empty; Load expands the first and derives the second from
// it. Every call returns fresh slices.
func Default() Config {
	return Config{
		Listen:   "127.0.0.1:0",
		StateDir: "~/.countersign",
		Upstream: Upstream{
			Timeout: 60 * time.Second,
		},
		Policy: Policy{
			Paths:       []string{"./policies"},
			Bundle:      Bundle{Polling: 60 * time.Second},
			OnError:     "deny",
			Mode:        "enforce",
			EvalTimeout: 250 * time.Millisecond,
		},
		Inspect: Inspect{
			BodyLimit: MiB,
			MITM:      []string{"*"},
		},
		Approval: Approval{
			Listen:   "127.0.0.1:0",
			Hold:     120 * time.Second,
			GrantTTL: 30 * time.Minute,
			Expire:   24 * time.Hour,
		},
		Audit: Audit{Fsync: true, Journal: true},
		Log:   Log{Level: "info", Format: "console"},
	}
}

// IsSet reports whether the configuration file set key, a dotted path such as
// "listen" or "approval.hold", to a non-null value. Commands whose defaults
// differ from [Default] use it; see [Config.UseServeDefaults].
func (c *Config) IsSet(key string) bool {
	_, ok := c.Source.Lines[key]
	return ok
}

// UseServeDefaults applies the defaults that differ for countersign serve:
// Listen becomes [DefaultServeListen] unless the file set it. Call it after
// Load and before applying flags.
func (c *Config) UseServeDefaults() {
	if !c.IsSet("listen") {
		c.Listen = DefaultServeListen
	}
}

// CAPaths returns the CA certificate and key files: ca.cert and ca.key when
// set, else ca.pem and ca-key.pem in StateDir (created on first use).
func (c *Config) CAPaths() (cert, key string) {
	if c.CA.Cert != "" || c.CA.Key != "" {
		return c.CA.Cert, c.CA.Key
	}
	return filepath.Join(c.StateDir, "ca.pem"), filepath.Join(c.StateDir, "ca-key.pem")
}

// Redacted returns a copy of c that is safe to print or log: Slack secrets and
// client passwords are replaced by "REDACTED" when set, and the password in a
// state URL is masked. Slices and maps of the copy are not shared with c.
func (c Config) Redacted() Config {
	const mask = "REDACTED"
	hide := func(s *string) {
		if *s != "" {
			*s = mask
		}
	}
	hide(&c.Approval.Slack.WebhookURL)
	hide(&c.Approval.Slack.BotToken)
	hide(&c.Approval.Slack.SigningSecret)
	hide(&c.Policy.Bundle.Token)
	if strings.HasPrefix(strings.TrimSpace(c.Policy.Bundle.Verification.Key), "-----") || c.Policy.Bundle.Verification.Algorithm != "" && strings.HasPrefix(strings.ToUpper(c.Policy.Bundle.Verification.Algorithm), "HS") {
		hide(&c.Policy.Bundle.Verification.Key)
	}
	if c.State != "" {
		if u, err := url.Parse(c.State); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), mask)
				c.State = u.String()
			}
		} else if err != nil {
			c.State = mask
		}
	}
	c.Clients = slices.Clone(c.Clients)
	for i := range c.Clients {
		hide(&c.Clients[i].Password)
	}
	c.Upstream.CAFiles = slices.Clone(c.Upstream.CAFiles)
	c.Upstream.AllowAddresses = slices.Clone(c.Upstream.AllowAddresses)
	c.Upstream.Resolve = maps.Clone(c.Upstream.Resolve)
	c.Policy.Paths = slices.Clone(c.Policy.Paths)
	c.Inspect.MITM = slices.Clone(c.Inspect.MITM)
	c.Approval.Approvers = slices.Clone(c.Approval.Approvers)
	c.Kubernetes.Hosts = slices.Clone(c.Kubernetes.Hosts)
	c.GitHub.Hosts = slices.Clone(c.GitHub.Hosts)
	c.Isolate.Expose = slices.Clone(c.Isolate.Expose)
	c.Source.Lines = maps.Clone(c.Source.Lines)
	c.Source.Secrets = slices.Clone(c.Source.Secrets)
	return c
}
