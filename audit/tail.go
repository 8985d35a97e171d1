package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Filter selects records for Tail. Empty fields match every record.
type Filter struct {
	Session  string // session ID or name
	Decision string // "allow", "deny", …
	Event    string // record type: "decision", "approval", …
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Record) bool {
	var id, name string
	if r.Session != nil {
		id, name = r.Session.ID, r.Session.Name
	}
	return f.match(r.Session != nil, id, name, r.Decision, r.Type)
}

func (f Filter) match(hasSession bool, sessionID, sessionName, decision, typ string) bool {
	if f.Session != "" && (!hasSession || (sessionID != f.Session && sessionName != f.Session)) {
		return false
	}
	if f.Decision != "" && decision != f.Decision {
		return false
	}
	if f.Event != "" && typ != f.Event {
		return false
	}
	return true
}

func (f Filter) matchTail(r *tailRecord) bool {
	var id, name string
	if r.Session != nil {
		id, name = r.Session.ID, r.Session.Name
	}
	return f.match(r.Session != nil, id, name, r.Decision, r.Type)
}

// tailRecord holds the members of a record that Tail prints or filters
// on. Tail reads lines an agent's requests fill (input, fields, headers)
// and does not check them: decoded into maps of any, as [ParseRecord]
// decodes them, one line within the line limit took 66 times its size in
// memory. encoding/json skips the members a struct does not name without
// allocating.
type tailRecord struct {
	Time           time.Time    `json:"ts"`
	Type           string       `json:"event"`
	Session        *tailSession `json:"session"`
	Request        *tailRequest `json:"request"`
	Action         *tailAction  `json:"action"`
	Decision       string       `json:"decision"`
	Reasons        textList     `json:"reasons"`
	ApprovalID     string       `json:"approval_id"`
	Approver       string       `json:"approver"`
	Via            string       `json:"via"`
	Detail         string       `json:"detail"`
	UpstreamStatus int          `json:"upstream_status"`
	UpstreamMillis int64        `json:"upstream_ms"`
	Error          string       `json:"error"`
}

type tailSession struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tailRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Tunnel bool   `json:"tunnel"`
}

// tailAction holds the action members Tail names an action by. Unlike the
// map of [Event.Action], their keys match case-insensitively, as every
// struct's in encoding/json (and the record's own members) do: Log writes
// them in lower case.
type tailAction struct {
	Provider  optString `json:"provider"`
	Service   optString `json:"service"`
	Operation optString `json:"operation"`
}

// optString takes a JSON string and reads any other value (a number, an
// object) as "", as a type assertion on a map of any did.
type optString string

func (s *optString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		*s = ""
		return nil
	}
	var v strings.Builder
	unquote(&v, b[1:len(b)-1])
	*s = optString(v.String())
	return nil
}

// textList reads a JSON array of strings as its elements joined with "; ",
// as Tail prints them, and their number. Decoded as a []string, an array
// of empty strings cost 16 bytes of string header per 3 bytes of line.
type textList struct {
	joined strings.Builder
	n      int
}

// UnmarshalJSON follows encoding/json for a []string: null leaves no
// elements, a null element is "", and any other value is a type error.
// encoding/json has checked that b is valid JSON.
func (t *textList) UnmarshalJSON(b []byte) error {
	t.joined.Reset()
	t.n = 0
	if b[0] == 'n' {
		return nil
	}
	typeErr := func(what string) error {
		return &json.UnmarshalTypeError{Value: what, Type: reflect.TypeFor[[]string]()}
	}
	if b[0] != '[' {
		return typeErr("non-array value")
	}
	// Enough unless invalid UTF-8 (a byte of it becomes U+FFFD) fills it.
	t.joined.Grow(len(b))
	i := skipSpace(b, 1)
	if b[i] == ']' {
		return nil
	}
	for {
		if t.n > 0 {
			t.joined.WriteString("; ")
		}
		t.n++
		switch b[i] {
		case 'n':
			i += len("null")
		case '"':
			end := stringEnd(b, i)
			unquote(&t.joined, b[i+1:end-1])
			i = end
		default:
			return typeErr("non-string element")
		}
		i = skipSpace(b, i)
		if b[i] == ']' {
			return nil
		}
		i = skipSpace(b, i+1) // the comma
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset just after the valid JSON string literal
// that starts at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// unquote writes the text of a valid JSON string literal's content s
// (without its quotes) to dst, as encoding/json decodes it: an invalid
// UTF-8 byte or lone surrogate becomes U+FFFD.
func unquote(dst *strings.Builder, s []byte) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				dst.WriteByte('\b')
			case 'f':
				dst.WriteByte('\f')
			case 'n':
				dst.WriteByte('\n')
			case 'r':
				dst.WriteByte('\r')
			case 't':
				dst.WriteByte('\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(s[i+2:])); dec != utf8.RuneError {
							dst.WriteRune(dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst.WriteRune(r)
				continue
			default: // '"', '\\', '/'
				dst.WriteByte(e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst.WriteRune(utf8.RuneError)
			} else {
				dst.Write(s[i : i+n])
			}
			i += n
		}
	}
}

// hex4 reads the four hex digits that open s.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default: // 'A'-'F'; encoding/json has checked the digits
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// parseTailRecord decodes what Tail needs of one line; like ParseRecord, it
// takes any JSON object.
func parseTailRecord(line []byte) (*tailRecord, error) {
	var rec tailRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, fmt.Errorf("parse audit record: %w", err)
	}
	return &rec, nil
}

