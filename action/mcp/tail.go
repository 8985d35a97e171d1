package mcp

import (
	"encoding/json"
	"errors"
	"io"
)

// ErrLateMessage stops a body past the inspection limit in which a
// JSON-RPC member appears: the request was decided as another API's, and
// an MCP server would run it as a message (see TailWatch).
var ErrLateMessage = errors.New("a JSON-RPC (MCP) message past inspect.body_limit")

// maxKeyBytes bounds a key worth reading: "jsonrpc" with every letter
// escaped (\u006a) is 42 bytes.
const maxKeyBytes = 64

// TailWatch reads a JSON body as it streams and reports a top-level member
// that a JSON-RPC message has ("jsonrpc", "method", "params", in any case a
// decoder folds), in the object or in the objects of a top-level array. A
// message cut at the inspection limit whose first member is another (found
// by review: "id", then 1 MiB of spaces) is not recognised as MCP by what
// was read; an MCP server mounted at / and reached with Accept: */* (the Go
// SDK's examples) then ran the tool call the policy never saw. Watching the
// rest lets the proxy cut the body before its end, so that the server never
// holds a whole message. It is lenient: what is not JSON never matches,
// and only the body's first JSON value is read.
type TailWatch struct {
	started  bool
	target   int  // depth of the objects whose members count: 1, or 2 in an array
	depth    int  // containers open
	inString bool // inside a string
	escape   bool // after a backslash in a string
	// object is whether the container at the target depth is an object.
	object bool
	// expectKey: the next string at the target depth is a member's name.
	expectKey bool
	// capturing a name; key holds its raw bytes (up to maxKeyBytes).
	capturing bool
	key       []byte
	long      bool
	// named: a name was read, and a ':' after it makes it a member.
	named bool
	found bool
	// bom counts the bytes of a leading UTF-8 byte order mark matched so
	// far; notJSON: the first value starts with something else than an
	// object or array.
	bom     int
	notJSON bool
	// OnFound, when set, is called once, when a member is first seen.
	OnFound func()
}

// Found reports whether a JSON-RPC member was seen.
func (w *TailWatch) Found() bool { return w.found }

// Unreadable reports whether what was scanned does not start as JSON does
// (after white space and a UTF-8 byte order mark): UTF-16 text, or bytes
// still in a coding, which a server may read as JSON all the same.
func (w *TailWatch) Unreadable() bool { return w.started && w.notJSON }

// Scan reads p, the next bytes of the body, and reports whether a JSON-RPC
// member has been seen so far.
func (w *TailWatch) Scan(p []byte) bool {
	for _, c := range p {
		if w.found {
			return true
		}
		if w.started && w.target < 0 {
			return false // not JSON, or its first value has ended
		}
		w.step(c)
		if w.found && w.OnFound != nil {
			w.OnFound()
		}
	}
	return w.found
}

func (w *TailWatch) step(c byte) {
	if w.inString {
		switch {
		case w.escape:
			w.escape = false
		case c == '\\':
			w.escape = true
		case c == '"':
			w.inString = false
			if w.capturing {
				w.capturing, w.named = false, true
				return
			}
			return
		}
		if w.capturing {
			if len(w.key) < maxKeyBytes {
				w.key = append(w.key, c)
			} else {
				w.long = true
			}
		}
		return
	}
	switch c {
	case ' ', '\t', '\r', '\n':
		return
	}
	if w.named {
		w.named = false
		if c == ':' && !w.long && jsonrpcMember(w.key) {
			w.found = true
			return
		}
	}
	if !w.started {
		// A UTF-8 byte order mark, which Python's json.loads and the
		// TypeScript SDK skip (found by review).
		if w.bom < 3 && c == "\uFEFF"[w.bom] {
			w.bom++
			return
		}
		w.started = true
		switch c {
		case '{':
			w.target = 1
		case '[':
			w.target = 2
		default:
			w.target = -1 // not JSON: nothing counts
			w.notJSON = true
		}
	}
	switch c {
	case '"':
		w.inString = true
		if w.depth == w.target && w.object && w.expectKey {
			w.capturing, w.expectKey, w.long = true, false, false
			w.key = w.key[:0]
		}
	case '{', '[':
		w.depth++
		if w.depth == w.target {
			w.object = c == '{'
			w.expectKey = w.object
		}
	case '}', ']':
		if w.depth == w.target {
			w.object, w.expectKey = false, false
		}
		if w.depth > 0 {
			w.depth--
		}
		if w.depth == 0 {
			// The first value has ended: what follows it (NDJSON's next
			// line) is no part of a message the SDKs decode, which read
			// one value or refuse trailing data.
			w.target = -1
		}
	case ',':
		if w.depth == w.target && w.object {
			w.expectKey = true
		}
	}
}

// jsonrpcMember reports whether raw, a member name as written (escapes
// and all), decodes to a JSON-RPC member's name.
func jsonrpcMember(raw []byte) bool {
	s := string(raw)
	if bytesContainBackslash(raw) {
		quoted := make([]byte, 0, len(raw)+2)
		quoted = append(append(append(quoted, '"'), raw...), '"')
		if json.Unmarshal(quoted, &s) != nil {
			return false
		}
	}
	switch fold(s) {
	case "JSONRPC", "METHOD", "PARAMS":
		return true
	}
	return false
}

func bytesContainBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// Reader returns r watched: once a JSON-RPC member is seen, reads return
// ErrLateMessage and withhold the bytes that completed it, so that the
// message never arrives whole.
func (w *TailWatch) Reader(r io.Reader) io.Reader { return &watchedReader{r: r, w: w} }

type watchedReader struct {
	r io.Reader
	w *TailWatch
}

func (wr *watchedReader) Read(p []byte) (int, error) {
	if wr.w.found {
		return 0, ErrLateMessage
	}
	n, err := wr.r.Read(p)
	if wr.w.Scan(p[:n]) {
		return 0, ErrLateMessage
	}
	return n, err
}
