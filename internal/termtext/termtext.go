// Package termtext makes text that an agent controls (URLs, summaries,
// policy messages, request bodies) safe to print on one terminal line.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s as one line of at most limit runes, "…" marking a cut.
// Control characters (C0, DEL and C1, which some terminals read as escape
// sequences) become spaces, so the text cannot move the cursor or rewrite
// what is on screen; format characters that reorder or hide text
// (bidirectional overrides, zero-width characters) are shown as "<U+202E>";
// invalid UTF-8 becomes U+FFFD.
func Line(s string, limit int) string {
	if limit <= 0 {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == limit {
			b.WriteString("…")
			break
		}
		switch {
		case unicode.IsControl(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		case r == utf8.RuneError:
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}