// Tail reads audit records from r and writes those matching f to w, one per
// line, in a compact human form:
//
//	2026-11-26T13:45:00Z  deny   alice/claude  POST https://ec2.us-east-1.amazonaws.com/  ec2:TerminateInstances  — countersign: denied by …
//
// With wait nil, Tail stops at the end of r. Otherwise, at the end of r it
// calls wait and then reads on, so records appended later are printed too
// (tail -f), until wait returns an error; it returns nil when that happens
// because ctx is done. An unfinished last line is held back until its
// newline arrives. Lines that are not records are shown as such; Tail does
// not check the chain (see Verify), and reads only the members it prints,
// so a line costs it about twice its size in memory whatever it holds.
// Text from records is printed with control characters escaped, so a
// record cannot drive the terminal.
//
// The writer cuts the log back at times (a failed fsync discards the
// records it did not make durable; a journal's replay and `audit repair`
// rewrite its end), and writes new records in their place. When r is a
// file (an *os.File: it has ReadAt, Seek and Stat), Tail checks after each
// wait that the file still holds the last bytes it read; if not, it says
// so in a line that starts with "!!", names the last line it showed that
// the log still holds, and reads on from there. It checks too when a
// record it reads does not chain to the last record it read (its prev is
// not that record's hash): that is how a cut-back made between two of its
// reads, and the records written in place, show.
func Tail(ctx context.Context, r io.Reader, w io.Writer, f Filter, wait func(context.Context) error) error {
	lr := newLineReader(r, maxLineBytes)
	bw := bufio.NewWriter(w)
	lineNo := 0
	var fw *follower
	if file, ok := r.(followFile); ok && wait != nil {
		start, err := file.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("tail audit log: %w", err)
		}
		fw = &follower{f: file, start: start, off: start, rec: -1}
	}
	for {
		if err := ctx.Err(); err != nil {
			return flush(bw, nil)
		}
		line, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			if err := flush(bw, nil); err != nil {
				return err
			}
			if wait == nil {
				return nil
			}
			if err := wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("tail audit log: %w", err)
			}
			if fw == nil {
				continue
			}
			cut, err := fw.check(lr)
			if err != nil {
				return fmt.Errorf("tail audit log: %w", err)
			}
			if cut {
				if err := fw.resume(bw, lr, &lineNo); err != nil {
					return flush(bw, fmt.Errorf("tail audit log: %w", err))
				}
			}
			continue
		case errors.Is(err, errLineTooLong):
			return flush(bw, fmt.Errorf("tail audit log: line %d is longer than %d bytes", lineNo+1, maxLineBytes))
		case err != nil:
			return flush(bw, fmt.Errorf("tail audit log: %w", err))
		}
		if fw != nil && !fw.follows(line) {
			// The log may have been cut back between two reads, and
			// this line read at the old offset from the records
			// written in place of the ones cut.
			cut, err := fw.check(lr)
			if err != nil {
				return flush(bw, fmt.Errorf("tail audit log: %w", err))
			}
			if cut {
				if err := fw.resume(bw, lr, &lineNo); err != nil {
					return flush(bw, fmt.Errorf("tail audit log: %w", err))
				}
				continue
			}
		}
		lineNo++
		if fw != nil {
			fw.read(line, lineNo)
		}
		rec, err := parseTailRecord(line)
		if err != nil {
			if _, err := fmt.Fprintf(bw, "!! line %d is not an audit record\n", lineNo); err != nil {
				return fmt.Errorf("tail audit log: %w", err)
			}
			continue
		}
		if !f.matchTail(rec) {
			continue
		}
		writeRecord(bw, rec)
		if err := bw.WriteByte('\n'); err != nil { // bufio's errors stick: this reports any
			return fmt.Errorf("tail audit log: %w", err)
		}
	}
}

