package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// TestMain lets `run --isolate`, run in-process by the tests, re-execute
// this test binary as its init process, as it re-executes countersign.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == session.InitCommand {
		os.Exit(session.IsolateInit())
	}
	if len(os.Args) > 1 && os.Args[1] == policy.TestChildCommand {
		os.Exit(policy.RunTestChild(context.Background(), os.Stdin, os.Stdout))
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
	hmacKey := filepath.Join(dir, "bundle.key")
	if err := os.WriteFile(hmacKey, []byte("hmac-secret-in-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		modify       func(*config.Config)
		wantHide     []string
		wantReadOnly []string // nil: not checked
		wantSecrets  []string
	}{
		{
			name:     "no secrets: the configuration stays readable, and read-only with the policies and CA files",
			modify:   func(c *config.Config) { c.Upstream.CAFiles = []string{"/etc/cs/upstream.pem"} },
			wantHide: []string{filepath.Join(dir, "state"), filepath.Join(dir, "state", "ca-key.pem"), filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "audit.jsonl.journal")},
			wantReadOnly: []string{
				filepath.Join(dir, "countersign.yaml"), filepath.Join(dir, "policies"), filepath.Join(dir, "more.rego"),
				"/etc/cs/upstream.pem", filepath.Join(dir, "state", "ca.pem"),
			},
		},
		{
			name: "bundle token and verification key are secrets",
			modify: func(c *config.Config) {
				c.Policy.Bundle.Token = "bundle-bearer-token-123"
				c.Policy.Bundle.Verification.Key = hmacKey
				c.Policy.Bundle.CAFile = "/etc/cs/bundle-ca.pem"
			},
			wantHide: []string{filepath.Join(dir, "state"), filepath.Join(dir, "state", "ca-key.pem"), filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "audit.jsonl.journal"), hmacKey, filepath.Join(dir, "countersign.yaml")},
			wantReadOnly: []string{
				filepath.Join(dir, "policies"), filepath.Join(dir, "more.rego"),
				filepath.Join(dir, "state", "ca.pem"), "/etc/cs/bundle-ca.pem",
			},
			wantSecrets: []string{"bundle-bearer-token-123"},
		},
		{
			name:        "an HMAC key written in the configuration is a secret",
			modify:      func(c *config.Config) { c.Policy.Bundle.Verification.Key = "inline-hmac-secret" },
			wantHide:    []string{filepath.Join(dir, "state"), filepath.Join(dir, "state", "ca-key.pem"), filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "audit.jsonl.journal"), filepath.Join(dir, "countersign.yaml")},
			wantSecrets: []string{"inline-hmac-secret"},
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
			iso := newIsolation(c, []string{filepath.Join(dir, "policies"), filepath.Join(dir, "more.rego")})
			if diff := cmp.Diff(tt.wantHide, iso.hide); diff != "" {
				t.Errorf("hide (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantReadOnly, iso.readOnly); tt.wantReadOnly != nil && diff != "" {
				t.Errorf("read-only (-want +got):\n%s", diff)
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
