package wirebytes

import (
	"bytes"
	"testing"
)

func TestUnescape(t *testing.T) {
	good := []struct {
		in   string
		want []byte
	}{
		{`GET / HTTP/1.1\r\n`, []byte("GET / HTTP/1.1\r\n")},
		{`a\tb\0c\\d`, []byte("a\tb\x00c\\d")},
		{`\x00\xff\x7F`, []byte{0, 0xff, 0x7f}},
		{``, nil},
	}
	for _, c := range good {
		got, err := Unescape(c.in)
		if err != nil {
			t.Errorf("Unescape(%q): %v", c.in, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, in := range []string{`abc\`, `\x4`, `\xzz`, `\q`} {
		if got, err := Unescape(in); err == nil {
			t.Errorf("Unescape(%q) = %q, want an error", in, got)
		}
	}
}