// followFile is what Tail needs of r to notice the log cut back under it.
type followFile interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	Stat() (fs.FileInfo, error)
}

// follower keeps, for tail -f, where the lines Tail read end and the last
// bytes of each (a record's hash), so that it can tell which of them the
// log still holds after a cut-back and new records written in their place.
//
// Only a record's mark tells its line apart from any other: the last bytes
// of a line that is not a record (or of the part of a record that Tail
// read from the middle, at an offset that a cut-back moved) may be found
// at the same place in new records. So the line Tail reads on after is
// always a record's, and a line that is not one counts as cut if the
// record before it is.
type follower struct {
	f     followFile
	start int64 // where Tail began reading
	off   int64 // the end of the last complete line read
	marks []mark
	rec   int // the index in marks of the last record's, or -1
}

type mark struct {
	end    int64 // just after the line's newline
	line   int
	n      int
	tail   [markBytes]byte // the line's last bytes, its newline included
	record bool            // tail is a record's "hash" member and newline
}

const (
	// markBytes holds a record's "hash" member and newline: no two
	// records share them.
	markBytes = hashSuffixLen + 1
	// maxMarks bounds the lines remembered. The writer cuts back the
	// records it has not synced yet, or what its journal covers; a cut
	// further back (a repair) makes Tail read the log again from the
	// start.
	maxMarks = 8192
)

// hash returns the hash member of a record's mark.
func (m *mark) hash() []byte { return m.tail[len(hashKey) : len(hashKey)+hashHex] }

// endsAsRecord reports whether line (without its newline) ends as a
// record does, with its prev and hash members; Tail, not checking the
// chain, looks no further.
func endsAsRecord(line []byte) bool {
	n := len(line)
	if n < prevSuffixLen+hashSuffixLen {
		return false
	}
	p := line[n-hashSuffixLen-prevSuffixLen:]
	return string(p[:len(prevKey)]) == prevKey && p[prevSuffixLen-1] == '"' &&
		string(line[n-hashSuffixLen:n-hashSuffixLen+len(hashKey)]) == hashKey && string(line[n-2:]) == `"}`
}

// linePrev returns the prev member of a line that ends as a record does.
func linePrev(line []byte) []byte {
	p := line[len(line)-hashSuffixLen-prevSuffixLen:]
	return p[len(prevKey) : len(prevKey)+hashHex]
}

// read notes a complete line (without its newline) that Tail read.
func (fw *follower) read(line []byte, lineNo int) {
	fw.off += int64(len(line)) + 1
	m := mark{end: fw.off, line: lineNo, record: endsAsRecord(line)}
	m.n = copy(m.tail[:], line[max(0, len(line)-(markBytes-1)):])
	m.tail[m.n] = '\n'
	m.n++
	if len(fw.marks) == maxMarks {
		fw.marks = fw.marks[:copy(fw.marks, fw.marks[maxMarks/2:])]
		fw.rec = max(-1, fw.rec-maxMarks/2)
	}
	if m.record {
		fw.rec = len(fw.marks)
	}
	fw.marks = append(fw.marks, m)
}

// follows reports whether line (a complete line without its newline)
// chains to the last record read: it does unless both are records and
// line's prev is not that record's hash.
//
// A line that does not is a break in the chain, which Verify reports, or
// a sign that the log was cut back and new records written in place
// between two of Tail's reads: Tail read on at its old offset, inside the
// new records, and the line (or the part of it that Tail read) is one of
// them. check tells them apart.
func (fw *follower) follows(line []byte) bool {
	if fw.rec < 0 || !endsAsRecord(line) {
		return true
	}
	return bytes.Equal(linePrev(line), fw.marks[fw.rec].hash())
}

// check reports whether the file no longer holds the last bytes Tail read:
// those of an unfinished line, or else the last line's, or the last
// record's. If it holds the last record, it holds every record before it
// too: each record's hash covers its prev.
func (fw *follower) check(lr *lineReader) (bool, error) {
	fi, err := fw.f.Stat()
	if err != nil {
		return false, err
	}
	if fw.off+int64(lr.pending()) > fi.Size() {
		return true, nil
	}
	if lr.pending() > 0 {
		var want []byte
		for i := len(lr.parts) - 1; i >= 0 && len(want) < markBytes; i-- {
			p := lr.parts[i]
			want = append(bytes.Clone(p[max(0, len(p)-(markBytes-len(want))):]), want...)
		}
		ok, err := fw.holds(fw.off+int64(lr.pending()), want)
		if err != nil || !ok {
			return !ok, err
		}
	}
	if len(fw.marks) == 0 {
		return false, nil
	}
	for _, i := range []int{len(fw.marks) - 1, fw.rec} {
		if i < 0 {
			continue
		}
		m := &fw.marks[i]
		ok, err := fw.holds(m.end, m.tail[:m.n])
		if err != nil || !ok {
			return !ok, err
		}
	}
	return false, nil
}

