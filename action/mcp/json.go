package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a message countersign forwards. Real MCP
// messages nest a handful of levels; the bound keeps everything downstream
// (redaction, the policy input, the audit log) shallow, and a deeper message
// is refused rather than passed on half-read.
const maxDepth = 64

// document is a JSON body read strictly, with what a server might read
// differently noted instead of silently resolved.
type document struct {
	value any // map[string]any, []any, string, json.Number, bool or nil
	// dup is the path of the first key that repeats another key of its
	// object, comparing keys as Go's encoding/json matches struct fields
	// (case-insensitively, with Unicode simple folding). Empty when none.
	dup string
	// dupTop holds the folded top-level keys that repeat, so a refusal can
	// tell whether the message's id is unambiguous.
	dupTop map[string]bool
	// ctl is the path of the first key holding a control character (NUL
	// included): no MCP key has one, and some parsers drop them, so that
	// "name\u0000" is "name" to them (segmentio/encoding before v0.5.4,
	// which the Go SDK used in v1.3.1–v1.4.0: GO-2026-4770). Empty when
	// none.
	ctl string
	// tooDeep tells that the document nests deeper than maxDepth.
	tooDeep bool
	// err is a syntax error, trailing data after the value, or the end of a
	// truncated body. value is nil when it is set.
	err error
}

// isControl reports whether r is a C0 or C1 control character.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }

// frame is one open object or array while a document is read.
type frame struct {
	obj  map[string]any
	arr  []any
	keys []string // folded keys seen so far, for duplicate detection
	key  string   // the key whose value comes next (objects)
	idx  int      // the index of the next element (arrays)
	// wantKey is true in an object when the next token is a key.
	wantKey bool
}

// parseDocument reads b as exactly one JSON value with encoding/json's token
// decoder, so no value is decoded by rules that differ from the stream it
// came from. It never stops early for a duplicate key or deep nesting: the
// caller needs to see the whole message (a top-level "jsonrpc" member may
// come last). Work and memory are linear in len(b): the decoder keeps its
// own stack, and so does this loop, so nesting costs no recursion.
func parseDocument(b []byte) document {
	var doc document
	if !utf8.Valid(b) {
		// encoding/json would replace invalid bytes with U+FFFD; another
		// parser might keep or reject them. Neither is what was sent.
		doc.err = errors.New("the body is not valid UTF-8")
		return doc
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	var root any
	done := false
	attach := func(v any) {
		if len(stack) == 0 {
			root, done = v, true
			return
		}
		top := stack[len(stack)-1]
		if top.obj != nil {
			top.obj[top.key] = v
			top.wantKey = true
			return
		}
		top.arr = append(top.arr, v)
		top.idx++
	}
	for !done {
		tok, err := dec.Token()
		if err != nil {
			doc.err = syntaxError(err)
			return doc
		}
		if len(stack) > 0 {
			if top := stack[len(stack)-1]; top.obj != nil && top.wantKey {
				if k, ok := tok.(string); ok {
					if strings.ContainsFunc(k, isControl) && doc.ctl == "" {
						doc.ctl = pathOf(stack, k)
					}
					fk := fold(k)
					for _, seen := range top.keys {
						if seen != fk {
							continue
						}
						if doc.dup == "" {
							doc.dup = pathOf(stack, k)
						}
						if len(stack) == 1 {
							if doc.dupTop == nil {
								doc.dupTop = map[string]bool{}
							}
							doc.dupTop[fk] = true
						}
						break
					}
					top.keys = append(top.keys, fk)
					top.key, top.wantKey = k, false
					continue
				}
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{obj: map[string]any{}, wantKey: true})
			case '[':
				stack = append(stack, &frame{arr: []any{}})
			case '}', ']':
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if top.obj != nil {
					attach(top.obj)
				} else {
					attach(top.arr)
				}
				continue
			}
			if len(stack) > maxDepth {
				doc.tooDeep = true
			}
		default:
			attach(t)
		}
	}
	// One value and nothing after it: a server that reads only the first
	// value of a stream and one that reads them all must not disagree.
	if _, err := dec.Token(); err != io.EOF {
		doc.err = errors.New("the body holds more than one JSON value")
		return doc
	}
	doc.value = root
	return doc
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("the body is not valid JSON (offset %d)", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the body ends inside a JSON value")
	}
	return errors.New("the body is not valid JSON")
}

