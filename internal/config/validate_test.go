package config

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []Problem // nil: valid
	}{
		{name: "defaults", modify: func(c *Config) {}},
		{
			name: "full valid configuration",
			modify: func(c *Config) {
				c.Listen = ":8080"
				c.CA = CA{Cert: "/ca.pem", Key: "/ca-key.pem"}
				c.Upstream.Resolve = map[string]string{"api.github.com:443": "127.0.0.1:8443", "sts.amazonaws.com": "127.0.0.1", "x.example": "localhost:9000", "[::1]:443": "::1"}
				c.Policy.Bundle = Bundle{URL: "http://127.0.0.1:8181/bundles", Resource: "b.tar.gz", Polling: time.Minute}
				c.Inspect.BodyLimit = KiB
				c.Inspect.MITM = []string{"*", "*.example.com", "api.github.com", "10.0.0.1", "my_host.internal"}
				c.Approval.Listen = "[::1]:8081"
				c.Approval.PublicURL = "http://127.0.0.1:8081/base"
				c.Approval.Hold = 4*time.Minute - time.Second
				c.Approval.Approvers = []string{"U012AB3CD"}
				c.Approval.Slack = Slack{WebhookURL: "https://hooks.slack.com/services/T/B/X", BotToken: "xoxb", Channel: "C1", SigningSecret: "s"}
				c.Clients = []Client{{Name: "a", Password: "x"}, {Name: "b", PasswordFile: "/f"}}
				c.Kubernetes.Hosts = []string{"k8s.internal:6443", "10.0.0.1", "kubernetes.default.svc"}
				c.State = "postgresql://u:p@db:5432/countersign?sslmode=require"
				c.Log = Log{Level: "error", Format: "json"}
			},
		},
		{
			name:   "listen without port",
			modify: func(c *Config) { c.Listen = "localhost" },
			want:   []Problem{{Key: "listen", Msg: `want host:port (e.g. 127.0.0.1:8080 or :8080), got "localhost"`}},
		},
		{
			name:   "listen port out of range",
			modify: func(c *Config) { c.Listen = ":70000" },
			want:   []Problem{{Key: "listen", Msg: `want host:port (e.g. 127.0.0.1:8080 or :8080), got ":70000"`}},
		},
		{
			name:   "listen as a URL",
			modify: func(c *Config) { c.Approval.Listen = "http://127.0.0.1:80" },
			want:   []Problem{{Key: "approval.listen", Msg: `want host:port (e.g. 127.0.0.1:8080 or :8080), got "http://127.0.0.1:80"`}},
		},
		{
			name:   "approval on the proxy's address",
			modify: func(c *Config) { c.Listen = ":8080"; c.Approval.Listen = ":8080" },
			want:   []Problem{{Key: "approval.listen", Msg: "same address as listen (:8080)"}},
		},
		{
			name:   "empty state_dir",
			modify: func(c *Config) { c.StateDir = "" },
			want:   []Problem{{Key: "state_dir", Msg: "must not be empty"}},
		},
		{
			name:   "ca cert without key",
			modify: func(c *Config) { c.CA.Cert = "/ca.pem" },
			want:   []Problem{{Key: "ca.cert", Msg: "set without ca.key (set both, or neither to use the CA in state_dir)"}},
		},
		{
			name:   "ca key without cert",
			modify: func(c *Config) { c.CA.Key = "/ca-key.pem" },
			want:   []Problem{{Key: "ca.key", Msg: "set without ca.cert (set both, or neither to use the CA in state_dir)"}},
		},
		{
			name: "non-positive durations",
			modify: func(c *Config) {
				c.Upstream.Timeout = 0
				c.Policy.EvalTimeout = -time.Second
				c.Policy.Bundle.Polling = 0
				c.Approval.GrantTTL = 0
			},
			want: []Problem{
				{Key: "upstream.timeout", Msg: "must be greater than 0, got 0s"},
				{Key: "policy.bundle.polling", Msg: "must be greater than 0, got 0s"},
				{Key: "policy.eval_timeout", Msg: "must be greater than 0, got -1s"},
				{Key: "approval.grant_ttl", Msg: "must be greater than 0, got 0s"},
			},
		},
		{
			// A grant must not outlive its approval's record in the store.
			name:   "grant longer than a day",
			modify: func(c *Config) { c.Approval.GrantTTL = 25 * time.Hour },
			want:   []Problem{{Key: "approval.grant_ttl", Msg: "25h0m0s is too long: at most 24h0m0s"}},
		},
		{
			name:   "empty path entries",
			modify: func(c *Config) { c.Upstream.CAFiles = []string{""}; c.Policy.Paths = []string{"a", ""} },
			want: []Problem{
				{Key: "upstream.ca_files[0]", Msg: "must not be empty"},
				{Key: "policy.paths[1]", Msg: "must not be empty"},
			},
		},
		{
			name: "bad resolve entries",
			modify: func(c *Config) {
				c.Upstream.Resolve = map[string]string{
					"https://a.example": "127.0.0.1",
					"b.example":         "localhost",
					"c.example:443":     "127.0.0.1:0",
					"d.example":         "",
				}
			},
			want: []Problem{
				{Key: `upstream.resolve["b.example"]`, Msg: `invalid address "localhost" (want host:port or an IP address)`},
				{Key: `upstream.resolve["c.example:443"]`, Msg: `invalid address "127.0.0.1:0" (want host:port or an IP address)`},
				{Key: `upstream.resolve["d.example"]`, Msg: `invalid address "" (want host:port or an IP address)`},
				{Key: `upstream.resolve["https://a.example"]`, Msg: `invalid host "https://a.example" (want host or host:port, as in the request)`},
			},
		},
		{
			name:   "bundle URL not http",
			modify: func(c *Config) { c.Policy.Bundle.URL = "s3://bucket/b" },
			want:   []Problem{{Key: "policy.bundle.url", Msg: `want an absolute http:// or https:// URL, got "s3://bucket/b"`}},
		},
		{
			name:   "bundle resource without URL",
			modify: func(c *Config) { c.Policy.Bundle.Resource = "b.tar.gz" },
			want:   []Problem{{Key: "policy.bundle.resource", Msg: "set without policy.bundle.url"}},
		},
		{
			name:   "on_error",
			modify: func(c *Config) { c.Policy.OnError = "ignore" },
			want:   []Problem{{Key: "policy.on_error", Msg: `want one of "deny", "allow", got "ignore"`}},
		},
		{
			name:   "mode",
			modify: func(c *Config) { c.Policy.Mode = "audit" },
			want:   []Problem{{Key: "policy.mode", Msg: `want one of "enforce", "shadow", got "audit"`}},
		},
		{
			name:   "body limit too small",
			modify: func(c *Config) { c.Inspect.BodyLimit = 512 },
			want:   []Problem{{Key: "inspect.body_limit", Msg: "512B is out of range (1KiB to 1GiB)"}},
		},
		{
			name:   "body limit too large",
			modify: func(c *Config) { c.Inspect.BodyLimit = GiB + 1 },
			want:   []Problem{{Key: "inspect.body_limit", Msg: "1073741825B is out of range (1KiB to 1GiB)"}},
		},
		{
			name:   "body limit at the maximum",
			modify: func(c *Config) { c.Inspect.BodyLimit = GiB },
		},
		{
			name: "mitm patterns",
			modify: func(c *Config) {
				c.Inspect.MITM = []string{"api.github.com:443", "https://x.example", "api.*.com", "", "*example.com"}
			},
			want: []Problem{
				{Key: "inspect.mitm[0]", Msg: `invalid host pattern "api.github.com:443" (use *, *.example.com or api.example.com, without scheme or port)`},
				{Key: "inspect.mitm[1]", Msg: `invalid host pattern "https://x.example" (use *, *.example.com or api.example.com, without scheme or port)`},
				{Key: "inspect.mitm[2]", Msg: `invalid host pattern "api.*.com" (use *, *.example.com or api.example.com, without scheme or port)`},
				{Key: "inspect.mitm[3]", Msg: `invalid host pattern "" (use *, *.example.com or api.example.com, without scheme or port)`},
				{Key: "inspect.mitm[4]", Msg: `invalid host pattern "*example.com" (use *, *.example.com or api.example.com, without scheme or port)`},
			},
		},
		{
			name:   "public_url without scheme",
			modify: func(c *Config) { c.Approval.PublicURL = "countersign.example.com" },
			want:   []Problem{{Key: "approval.public_url", Msg: `want an absolute http:// or https:// URL without query or fragment, got "countersign.example.com"`}},
		},
		{
			name:   "public_url with query",
			modify: func(c *Config) { c.Approval.PublicURL = "https://x.example/?a=b" },
			want:   []Problem{{Key: "approval.public_url", Msg: `want an absolute http:// or https:// URL without query or fragment, got "https://x.example/?a=b"`}},
		},
		{
			name:   "hold of 4m",
			modify: func(c *Config) { c.Approval.Hold = 4 * time.Minute },
			want:   []Problem{{Key: "approval.hold", Msg: "4m0s is too long: AWS rejects SigV4 requests signed more than ~5 minutes earlier (keep it under 4m0s)"}},
		},
		{
			name:   "hold longer than expire",
			modify: func(c *Config) { c.Approval.Hold = 2 * time.Minute; c.Approval.Expire = time.Minute },
			want:   []Problem{{Key: "approval.hold", Msg: "2m0s exceeds approval.expire (1m0s)"}},
		},
		{
			name:   "hold equal to expire",
			modify: func(c *Config) { c.Approval.Hold = time.Minute; c.Approval.Expire = time.Minute },
		},
		{
			name:   "zero hold and expire",
			modify: func(c *Config) { c.Approval.Hold = 0; c.Approval.Expire = 0 },
			want: []Problem{
				{Key: "approval.hold", Msg: "must be greater than 0, got 0s"},
				{Key: "approval.expire", Msg: "must be greater than 0, got 0s"},
			},
		},
		{
			name:   "approvers",
			modify: func(c *Config) { c.Approval.Approvers = []string{"U1", "", "U 2"} },
			want: []Problem{
				{Key: "approval.approvers[1]", Msg: `want a Slack user ID such as U012AB3CD, got ""`},
				{Key: "approval.approvers[2]", Msg: `want a Slack user ID such as U012AB3CD, got "U 2"`},
			},
		},
		{
			name:   "operator",
			modify: func(c *Config) { c.Approval.Operator = "<@U0OPS>" },
			want: []Problem{
				{Key: "approval.operator", Msg: `want the Slack user ID of whoever holds the admin token, as Slack shows it (U012AB3CD, or W… on Enterprise Grid), got "<@U0OPS>"`},
			},
		},
		{
			name:   "slack bot token alone",
			modify: func(c *Config) { c.Approval.Slack.BotToken = "xoxb-1" },
			want: []Problem{
				{Key: "approval.slack.bot_token", Msg: "needs approval.slack.signing_secret (to verify Slack's button callbacks)"},
				{Key: "approval.slack.bot_token", Msg: "needs approval.slack.channel (the channel ID to post to)"},
			},
		},
		{
			name:   "slack webhook not a URL is not echoed",
			modify: func(c *Config) { c.Approval.Slack.WebhookURL = "T000/B000/secret" },
			want:   []Problem{{Key: "approval.slack.webhook_url", Msg: "want an absolute https:// (or http://) URL"}},
		},
		{
			name: "clients",
			modify: func(c *Config) {
				c.Clients = []Client{
					{Name: "a", Password: "x"},
					{Password: "y"},
					{Name: "a", PasswordFile: "/f"},
					{Name: "b", Password: "x", PasswordFile: "/f"},
					{Name: "c"},
					{Name: "d:e", Password: "z"},
				}
			},
			want: []Problem{
				{Key: "clients[1].name", Msg: "must not be empty"},
				{Key: "clients[2].name", Msg: `"a" is also the name of clients[0]`},
				{Key: "clients[3]", Msg: "set only one of password and password_file"},
				{Key: "clients[4]", Msg: "set password (e.g. ${NAME}) or password_file"},
				{Key: "clients[5].name", Msg: `"d:e": a proxy user name cannot contain ":" or spaces`},
			},
		},
		{
			name:   "isolate.expose relative",
			modify: func(c *Config) { c.Isolate.Expose = []string{"/run/docker.sock", "run/user/1000/bus"} },
			want:   []Problem{{Key: "isolate.expose[1]", Msg: `want an absolute path (or ~/…), got "run/user/1000/bus"`}},
		},
		{
			name:   "kubernetes host as URL",
			modify: func(c *Config) { c.Kubernetes.Hosts = []string{"https://k8s.internal:6443"} },
			want:   []Problem{{Key: "kubernetes.hosts[0]", Msg: `invalid host "https://k8s.internal:6443" (want host or host:port, not a URL)`}},
		},
		{
			name:   "a GitHub Enterprise host with a port",
			modify: func(c *Config) { c.GitHub.Hosts = []string{"ghe.internal", "ghe.internal:8443"} },
			want:   []Problem{{Key: "github.hosts[1]", Msg: `invalid host "ghe.internal:8443" (want a host name such as github.acme.example, not a URL or host:port)`}},
		},
		{
			name:   "state not postgres",
			modify: func(c *Config) { c.State = "mysql://u:secret@db/x" },
			want:   []Problem{{Key: "state", Msg: `want "" (embedded) or a postgres:// or postgresql:// URL with a host`}},
		},
		{
			name:   "state without host",
			modify: func(c *Config) { c.State = "postgres:///countersign" },
			want:   []Problem{{Key: "state", Msg: `want "" (embedded) or a postgres:// or postgresql:// URL with a host`}},
		},
		{
			name:   "log",
			modify: func(c *Config) { c.Log = Log{Level: "verbose", Format: "text"} },
			want: []Problem{
				{Key: "log.level", Msg: `want one of "debug", "info", "warn", "error", got "verbose"`},
				{Key: "log.format", Msg: `want one of "console", "json", got "text"`},
			},
		},
		{
			name: "every problem at once",
			modify: func(c *Config) {
				c.Listen = "nope"
				c.Policy.OnError = ""
				c.Approval.Hold = time.Hour
				c.Log.Level = "loud"
			},
			want: []Problem{
				{Key: "listen", Msg: `want host:port (e.g. 127.0.0.1:8080 or :8080), got "nope"`},
				{Key: "policy.on_error", Msg: `want one of "deny", "allow", got ""`},
				{Key: "approval.hold", Msg: "1h0m0s is too long: AWS rejects SigV4 requests signed more than ~5 minutes earlier (keep it under 4m0s)"},
				{Key: "log.level", Msg: `want one of "debug", "info", "warn", "error", got "loud"`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolvedDefault()
			tt.modify(&c)
			before := c.Redacted() // a deep copy
			err := c.Validate()
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before.Redacted(), c.Redacted(), cmpConfig); diff != "" {
				t.Errorf("Validate() changed the config (-before +after):\n%s", diff)
			}
		})
	}
}