// holds reports whether the file holds want just before offset end.
func (fw *follower) holds(end int64, want []byte) (bool, error) {
	got := make([]byte, len(want))
	n, err := fw.f.ReadAt(got, end-int64(len(want)))
	if n == len(got) {
		return bytes.Equal(got, want), nil
	}
	if errors.Is(err, io.EOF) {
		return false, nil // the file shrank meanwhile
	}
	return false, err
}

// resume finds the last record Tail read that the file still holds, says
// what was cut, and makes Tail read on after that record.
func (fw *follower) resume(bw *bufio.Writer, lr *lineReader, lineNo *int) error {
	fi, err := fw.f.Stat()
	if err != nil {
		return err
	}
	keep := -1
	for i := len(fw.marks) - 1; i >= 0; i-- {
		m := &fw.marks[i]
		if !m.record || m.end > fi.Size() {
			continue
		}
		ok, err := fw.holds(m.end, m.tail[:m.n])
		if err != nil {
			return err
		}
		if ok {
			keep = i
			break
		}
	}
	at, line := fw.start, 0
	if keep >= 0 {
		at, line = fw.marks[keep].end, fw.marks[keep].line
	}
	if keep < 0 && len(fw.marks) > 0 && fw.marks[0].line > 1 {
		_, _ = fmt.Fprintf(bw, "!! the log was cut back before line %d, further back than tail remembers; reading it again from the start\n", fw.marks[0].line)
	} else {
		_, _ = fmt.Fprintf(bw, "!! the log was cut back at byte %d", at)
		if *lineNo > line {
			_, _ = fmt.Fprintf(bw, "; records shown after line %d were discarded", line)
		}
		_ = bw.WriteByte('\n')
	}
	fw.marks = fw.marks[:keep+1]
	fw.rec = keep
	if _, err := fw.f.Seek(at, io.SeekStart); err != nil {
		return err
	}
	fw.off = at
	*lineNo = line
	lr.br.Reset(fw.f)
	lr.drop()
	return bw.Flush()
}

func flush(bw *bufio.Writer, err error) error {
	if ferr := bw.Flush(); ferr != nil && err == nil {
		return fmt.Errorf("tail audit log: %w", ferr)
	}
	return err
}

