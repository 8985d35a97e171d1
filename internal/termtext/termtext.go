// Package termtext makes text that an agent controls (URLs, summaries,
// policy messages, request bodies) safe to print on one terminal line.
package termtext

import (
	"fmt"
	"io"
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
		if unicode.IsControl(r) {
			b.WriteByte(' ')
		} else {
			writeShown(&b, r)
		}
		n++
	}
	return b.String()
}

// Text returns s, lines and tabs kept, safe to print: other control
// characters (C0, DEL, C1) are shown as \xNN, format characters that
// reorder or hide text as "<U+202E>", and invalid UTF-8 as U+FFFD. It is
// for text of many lines that a file or a log the agent may have written
// puts in front of the operator: a policy test's output, an error quoting
// a policy's source.
func Text(s string) string {
	clean := true
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			fmt.Fprintf(&b, `\x%02X`, r)
		} else {
			writeShown(&b, r)
		}
	}
	return b.String()
}

// writeShown writes r, a format character (which reorders or hides text)
// as "<U+202E>". Invalid UTF-8, which ranging over a string yields as
// U+FFFD, is written as U+FFFD.
func writeShown(b *strings.Builder, r rune) {
	if unicode.Is(unicode.Cf, r) {
		fmt.Fprintf(b, "<U+%04X>", r)
		return
	}
	b.WriteRune(r)
}

// Writer passes what is written to w through Text.
type Writer struct{ W io.Writer }

func (tw Writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(tw.W, Text(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// JSONWriter passes JSON written to w through with the characters
// encoding/json leaves as they are but a terminal may act on or reorder
// (C1 controls, format characters such as U+202E) escaped as \uXXXX: the
// JSON stays valid and means the same. Each Write must be whole JSON text,
// as a json.Encoder writes it.
type JSONWriter struct{ W io.Writer }

func (jw JSONWriter) Write(p []byte) (int, error) {
	var b strings.Builder
	b.Grow(len(p))
	for _, r := range string(p) {
		if (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) || r == 0x7f {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	if _, err := io.WriteString(jw.W, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
