package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/policy"
)

// cli runs the command line in-process, in dir, with HOME set to dir/home.
func cli(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) (string, bool) { return "", false },
		home:   filepath.Join(dir, "home"), cwd: dir,
	}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = exitCode(root.ExecuteContext(context.Background()), &errb)
	return out.String(), errb.String(), code
}

// exitCode mirrors run's mapping of errors to exit codes.
func exitCode(err error, stderr *bytes.Buffer) int {
	if err == nil {
		return 0
	}
	// Reuse run's logic by formatting through it.
	return mapError(err, stderr)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := cli(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "countersign ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestInitThenPolicyTestPasses(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "init")
	if code != 0 || !strings.Contains(out, "wrote    policies/policy.rego") {
		t.Fatalf("init: %d %q %q", code, out, errOut)
	}
	out, errOut, code = cli(t, dir, "policy", "test", filepath.Join(dir, "policies"))
	if code != 0 || !strings.Contains(out, "PASS") {
		t.Fatalf("policy test on the starter policies: %d\n%s%s", code, out, errOut)
	}
	// init does not clobber.
	out, _, _ = cli(t, dir, "init")
	if !strings.Contains(out, "kept") {
		t.Errorf("second init overwrote files: %q", out)
	}
}

func TestPolicyTestFailureExitsOne(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p", "policy.rego"), "package countersign\n\ndeny contains \"x\" if input.request.method == \"DELETE\"\n")
	writeFile(t, filepath.Join(dir, "p", "policy_test.rego"), "package countersign_test\n\nimport data.countersign\n\ntest_get_denied if count(countersign.deny) == 1 with input as {\"request\": {\"method\": \"GET\"}}\n")
	out, _, code := cli(t, dir, "policy", "test", filepath.Join(dir, "p"))
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("failing test: exit %d, output %q", code, out)
	}
}

func TestPolicyCompileErrorExitsTwoWithFileLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p", "policy.rego"), "package countersign\n\ndeny contains \"x\" if {\n")
	_, errOut, code := cli(t, dir, "policy", "eval", "--policy", filepath.Join(dir, "p"), "--request", "GET https://example.com/")
	if code != 2 || !strings.Contains(errOut, "policy.rego:") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}

func TestPolicyEvalExplain(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p", "policy.rego"), `package countersign

deny contains {"id": "AWS-001", "msg": "no terminating"} if input.request.body.Action == "TerminateInstances"
`)
	out, errOut, code := cli(t, dir, "policy", "eval", "--policy", filepath.Join(dir, "p"),
		"--request", "POST https://ec2.us-east-1.amazonaws.com/",
		"--header", "Content-Type: application/x-www-form-urlencoded",
		"--header", "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/20261126/us-east-1/ec2/aws4_request, Signature=abc",
		"--body", "Action=TerminateInstances&InstanceId.1=i-0abc", "--explain")
	if code != 0 {
		t.Fatalf("eval: %d %s", code, errOut)
	}
	var got struct {
		Action   map[string]any `json:"action"`
		Input    map[string]any `json:"input"`
		Decision struct {
			Verdict string `json:"verdict"`
			Reasons []struct {
				ID string `json:"id"`
			} `json:"reasons"`
		} `json:"decision"`
		Fired []struct {
			Location string `json:"location"`
			Rule     string `json:"rule"`
		} `json:"fired"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Decision.Verdict != "deny" || len(got.Decision.Reasons) != 1 || got.Decision.Reasons[0].ID != "AWS-001" {
		t.Errorf("decision = %+v", got.Decision)
	}
	if len(got.Fired) == 0 || !strings.Contains(got.Fired[0].Location, "policy.rego:3") {
		t.Errorf("fired = %+v", got.Fired)
	}
	if strings.Contains(out, "Signature=abc") {
		t.Error("the Authorization header was not redacted in the printed input")
	}
	// The signature is malformed on purpose: the AWS classifier still names
	// the operation and says what it could not parse.
	if got.Action["provider"] != "aws" || got.Action["operation"] != "TerminateInstances" || got.Action["parse_error"] == nil {
		t.Errorf("action = %v", got.Action)
	}
}

