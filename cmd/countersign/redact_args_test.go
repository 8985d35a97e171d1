package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The session record keeps the command line with its credentials masked
// (found by review: it carried the agent's whole command line).
func TestSessionCommandLineIsRedacted(t *testing.T) {
	dir := t.TempDir()
	tok := "ghp_" + strings.Repeat("A1b2", 9)
	_, errOut, code := cli(t, dir, "run", "--", "true", "-H", "Authorization: Bearer "+tok, "GITHUB_TOKEN="+tok)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`audit log: (\S+)`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("run did not name its audit log: %s", errOut)
	}
	b, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), tok) || !strings.Contains(string(b), `"command":"true -H`) {
		t.Errorf("the session record:\n%s", b)
	}
}
