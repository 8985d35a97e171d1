package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testHome = "/home/alice"

// cmpConfig compares configurations: netip.Prefix has unexported fields, and
// a list written as [] in the file is as empty as a nil default.
var cmpConfig = cmp.Options{
	cmpopts.EquateComparable(netip.Prefix{}),
	cmpopts.EquateEmpty(),
}

var ignoreSource = cmpopts.IgnoreFields(Config{}, "Source")

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// loadString loads src as if it were the file countersign.yaml.
func loadString(src string, vars map[string]string) (*Config, error) {
	return load("countersign.yaml", []byte(src), LoadOptions{Getenv: env(vars), Home: testHome})
}

// besideFile is rel resolved against the directory of the configuration
// file at file, as Load resolves relative paths the file sets.
func besideFile(t *testing.T, file, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(abs), rel)
}

// resolvedDefault is Default() as Load returns it with testHome.
func resolvedDefault() Config {
	c := Default()
	c.StateDir = testHome + "/.countersign"
	c.Audit.Path = testHome + "/.countersign/audit.jsonl"
	return c
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	if len(cerr.Problems) == 0 {
		t.Fatalf("*config.Error with no problems")
	}
	return cerr.Problems
}

func TestDefault(t *testing.T) {
	want := Config{
		Listen:   "127.0.0.1:0",
		StateDir: "~/.countersign",
		Upstream: Upstream{Timeout: 60 * time.Second},
		Policy: Policy{
			Paths:       []string{"./policies"},
			Bundle:      Bundle{Polling: 60 * time.Second},
			OnError:     "deny",
			Mode:        "enforce",
			EvalTimeout: 250 * time.Millisecond,
		},
		Inspect: Inspect{BodyLimit: 1 << 20, MITM: []string{"*"}},
		Approval: Approval{
			Listen:   "127.0.0.1:0",
			Hold:     120 * time.Second,
			GrantTTL: 30 * time.Minute,
			Expire:   24 * time.Hour,
		},
		Audit: Audit{Fsync: true, Journal: true},
		Log:   Log{Level: "info", Format: "console"},
	}
	got := Default()
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}

	// Fresh slices on every call.
	got.Policy.Paths[0] = "changed"
	if again := Default(); again.Policy.Paths[0] != "./policies" {
		t.Errorf("Default() shares slices between calls")
	}
}

func TestLoadNoFile(t *testing.T) {
	got, err := Load(LoadOptions{Home: testHome})
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if diff := cmp.Diff(resolvedDefault(), *got, cmpConfig); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(LoadOptions{Path: filepath.Join(t.TempDir(), "countersign.yaml"), Home: testHome})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing file) error = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEmpty(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"empty", ""},
		{"comment only", "# nothing here\n"},
		{"document marker", "---\n"},
		{"null document", "~\n"},
		{"null values", "listen:\napproval:\n  hold: ~\nclients:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadString(tt.give, nil)
			if err != nil {
				t.Fatalf("load(%q) error = %v", tt.give, err)
			}
			if diff := cmp.Diff(resolvedDefault(), *got, cmpConfig, ignoreSource); diff != "" {
				t.Errorf("load(%q) mismatch (-want +got):\n%s", tt.give, diff)
			}
			if got.IsSet("listen") {
				t.Errorf("IsSet(listen) = true for a null value")
			}
		})
	}
}

