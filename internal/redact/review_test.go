package redact

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fake credentials of shapes added after the first review rounds.
var (
	telegramBot = "bot" + "123456789:" + "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	discordHook = "/api/webhooks/" + "112233445566778899/" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdEF"
)

func TestTextMoreShapes(t *testing.T) {
	m := Mask
	tests := []struct {
		name string
		give string
		want string // "" when unchanged
	}{
		{"authorization with another scheme", `curl -H 'Authorization: Token 9f8e7d6c5b4a39281706f5e4d3c2b1a0' https://api.example.com/x`,
			`curl -H 'Authorization: Token ` + m + `' https://api.example.com/x`},
		{"okta ssws", "Authorization: SSWS 00QCjAl4MlV-WPXM0ZnVvHGSWmP_xYz", "Authorization: SSWS " + m},
		{"scheme-less", `"authorization": "` + strings.Repeat("a1", 12) + `"`, `"authorization": "` + m + `"`},
		{"proxy-authorization", "Proxy-Authorization: Digest5 u1s2e3r4p5a6s7s8", "Proxy-Authorization: Digest5 " + m},
		{"prose", "Authorization: the user must sign in first", ""},
		{"word only", "authorization: required", ""},
		{"telegram", "https://api.telegram.org/" + telegramBot + "/getMe", "https://api.telegram.org/bot" + m + "/getMe"},
		{"robot is a word", "see /robots.txt and /bot/help", ""},
		{"discord webhook", "https://discord.com" + discordHook, "https://discord.com/api/webhooks/112233445566778899/" + m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.give
			}
			if got := Text(tt.give); got != want {
				t.Errorf("Text(%q)\n got %q\nwant %q", tt.give, got, want)
			}
		})
	}
}