func TestCAInitPathExport(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "state_dir: "+filepath.Join(dir, "state")+"\n")
	out, errOut, code := cli(t, dir, "ca", "init")
	if code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("ca init: %d %q %q", code, out, errOut)
	}
	fi, err := os.Stat(filepath.Join(dir, "state", "ca-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode: %v %v", fi.Mode(), err)
	}
	out, _, _ = cli(t, dir, "ca", "path")
	if strings.TrimSpace(out) != filepath.Join(dir, "state", "ca.pem") {
		t.Errorf("ca path = %q", out)
	}
	out, _, code = cli(t, dir, "ca", "export")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("ca export: %d %q", code, out)
	}
}

func TestConfigErrorsExitTwoNamingFileLineKey(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
	}{
		{"unknown key", "listen: 127.0.0.1:0\napproval:\n  hodl: 10s\n", []string{"countersign.yaml:3", "approval.hodl", "did you mean approval.hold"}},
		{"bad duration", "approval:\n  hold: soon\n", []string{"countersign.yaml:2", "approval.hold"}},
		{"bad enum", "policy:\n  on_error: maybe\n", []string{"countersign.yaml:2", "policy.on_error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "countersign.yaml"), tt.config)
			_, errOut, code := cli(t, dir, "run", "--", "true")
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
		})
	}
}

