package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/session"
)

// TestPlainRunKeepsSecretsFromTheChild: agents print their environment, and
// what they print reaches their model provider. The secrets the
// configuration reads from ${ENV} (a Slack signing secret forges approval
// callbacks) and the admin token stay out of the child's environment
// without --isolate too (found by review).
func TestPlainRunKeepsSecretsFromTheChild(t *testing.T) {
	dir := t.TempDir()
	const bot, signing = "xoxb-111-222-test-bot-token", "test-signing-secret-0123456789"
	t.Setenv("SLACK_BOT_TOKEN", bot)
	t.Setenv("SLACK_SIGNING_SECRET", signing)
	t.Setenv("KEEP_ME", "an ordinary value")
	// An admin token kept in the user's environment, for the CLI.
	const admin = "0123456789abcdef0123456789abcdef"
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state", "admin-token"), []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MY_COUNTERSIGN_TOKEN", admin)
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "state_dir: "+filepath.Join(dir, "state")+`
approval:
  slack:
    bot_token: ${SLACK_BOT_TOKEN}
    signing_secret: ${SLACK_SIGNING_SECRET}
    channel: C0123456
`)
	b, _ := childEnv(t, dir)
	for _, secret := range []string{bot, signing, admin} {
		if strings.Contains(b, secret) {
			t.Errorf("the agent's environment holds %q", secret)
		}
	}
	for _, kept := range []string{"KEEP_ME=an ordinary value", "COUNTERSIGN_SESSION="} {
		if !strings.Contains(b, kept) {
			t.Errorf("the agent's environment lost %q", kept)
		}
	}
}

// TestAttachedRunKeepsItsProxyCredential: under `run --proxy`, the client
// password in the proxy URL is the agent's own credential. Filtering on it
// took HTTPS_PROXY away and let the agent's traffic go around countersign
// (found by review); other secrets are still left out, and named.
func TestAttachedRunKeepsItsProxyCredential(t *testing.T) {
	dir := t.TempDir()
	const clientPW, signing = "proxy-pass-0123456789", "test-signing-secret-0123456789"
	t.Setenv("SLACK_SIGNING_SECRET", signing)
	t.Setenv("MY_SIGNING", signing)
	state := filepath.Join(dir, "state")
	if _, _, err := mitm.LoadOrCreate(filepath.Join(state, "ca.pem"), filepath.Join(state, "ca-key.pem"), nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "state_dir: "+state+`
clients:
  - name: alice
    password: `+clientPW+`
approval:
  slack:
    bot_token: xoxb-1-2-abcdefgh
    signing_secret: ${SLACK_SIGNING_SECRET}
    channel: C0123456
`)
	proxyURL := "http://alice:" + clientPW + "@127.0.0.1:9"
	b, stderr := childEnv(t, dir, "--proxy", proxyURL)
	for _, want := range []string{"HTTPS_PROXY=" + proxyURL, "https_proxy=" + proxyURL, "npm_config_https_proxy=" + proxyURL} {
		if !strings.Contains(b, want+"\n") {
			t.Errorf("the agent's environment lacks %s", want)
		}
	}
	if strings.Contains(b, signing) {
		t.Error("the agent's environment holds the signing secret")
	}
	if !strings.Contains(stderr, "MY_SIGNING") {
		t.Errorf("the variables left out are not named: %s", stderr)
	}
	// The session is what serve calls it: the client.
	if !strings.Contains(b, "COUNTERSIGN_SESSION=alice\n") {
		t.Errorf("COUNTERSIGN_SESSION is not the client's name: %s", b)
	}
}

// TestAttachedRunRefusesNameAndLabel: serve knows a session by its client
// only, so --name and --label would be dropped without a word (found by
// review).
func TestAttachedRunRefusesNameAndLabel(t *testing.T) {
	for _, flags := range [][]string{{"--name", "alice/review"}, {"--label", "ticket=OPS-1"}} {
		args := append([]string{"run", "--proxy", "http://alice:pw@127.0.0.1:9"}, flags...)
		_, errOut, code := cli(t, t.TempDir(), append(args, "--", "true")...)
		if code != 2 || !strings.Contains(errOut, "client of its own") {
			t.Errorf("run --proxy %v: exit %d, stderr %q; want a usage error", flags, code, errOut)
		}
	}
}

// childEnv runs `countersign run [flags] -- sh -c env` with the
// countersign.yaml in dir and returns the child's environment as it printed
// it, and countersign's standard error.
func childEnv(t *testing.T, dir string, flags ...string) (string, string) {
	t.Helper()
	envOut := filepath.Join(dir, "child-env")
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: os.LookupEnv, home: filepath.Join(dir, "home"), cwd: dir,
	}
	root := newRootCmd(e)
	root.SetArgs(append(append([]string{"run"}, flags...), "--", "sh", "-c", "env > "+envOut))
	root.SetOut(&out)
	root.SetErr(&errb)
	if code := exitCode(root.ExecuteContext(context.Background()), &errb); code != 0 {
		t.Fatalf("run %v: exit %d: %s", flags, code, errb.String())
	}
	b, err := os.ReadFile(envOut)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), errb.String()
}

// The state database's password, however written, is a secret too (found
// by review: a %-encoded one, or one in the query, reached the agent).
func TestStateSecrets(t *testing.T) {
	for _, tt := range []struct{ state, env string }{
		{"postgres://countersign:p%40ss%2Fw0rd-long@db:5432/cs", "DATABASE_URL=postgres://countersign:p%40ss%2Fw0rd-long@db:5432/cs"},
		{"postgres://countersign:p%40ss%2Fw0rd-long@db:5432/cs", "PGPASSWORD=p@ss/w0rd-long"},
		{"postgres://countersign@db/cs?password=s3cretpassw0rd", "PGPASSWORD=s3cretpassw0rd"},
		{"host=db user=countersign password=kv-secret-value dbname=cs", "PGPASSWORD=kv-secret-value"},
	} {
		kept, dropped := session.WithoutSecrets([]string{tt.env, "PATH=/usr/bin"}, stateSecrets(tt.state))
		if len(dropped) != 1 || len(kept) != 1 {
			t.Errorf("state %q: %s kept %v, dropped %v; want it dropped and PATH kept", tt.state, tt.env, kept, dropped)
		}
	}
}

// A variable that a secret takes part of its value from is left out too:
// no search for the whole secret finds its part (found by review: a
// webhook URL's path in ${SLACK_HOOK_PATH} reached the agent).
func TestPlainRunKeepsPartsOfSecretsFromTheChild(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SLACK_HOOK_PATH", "T0123/B0456/abcdefSECRETxyz")
	t.Setenv("KEEP_ME", "an ordinary value")
	writeFile(t, filepath.Join(dir, "countersign.yaml"), "state_dir: "+filepath.Join(dir, "state")+`
approval:
  slack:
    webhook_url: https://hooks.slack.com/services/${SLACK_HOOK_PATH}
`)
	b, errOut := childEnv(t, dir)
	if strings.Contains(b, "abcdefSECRETxyz") {
		t.Error("the agent's environment holds the webhook's path")
	}
	if !strings.Contains(b, "KEEP_ME=an ordinary value") || !strings.Contains(errOut, "SLACK_HOOK_PATH") {
		t.Errorf("want KEEP_ME kept and SLACK_HOOK_PATH named as left out; stderr %q", errOut)
	}
}