// TestValidateLines checks that problems with keys the file set name the
// file and line, and problems with defaults do not.
func TestValidateLines(t *testing.T) {
	src := "approval:\n" + //         1
		"  hold: 5m\n" + //         2
		"  expire: 1m\n" + //       3
		"clients:\n" + //           4
		"  - password: x\n" + //    5
		"log:\n" + //               6
		"  level: loud\n" + //      7
		"upstream:\n" + //          8
		"  resolve:\n" + //         9
		"    a.example: nope\n" // 10
	c, err := loadString(src, nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	c.Policy.Mode = "flag-set" // as if a flag had set it: no line
	const f = "countersign.yaml"
	want := []Problem{
		{File: f, Line: 9 + 1, Key: `upstream.resolve["a.example"]`, Msg: `invalid address "nope" (want host:port or an IP address)`},
		{Key: "policy.mode", Msg: `want one of "enforce", "shadow", got "flag-set"`},
		{File: f, Line: 2, Key: "approval.hold", Msg: "5m0s is too long: AWS rejects SigV4 requests signed more than ~5 minutes earlier (keep it under 4m0s)"},
		{File: f, Line: 2, Key: "approval.hold", Msg: "5m0s exceeds approval.expire (1m0s)"},
		{File: f, Line: 5, Key: "clients[0].name", Msg: "must not be empty"},
		{File: f, Line: 7, Key: "log.level", Msg: `want one of "debug", "info", "warn", "error", got "loud"`},
	}
	if diff := cmp.Diff(want, problemsOf(t, c.Validate())); diff != "" {
		t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
	}

	// The hold is the default but the file set expire: blame expire's line.
	c, err = loadString("approval:\n  expire: 1m\n", nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	want = []Problem{{File: f, Line: 2, Key: "approval.hold", Msg: "2m0s exceeds approval.expire (1m0s)"}}
	if diff := cmp.Diff(want, problemsOf(t, c.Validate())); diff != "" {
		t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
	}
}

func TestClientPasswords(t *testing.T) {
	files := map[string]string{
		"/run/secrets/b":     "from-file\n",
		"/run/secrets/crlf":  "crlf\r\n",
		"/run/secrets/empty": "\n",
	}
	readFile := func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(s), nil
	}

	c := resolvedDefault()
	c.Clients = []Client{
		{Name: "a", Password: "inline"},
		{Name: "b", PasswordFile: "/run/secrets/b"},
		{Name: "c", PasswordFile: "/run/secrets/crlf"},
	}
	got, err := c.ClientPasswords(readFile)
	if err != nil {
		t.Fatalf("ClientPasswords() error = %v", err)
	}
	want := map[string]string{"a": "inline", "b": "from-file", "c": "crlf"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClientPasswords() mismatch (-want +got):\n%s", diff)
	}

	c.Clients = []Client{
		{Name: "a", PasswordFile: "/missing"},
		{Name: "b", PasswordFile: "/run/secrets/empty"},
		{Name: "c"},
	}
	got, err = c.ClientPasswords(readFile)
	if err == nil {
		t.Fatalf("ClientPasswords() = %v, want error", got)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ClientPasswords() error = %v, want it to wrap fs.ErrNotExist", err)
	}
	wantMsg := "clients[0].password_file: file does not exist\n" +
		"clients[1].password_file: /run/secrets/empty is empty\n" +
		"clients[2]: no password or password_file"
	if err.Error() != wantMsg {
		t.Errorf("ClientPasswords() error = %q, want %q", err.Error(), wantMsg)
	}

	c.Clients = nil
	if got, err := c.ClientPasswords(readFile); err != nil || len(got) != 0 {
		t.Errorf("ClientPasswords() with no clients = %v, %v, want empty, nil", got, err)
	}
}
