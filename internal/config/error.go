package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the configuration file, or "" when the problem is not tied to
	// a line of it (a default value, a flag).
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Key is the dotted key path ("approval.hold", "clients[1].name"), or ""
	// for problems with the file as a whole.
	Key string
	// Msg says what is wrong, and where it helps, what would be right.
	Msg string
}

// String formats p as "file:line: key: msg", leaving out the parts that are
// empty.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found by Load or Validate. It always holds at
// least one problem.
type Error struct {
	Problems []Problem
}

// Error returns one line per problem.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