func TestPath(t *testing.T) {
	m := Mask
	enc := strings.Replace(ghp, "_", "%5F", 1)
	tests := []struct{ give, want string }{
		{"/repos/acme/shop", "/repos/acme/shop"},
		{"/v1/" + ghp + "/x", "/v1/" + m + "/x"},
		{"/v1/" + enc + "/x", "/v1/" + m + "/x"},
		{"/files/a%20b", "/files/a%20b"},   // no token: escapes kept
		{"/bad%zz/" + ghp, "/bad%zz/" + m}, // not decodable: masked as sent
	}
	for _, tt := range tests {
		if got := Path(tt.give); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	u, err := url.Parse("https://example.test/v1/" + enc + "/x?a=1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := URL(u), "https://example.test/v1/"+m+"/x?a=1"; got != want {
		t.Errorf("URL with an encoded token in the path = %q, want %q", got, want)
	}
}

func TestString(t *testing.T) {
	m := Mask
	tests := []struct{ give, want string }{
		{"postgres://admin:Sup3rS3cretPw@db.internal/prod", "postgres://admin:" + m + "@db.internal/prod"},
		{"https://files.example/x?token=abcd1234SECRET", "https://files.example/x?token=" + m},
		{"file:///etc/hosts", "file:///etc/hosts"},
		{"see https://x.example/?token=abc for details", "see https://x.example/?token=abc for details"}, // text, not a URL: shapes only
		{"arn:aws:s3:::bucket/key", "arn:aws:s3:::bucket/key"},
		{"plain " + ghp, "plain " + m},
	}
	for _, tt := range tests {
		if got := String(tt.give); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestValueNamedCredentials(t *testing.T) {
	body := `{
		"containers": [{"env": [
			{"name": "DB_PASSWORD", "value": "EnvHunter2xyz"},
			{"name": "LOG_LEVEL", "value": "debug"},
			{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
		]}],
		"ssm": {"Name": "/prod/db/password", "Value": "SsmHunter2xyz", "Type": "String"},
		"secure": {"Name": "/prod/db/endpoint", "Value": "SsmSecureOne", "Type": "SecureString"},
		"plain": {"Name": "/prod/db/host", "Value": "db.internal", "Type": "String"},
		"uri": "postgres://app:pw12345@db/app"
	}`
	want := `{
		"containers": [{"env": [
			{"name": "DB_PASSWORD", "value": "[redacted]"},
			{"name": "LOG_LEVEL", "value": "debug"},
			{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
		]}],
		"ssm": {"Name": "/prod/db/password", "Value": "[redacted]", "Type": "String"},
		"secure": {"Name": "/prod/db/endpoint", "Value": "[redacted]", "Type": "SecureString"},
		"plain": {"Name": "/prod/db/host", "Value": "db.internal", "Type": "String"},
		"uri": "postgres://app:[redacted]@db/app"
	}`
	if diff := cmp.Diff(decode(t, want), Value(decode(t, body))); diff != "" {
		t.Errorf("Value (-want +got):\n%s", diff)
	}
}

func TestKubernetesSecretPatch(t *testing.T) {
	patch := `[
		{"op": "replace", "path": "/data/password", "value": "aHVudGVyMmh1bnRlcjI="},
		{"op": "add", "path": "/stringData", "value": {"password": "hunter2hunter2"}},
		{"op": "add", "path": "/metadata/labels/team", "value": "payments"},
		{"op": "test", "path": "/type", "value": "Opaque"}
	]`
	want := `[
		{"op": "replace", "path": "/data/password", "value": "[redacted]"},
		{"op": "add", "path": "/stringData", "value": {"password": "[redacted]"}},
		{"op": "add", "path": "/metadata/labels/team", "value": "[redacted]"},
		{"op": "test", "path": "/type", "value": "Opaque"}
	]`
	if diff := cmp.Diff(decode(t, want), KubernetesSecret(decode(t, patch))); diff != "" {
		t.Errorf("KubernetesSecret (-want +got):\n%s", diff)
	}
	// Not a Secret: a patch's values are plain.
	if got := Value(decode(t, `[{"op": "replace", "path": "/data/x", "value": "v"}]`)); !cmp.Equal(got, decode(t, `[{"op": "replace", "path": "/data/x", "value": "v"}]`)) {
		t.Errorf("a ConfigMap's patch was masked: %v", got)
	}
}

func TestFormFieldsMaskedAsParameters(t *testing.T) {
	give := map[string][]string{"grant_type": {"authorization_code"}, "code": {"OAuthCodeSecret123"}, "client_assertion": {"x"}, "key": {"k"}}
	want := map[string][]string{"grant_type": {"authorization_code"}, "code": {Mask}, "client_assertion": {Mask}, "key": {Mask}}
	if diff := cmp.Diff(want, Value(give)); diff != "" {
		t.Errorf("Value of a form (-want +got):\n%s", diff)
	}
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMultipart(t *testing.T) {
	body := "--XX\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nMultiHunter2\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nuse " + ghp + "\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"api_key\"\r\nContent-Type: text/plain\r\n\r\nk-123\r\n--XX--\r\n"
	want := "--XX\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n" + Mask + "\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nuse " + Mask + "\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"api_key\"\r\nContent-Type: text/plain\r\n\r\n" + Mask + "\r\n--XX--\r\n"
	if got := Multipart(body, "XX"); got != want {
		t.Errorf("Multipart()\n got %q\nwant %q", got, want)
	}
	// Found by review: bare LF, a folded header, a disposition that does
	// not parse (masked).
	for _, give := range []string{
		"--XX\nContent-Disposition: form-data; name=\"password\"\n\nMultiHunter2\n--XX--\n",
		"--XX\r\nContent-Disposition: form-data;\r\n name=\"password\"\r\n\r\nMultiHunter2\r\n--XX--\r\n",
		"--XX\r\nContent-Disposition: form-data; name=\"password\"; filename=\"a\"; filename=\"b\"\r\n\r\nMultiHunter2\r\n--XX--\r\n",
	} {
		if got := Multipart(give, "XX"); strings.Contains(got, "MultiHunter2") || !strings.Contains(got, "--XX--") {
			t.Errorf("Multipart(%q) = %q", give, got)
		}
	}
	if got := Multipart("no parts "+ghp, "XX"); got != "no parts "+Mask {
		t.Errorf("Multipart of a body without parts = %q", got)
	}
}

// A value that runs across '/' is masked whole (found by review: masking
// segment by segment showed the parts of an AWS secret key or Basic
// credentials after a '/'). The policy reads the path as sent; this is
// what is recorded and shown.
func TestPathMasksValuesAcrossSegments(t *testing.T) {
	m := Mask
	enc := strings.Replace(ghp, "_", "%5F", 1)
	tests := []struct{ give, want string }{
		{"/x/aws_secret_access_key=" + awsSecret + "/y", "/x/aws_secret_access_key=" + m},
		{"/x/token=abcdefgh/ijklmnopqrstuvwxyz0123/y", "/x/token=" + m},
		{"/x/Basic%20dXNlcjpw/YXNzd29yZHNlY3JldHZhbHVl/y", "/x/Basic%20" + m},
		{"/v1/" + enc + "/x%2Fy", "/v1/" + m + "/x%2Fy"},
		{discordHook, "/api/webhooks/112233445566778899/" + m},
		{"/" + telegramBot + "/getMe", "/bot" + m + "/getMe"},
	}
	for _, tt := range tests {
		if got := Path(tt.give); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// A rule's later matches inside its own span are not scanned again: a path
// of repeated "token=" cost time quadratic in its length (found by review:
// 60 s for 917 KB). Counted in spans, not timed.
func TestFindIsLinearOnRepeatedMatches(t *testing.T) {
	s := strings.Repeat("/token=", 20000)
	// The names within nestMargin of the value's end are tried again.
	if spans, most := find(s, nil), 2+nestMargin/len("/token="); len(spans) > most {
		t.Errorf("find returned %d spans for one run of a value; want it scanned once (at most %d)", len(spans), most)
	}
}

// A secret whose '=' or '+' is percent-encoded and which runs across '/'
// (Python's urllib.parse.quote keeps '/' and encodes both) is masked whole
// in the path as spelt (found by review: decoding segment by segment saw
// only the part before the first '/').
func TestPathMasksEncodedValuesAcrossSegments(t *testing.T) {
	for _, p := range []string{
		"/cb/aws_secret_access_key%3DwJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"/cb/token=wJalrXUtn%2BFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	} {
		got := Path(p)
		if strings.Contains(got, "bPxRfiCYEXAMPLEKEY") || !strings.HasPrefix(got, "/cb/") || !strings.Contains(got, Mask) {
			t.Errorf("Path(%q) = %q: the secret's tail is shown", p, got)
		}
		u, err := url.Parse("https://example.test" + p)
		if err != nil {
			t.Fatal(err)
		}
		if g := URL(u); strings.Contains(g, "bPxRfiCYEXAMPLEKEY") {
			t.Errorf("URL(%q) = %q: the secret's tail is shown", p, g)
		}
	}
}

// A policy's message may quote the path, which the policy reads as sent
// (found by review: the default policy's message put a token from GitHub's
// revoke-grant route into the audit log and the approval page).
func TestMessage(t *testing.T) {
	enc := strings.Replace(ghp, "_", "%5F", 1)
	for _, tt := range []struct{ give, want string }{
		{"DELETE changes infrastructure (DELETE api.github.com/applications/Iv1.0123/grants/" + enc + ")",
			"DELETE changes infrastructure (DELETE api.github.com/applications/Iv1.0123/grants/" + Mask + ")"},
		{"token " + ghp + " seen", "token " + Mask + " seen"},
		{"scale to 50% of " + enc, "scale to 50% of " + Mask},
		{"no secret at 100%", "no secret at 100%"},
		{"/x/aws_secret_access_key%3D" + awsSecret + " in the path", "/x/aws_secret_access_key%3D" + Mask + " in the path"},
	} {
		if got := Message(tt.give); got != tt.want {
			t.Errorf("Message(%q)\n got %q\nwant %q", tt.give, got, tt.want)
		}
	}
}

// findEvery is find without skipping: every occurrence of every prefix is
// tried. find must mask exactly what it masks.
func findEvery(s string) []span {
	var spans []span
	for i := 0; i+2 < len(s); i++ {
		for ri := range rules {
			r := &rules[ri]
			if !r.hasPrefix(s[i:]) || r.boundary && !atBoundary(s, i) {
				continue
			}
			if start, end := r.match(s, i, len(r.prefix)); end > start && start >= 0 {
				spans = append(spans, span{start, end})
			}
		}
	}
	return spans
}

// Rules that fail after a long scan tell find how far no other match can
// start, so "a://a://…" and "eyJeyJ…" take linear time (found by review:
// 256 KiB took 15 s and 7 s; a userinfo is also looked for only within
// maxUserinfo of its "://"). That skipping must lose no span: find and
// findEvery mask the same text over inputs built from the rules' parts.
func TestFindSkipsOnlyWhatCannotMatch(t *testing.T) {
	if start, end := userinfoPassword(strings.Repeat("a://", 400)+" @", 0, 3); start >= 0 || end != 1600 {
		t.Errorf("userinfoPassword with the '@' past a space = (%d, %d), want (-1, 1600)", start, end)
	}
	if start, end := jwt(strings.Repeat("eyJ", 1000), 0, 3); start >= 0 || end != 3000 {
		t.Errorf("jwt of one long run = (%d, %d), want (-1, 3000)", start, end)
	}
	parts := []string{"a://", "://", "eyJhbGciOiJIUzI1NiJ9", "eyJ", ".", "@", ":", "/", "8443", "x", " ",
		"token=", "ghp_abcdefghijklmnopqrstuvwxyz0123", "u:pw", "abcDEF012_-", "?", "#", "'", "=", "\n",
		"abcdefghijklmnopqrstuvwxyz0123456789ABCD", "YWxpY2U6c2VjcmV0cGFzc3dvcmQ="}
	for _, r := range rules {
		parts = append(parts, r.prefix, r.prefix+"_", r.prefix+": ")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(24) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		s := b.String()
		if got, want := mask(s, find(s, nil)), mask(s, findEvery(s)); got != want {
			t.Fatalf("find masks %q as %q; trying every prefix gives %q", s, got, want)
		}
	}
}

// What is recorded and shown masks tokens percent-encoded anywhere in a
// URL (a query name, a pair without '=', a value with a bad escape) and
// base64 runs that decode to a credential, in the path too (found by
// review).
func TestURLShownMasksEncodedTokens(t *testing.T) {
	enc := strings.Replace(ghp, "_", "%5F", 1)
	b64 := base64.RawURLEncoding.EncodeToString([]byte("export GITHUB_TOKEN=" + ghp + "\n"))
	for _, raw := range []string{
		"https://api.example.com/x?" + enc,
		"https://api.example.com/x?" + enc + "=1",
		"https://api.example.com/x?note=" + enc + "%zz",
		"https://api.example.com/x?note=" + enc + "%",
		"https://api.example.com/upload/" + b64,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := URL(u); strings.Contains(got, enc) || strings.Contains(got, b64[:32]) || !strings.HasPrefix(got, "https://api.example.com/") {
			t.Errorf("URL(%s) = %s", raw, got)
		}
	}
}

// A header whose value is a URL is masked as a URL in a body is (Azure's
// x-ms-copy-source carries a SAS signature), and Azure's customer-provided
// keys are credentials (found by review).
func TestHeaderURLsAndAzureKeys(t *testing.T) {
	h := http.Header{
		"X-Ms-Copy-Source":    {"https://acct.blob.core.windows.net/c/src.txt?sv=2023-11-03&se=2026-12-01&sp=r&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2Babcd%3D"},
		"X-Ms-Encryption-Key": {"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		"Referer":             {"https://example.com/page?q=1"},
	}
	got := Header(h)
	if v := got["x-ms-copy-source"][0]; strings.Contains(v, "AbCdEfGh") || !strings.Contains(v, "sv=2023-11-03") {
		t.Errorf("x-ms-copy-source = %q", v)
	}
	if v := got["x-ms-encryption-key"][0]; v != Mask {
		t.Errorf("x-ms-encryption-key = %q", v)
	}
	if v := got["referer"][0]; v != "https://example.com/page?q=1" {
		t.Errorf("referer = %q", v)
	}
}

// A command line is recorded with its credentials masked (found by review:
// the session record carried the agent's whole command line).
func TestArgs(t *testing.T) {
	got := strings.Join(Args([]string{"curl", "-H", "Authorization: Bearer " + ghp, "GITHUB_TOKEN=" + ghp, "--password=hunter2hunter2", "--name=shop"}), " ")
	if strings.Contains(got, ghp) || strings.Contains(got, "hunter2") || !strings.Contains(got, "--name=shop") || !strings.HasPrefix(got, "curl -H") {
		t.Errorf("Args = %q", got)
	}
}
