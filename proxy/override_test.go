package proxy

import (
	"strings"
	"testing"
)

func TestMethodParamRefusal(t *testing.T) {
	tests := []struct {
		name, method, query, contentType, body string
		refused                                bool
	}{
		{"form", "POST", "", "application/x-www-form-urlencoded", "_method=delete", true},
		{"form, escaped name", "POST", "", "application/x-www-form-urlencoded", "%5F%6Dethod=PUT", true},
		{"query", "POST", "_method=PATCH", "", "", true},
		{"multipart", "POST", "", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", true},
		{"multipart cut short", "POST", "", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", true},
		{"a read", "POST", "", "application/x-www-form-urlencoded", "_method=GET", false},
		{"the method itself", "POST", "_method=post", "", "", false},
		{"not a POST", "PUT", "_method=DELETE", "application/x-www-form-urlencoded", "_method=DELETE", false},
		{"JSON", "POST", "", "application/json", `{"_method":"DELETE"}`, false},
		{"another field", "POST", "", "application/x-www-form-urlencoded", "method=DELETE&_methods=DELETE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := methodParamRefusal(tt.method, tt.query, tt.contentType, []byte(tt.body))
			if (got != "") != tt.refused {
				t.Errorf("methodParamRefusal() = %q, want refused %v", got, tt.refused)
			}
		})
	}
}

// FuzzMethodParamRefusal: any query, content type and body; a form body
// that plainly names DELETE is always refused, and nothing panics.
func FuzzMethodParamRefusal(f *testing.F) {
	f.Add("_method=PUT", "application/x-www-form-urlencoded", "a=1")
	f.Add("", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n")
	f.Add("", "application/x-www-form-urlencoded", "%5Fmethod=delete")
	f.Fuzz(func(t *testing.T, query, contentType, body string) {
		_ = methodParamRefusal("POST", query, contentType, []byte(body))
		if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") && !strings.Contains(contentType, ";") {
			if methodParamRefusal("POST", "", contentType, []byte("_method=DELETE&"+body)) == "" {
				t.Fatal("a form body naming DELETE passed")
			}
		}
	})
}
