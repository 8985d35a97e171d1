package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	envOut := filepath.Join(dir, "child-env")
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: os.LookupEnv, home: filepath.Join(dir, "home"), cwd: dir,
	}
	root := newRootCmd(e)
	root.SetArgs([]string{"run", "--", "sh", "-c", "env > " + envOut})
	root.SetOut(&out)
	root.SetErr(&errb)
	if code := exitCode(root.ExecuteContext(context.Background()), &errb); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(envOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{bot, signing, admin} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the agent's environment holds %q", secret)
		}
	}
	for _, kept := range []string{"KEEP_ME=an ordinary value", "COUNTERSIGN_SESSION="} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("the agent's environment lost %q", kept)
		}
	}
}
