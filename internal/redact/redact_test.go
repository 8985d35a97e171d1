package redact

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIsCredentialHeader(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"Authorization", true},
		{"proxy-authorization", true},
		{"Cookie", true},
		{"Set-Cookie", true},
		{"X-Amz-Security-Token", true},
		{"X-Api-Key", true},
		{"Api-Key", true},
		{"X-Auth-Token", true},
		{"Private-Token", true},
		{"X-GitHub-Token", true},
		{"X-Goog-Api-Key", true},
		{"X-Vault-Token", true},
		{"X-Registry-Auth", true},
		{"X-Auth-Key", true},
		{"DD-APPLICATION-KEY", true},
		{"Ocp-Apim-Subscription-Key", true},
		{"X-Functions-Key", true},
		{"X-Honeycomb-Team", true},
		{"X-Amz-Server-Side-Encryption-Customer-Key", true},
		{"X-Goog-Encryption-Key", true},
		{"X-Idempotency-Key", false},
		{"X-Csrf-Token", true},
		{"X-Client-Secret", true},
		{"X-Db-Password", true},
		{"X-Myservice-Apikey", true},
		{"X-Amzn-Authorization", true},
		{"Content-Type", false},
		{"X-Amz-Date", false},
		{"X-Amz-Content-Sha256", false},
		{"User-Agent", false},
		{"Www-Authenticate", false},
		{"X-Request-Id", false},
	}
	for _, tt := range tests {
		if got := IsCredentialHeader(tt.give); got != tt.want {
			t.Errorf("IsCredentialHeader(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestHeader(t *testing.T) {
	h := http.Header{
		"Authorization":        {"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/ec2/aws4_request, Signature=abc"},
		"Cookie":               {"session=abc", "other=def"},
		"X-Amz-Security-Token": {"FwoGZXIvYXdzEJr"},
		"Content-Type":         {"application/json"},
		"X-Note":               {"sent with " + ghp},
		"Accept":               {},
	}
	h["x-custom-token"] = []string{"lower"} // not canonical
	h["X-Custom-Token"] = []string{"upper"}
	h["x-trace"] = []string{"lower"}
	h["X-Trace"] = []string{"upper"}

	got := Header(h)
	want := map[string][]string{
		"authorization":        {Mask},
		"cookie":               {Mask, Mask},
		"x-amz-security-token": {Mask},
		"content-type":         {"application/json"},
		"x-note":               {"sent with " + Mask},
		"accept":               {},
		"x-custom-token":       {Mask, Mask},
		"x-trace":              {"upper", "lower"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Header() mismatch (-want +got):\n%s", diff)
	}
	if h.Get("Cookie") != "session=abc" {
		t.Errorf("Header modified its argument")
	}
	if got := Header(nil); got == nil || len(got) != 0 {
		t.Errorf("Header(nil) = %#v, want an empty map", got)
	}
}

func TestQuery(t *testing.T) {
	q := url.Values{
		"X-Amz-Algorithm":      {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":     {"AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/s3/aws4_request"},
		"X-Amz-Signature":      {"fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"},
		"X-Amz-Security-Token": {"FwoGZXIvYXdzEJr"},
		"X-Goog-Credential":    {"svc@project.iam.gserviceaccount.com/20261126/auto/storage/goog4_request"},
		"X-Goog-Signature":     {"0123abcd"},
		"sv":                   {"2022-11-02"},
		"sig":                  {"abcDEF%2Bghi="},
		"Access_Token":         {"a", "b"},
		"oauth_token":          {"x"},
		"key":                  {"AIza-something"},
		"code":                 {"4/0Ad"},
		"state":                {"xyz"},
		"q":                    {"find " + glpat},
		"page":                 {"2"},
	}
	want := map[string][]string{
		"X-Amz-Algorithm":      {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":     {"AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/s3/aws4_request"},
		"X-Amz-Signature":      {Mask},
		"X-Amz-Security-Token": {Mask},
		"X-Goog-Credential":    {"svc@project.iam.gserviceaccount.com/20261126/auto/storage/goog4_request"},
		"X-Goog-Signature":     {Mask},
		"sv":                   {"2022-11-02"},
		"sig":                  {Mask},
		"Access_Token":         {Mask, Mask},
		"oauth_token":          {Mask},
		"key":                  {Mask},
		"code":                 {Mask},
		"state":                {"xyz"},
		"q":                    {"find " + Mask},
		"page":                 {"2"},
	}
	if diff := cmp.Diff(want, Query(q)); diff != "" {
		t.Errorf("Query() mismatch (-want +got):\n%s", diff)
	}
}

func TestURL(t *testing.T) {
	m := Mask
	tests := []struct {
		name string
		give string
		want string
	}{
		{"plain", "https://api.github.com/repos/o/r/pulls?state=open&page=2", ""},
		{"userinfo password", "https://alice:hunter2@git.example.com/o/r.git", "https://alice:" + m + "@git.example.com/o/r.git"},
		{"user only", "https://alice@git.example.com/", ""},
		{"token as user", "https://" + ghp + "@github.com/o/r.git", "https://" + m + "@github.com/o/r.git"},
		{"token as password", "https://oauth2:" + glpat + "@gitlab.com/o/r.git", "https://oauth2:" + m + "@gitlab.com/o/r.git"},
		{"presigned s3", "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261126%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=fe5f80f7&X-Amz-SignedHeaders=host",
			"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261126%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=" + m + "&X-Amz-SignedHeaders=host"},
		{"azure sas", "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01&sp=r&sig=abc%2Bdef%3D", "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01&sp=r&sig=" + m},
		{"token param", "https://x.example/api?token=abc&x=1", "https://x.example/api?token=" + m + "&x=1"},
		{"param without value", "https://x.example/api?token&x", ""},
		{"token shape in other param", "https://x.example/?q=" + ghp, "https://x.example/?q=" + m},
		{"percent-encoded token shape", "https://x.example/?q=" + strings.Replace(ghp, "_", "%5F", 1), "https://x.example/?q=" + m},
		{"oauth fragment", "https://app.example/cb#access_token=abc&expires_in=3600", "https://app.example/cb#access_token=" + m + "&expires_in=3600"},
		{"slack webhook", "https://hooks.slack.com/services/" + slackHook, "https://hooks.slack.com/services/" + m},
		{"empty query", "https://x.example/?", ""},
		{"relative", "/v1/objects?api_key=abc", "/v1/objects?api_key=" + m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.give
			}
			if got := URL(u); got != want {
				t.Errorf("URL(%q)\n = %q\nwant %q", tt.give, got, want)
			}
		})
	}
	if got := URL(nil); got != "" {
		t.Errorf("URL(nil) = %q, want empty", got)
	}
}

func TestValue(t *testing.T) {
	var give any
	body := `{
		"user": "alice",
		"password": "hunter2",
		"Client-Secret": "s3",
		"auth": {"user": "u", "pass": "p"},
		"author": "Bob",
		"token": {"value": "v", "expires": 3600, "nested": ["a", {"b": "c"}]},
		"max_tokens": 1024,
		"password_required": true,
		"api_key": null,
		"note": "use ` + ghp + `",
		"items": [{"access_token": "t"}, "plain", 1.5, false, null],
		"count": 7,
		"SecretId": "prod/payments/db",
		"secret_id": "6a174c20-f6de-a53c-74d2-6018fcceff64",
		"api_key_id": "key-123",
		"secret_path": "prod/root",
		"token_ttl": "1h",
		"envFrom": [{"secretRef": {"name": "prod-db-root"}}],
		"volumes": [{"secret": {"secretName": "prod-db-root", "items": [{"key": "k", "path": "p"}]}}],
		"secretAccessKey": "wJalrXUtnFEMI",
		"client_secret": {"value": "v", "id": "cs-1"},
		"DB_PASS": "hunter2-prod-pw",
		"credentials": "prod-cred-XYZ",
		"bypass": "on",
		"secretObject": {"kind": "Secret", "metadata": {"name": "db", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"k\":\"v\"}}", "team": "a"}}, "stringData": {"URL": "x", "n": 1}, "data": {"tls.key": "LS0t"}},
		"configMap": {"kind": "ConfigMap", "data": {"URL": "x"}}
	}`
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&give); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"user":              "alice",
		"password":          Mask,
		"Client-Secret":     Mask,
		"auth":              map[string]any{"user": Mask, "pass": Mask},
		"author":            "Bob",
		"token":             map[string]any{"value": Mask, "expires": json.Number("3600"), "nested": []any{Mask, map[string]any{"b": Mask}}},
		"max_tokens":        json.Number("1024"),
		"password_required": true,
		"api_key":           nil,
		"note":              "use " + Mask,
		"items":             []any{map[string]any{"access_token": Mask}, "plain", json.Number("1.5"), false, nil},
		"count":             json.Number("7"),
		// Names of credentials are kept: policies match on them.
		"SecretId":        Mask, // Vault and Consul use the name for a credential
		"secret_id":       Mask,
		"api_key_id":      "key-123",
		"secret_path":     "prod/root",
		"token_ttl":       "1h",
		"envFrom":         []any{map[string]any{"secretRef": map[string]any{"name": "prod-db-root"}}},
		"volumes":         []any{map[string]any{"secret": map[string]any{"secretName": "prod-db-root", "items": []any{map[string]any{"key": Mask, "path": "p"}}}}},
		"secretAccessKey": Mask,
		"client_secret":   map[string]any{"value": Mask, "id": Mask},
		"DB_PASS":         Mask,
		"credentials":     Mask,
		"bypass":          "on",
		// A Kubernetes Secret's values are secrets, whatever their keys.
		"secretObject": map[string]any{"kind": "Secret", "metadata": map[string]any{"name": "db",
			"annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": Mask, "team": "a"}},
			"stringData": map[string]any{"URL": Mask, "n": json.Number("1")}, "data": map[string]any{"tls.key": Mask}},
		"configMap": map[string]any{"kind": "ConfigMap", "data": map[string]any{"URL": "x"}},
	}
	got := Value(give)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Value() mismatch (-want +got):\n%s", diff)
	}
	if give.(map[string]any)["password"] != "hunter2" {
		t.Errorf("Value modified its argument")
	}
}