// Poll returns a wait function for Tail that waits for interval, or until
// ctx is done, between reads at the end of the file.
func Poll(interval time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(interval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

// textWriter is what writeRecord writes to: a *bufio.Writer, whose
// errors stick until Flush, or a *strings.Builder.
type textWriter interface {
	WriteString(s string) (int, error)
	WriteByte(c byte) error
	WriteRune(r rune) (int, error)
}

// writeRecord writes one record on one line, without its newline: time,
// decision (or record type), session, request, action, approval and
// upstream details, then the reasons or other text after a dash. It writes
// long text piece by piece rather than joining it first, so a record costs
// little more memory than its line.
func writeRecord(b textWriter, r *tailRecord) {
	ts := "-"
	if !r.Time.IsZero() {
		ts = r.Time.UTC().Format(time.RFC3339)
	}
	verb := r.Decision
	if verb == "" {
		verb = r.Type
	}
	_, _ = b.WriteString(ts)
	_, _ = b.WriteString("  ")
	// Padded to 6 runes once escaped, as fmt's %-6s pads. Escaping never
	// shortens text, so only a verb of under 6 runes is padded.
	if utf8.RuneCountInString(verb) < 6 {
		cv := clean(verb)
		_, _ = b.WriteString(cv)
		for n := utf8.RuneCountInString(cv); n < 6; n++ {
			_ = b.WriteByte(' ')
		}
	} else {
		writeClean(b, verb)
	}
	sep := " " // the verb column is padded already
	col := func(parts ...string) {
		if len(parts) == 0 || (len(parts) == 1 && parts[0] == "") {
			return
		}
		_, _ = b.WriteString(sep)
		for _, p := range parts {
			writeClean(b, p)
		}
		sep = "  "
	}
	if s := r.Session; s != nil {
		col(firstNonEmpty(s.Name, s.ID))
	}
	if q := r.Request; q != nil {
		switch {
		case q.Tunnel:
			col("CONNECT " + q.Host + ":" + strconv.Itoa(q.Port))
		case q.URL != "":
			col(methodURL(q.Method, q.URL)...)
		}
	}
	col(actionLabel(r.Action))
	col(r.ApprovalID)
	if r.Approver != "" || r.Via != "" {
		by := "by " + firstNonEmpty(r.Approver, "?")
		if r.Via != "" {
			by += " via " + r.Via
		}
		col(by)
	}
	if r.UpstreamStatus != 0 {
		col(fmt.Sprintf("→ %d in %dms", r.UpstreamStatus, r.UpstreamMillis))
	}

	// The reasons, detail and error, joined with "; ". Escaping each
	// piece is escaping the whole: the separator is ASCII, so it never
	// completes or splits a multi-byte sequence.
	if r.Reasons.n == 0 && r.Detail == "" && r.Error == "" {
		return
	}
	_, _ = b.WriteString("  — ")
	sep = ""
	text := func(parts ...string) {
		_, _ = b.WriteString(sep)
		for _, p := range parts {
			writeClean(b, p)
		}
		sep = "; "
	}
	if r.Reasons.n > 0 {
		text(r.Reasons.joined.String())
	}
	if r.Detail != "" {
		text(r.Detail)
	}
	if r.Error != "" {
		text("error: ", r.Error)
	}
}

// methodURL returns the pieces of strings.TrimSpace(method + " " + url)
// without building that string: the URL may be most of a long line.
func methodURL(method, url string) []string {
	m := strings.TrimLeftFunc(method, unicode.IsSpace)
	u := strings.TrimRightFunc(url, unicode.IsSpace)
	switch {
	case m == "":
		return []string{strings.TrimLeftFunc(u, unicode.IsSpace)}
	case u == "":
		return []string{strings.TrimRightFunc(m, unicode.IsSpace)}
	default:
		return []string{m, " ", u}
	}
}

// actionLabel names an action as "service:operation" (ec2:TerminateInstances),
// falling back to the operation or the provider.
func actionLabel(a *tailAction) string {
	if a == nil {
		return ""
	}
	svc, op := string(a.Service), string(a.Operation)
	switch {
	case svc != "" && op != "":
		return svc + ":" + op
	case op != "":
		return op
	default:
		return string(a.Provider)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// clean escapes control characters, format characters (bidirectional
// overrides, zero-width), the line and paragraph separators U+2028 and
// U+2029 and invalid UTF-8 so that agent-supplied text (URLs, reasons)
// cannot move the cursor, rewrite the terminal, reorder what is read or
// break a record's line where a viewer (a browser, some terminals and
// pagers) honours those separators. Tail writes text through writeClean.
func clean(s string) string {
	var b strings.Builder
	writeClean(&b, s)
	return b.String()
}

// writeClean writes s to b escaped as clean escapes it.
func writeClean(b textWriter, s string) {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if r == utf8.RuneError || mustEscape(r) {
				break
			}
			j += n
		}
		_, _ = b.WriteString(s[i:j])
		if j == len(s) {
			return
		}
		r, n := utf8.DecodeRuneInString(s[j:])
		switch {
		case r == utf8.RuneError && n <= 1:
			_, _ = b.WriteString(`\x`)
			_ = b.WriteByte(hexDigits[s[j]>>4])
			_ = b.WriteByte(hexDigits[s[j]&0xf])
		case mustEscape(r):
			writeEscape(b, r)
		default: // U+FFFD itself
			_, _ = b.WriteRune(r)
		}
		i = j + n
	}
}

// mustEscape reports whether writeClean escapes r: a control or format
// character, or a line or paragraph separator (categories Zl and Zp, one
// character each).
func mustEscape(r rune) bool {
	if r < utf8.RuneSelf {
		return r < ' ' || r == 0x7f
	}
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

const hexDigits = "0123456789abcdef"

// writeEscape writes r as strconv.QuoteRuneToASCII spells it inside the
// quotes, for the characters writeClean escapes (see mustEscape),
// without a string per character.
func writeEscape(b textWriter, r rune) {
	if i := strings.IndexRune("\a\b\f\n\r\t\v", r); i >= 0 {
		_ = b.WriteByte('\\')
		_ = b.WriteByte("abfnrtv"[i])
		return
	}
	var prefix string
	var digits int
	switch {
	case r < utf8.RuneSelf:
		prefix, digits = `\x`, 2
	case r < 0x10000:
		prefix, digits = `\u`, 4
	default:
		prefix, digits = `\U`, 8
	}
	_, _ = b.WriteString(prefix)
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		_ = b.WriteByte(hexDigits[r>>shift&0xf])
	}
}
