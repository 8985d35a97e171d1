package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/session"
)

// TestMain lets `run --isolate`, run in-process by the tests, re-execute
// this test binary as its init process, as it re-executes countersign.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == session.InitCommand {
		os.Exit(session.IsolateInit())
	}
	os.Exit(m.Run())
}

func TestNewIsolationHidesStateKeysAndSecretHoldingConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "nightly.pass")
	if err := os.WriteFile(pwFile, []byte("file-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	base := func() *config.Config {
		c := config.Default()
		c.StateDir = filepath.Join(dir, "state")
		c.Audit.Path = filepath.Join(dir, "audit.jsonl")
		c.Source.File = filepath.Join(dir, "countersign.yaml")
		c.Isolate.Expose = []string{"/run/docker.sock"}
		return &c
	}
	tests := []struct {
		name        string
		modify      func(*config.Config)
		wantHide    []string
		wantSecrets []string
	}{
		{
			name:     "no secrets: the configuration stays readable",
			modify:   func(*config.Config) {},
			wantHide: []string{filepath.Join(dir, "state"), filepath.Join(dir, "state", "ca-key.pem"), filepath.Join(dir, "audit.jsonl")},
		},
		{
			name: "relative paths become absolute",
			modify: func(c *config.Config) {
				c.StateDir = "state"
				c.Audit.Path = "-"
				c.Source.File = "countersign.yaml"
				c.Approval.Slack.WebhookURL = "https://hooks.slack.com/services/T/B/X"
			},
			wantHide:    []string{filepath.Join(cwd, "state"), filepath.Join(cwd, "state", "ca-key.pem"), filepath.Join(cwd, "countersign.yaml")},
			wantSecrets: []string{"https://hooks.slack.com/services/T/B/X"},
		},
		{
			name: "slack token, client passwords, a CA outside state_dir",
			modify: func(c *config.Config) {
				c.Approval.Slack.BotToken = "xoxb-bot-token"
				c.Clients = []config.Client{{Name: "a", Password: "pw-a"}, {Name: "b", PasswordFile: pwFile}}
				c.CA = config.CA{Cert: "/etc/cs/ca.pem", Key: "/etc/cs/ca-key.pem"}
				c.Audit.Path = "-"
			},
			wantHide:    []string{filepath.Join(dir, "state"), "/etc/cs/ca-key.pem", filepath.Join(dir, "countersign.yaml"), pwFile},
			wantSecrets: []string{"xoxb-bot-token", "pw-a", "file-password"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.modify(c)
			iso := newIsolation(c)
			if diff := cmp.Diff(tt.wantHide, iso.hide); diff != "" {
				t.Errorf("hide (-want +got):\n%s", diff)
			}
			got := slices.DeleteFunc(slices.Clone(iso.secrets), func(s string) bool { return s == "" })
			if diff := cmp.Diff(tt.wantSecrets, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("secrets (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"/run/docker.sock"}, iso.expose); diff != "" {
				t.Errorf("expose (-want +got):\n%s", diff)
			}
		})
	}
}
