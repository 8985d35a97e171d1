package h1

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		give string
		want string // "" when accepted, else a substring of the reason
	}{
		{"", ""},
		{"/", ""},
		{"/repos/acme/shop", ""},
		{"/repos/acme/shop/", ""},
		{"/repos/acme%2Fshop", ""},
		{"/-/npm/@scope%2fname", ""},
		{"/contents/a..b/.github/v1.2.json", ""},
		{"/contents/100%25", ""},
		{"/bucket/key%3Bv=1", ""},
		{"/bucket/a%5Cb", ""},
		{"/api/v1/namespaces/x/services/https:y:443/proxy/", ""},
		{"/a/../b", "dot-segment"},
		{"/a/./b", "dot-segment"},
		{"/a/..", "dot-segment"},
		{"/..", "dot-segment"},
		{"/a/%2e%2e/b", "dot-segment"},
		{"/a/%2E%2e/b", "dot-segment"},
		{"/a/.%2e/b", "dot-segment"},
		{"/a%2f%2e%2e%2fb", "dot-segment"},
		{"/a/%252e%252e/b", "dot-segment"},
		{"/a/..%5cb", "dot-segment"},
		{"/a//b", "empty segment"},
		{"//a", "empty segment"},
		{"/a%2F%2Fb", "empty segment"},
		{"/a;b", "';'"},
		{"/a\\b", "backslash"},
		{"/a%00b", "control"},
		{"/a%0d%0ab", "control"},
		{"/a%7f", "control"},
		{"/a%25%30%30", "control"}, // %2500 decodes to %00, then to NUL
	}
	for _, tt := range tests {
		err := checkPath(tt.give)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("checkPath(%q) = %v, want nil", tt.give, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Reason, tt.want)):
			t.Errorf("checkPath(%q) = %v, want a refusal naming %q", tt.give, err, tt.want)
		case err != nil && err.Status != 400:
			t.Errorf("checkPath(%q) status %d, want 400", tt.give, err.Status)
		}
	}
}

func TestRawPathOf(t *testing.T) {
	tests := []struct {
		target   string
		absolute bool
		want     string
	}{
		{"/a/b?c=/../", false, "/a/b"},
		{"/", false, "/"},
		{"https://h.example/a//b?x", true, "/a//b"},
		{"http://h.example", true, ""},
		{"http://h.example?x=/..", true, ""},
	}
	for _, tt := range tests {
		if got := rawPathOf(tt.target, tt.absolute); got != tt.want {
			t.Errorf("rawPathOf(%q, %v) = %q, want %q", tt.target, tt.absolute, got, tt.want)
		}
	}
}

// FuzzCheckPath checks that an accepted path has no dot-segment, empty
// segment or control byte however often a server decodes it.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/%2e%2e/b", "/a%2fb", "/a/%252e%252e", "//", "/a;b", "/%00", "/a/..%5cb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		if strings.ContainsAny(p, ";\\") {
			t.Fatalf("accepted %q with ';' or '\\'", p)
		}
		d := p
		for round := 0; ; round++ {
			segs := strings.FieldsFunc(strings.TrimPrefix(d, "/"), func(r rune) bool { return r == '/' || (round > 0 && r == '\\') })
			for _, s := range segs {
				if s == "." || s == ".." {
					t.Fatalf("accepted %q: decoding %d times gives a dot-segment in %q", p, round, d)
				}
			}
			if strings.Contains(strings.TrimSuffix(strings.TrimPrefix(d, "/"), "/"), "//") || strings.HasPrefix(d, "//") {
				t.Fatalf("accepted %q: decoding %d times gives an empty segment in %q", p, round, d)
			}
			if round > 0 && strings.IndexFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				t.Fatalf("accepted %q: decoding %d times gives a control byte in %q", p, round, d)
			}
			next, err := url.PathUnescape(d)
			if round == maxPathDecodes || err != nil || next == d {
				break
			}
			d = next
		}
	})
}
