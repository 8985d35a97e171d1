package termtext

import (
	"encoding/json"
	"strings"
	"testing"
)

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

func TestText(t *testing.T) {
	for give, want := range map[string]string{
		"plain\n\tline\n":                 "plain\n\tline\n",
		"FAIL\x1b[2K\x1b[1A\rPASS: 2/2\n": `FAIL\x1B[2K\x1B[1A\x0DPASS: 2/2` + "\n",
		"\x1b]52;c;ZXZpbA==\x07":          `\x1B]52;c;ZXZpbA==\x07`,
		"c1 \u009b31m":                    `c1 \x9B31m`,
		"rtl \u202eevil":                  "rtl <U+202E>evil",
		"bad \xff utf-8":                  "bad \ufffd utf-8",
	} {
		if got := Text(give); got != want {
			t.Errorf("Text(%q) = %q, want %q", give, got, want)
		}
	}
}

func TestJSONWriter(t *testing.T) {
	var b strings.Builder
	if err := json.NewEncoder(JSONWriter{W: &b}).Encode(map[string]string{"url": "https://x/\u009b31m\u202eevil\x7f"}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\u009b\u202e\x7f") {
		t.Errorf("raw controls in %q", b.String())
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil || back["url"] != "https://x/\u009b31m\u202eevil\x7f" {
		t.Errorf("the JSON no longer means the same: %v %q", err, back)
	}
}
