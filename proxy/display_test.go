package proxy

import (
	"strings"
	"testing"
)

func TestDisplayBodyMasksCredentialsLikeTheAuditLog(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		keep                    []string
		gone                    []string
	}{
		{"json field", "application/json", `{"user":"alice","password":"hunter2","db_password":"Tr0ub4dor&3 horse!"}`, []string{"alice"}, []string{"hunter2", "Tr0ub4dor"}},
		{"form field", "application/x-www-form-urlencoded", "Action=CreateUser&password=s3cret&UserName=bob", []string{"Action=CreateUser", "UserName=bob"}, []string{"s3cret"}},
		{"token in text", "text/plain", "use ghp_abcdefghijklmnopqrstuvwxyz0123456789 please", []string{"please"}, []string{"ghp_abcdef"}},
		{"binary", "application/octet-stream", "\xff\xfe\x00", []string{"binary data"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := displayBody(tt.contentType, []byte(tt.body), false)
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("displayBody() = %q, lost %q", got, k)
				}
			}
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("displayBody() = %q, shows the secret %q", got, g)
				}
			}
		})
	}
}

// A patch of a Kubernetes Secret does not say its kind; its data is still
// not shown.
func TestDisplayBodyOfAKindlessSecretPatch(t *testing.T) {
	body := `{"data":{"config.json":"c2VjcmV0LWRvY2tlci1hdXRo"},"metadata":{"labels":{"app":"web"}}}`
	got := displayBody("application/merge-patch+json", []byte(body), true)
	if strings.Contains(got, "c2VjcmV0LWRvY2tlci1hdXRo") || !strings.Contains(got, "web") {
		t.Errorf("displayBody(Secret patch) = %q: shows the data, or lost the labels", got)
	}
}