func TestRunIsolatePassesTheExitCode(t *testing.T) {
	_, errOut, code := cli(t, t.TempDir(), "run", "--isolate", "--", "sh", "-c", "exit 3")
	if code != 3 || !strings.Contains(errOut, "ended, exit code 3") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"audit", "verify"}, {"no-such-command"}, {"policy", "eval"}} {
		_, _, code := cli(t, t.TempDir(), args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestDemoRunsTheWholeScenario(t *testing.T) {
	out, errOut, code := cli(t, t.TempDir(), "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"→ 200 {\"default_branch\"",
		"→ 403 countersign: denied by policy DEFAULT-001",
		"human (demo-approver) approves",
		"TerminateInstancesResponse",
		"denied by approver cli:demo-approver",
		"upstream saw: 1 GET repos, 1 EC2 calls, 0 DELETE repos",
		"hash chain verified",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunProxyURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"https://ci:TopSecretPw@h:8080", "http://ci:TopSecretPw@[::1", "http://ci:TopSecretPw@/"} {
		_, errOut, code := cli(t, t.TempDir(), "run", "--proxy", u, "--", "true")
		if code != 2 || !strings.Contains(errOut, "--proxy") {
			t.Errorf("--proxy %s: exit %d, stderr %q; want a usage error about --proxy", u, code, errOut)
		}
		if strings.Contains(errOut, "TopSecretPw") {
			t.Errorf("--proxy %s: the password is printed: %q", u, errOut)
		}
	}
}

func TestPolicySource(t *testing.T) {
	withPolicies, without := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(withPolicies, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, config, cwd string
		configIn          string // the file's directory (default: another one)
		flags             []string
		want              policy.Source
	}{
		{name: "no file, no ./policies", cwd: without, want: policy.Source{Builtin: true}},
		{name: "no file, ./policies", cwd: withPolicies, want: policy.Source{Paths: []string{filepath.Join(withPolicies, "policies")}}},
		{name: "other policy keys keep the built-in fallback", config: "policy:\n  mode: shadow\n", cwd: without, want: policy.Source{Builtin: true}},
		{name: "other policy keys keep ./policies", config: "policy:\n  on_error: deny\n", configIn: withPolicies, cwd: withPolicies, want: policy.Source{Paths: []string{filepath.Join(withPolicies, "policies")}}},
		// The default ./policies is beside the file, like every relative
		// path of a file: not the agent's working directory's.
		{name: "a file elsewhere ignores the working directory's policies", config: "policy:\n  on_error: deny\n", cwd: withPolicies, want: policy.Source{Builtin: true}},
		{name: "policies beside a file elsewhere", config: "policy:\n  on_error: deny\n", configIn: withPolicies, cwd: without, want: policy.Source{Paths: []string{filepath.Join(withPolicies, "policies")}}},
		{name: "paths named", config: "policy:\n  paths: [/etc/cs/policies]\n", cwd: withPolicies, want: policy.Source{Paths: []string{"/etc/cs/policies"}}},
		{name: "paths emptied", config: "policy:\n  paths: []\n", cwd: withPolicies, want: policy.Source{Builtin: true}},
		{name: "flags win", config: "policy:\n  paths: [/etc/cs/policies]\n", cwd: without, flags: []string{"p.rego"}, want: policy.Source{Paths: []string{"p.rego"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.config != "" {
				dir := tt.configIn
				if dir == "" {
					dir = t.TempDir()
				}
				path = filepath.Join(dir, "countersign.yaml")
				if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := config.Load(config.LoadOptions{Path: path, Home: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			got := policySource(cfg, tt.cwd, tt.flags)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("policySource = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A configuration value that fails when it is used (a file that cannot be
// read, a CA file without a certificate) is named by file, line and key.
func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		name, config string
		args         []string
		want         string
	}{
		{
			name:   "upstream CA file without a certificate",
			config: "state_dir: DIR/state\nupstream:\n  ca_files:\n    - DIR/notpem.txt\n",
			args:   []string{"run", "--", "true"},
			want:   "countersign.yaml:4: upstream.ca_files[0]: DIR/notpem.txt holds no PEM certificate",
		},
		{
			name:   "policy path that does not exist",
			config: "state_dir: DIR/state\npolicy:\n  paths: [DIR/missing-policies]\n",
			args:   []string{"run", "--", "true"},
			want:   "countersign.yaml:3: policy.paths: ",
		},
		{
			name:   "CA key that cannot be read",
			config: "state_dir: DIR/state\nca:\n  cert: DIR/nowhere.pem\n  key: DIR/nowhere-key.pem\n",
			args:   []string{"run", "--", "true"},
			want:   "countersign.yaml:2: ca: CA: ",
		},
		{
			name:   "client password file that cannot be read",
			config: "state_dir: DIR/state\nclients:\n  - name: ci\n    password_file: DIR/no-such-file\n",
			args:   []string{"serve"},
			want:   "countersign.yaml:4: clients[0].password_file: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "countersign.yaml"), strings.ReplaceAll(tt.config, "DIR", dir))
			writeFile(t, filepath.Join(dir, "notpem.txt"), "not a certificate\n")
			_, errOut, code := cli(t, dir, tt.args...)
			if want := strings.ReplaceAll(tt.want, "DIR", dir); code != 2 || !strings.Contains(errOut, want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errOut, want)
			}
		})
	}
}

// TestInitDoesNotWriteThroughLinks: a repository may ship countersign.yaml
// or policies/ as a link to a file of the user's (found by review: init
// wrote the starter YAML over the link's target, with --force over an
// existing one).
func TestInitDoesNotWriteThroughLinks(t *testing.T) {
	for _, tt := range []struct {
		name, link string
		existing   bool
		args       []string
	}{
		{"dangling config link", "countersign.yaml", false, []string{"init"}},
		{"config link to a file, forced", "countersign.yaml", true, []string{"init", "--force"}},
		{"policy directory link", "policies", false, []string{"init"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, home := t.TempDir(), t.TempDir()
			target := filepath.Join(home, ".bashrc")
			if tt.existing {
				writeFile(t, target, "echo hello\n")
			}
			if err := os.Symlink(target, filepath.Join(dir, tt.link)); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := cli(t, dir, tt.args...)
			if code == 0 || !strings.Contains(errOut, "symbolic link") {
				t.Errorf("init through a link: exit %d, stderr %q; want a refusal naming the link", code, errOut)
			}
			b, err := os.ReadFile(target)
			switch {
			case tt.existing && string(b) != "echo hello\n":
				t.Errorf("the link's target was overwritten: %q", b)
			case !tt.existing && err == nil:
				t.Errorf("init created the link's target")
			}
			if entries, _ := os.ReadDir(home); len(entries) > 1 || (!tt.existing && len(entries) > 0) {
				t.Errorf("init wrote into the link's directory: %v", entries)
			}
		})
	}
	// A plain init: the configuration is its owner's alone.
	dir := t.TempDir()
	if _, errOut, code := cli(t, dir, "init"); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	fi, err := os.Stat(filepath.Join(dir, "countersign.yaml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("countersign.yaml: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

// A client password file others can read is warned about, by key and file;
// one only its owner reads is not (found by review: nothing was said).
func TestReadablePasswordFilesAreWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	readable, private := filepath.Join(dir, "readable.pass"), filepath.Join(dir, "private.pass")
	if err := os.WriteFile(readable, []byte("pw-a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(private, []byte("pw-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Clients = []config.Client{{Name: "a", PasswordFile: private}, {Name: "b", PasswordFile: readable}}
	core, logs := observer.New(zap.WarnLevel)
	warnReadablePasswordFiles(&cfg, zap.New(core))
	got := logs.All()
	if len(got) != 1 || got[0].ContextMap()["key"] != "clients[1].password_file" || got[0].ContextMap()["mode"] != "0644" {
		t.Errorf("warnings = %+v, want one, about clients[1].password_file at 0644", got)
	}
}

// Short client passwords are warned about by key, long ones are not.
func TestShortPasswordsAreWarnedAbout(t *testing.T) {
	cfg := config.Default()
	cfg.Clients = []config.Client{{Name: "a", Password: "x"}, {Name: "b", PasswordFile: "/f"}, {Name: "c", Password: "y"}}
	core, logs := observer.New(zap.WarnLevel)
	warnShortPasswords(&cfg, map[string]string{"a": "0123456789abcdef", "b": "hunter2", "c": "0123456789abcde"}, zap.New(core))
	var keys []string
	for _, e := range logs.All() {
		keys = append(keys, e.ContextMap()["key"].(string))
	}
	if want := []string{"clients[1].password_file", "clients[2].password"}; !slices.Equal(keys, want) {
		t.Errorf("warnings about %v, want %v", keys, want)
	}
}

// A configuration file that holds secrets itself is warned about, by key
// and line, when others can read it, and not when only its owner can.
func TestReadableInlineSecretsAreWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "countersign.yaml")
	writeFile(t, path, "listen: 127.0.0.1:0\napproval:\n  slack: {bot_token: xoxb-1, channel: \"#ops\", signing_secret: \"${SIGNING}\"}\nclients:\n  - {name: a, password: hunter2}\n")
	cfg, err := config.Load(config.LoadOptions{Path: path, Getenv: func(string) (string, bool) { return "s", true }, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	if msg := readableInlineSecrets(cfg); msg != "" {
		t.Errorf("mode 0600: warned %q", msg)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	msg := readableInlineSecrets(cfg)
	for _, want := range []string{path, "0644", "approval.slack.bot_token (line 3), clients[0].password (line 5)", "chmod 600 " + path} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "signing_secret") || strings.Contains(msg, "hunter2") || strings.Contains(msg, "xoxb-1") {
		t.Errorf("warning %q names a secret from the environment, or shows a value", msg)
	}
}

// github.hosts names GitHub Enterprise Server hosts: their GraphQL endpoint
// is reported as GitHub, so the GitHub rules judge its mutations (found by
// review: it was provider graphql, which no GitHub rule reads).
func TestGitHubEnterpriseHosts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "countersign.yaml")
	writeFile(t, path, "github:\n  hosts: [GHE.Acme.Example.]\n")
	cfg, err := config.Load(config.LoadOptions{Path: path, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	body := `{"query":"mutation { deleteRef(input: {refId: \"REF_1\"}) { clientMutationId } }"}`
	r := &action.Request{Method: "POST", Scheme: "https", Host: "ghe.acme.example", Port: 443, Path: "/api/graphql",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body), BodySize: int64(len(body))}
	a := newClassifier(cfg).Classify(r)
	if fields, _ := a.Fields["fields"].([]any); a.Provider != "github" || !slices.Contains(fields, any("deleteRef")) {
		t.Errorf("GHES GraphQL = %+v, want provider github with the deleteRef field", a)
	}
	// git over HTTPS to the same host stays git (found by review: it was
	// claimed by both and refused as ambiguous).
	push := &action.Request{Method: "POST", Scheme: "https", Host: "ghe.acme.example", Port: 443, Path: "/acme/app.git/git-receive-pack",
		Header: http.Header{"Content-Type": {"application/x-git-receive-pack-request"}}, Body: []byte("0000"), BodySize: 4}
	if a := newClassifier(cfg).Classify(push); a.Provider != "git" || a.ParseError != "" {
		t.Errorf("a push to the GHES host = %+v, want provider git", a)
	}
	refs := &action.Request{Method: "GET", Scheme: "https", Host: "ghe.acme.example", Port: 443, Path: "/acme/app.git/info/refs",
		Query: map[string][]string{"service": {"git-upload-pack"}}, Header: http.Header{}}
	if a := newClassifier(cfg).Classify(refs); a.Provider != "git" {
		t.Errorf("info/refs on the GHES host = %+v, want provider git", a)
	}
	writeFile(t, path, "github:\n  hosts: [\"https://ghe.acme.example\"]\n")
	cfg, err = config.Load(config.LoadOptions{Path: path, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "github.hosts[0]") {
		t.Errorf("a URL in github.hosts: %v, want a problem naming github.hosts[0]", err)
	}
}

// policy eval says when the proxy would refuse a request before any
// policy runs (found by review: it showed the policy's allow), for every
// refusal the proxy makes once it has the request, and decides a
// compressed body inflated, as the proxy does.
func TestPolicyEvalShowsARefusalBeforePolicy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p", "policy.rego"), "package countersign\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_table","arguments":{}}}`))
	zw.Close()
	writeFile(t, filepath.Join(dir, "call.json.gz"), gz.String())
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "inspect: {body_limit: 128}\n")
	tests := []struct {
		name   string
		args   []string
		status int
		reason string // in the reason; "" for no refusal
	}{
		{"classifier", []string{"--request", "DELETE https://api.github.com/repositories/1296269"}, 400, "/repos/OWNER/REPO"},
		{"two credentials", []string{"--request", "GET https://api.github.com/user", "--header", "Authorization: token a", "--header", "Authorization: token b"}, 400, "more than one Authorization"},
		{"method override", []string{"--request", "POST https://api.example.com/items/1", "--header", "X-HTTP-Method-Override: DELETE"}, 400, "X-HTTP-Method-Override"},
		{"ambiguous query", []string{"--request", "GET https://api.example.com/items?a=1;b=2"}, 400, "query string"},
		{"method field", []string{"--request", "POST https://api.example.com/items/1", "--header", "Content-Type: application/x-www-form-urlencoded", "--body", "_method=DELETE"}, 400, "_method"},
		{"repeated member", []string{"--request", "POST https://api.example.com/items", "--header", "Content-Type: application/json", "--body", `{"a":1,"a":2}`}, 400, "repeats the member"},
		{"body that does not inflate", []string{"--request", "POST https://api.example.com/items", "--header", "Content-Encoding: gzip", "--body", "not gzip"}, 400, "gzip"},
		{"compressed MCP call", []string{"--request", "POST https://mcp.example.com/mcp", "--header", "Content-Type: application/json", "--header", "Content-Encoding: gzip", "--body", "@" + filepath.Join(dir, "call.json.gz")}, 0, ""},
		{"upgrade with a body", []string{"--request", "GET https://api.example.com/ws", "--header", "Connection: Upgrade", "--header", "Upgrade: websocket", "--body", "x"}, 400, "upgrade request with a body"},
		// Plain http:// is forwarded without its upgrade.
		{"http:// upgrade with a body", []string{"--request", "GET http://api.example.com/ws", "--header", "Connection: Upgrade", "--header", "Upgrade: websocket", "--body", "x"}, 0, ""},
		{"message past the body limit", []string{"--request", "POST https://mcp.example.com/mcp", "--header", "Content-Type: application/json",
			"--body", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_table","arguments":{"table":"orders","cascade":true,"pad":"` + strings.Repeat("x", 200) + `"}}}`}, 413, "body_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "eval", "--policy", filepath.Join(dir, "p")}, tt.args...)
			out, errOut, code := cli(t, dir, args...)
			if code != 0 {
				t.Fatalf("eval: %d %s", code, errOut)
			}
			var got struct {
				Action map[string]any `json:"action"`
				Input  struct {
					Request map[string]any `json:"request"`
				} `json:"input"`
				Refused *struct {
					Status int    `json:"status"`
					Reason string `json:"reason"`
				} `json:"refused_before_policy"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			switch {
			case tt.status == 0 && got.Refused != nil:
				t.Errorf("refused_before_policy = %+v, want none\n%s", got.Refused, out)
			case tt.status != 0 && (got.Refused == nil || got.Refused.Status != tt.status || !strings.Contains(got.Refused.Reason, tt.reason)):
				t.Errorf("refused_before_policy = %+v, want %d naming %q\n%s", got.Refused, tt.status, tt.reason, out)
			}
			if tt.name == "compressed MCP call" {
				if got.Action["tool"] != "drop_table" {
					t.Errorf("the compressed call was classified as %v, want the tool drop_table", got.Action)
				}
				// The hash is of the bytes as sent, as the proxy's.
				if sum := sha256.Sum256(gz.Bytes()); got.Input.Request["body_sha256"] != hex.EncodeToString(sum[:]) {
					t.Errorf("body_sha256 = %v, want the hash of the compressed bytes", got.Input.Request["body_sha256"])
				}
			}
			if u, ok := got.Input.Request["upgrade"]; ok && strings.HasPrefix(tt.name, "http://") {
				t.Errorf("an http:// request has upgrade %v in its input", u)
			}
		})
	}
	// The input is the proxy's: hop-by-hop fields (and those Connection
	// names) gone, an upgrade noted, an empty path sent as "/".
	out, errOut, code := cli(t, dir, "policy", "eval", "--policy", filepath.Join(dir, "p"), "--request", "GET https://api.example.com",
		"--header", "Connection: Upgrade, X-Secret", "--header", "Upgrade: websocket", "--header", "X-Secret: 1", "--header", "Accept: */*",
		"--header", "Host: elsewhere.example.com")
	if code != 0 {
		t.Fatalf("eval: %d %s", code, errOut)
	}
	var got struct {
		Input struct {
			Request struct {
				Path    string              `json:"path"`
				Upgrade string              `json:"upgrade"`
				Headers map[string][]string `json:"headers"`
			} `json:"request"`
		} `json:"input"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r := got.Input.Request; r.Path != "/" || r.Upgrade != "websocket" || len(r.Headers) != 1 || r.Headers["accept"] == nil {
		t.Errorf("input.request = %+v, want path /, upgrade websocket and only the accept header", r)
	}
	// A body gets the length a client declares; an empty one is no body.
	for body, want := range map[string]string{"{}": "2", "@" + filepath.Join(dir, "empty"): ""} {
		writeFile(t, filepath.Join(dir, "empty"), "")
		out, errOut, code := cli(t, dir, "policy", "eval", "--policy", filepath.Join(dir, "p"), "--request", "POST https://api.example.com/x",
			"--header", "Content-Type: application/json", "--body", body)
		if code != 0 {
			t.Fatalf("eval: %d %s", code, errOut)
		}
		var got struct {
			Input struct {
				Request map[string]any `json:"request"`
			} `json:"input"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		cl := ""
		if h, ok := got.Input.Request["headers"].(map[string]any)["content-length"].([]any); ok && len(h) == 1 {
			cl, _ = h[0].(string)
		}
		_, hasBody := got.Input.Request["body"]
		_, hasSum := got.Input.Request["body_sha256"]
		if cl != want || (want == "") == (hasBody || hasSum) {
			t.Errorf("body %q: content-length %q (want %q), body in input %v, body_sha256 %v", body, cl, want, hasBody, hasSum)
		}
	}
}

// A CA named in the configuration that has expired is refused at start,
// naming it, as one countersign made is (found by review: run started and
// every client then failed its handshake).
func TestExpiredConfiguredCAIsRefused(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "old-ca.pem"), filepath.Join(dir, "old-ca-key.pem")
	if _, _, err := mitm.LoadOrCreate(cert, key, func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "ca:\n  cert: "+cert+"\n  key: "+key+"\n")
	_, errOut, code := cli(t, dir, "run", "--", "true")
	if code != 2 || !strings.Contains(errOut, "expired on 2011-01-01") || !strings.Contains(errOut, "countersign.yaml") {
		t.Errorf("exit %d, stderr %q; want 2 naming the expired CA and the ca key", code, errOut)
	}
}

// COUNTERSIGN_PROXY attaches run to a serve as --proxy does, keeping the
// client's password out of the process list; --proxy with a password
// warns (found by review).
func TestRunProxyFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) (string, bool) {
			if k == "COUNTERSIGN_PROXY" {
				return "http://ci-agent:pw@127.0.0.1:9", true
			}
			return "", false
		},
		home: filepath.Join(dir, "home"), cwd: dir,
	}
	root := newRootCmd(e)
	root.SetArgs([]string{"run", "--", "true"})
	root.SetOut(&out)
	root.SetErr(&errb)
	code := exitCode(root.ExecuteContext(context.Background()), &errb)
	// Attached: it looks for serve's CA, which this machine has not got.
	if code != 2 || !strings.Contains(errb.String(), "--proxy needs the serve instance's CA certificate") {
		t.Errorf("exit %d, stderr %q; want run attached to the serve in COUNTERSIGN_PROXY", code, errb.String())
	}
	_, errOut, _ := cli(t, dir, "run", "--proxy", "http://ci-agent:pw@127.0.0.1:9", "--", "true")
	if !strings.Contains(errOut, "holds a password, which every user of this machine can read") {
		t.Errorf("stderr %q; want the warning", errOut)
	}
}

// Settings that turn a protection off are said out loud at start (found by
// review: they were taken silently).
func TestWeakenedSafetyIsWarned(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "policy:\n  on_error: allow\nupstream:\n  allow_addresses: [\"0.0.0.0/0\", \"10.0.0.0/8\"]\n")
	_, errOut, code := cli(t, dir, "run", "--", "true")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"countersign.yaml:2: policy.on_error", "on_error: allow forwards", "0.0.0.0/0 lets requests reach loopback"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not say %q", errOut, want)
		}
	}
	if strings.Contains(errOut, "10.0.0.0/8 lets") {
		t.Errorf("a narrow prefix was warned about: %q", errOut)
	}
}
