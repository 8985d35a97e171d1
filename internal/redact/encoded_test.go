package redact

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// wrap breaks s into lines of n characters, as base64 encoders for MIME
// and PEM (and GitHub's own contents API answers) do.
func wrap(s string, n int, indent string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString("\n" + indent)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

const envFile = "# deploy settings\nREGION=eu-west-1\nGITHUB_TOKEN=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\n"

func TestEncodedMasksEncodedCredentials(t *testing.T) {
	std := base64.StdEncoding.EncodeToString([]byte(envFile))
	secretManifest := "apiVersion: v1\nkind: Secret\nmetadata: {name: deploy}\ndata:\n  config: " +
		base64.StdEncoding.EncodeToString([]byte("password: hunter2hunter2hunter2\n")) + "\n"
	for _, tc := range []struct{ name, value string }{
		// PUT /repos/{owner}/{repo}/contents/.env, as gh and the GitHub MCP server send it.
		{"standard", std},
		{"wrapped at 76", wrap(std, 76, "")},
		{"wrapped and indented", wrap(std, 60, "    ")},
		{"CRLF", strings.ReplaceAll(wrap(std, 76, ""), "\n", "\r\n")},
		{"URL-safe, unpadded", base64.RawURLEncoding.EncodeToString([]byte("\xfb\xff" + envFile))},
		{"after a data URL", "data:text/plain;base64," + std},
		{"a key=value line", "ENV_B64=" + std},
		{"two padded pieces", base64.StdEncoding.EncodeToString([]byte("harmless first part!")) + std},
		{"a Secret manifest in a file", base64.StdEncoding.EncodeToString([]byte(secretManifest))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"message": "add .env", "content": tc.value, "branch": "agent/x"}
			got := Encoded(Value(body)).(map[string]any)
			if got["content"] == tc.value || !strings.Contains(got["content"].(string), Mask) {
				t.Errorf("content %q kept unmasked: %q", tc.value, got["content"])
			}
			if got["message"] != "add .env" || got["branch"] != "agent/x" {
				t.Errorf("other fields changed: %v", got)
			}
			if again := Encoded(got); again.(map[string]any)["content"] != got["content"] {
				t.Errorf("not idempotent: %q then %q", got["content"], again.(map[string]any)["content"])
			}
		})
	}
}

func TestEncodedKeepsEncodedDataWithoutCredentials(t *testing.T) {
	readme := "# shop\n\nThe payments service. Run `make test` before you push; tokens live in the vault, never here.\n"
	for _, v := range []string{
		base64.StdEncoding.EncodeToString([]byte(readme)),
		wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat(readme, 20))), 76, ""),
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", // a SHA-256
		"81875a5f0c3e2b9d4a7c6e1f0b2d3c4e5f6a7b8c",                         // a git object id
		"The quick brown fox jumps over the lazy dog, and a very long identifier like SomeVeryLongCamelCaseIdentifierName stays.",
		"/api/v1/namespaces/default/pods/web-5d9c7b7f8d-abcde/log?container=app",
	} {
		if got := Encoded(map[string]any{"content": v}).(map[string]any)["content"]; got != v {
			t.Errorf("Encoded changed %q to %q", v, got)
		}
	}
}

func TestMaskEncodedMasksOnlyTheRun(t *testing.T) {
	std := base64.StdEncoding.EncodeToString([]byte(envFile))
	s := "file .env: " + std + " (committed by the agent)"
	if got, want := maskEncoded(s, encodedDepth), "file .env: "+Mask+" (committed by the agent)"; got != want {
		t.Errorf("maskEncoded = %q, want %q", got, want)
	}
}

func TestMaskEncodedAllocatesNothingWithoutRuns(t *testing.T) {
	s := "a plain message with words and short ids like i-0abc and sha 81875a5"
	if n := testing.AllocsPerRun(100, func() { maskEncoded(s, encodedDepth) }); n != 0 {
		t.Errorf("maskEncoded allocated %v times, want 0", n)
	}
}

func BenchmarkMaskEncoded(b *testing.B) {
	blob := wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("harmless text of a file, line after line\n", 25000))), 76, "")
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		maskEncoded(blob, encodedDepth)
	}
}

// The policy reads values as sent: a run is masked whole, and it can take
// in text the policy must read (found by review: a table name before a
// "--" comment whose bytes decode to a token hid the name from INC-02-1).
// Only what is recorded and shown goes through Encoded.
func TestValueLeavesEncodedRunsToEncoded(t *testing.T) {
	tail := base64.StdEncoding.EncodeToString([]byte("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678901"))
	sql := "select * from\nintegration_tokens\n--" + tail
	if got := Value(map[string]any{"query": sql}).(map[string]any)["query"]; got != sql {
		t.Errorf("Value changed the SQL the policy reads to %q", got)
	}
	if got := Encoded(map[string]any{"query": sql}).(map[string]any)["query"]; got == sql {
		t.Errorf("Encoded kept %q", got)
	}
}

func TestEncodedCopiesOnlyWhatChanges(t *testing.T) {
	in := map[string]any{"a": []any{"plain", map[string]any{"b": "text"}}, "c": []string{"x"}}
	if out := Encoded(in); fmt.Sprintf("%p", out) != fmt.Sprintf("%p", in) {
		t.Error("Encoded copied a value in which nothing is masked")
	}
	env := base64.StdEncoding.EncodeToString([]byte(envFile))
	in = map[string]any{"a": []any{"plain", map[string]any{"b": env}}, "c": []string{env}, "d": map[string][]string{"e": {env}}, "f": map[string]string{"g": env}}
	out := Encoded(in).(map[string]any)
	if out["a"].([]any)[1].(map[string]any)["b"] != Mask || out["c"].([]string)[0] != Mask ||
		out["d"].(map[string][]string)["e"][0] != Mask || out["f"].(map[string]string)["g"] != Mask {
		t.Errorf("Encoded = %v", out)
	}
	if in["a"].([]any)[1].(map[string]any)["b"] != env || in["c"].([]string)[0] != env {
		t.Error("Encoded changed its argument")
	}
}