func TestLoadSpecExample(t *testing.T) {
	path := filepath.Join("testdata", "spec.yaml")
	got, err := Load(LoadOptions{Path: path, Home: testHome})
	if err != nil {
		t.Fatalf("Load(%s) error = %v", path, err)
	}
	// The example shows the defaults, except that audit.path is written as
	// a placeholder, which loads as the literal relative path.
	want := resolvedDefault()
	want.Audit.Path = besideFile(t, path, "<state_dir>/audit.jsonl")
	want.Policy.Paths = []string{besideFile(t, path, "policies")}
	if diff := cmp.Diff(want, *got, cmpConfig, ignoreSource); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", path, diff)
	}
	if got.Source.File != path {
		t.Errorf("Source.File = %q, want %q", got.Source.File, path)
	}
	for key, line := range map[string]int{"listen": 1, "upstream.timeout": 6, "log": 40, "approval.slack.channel": 31} {
		if got.Source.Lines[key] != line {
			t.Errorf("Source.Lines[%q] = %d, want %d", key, got.Source.Lines[key], line)
		}
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestLoadFull(t *testing.T) {
	path := filepath.Join("testdata", "full.yaml")
	got, err := Load(LoadOptions{
		Path: path,
		Home: testHome,
		Getenv: env(map[string]string{
			"SLACK_BOT_TOKEN":         "xoxb-token",
			"SLACK_SIGNING_SECRET":    "signing-secret",
			"CI_AGENT_PROXY_PASSWORD": "ci-secret",
			"PGPASSWORD":              "pg-secret",
		}),
	})
	if err != nil {
		t.Fatalf("Load(%s) error = %v", path, err)
	}
	want := Config{
		Listen:   "0.0.0.0:3128",
		StateDir: "/home/alice/state",
		CA:       CA{Cert: "/home/alice/ca/ca.pem", Key: "/etc/countersign/ca-key.pem"},
		Upstream: Upstream{
			CAFiles: []string{"/home/alice/roots.pem", besideFile(t, path, "corp.pem")},
			Timeout: 90 * time.Second,
			AllowAddresses: []netip.Prefix{
				netip.MustParsePrefix("127.0.0.0/8"),
				netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("10.1.0.0/16"),
			},
			Resolve: map[string]string{
				"api.github.com:443": "127.0.0.1:8443",
				"sts.amazonaws.com":  "127.0.0.2",
			},
		},
		Policy: Policy{
			Paths: []string{besideFile(t, path, "policies"), "/etc/countersign/extra.rego"},
			Bundle: Bundle{
				URL:      "https://bundles.example.com",
				Resource: "bundles/agents.tar.gz",
				Polling:  5 * time.Minute,
			},
			OnError:     "allow",
			Mode:        "shadow",
			EvalTimeout: time.Second,
		},
		Inspect: Inspect{BodyLimit: 512 * KiB, MITM: []string{"*.amazonaws.com", "api.github.com"}},
		Approval: Approval{
			Listen:    "127.0.0.1:8081",
			PublicURL: "https://countersign.example.com",
			Hold:      50 * time.Second,
			GrantTTL:  10 * time.Minute,
			Expire:    12 * time.Hour,
			Approvers: []string{"U012AB3CD", "W0123456"},
			Slack: Slack{
				BotToken:      "xoxb-token",
				Channel:       "C0123456",
				SigningSecret: "signing-secret",
			},
		},
		Audit: Audit{Path: "-", Fsync: false, Journal: false},
		Clients: []Client{
			{Name: "ci-agent", Password: "ci-secret"},
			{Name: "nightly", PasswordFile: "/home/alice/nightly.pass"},
		},
		Kubernetes: Kubernetes{Hosts: []string{"k8s.internal:6443", "10.0.0.1"}},
		GitHub:     GitHub{Hosts: []string{"ghe.internal"}},
		State:      "postgres://countersign:pg-secret@db.internal:5432/countersign?sslmode=verify-full",
		Log:        Log{Level: "debug", Format: "json"},
	}
	if diff := cmp.Diff(want, *got, cmpConfig, ignoreSource); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", path, diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	for key, line := range map[string]int{
		"listen":                                 2,
		"upstream.resolve":                       11,
		`upstream.resolve["api.github.com:443"]`: 12,
		"clients[1]":                             45,
		"clients[1].password_file":               46,
		"log.format":                             52,
	} {
		if got.Source.Lines[key] != line {
			t.Errorf("Source.Lines[%q] = %d, want %d", key, got.Source.Lines[key], line)
		}
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		give string
		env  map[string]string
		want []Problem
	}{
		{
			name: "unknown top-level key",
			give: "listen: :0\nlistn: :1\n",
			want: []Problem{{Line: 2, Key: "listn", Msg: "unknown key (did you mean listen?)"}},
		},
		{
			name: "unknown nested key",
			give: "approval:\n  listen: :0\n  hodl: 5m\n",
			want: []Problem{{Line: 3, Key: "approval.hodl", Msg: "unknown key (did you mean approval.hold?)"}},
		},
		{
			name: "unknown key without suggestion",
			give: "approval:\n  slack:\n    frobnicate: yes\n",
			want: []Problem{{Line: 3, Key: "approval.slack.frobnicate", Msg: "unknown key"}},
		},
		{
			name: "key at the wrong level",
			give: "hold: 60s\n",
			want: []Problem{{Line: 1, Key: "hold", Msg: "unknown key (did you mean approval.hold?)"}},
		},
		{
			name: "unknown key in a list item",
			give: "clients:\n  - name: a\n    password: x\n  - nme: b\n    password: y\n",
			want: []Problem{{Line: 4, Key: "clients[1].nme", Msg: "unknown key (did you mean clients[1].name?)"}},
		},
		{
			name: "bad duration",
			give: "approval:\n  hold: 2 minutes\n",
			want: []Problem{{Line: 2, Key: "approval.hold", Msg: `invalid duration "2 minutes" (use e.g. 120s, 5m)`}},
		},
		{
			name: "duration without unit",
			give: "upstream: {timeout: 60}\n",
			want: []Problem{{Line: 1, Key: "upstream.timeout", Msg: `invalid duration "60" (use e.g. 120s, 5m)`}},
		},
		{
			name: "bad byte size",
			give: "inspect:\n  body_limit: 1 megabyte\n",
			want: []Problem{{Line: 2, Key: "inspect.body_limit", Msg: `invalid size "1 megabyte": unknown unit "megabyte" (use B, KiB, MiB, GiB, kB, MB, GB)`}},
		},
		{
			name: "negative byte size",
			give: "inspect:\n  body_limit: -1\n",
			want: []Problem{{Line: 2, Key: "inspect.body_limit", Msg: `invalid size "-1" (use e.g. 1MiB, 512KiB, 1048576)`}},
		},
		{
			name: "bad bool",
			give: "audit:\n  fsync: yes\n",
			want: []Problem{{Line: 2, Key: "audit.fsync", Msg: `want true or false, got "yes"`}},
		},
		{
			name: "bad prefix",
			give: "upstream:\n  allow_addresses: [127.0.0.0/33, localhost]\n",
			want: []Problem{
				{Line: 2, Key: "upstream.allow_addresses[0]", Msg: `invalid CIDR prefix "127.0.0.0/33" (use e.g. 127.0.0.0/8)`},
				{Line: 2, Key: "upstream.allow_addresses[1]", Msg: `invalid address or CIDR prefix "localhost" (use e.g. 127.0.0.0/8)`},
			},
		},
		{
			name: "scalar where a mapping belongs",
			give: "approval: 5m\n",
			want: []Problem{{Line: 1, Key: "approval", Msg: "want a mapping of keys, got a single value"}},
		},
		{
			name: "scalar where a list belongs",
			give: "inspect:\n  mitm: api.github.com\n",
			want: []Problem{{Line: 2, Key: "inspect.mitm", Msg: "want a list, got a single value (write [api.github.com] for a list of one)"}},
		},
		{
			name: "list where a scalar belongs",
			give: "listen: [a, b]\n",
			want: []Problem{{Line: 1, Key: "listen", Msg: "want a single value, got a list"}},
		},
		{
			name: "mapping where a list item scalar belongs",
			give: "kubernetes:\n  hosts:\n    - {host: a}\n",
			want: []Problem{{Line: 3, Key: "kubernetes.hosts[0]", Msg: "want a single value, got a mapping"}},
		},
		{
			name: "list where a string map belongs",
			give: "upstream:\n  resolve: [a]\n",
			want: []Problem{{Line: 2, Key: "upstream.resolve", Msg: "want a mapping, got a list"}},
		},
		{
			name: "unset environment variable",
			give: "approval:\n  slack:\n    bot_token: ${SLACK_BOT_TOKEN}\n",
			want: []Problem{{Line: 3, Key: "approval.slack.bot_token", Msg: "environment variable SLACK_BOT_TOKEN is not set"}},
		},
		{
			name: "several unset variables in one value",
			give: "state: postgres://${PGUSER}:${PGPASSWORD}@db/x\n",
			env:  map[string]string{"PGUSER": "u"},
			want: []Problem{{Line: 1, Key: "state", Msg: "environment variable PGPASSWORD is not set"}},
		},
		{
			name: "unterminated reference",
			give: "listen: ${PORT\n",
			want: []Problem{{Line: 1, Key: "listen", Msg: `unterminated "${" (write "$$" for a literal "$")`}},
		},
		{
			name: "invalid reference",
			give: "listen: ${PORT:-8080}\n",
			want: []Problem{{Line: 1, Key: "listen", Msg: `invalid variable reference "${PORT:-8080}" (want ${NAME}; write "$$" for a literal "$")`}},
		},
		{
			name: "environment variable in a list item",
			give: "clients:\n  - name: a\n    password: ${A_PASSWORD}\n",
			want: []Problem{{Line: 3, Key: "clients[0].password", Msg: "environment variable A_PASSWORD is not set"}},
		},
		{
			name: "expanded value is decoded",
			give: "approval:\n  hold: ${HOLD}\n",
			env:  map[string]string{"HOLD": "soon"},
			want: []Problem{{Line: 2, Key: "approval.hold", Msg: `invalid duration "soon" (use e.g. 120s, 5m)`}},
		},
		{
			name: "duplicate top-level key",
			give: "listen: :1\nlog: {level: info}\nlisten: :2\n",
			want: []Problem{{Line: 3, Key: "listen", Msg: "duplicate key (first set on line 1)"}},
		},
		{
			name: "duplicate nested key",
			give: "approval:\n  hold: 1m\n  expire: 1h\n  hold: 2m\n",
			want: []Problem{{Line: 4, Key: "approval.hold", Msg: "duplicate key (first set on line 2)"}},
		},
		{
			name: "duplicate key in a string map",
			give: "upstream:\n  resolve:\n    a.example: 127.0.0.1\n    a.example: 127.0.0.2\n",
			want: []Problem{{Line: 4, Key: `upstream.resolve["a.example"]`, Msg: "duplicate key (first set on line 3)"}},
		},
		{
			name: "multiple documents",
			give: "listen: :1\n---\nlisten: :2\n",
			want: []Problem{{Line: 2, Msg: "the file holds more than one YAML document (separated by ---); put every key in one"}},
		},
		{
			name: "syntax error",
			give: "listen: :1\napproval:\n  hold: [1m\n",
			want: []Problem{{Line: 2, Msg: "invalid YAML: did not find expected ',' or ']'"}},
		},
		{
			name: "top level is a list",
			give: "- listen: :1\n",
			want: []Problem{{Line: 1, Msg: "want a mapping of keys at the top level, got a list"}},
		},
		{
			name: "top level is a scalar",
			give: "hello\n",
			want: []Problem{{Line: 1, Msg: "want a mapping of keys at the top level, got a single value"}},
		},
		{
			name: "merge key",
			give: "base: &b {hold: 1m}\napproval:\n  <<: *b\n",
			want: []Problem{
				{Line: 1, Key: "base", Msg: "unknown key"},
				{Line: 3, Key: "approval", Msg: "merge keys (<<) are not supported; write the keys out"},
			},
		},
		{
			name: "complex key",
			give: "? [a]\n: b\n",
			want: []Problem{{Line: 1, Msg: "keys must be names, got a list"}},
		},
		{
			name: "home directory with a user name",
			give: "state_dir: ~bob/state\n",
			want: []Problem{{Line: 1, Key: "state_dir", Msg: `cannot expand "~bob/state": only a leading ~/ is expanded`}},
		},
		{
			name: "every problem at once",
			give: "listn: :1\n" +
				"approval:\n" +
				"  hold: forever\n" +
				"  hodl: 1m\n" +
				"inspect:\n" +
				"  body_limit: lots\n" +
				"clients:\n" +
				"  - name: a\n" +
				"    password: ${NOPE}\n",
			want: []Problem{
				{Line: 1, Key: "listn", Msg: "unknown key (did you mean listen?)"},
				{Line: 3, Key: "approval.hold", Msg: `invalid duration "forever" (use e.g. 120s, 5m)`},
				{Line: 4, Key: "approval.hodl", Msg: "unknown key (did you mean approval.hold?)"},
				{Line: 6, Key: "inspect.body_limit", Msg: `invalid size "lots" (use e.g. 1MiB, 512KiB, 1048576)`},
				{Line: 9, Key: "clients[0].password", Msg: "environment variable NOPE is not set"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadString(tt.give, tt.env)
			if err == nil {
				t.Fatalf("load(%q) = %+v, want error", tt.give, got)
			}
			if got != nil {
				t.Errorf("load(%q) returned a config with an error", tt.give)
			}
			want := make([]Problem, len(tt.want))
			for i, p := range tt.want {
				p.File = "countersign.yaml"
				want[i] = p
			}
			if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
				t.Errorf("load(%q) problems mismatch (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestLoadHome(t *testing.T) {
	_, err := load("", nil, LoadOptions{})
	want := []Problem{{Key: "state_dir", Msg: `cannot expand "~/.countersign": home directory unknown (use an absolute path)`}}
	if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
		t.Errorf("load without home: problems mismatch (-want +got):\n%s", diff)
	}

	got, err := load("c.yaml", []byte("state_dir: /var/lib/countersign\npolicy: {paths: ['~', ~/p]}\n"), LoadOptions{Home: "/root"})
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	if want := "/var/lib/countersign/audit.jsonl"; got.Audit.Path != want {
		t.Errorf("Audit.Path = %q, want %q", got.Audit.Path, want)
	}
	if diff := cmp.Diff([]string{"/root", "/root/p"}, got.Policy.Paths); diff != "" {
		t.Errorf("Policy.Paths mismatch (-want +got):\n%s", diff)
	}
}

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "beta", "EMPTY": "", "DOLLAR": "$${A}"}
	tests := []struct {
		give string
		want string
	}{
		{"${A}", "alpha"},
		{"pre-${A}-${B}-post", "pre-alpha-beta-post"},
		{"${EMPTY}", ""},
		{"$$", "$"},
		{"$${A}", "${A}"},
		{"$$$$", "$$"},
		{"a$b", "a$b"},
		{"$", "$"},
		{"cost: 5$", "cost: 5$"},
		{"${DOLLAR}", "$${A}"}, // expanded values are not expanded again
		{"{A}", "{A}"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := loadString("approval: {slack: {channel: '"+tt.give+"'}}\n", vars)
			if err != nil {
				t.Fatalf("load(channel: %q) error = %v", tt.give, err)
			}
			if got.Approval.Slack.Channel != tt.want {
				t.Errorf("channel %q expanded to %q, want %q", tt.give, got.Approval.Slack.Channel, tt.want)
			}
		})
	}
}

func TestEnvNotExpandedInKeys(t *testing.T) {
	got, err := loadString("upstream:\n  resolve:\n    ${HOST}: ${ADDR}\n", map[string]string{"HOST": "h", "ADDR": "127.0.0.1"})
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	want := map[string]string{"${HOST}": "127.0.0.1"}
	if diff := cmp.Diff(want, got.Upstream.Resolve); diff != "" {
		t.Errorf("Upstream.Resolve mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadListsReplaceDefaults(t *testing.T) {
	got, err := loadString("inspect:\n  mitm: []\npolicy:\n  paths: [a]\n", nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	if got.Inspect.MITM == nil || len(got.Inspect.MITM) != 0 {
		t.Errorf("Inspect.MITM = %#v, want empty, non-nil", got.Inspect.MITM)
	}
	if diff := cmp.Diff([]string{besideFile(t, "countersign.yaml", "a")}, got.Policy.Paths); diff != "" {
		t.Errorf("Policy.Paths mismatch (-want +got):\n%s", diff)
	}
	if !got.IsSet("policy.paths") || !got.IsSet("inspect.mitm") || got.IsSet("approval") {
		t.Errorf("IsSet: got %v", got.Source.Lines)
	}
}

func TestLoadAliases(t *testing.T) {
	src := "kubernetes:\n  hosts: &hosts [a.example, b.example]\n" +
		"inspect:\n  mitm: *hosts\n" +
		"clients:\n  - &c {name: a, password: x}\n  - *c\n"
	got, err := loadString(src, nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	if diff := cmp.Diff([]string{"a.example", "b.example"}, got.Inspect.MITM); diff != "" {
		t.Errorf("Inspect.MITM mismatch (-want +got):\n%s", diff)
	}
	if len(got.Clients) != 2 || got.Clients[1].Name != "a" {
		t.Errorf("Clients = %+v, want two copies of a", got.Clients)
	}

	// An anchor that contains itself must not loop.
	if _, err := loadString("inspect: &x {mitm: *x}\n", nil); err == nil {
		t.Errorf("load(self-referencing anchor) error = nil, want error")
	}
}

func TestServeDefaults(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"listen unset", "log: {level: info}\n", ":8080"},
		{"listen null", "listen:\n", ":8080"},
		{"listen set", "listen: 127.0.0.1:9000\n", "127.0.0.1:9000"},
		{"listen set to the run default", "listen: 127.0.0.1:0\n", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(tt.give, nil)
			if err != nil {
				t.Fatalf("load(%q) error = %v", tt.give, err)
			}
			c.UseServeDefaults()
			if c.Listen != tt.want {
				t.Errorf("after UseServeDefaults, Listen = %q, want %q", c.Listen, tt.want)
			}
		})
	}
}

func TestCAPaths(t *testing.T) {
	c := resolvedDefault()
	cert, key := c.CAPaths()
	if cert != testHome+"/.countersign/ca.pem" || key != testHome+"/.countersign/ca-key.pem" {
		t.Errorf("CAPaths() = %q, %q, want the files in state_dir", cert, key)
	}
	c.CA = CA{Cert: "/c.pem", Key: "/k.pem"}
	if cert, key := c.CAPaths(); cert != "/c.pem" || key != "/k.pem" {
		t.Errorf("CAPaths() = %q, %q, want /c.pem, /k.pem", cert, key)
	}
}

func TestRedacted(t *testing.T) {
	c := resolvedDefault()
	c.Approval.Slack = Slack{WebhookURL: "https://hooks.slack.com/services/T/B/secret", BotToken: "xoxb-1", Channel: "C1", SigningSecret: "s3cret"}
	c.Clients = []Client{{Name: "a", Password: "pw"}, {Name: "b", PasswordFile: "/f"}}
	c.State = "postgres://u:dbpass@db/x"
	got := c.Redacted()

	want := c
	want.Approval.Slack = Slack{WebhookURL: "REDACTED", BotToken: "REDACTED", Channel: "C1", SigningSecret: "REDACTED"}
	want.Clients = []Client{{Name: "a", Password: "REDACTED"}, {Name: "b", PasswordFile: "/f"}}
	want.State = "postgres://u:REDACTED@db/x"
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Redacted() mismatch (-want +got):\n%s", diff)
	}
	if c.Clients[0].Password != "pw" {
		t.Errorf("Redacted() changed the original")
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		give Problem
		want string
	}{
		{Problem{File: "countersign.yaml", Line: 7, Key: "approval.hold", Msg: `invalid duration "2 minutes" (use e.g. 120s, 5m)`},
			`countersign.yaml:7: approval.hold: invalid duration "2 minutes" (use e.g. 120s, 5m)`},
		{Problem{File: "c.yaml", Line: 2, Msg: "invalid YAML: x"}, "c.yaml:2: invalid YAML: x"},
		{Problem{File: "c.yaml", Key: "k", Msg: "m"}, "c.yaml: k: m"},
		{Problem{Key: "state_dir", Msg: "m"}, "state_dir: m"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.give, got, tt.want)
		}
	}
	err := &Error{Problems: []Problem{tests[0].give, tests[3].give}}
	if want := tests[0].want + "\n" + tests[3].want; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestLoadFromDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "countersign.yaml")
	if err := os.WriteFile(path, []byte("approval:\n  hold: 2 minutes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(LoadOptions{Path: path, Home: testHome})
	want := path + `:2: approval.hold: invalid duration "2 minutes" (use e.g. 120s, 5m)`
	if err == nil || err.Error() != want {
		t.Errorf("Load() error = %v, want %s", err, want)
	}
}

// TestRelativePathsFollowTheFile: a relative path the file sets is relative
// to the file's directory, not to the working directory, which under `run`
// is the agent's (found by review: `--config ~/cs/countersign.yaml` read the
// repository's ./policies). Defaults, "~", absolute paths and "-" stay.
func TestRelativePathsFollowTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cs", "countersign.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	src := `state_dir: ./state
ca:
  cert: ~/ca.pem
  key: /etc/countersign/ca-key.pem
policy:
  paths: [./policies, ../shared/policies]
  bundle:
    url: https://bundles.example.com/b.tar.gz
    ca_file: roots/bundle.pem
upstream:
  ca_files: [corp.pem]
clients:
  - name: ci
    password_file: secrets/ci.pass
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(LoadOptions{Path: path, Home: testHome})
	if err != nil {
		t.Fatal(err)
	}
	cs := filepath.Join(dir, "cs")
	for _, c := range []struct{ key, got, want string }{
		{"state_dir", got.StateDir, filepath.Join(cs, "state")},
		{"audit.path", got.Audit.Path, filepath.Join(cs, "state", "audit.jsonl")},
		{"ca.cert", got.CA.Cert, testHome + "/ca.pem"},
		{"ca.key", got.CA.Key, "/etc/countersign/ca-key.pem"},
		{"policy.paths[0]", got.Policy.Paths[0], filepath.Join(cs, "policies")},
		{"policy.paths[1]", got.Policy.Paths[1], filepath.Join(dir, "shared", "policies")},
		{"policy.bundle.ca_file", got.Policy.Bundle.CAFile, filepath.Join(cs, "roots", "bundle.pem")},
		{"upstream.ca_files[0]", got.Upstream.CAFiles[0], filepath.Join(cs, "corp.pem")},
		{"clients[0].password_file", got.Clients[0].PasswordFile, filepath.Join(cs, "secrets", "ci.pass")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	// What the file does not set keeps its default; "-" is standard output.
	got, err = load(path, []byte("audit:\n  path: \"-\"\n"), LoadOptions{Home: testHome})
	if err != nil {
		t.Fatal(err)
	}
	if got.Audit.Path != "-" || !slices.Equal(got.Policy.Paths, []string{"./policies"}) {
		t.Errorf("audit.path %q, policy.paths %q; want \"-\" and the default", got.Audit.Path, got.Policy.Paths)
	}
}

// Secrets written into the file itself are listed in file order, so that
// countersign can warn when others can read it; those given as ${NAME}, a
// state URL without a password and a public bundle key are not.
func TestLoadListsInlineSecrets(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "written out",
			src: `clients:
  - {name: a, password: hunter2}
  - {name: b, password: "${B_PW}"}
approval:
  slack: {bot_token: xoxb-123, signing_secret: "${SIGNING}", channel: "#ops", webhook_url: "https://hooks.slack.com/services/T/B/x"}
policy:
  bundle: {url: "https://b.example/", token: t0ken, verification: {key: sekrit, algorithm: HS256}}
state: postgres://cs:pw@db.example/cs
`,
			want: []string{"clients[0].password", "approval.slack.bot_token", "approval.slack.webhook_url", "policy.bundle.token", "policy.bundle.verification.key", "state"},
		},
		{
			name: "from the environment",
			src: `approval: {slack: {bot_token: "${BOT}", signing_secret: "${SIGNING}", channel: "#ops"}}
state: "postgres://cs:${PGPASSWORD}@db.example/cs"
policy: {bundle: {url: "https://b.example/", token: "${B_PW}"}}
`,
		},
		{
			name: "not secrets",
			src: `state: postgres://cs@db.example/cs
policy: {bundle: {url: "https://b.example/", verification: {key: "-----BEGIN PUBLIC KEY-----", algorithm: RS256}}}
`,
		},
		{
			name: "a password as a parameter",
			src:  "state: postgres://cs@db.example/cs?sslmode=verify-full&password=pw\n",
			want: []string{"state"},
		},
		{
			name: "an HMAC key in a file",
			src:  "policy: {bundle: {url: \"https://b.example/\", verification: {key: /etc/cs/bundle.key, algorithm: HS256}}}\n",
		},
	}
	vars := map[string]string{"B_PW": "x", "SIGNING": "y", "BOT": "z", "PGPASSWORD": "p"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(tt.src, vars)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Source.Secrets); diff != "" {
				t.Errorf("Source.Secrets (-want +got):\n%s", diff)
			}
		})
	}
}

// For commands that use no secrets, an unset variable in a secret is
// empty, and elsewhere still a problem (found by review: `ca init` made a
// CA in the working directory from an unset ${VAR} in state_dir).
func TestUnsetSecretsEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "countersign.yaml")
	if err := os.WriteFile(path, []byte("approval:\n  slack:\n    bot_token: ${CS_TEST_UNSET_TOKEN}\n    channel: C1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) (string, bool) { return "", false }
	if _, err := Load(LoadOptions{Path: path, Getenv: getenv, Home: dir, UnsetSecretsEmpty: true}); err != nil {
		t.Errorf("an unset secret: %v, want it empty", err)
	}
	if _, err := Load(LoadOptions{Path: path, Getenv: getenv, Home: dir}); err == nil {
		t.Error("an unset secret without UnsetSecretsEmpty: no error")
	}
	if err := os.WriteFile(path, []byte("state_dir: ${CS_TEST_UNSET_ROOT}state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(LoadOptions{Path: path, Getenv: getenv, Home: dir, UnsetSecretsEmpty: true})
	if err == nil || !strings.Contains(err.Error(), "CS_TEST_UNSET_ROOT is not set") || !strings.Contains(err.Error(), "state_dir") {
		t.Errorf("an unset variable in state_dir: %v, want it named", err)
	}
}