// pathOf names the location of key k in the innermost open object, as
// params.arguments.table or [1].params.name.
func pathOf(stack []*frame, k string) string {
	var b strings.Builder
	for i, f := range stack {
		if i == len(stack)-1 {
			break
		}
		if f.obj != nil {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteString("[" + strconv.Itoa(f.idx) + "]")
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(k)
	return b.String()
}

// fold maps a key to the form under which Go's encoding/json considers two
// keys the same struct field: ASCII letters upper-cased, other runes
// replaced by the smallest rune of their simple-folding orbit (so "ſ" and
// "s", "K" (Kelvin) and "k" collide). Servers built on encoding/json read
// "Name" as name; a proxy that read them as different keys would be fooled.
func fold(s string) string {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('a' <= c && c <= 'z') {
			simple = false
			break
		}
	}
	if simple {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		default:
			b.WriteRune(foldRune(r))
		}
	}
	return b.String()
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// member returns the value of the member of obj whose key folds to the
// same form as name, the way a case-insensitive server would find it.
// Duplicates under folding are refused before this is used, so at most one
// key matches.
func member(obj map[string]any, name string) (any, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	fn := fold(name)
	for k, v := range obj {
		if fold(k) == fn {
			return v, true
		}
	}
	return nil, false
}

// mentionsJSONRPC reports whether any JSON string literal in b (a key or a
// value, escapes decoded, compared case-insensitively) is "jsonrpc". It is
// the cheap test that keeps ordinary JSON APIs off the full parse, and it
// recognises a JSON-RPC message even when the body is broken or cut off
// before its structure can be read. It tolerates any bytes and is linear.
func mentionsJSONRPC(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j, escaped := i+1, false
		for ; j < len(b) && b[j] != '"'; j++ {
			if b[j] == '\\' {
				escaped = true
				j++
			}
		}
		if j >= len(b) {
			return false
		}
		if raw := b[i+1 : j]; isJSONRPC(raw, escaped) {
			return true
		}
		i = j
	}
	return false
}

// isJSONRPC reports whether the contents of a JSON string literal fold to
// "jsonrpc". Most strings are ruled out by their length without an
// allocation.
func isJSONRPC(raw []byte, escaped bool) bool {
	const name = "jsonrpc"
	switch {
	case len(raw) < len(name):
		return false
	case !escaped && len(raw) == len(name):
		return bytes.EqualFold(raw, []byte(name))
	case !escaped:
		// Longer only with non-ASCII letters that fold to ASCII ones ("ſ"
		// is two bytes); each takes at most three bytes.
		if len(raw) > 3*len(name) || isASCII(raw) {
			return false
		}
		return fold(string(raw)) == "JSONRPC"
	case len(raw) > 6*len(name) || escapedLen(raw) != len(name):
		// Seven characters, each at most a 6-byte \uXXXX escape.
		return false
	}
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
		return false
	}
	return fold(s) == "JSONRPC"
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// escapedLen counts the characters a JSON string literal's contents decode
// to, without decoding them: an escape is one character (a surrogate pair
// counts two, which never matters for an ASCII name).
func escapedLen(raw []byte) int {
	n := 0
	for i := 0; i < len(raw); n++ {
		switch {
		case raw[i] == '\\' && i+1 < len(raw) && raw[i+1] == 'u':
			i += 6
		case raw[i] == '\\':
			i += 2
		default:
			_, size := utf8.DecodeRune(raw[i:])
			i += size
		}
	}
	return n
}
