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
		// Laravel reads a JSON body as its form input (found by review).
		{"JSON", "POST", "", "application/json", `{"_method":"DELETE"}`, true},
		{"JSON, escaped", "POST", "", "application/json", `{"\u005fmethod":"DELETE"}`, true},
		{"JSON, nested", "POST", "", "application/json", `{"data":{"_method":"DELETE"}}`, false},
		// PHP and Rack spellings of the same name, as servers read them.
		{"PHP dot", "POST", "", "application/x-www-form-urlencoded", ".method=DELETE", true},
		{"PHP leading space", "POST", "", "application/x-www-form-urlencoded", "%20_method=DELETE", true},
		{"Rack 2 brackets", "POST", "", "application/x-www-form-urlencoded", "%5B_method%5D=DELETE", true},
		{"a list", "POST", "", "application/x-www-form-urlencoded", "_method[]=DELETE", true},
		{"the last of two", "POST", "", "application/x-www-form-urlencoded", "_method=POST&_method=DELETE", true},
		{"multipart, the last of two", "POST", "", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nPOST\r\n--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", true},
		{"multipart/mixed", "POST", "", "multipart/mixed; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", true},
		// Types Go's parser refuses, read as servers read them.
		{"no content type", "POST", "", "", "_method=DELETE", true},
		{"unparseable type", "POST", "", "application/x-www-form-urlencoded; x", "_method=DELETE", true},
		{"a prefix of the type", "POST", "", "application/x-www-form-urlencoded0", "_method=DELETE", true},
		{"two types", "POST", "", "application/x-www-form-urlencoded, text/plain", "_method=DELETE", true},
		{"bad escape elsewhere", "POST", "", "application/x-www-form-urlencoded", "a=%zz&_method=DELETE", true},
		{"text", "POST", "", "text/plain", "_method=DELETE", false},
		{"another field", "POST", "", "application/x-www-form-urlencoded", "method=DELETE&_methods=DELETE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ct []string
			if tt.contentType != "" {
				ct = []string{tt.contentType}
			}
			got := methodParamRefusal(tt.method, tt.query, ct, []byte(tt.body))
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
		_ = methodParamRefusal("POST", query, []string{contentType}, []byte(body))
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/x-www-form-urlencoded") {
			if methodParamRefusal("POST", "", []string{contentType}, []byte(body+"&_method=DELETE")) == "" {
				t.Fatalf("a form body (%q) naming DELETE passed", contentType)
			}
		}
		if methodParamRefusal("POST", query+"&_method=DELETE", []string{contentType}, []byte(body)) == "" {
			t.Fatal("a query naming DELETE passed")
		}
	})
}
