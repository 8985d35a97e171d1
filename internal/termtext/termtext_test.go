package termtext

import "testing"

func TestLine(t *testing.T) {
	tests := []struct {
		name, give string
		limit      int
		want       string
	}{
		{"plain", "DELETE https://api.github.com/repos/acme/shop", 100, "DELETE https://api.github.com/repos/acme/shop"},
		{"C0 escape sequence", "ok\x1b[2J\r\nfake prompt", 100, "ok [2J  fake prompt"},
		{"C1 CSI", "ok\u009b2Jhidden", 100, "ok 2Jhidden"},
		{"bidi override", "evil\u202Etxt.exe", 100, "evil<U+202E>txt.exe"},
		{"zero width", "ma\u200Bin", 100, "ma<U+200B>in"},
		{"invalid UTF-8", "a\xffb", 100, "a\uFFFDb"},
		{"cut by runes", "ééééé", 3, "ééé…"},
		{"exactly the limit", "abc", 3, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Line(tt.give, tt.limit); got != tt.want {
				t.Errorf("Line(%q, %d) = %q, want %q", tt.give, tt.limit, got, tt.want)
			}
		})
	}
}
