//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAttachedRunKeepsItsProxyCredential: the agent's own client password in
// `run --proxy`, written plain or percent-encoded, is not a secret to take
// away from it: with or without --isolate the agent keeps HTTPS_PROXY
// (found by review: under --isolate, the encoded form lost it).
func TestAttachedRunKeepsItsProxyCredential(t *testing.T) {
	w := newWorld(t, approvePosts, agentClient)
	const pw = "pa+ss~word-0123"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := w.cmd(ctx, "serve")
	c.Env = append(c.Env, "AGENT_PASSWORD="+pw)
	m, log, _ := startUntil(t, c, servingLine)
	if m == nil {
		t.Fatalf("serve: %s", log)
	}
	for _, enc := range []string{pw, "pa%2Bss%7Eword-0123"} {
		for _, iso := range [][]string{nil, {"--isolate"}} {
			args := append([]string{"run"}, iso...)
			args = append(args, "--proxy", "http://ci-agent:"+enc+"@"+m[1], "--", "sh", "-c", "env | grep '^HTTPS_PROXY=' ; exit 0")
			rc := w.cmd(ctx, args...)
			rc.Env = append(rc.Env, "AGENT_PASSWORD="+pw)
			r := runCmd(t, rc)
			if !strings.Contains(r.stdout, "HTTPS_PROXY=http://ci-agent:") {
				t.Errorf("run %v --proxy with the password as %s: the agent has no HTTPS_PROXY (exit %d)\nstderr: %s", iso, enc, r.code, r.stderr)
			}
		}
	}
}