func TestValueOtherShapes(t *testing.T) {
	tests := []struct {
		name string
		give any
		want any
	}{
		{"nil", nil, nil},
		{"string", "x " + ghp, "x " + Mask},
		{"float", 1.5, 1.5},
		{"int", 3, 3},
		{"form values", map[string][]string{"Password": {"a"}, "Action": {"RunInstances"}}, map[string][]string{"Password": {Mask}, "Action": {"RunInstances"}}},
		{"string map", map[string]string{"secret": "a", "name": "n"}, map[string]string{"secret": Mask, "name": "n"}},
		{"strings", []string{"a", ghp}, []string{"a", Mask}},
		{"unknown type", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Mask},
		{"unknown in map", map[string]any{"x": struct{ S string }{"secret"}}, map[string]any{"x": Mask}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Value(tt.give)); diff != "" {
				t.Errorf("Value(%v) mismatch (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestDecodesWithColon(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"dXNlcjpwYXNz", true},             // user:pass
		{"YTpi", true},                     // a:b
		{"OmE", true},                      // :a
		{"dGhpcyBpcyBub3Q", false},         // this is not
		{"understanding", false},           // valid base64, no colon
		{"a", false},                       // impossible length
		{"dXNl*jpwYXNz", false},            // not base64
		{"YWxhZGRpbjpvcGVuc2VzYW1l", true}, // aladdin:opensesame
	}
	for _, tt := range tests {
		if got := decodesWithColon(tt.give); got != tt.want {
			t.Errorf("decodesWithColon(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestURLMasksTokensAfterASemicolon(t *testing.T) {
	u, err := url.Parse("https://example.test/a?x=1;token=SECRET&y=2")
	if err != nil {
		t.Fatal(err)
	}
	got := URL(u)
	if strings.Contains(got, "SECRET") || !strings.Contains(got, "x=1;token=") || !strings.Contains(got, "&y=2") {
		t.Errorf("URL() = %q, want the token after ';' masked and the rest kept", got)
	}
}

func TestKubernetesSecret(t *testing.T) {
	// A patch of a Secret does not say its kind.
	give := map[string]any{"data": map[string]any{"config.json": "eyJhdXRocyI6e319"}, "metadata": map[string]any{"labels": map[string]any{"app": "web"}}}
	want := map[string]any{"data": map[string]any{"config.json": Mask}, "metadata": map[string]any{"labels": map[string]any{"app": "web"}}}
	if diff := cmp.Diff(want, KubernetesSecret(give)); diff != "" {
		t.Errorf("KubernetesSecret() mismatch (-want +got):\n%s", diff)
	}
	if got := Value(give).(map[string]any)["data"].(map[string]any)["config.json"]; got == Mask {
		t.Error("Value masked a kind-less body's data: only KubernetesSecret should")
	}
}
