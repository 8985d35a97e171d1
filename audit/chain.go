// Package audit writes countersign's append-only, hash-chained audit log and
// reads it back: [Log] appends records, [Verify] checks the chain and names
// the first bad line, and [Tail] prints records for people.
//
// # Format
//
// The log is JSON Lines written with zap's JSON encoder, one record per line.
// Every record has, in this order: seq (1, 2, 3, … with no gaps), ts (RFC 3339
// UTC with nanoseconds), event (the record type), the event's own members (see
// [Event]; snake_case keys, map keys sorted so equal events encode to equal
// bytes), prev and hash:
//
//	{"seq":1,"ts":"2026-11-26T13:45:00Z","event":"decision","request_id":"r-1",…,"prev":"000…000","hash":"9f2c…"}
//
// # Hash chain
//
// A line is written as
//
//	<body>,"hash":"<64 lowercase hex digits>"}\n
//
// where <body> is the record's JSON text without its closing brace, and
//
//	hash = hex(SHA-256(<body> + "}"))
//
// that is, the hash of the record exactly as written, minus its hash member.
// The body always ends with the member ,"prev":"<64 hex digits>" holding the
// previous record's hash (64 zeros for the first record). Checking a line
// therefore needs no JSON re-serialisation: drop the last 76 bytes
// (,"hash":"…"} and the newline), append "}", hash, compare. In Python:
//
//	prev, seq = "0" * 64, 0
//	for n, line in enumerate(open(path, "rb"), 1):
//	    body, h = line[:-76], line[-67:-3].decode()
//	    rec = json.loads(line)
//	    assert line.endswith(b'"}\n') and hashlib.sha256(body + b"}").hexdigest() == h, n
//	    assert rec["seq"] == seq + 1 and rec["prev"] == prev and rec["hash"] == h, n
//	    prev, seq = h, seq + 1
//
// An edited byte breaks its line's hash; a deleted, inserted or reordered line
// breaks seq and prev. The chain cannot show that records were cut off the
// end of the log, nor a log rewritten from scratch with fresh hashes: keep
// the last seq and hash that [Verify] reports somewhere the agent cannot
// write, and pass them back as an [Anchor].
//
// # Crashes
//
// A crash can leave a torn last line. [Open] truncates it away and writes a
// "recovered" record, chained to the last good record, whose detail says how
// many bytes were discarded and whose fields carry their SHA-256.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	// maxLineBytes caps one record. Verify and Tail refuse longer lines, and
	// Log refuses to write them, so a log Log wrote always verifies.
	maxLineBytes = 64 << 20

	seqPrefix = `{"seq":`
	prevKey   = `,"prev":"`
	hashKey   = `,"hash":"`
	hashHex   = 2 * sha256.Size
	// hashSuffixLen is the length of `,"hash":"<hex>"}`.
	hashSuffixLen = len(hashKey) + hashHex + len(`"}`)
	// prevSuffixLen is the length of `,"prev":"<hex>"`, the end of every body.
	prevSuffixLen = len(prevKey) + hashHex + len(`"`)

	zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
)

// ChainError reports the first line of an audit log that breaks the chain.
type ChainError struct {
	Line   int // 1-based
	Reason string
}

// Error returns a message such as "line 7: hash mismatch (record edited)".
func (e *ChainError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// VerifyResult summarises a verified log, or the part of it that verified
// before the first bad line.
type VerifyResult struct {
	Records  int
	LastSeq  uint64
	LastHash string
	// Partial reports a last line still being written (VerifyWritten),
	// left unchecked.
	Partial bool
}

// link is the chain position one record carries.
type link struct {
	seq  uint64
	prev string
	hash string
}

// parseLine checks one line (without its newline) against the canonical
// form and against its own hash. On failure it returns the reason.
func parseLine(line []byte) (link, string) {
	n := len(line)
	if n == 0 {
		return link{}, "empty line"
	}
	if n < len(seqPrefix)+prevSuffixLen+hashSuffixLen ||
		!bytes.HasPrefix(line, []byte(seqPrefix)) ||
		string(line[n-hashSuffixLen:n-hashSuffixLen+len(hashKey)]) != hashKey ||
		string(line[n-2:]) != `"}` ||
		!isLowerHex(line[n-2-hashHex:n-2]) {
		if !json.Valid(line) {
			return link{}, "not valid JSON"
		}
		return link{}, "not an audit record (no seq or hash member)"
	}
	body := line[:n-hashSuffixLen]
	want := string(line[n-2-hashHex : n-2])
	if got := bodyHash(body); got != want {
		return link{}, "hash mismatch (record edited)"
	}
	if !json.Valid(line) {
		return link{}, "not valid JSON"
	}
	m := len(body)
	if m < len(seqPrefix)+prevSuffixLen ||
		string(body[m-prevSuffixLen:m-prevSuffixLen+len(prevKey)]) != prevKey ||
		body[m-1] != '"' ||
		!isLowerHex(body[m-1-hashHex:m-1]) {
		return link{}, "not an audit record (prev is not the last member)"
	}
	seq, ok := parseSeq(body[len(seqPrefix):])
	if !ok {
		return link{}, "not an audit record (seq is not a positive integer)"
	}
	return link{seq: seq, prev: string(body[m-1-hashHex : m-1]), hash: want}, ""
}

// bodyHash returns hex(SHA-256(body + "}")).
func bodyHash(body []byte) string {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte{'}'})
	return hex.EncodeToString(h.Sum(nil))
}

// parseSeq reads the decimal digits that open b up to the following comma.
func parseSeq(b []byte) (uint64, bool) {
	i := bytes.IndexByte(b, ',')
	if i <= 0 || i > 20 || b[0] == '0' {
		return 0, false
	}
	for _, c := range b[:i] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(string(b[:i]), 10, 64)
	return seq, err == nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Anchor is a record's place in the chain, as an earlier [Verify] reported
// it and someone kept where the agent cannot write. A log checked against
// it must still hold that record, unchanged: this is what catches records
// cut off the end of the log or a log rewritten with fresh hashes.
type Anchor struct {
	Seq  uint64
	Hash string
}

// String formats a as SEQ:HASH, the form [ParseAnchor] reads.
func (a Anchor) String() string { return fmt.Sprintf("%d:%s", a.Seq, a.Hash) }

// ParseAnchor reads SEQ:HASH, as `audit verify` prints it.
func ParseAnchor(s string) (Anchor, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 || len(hash) != 64 || !isLowerHex([]byte(hash)) {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH, a record number and its 64-digit lower-case hex hash, as audit verify prints them", s)
	}
	return Anchor{Seq: n, Hash: hash}, nil
}

// Verify reads a whole audit log and checks every line's hash, that seq
// counts up from 1 without gaps, and that every prev is the previous line's
// hash; and that the log still holds each anchor's record with its hash. A
// chain problem is returned as a *ChainError naming the first bad line;
// other errors come from reading r. The result covers the records that
// verified.
func Verify(r io.Reader, anchors ...Anchor) (VerifyResult, error) {
	return verify(r, maxLineBytes, anchors, false)
}

// VerifyWritten is Verify for a log a countersign process is writing now
// (see Writing): a last line without its newline that can be the start of
// the next record, being appended, is not a cut, and ends the records
// checked; res.Partial reports one. Any other unterminated last line is a
// *ChainError, as Verify reports it.
func VerifyWritten(r io.Reader, anchors ...Anchor) (VerifyResult, error) {
	return verify(r, maxLineBytes, anchors, true)
}

func verify(r io.Reader, limit int, anchors []Anchor, live bool) (VerifyResult, error) {
	var res VerifyResult
	lr := newLineReader(r, limit)
	prev := zeroHash
	for lineNo := 1; ; lineNo++ {
		line, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			if lr.pending() > 0 && live {
				if reason := recordInProgress(lr.parts, res.LastSeq+1); reason != "" {
					return res, &ChainError{Line: lineNo, Reason: reason}
				}
				res.Partial = true
			} else if lr.pending() > 0 {
				return res, &ChainError{Line: lineNo, Reason: "truncated record (no final newline)"}
			}
			for _, a := range anchors {
				if a.Seq > res.LastSeq {
					return res, &ChainError{Line: lineNo, Reason: fmt.Sprintf("the log ends at seq %d, but record %d was expected (records cut off the end, or the log was replaced)", res.LastSeq, a.Seq)}
				}
			}
			return res, nil
		case errors.Is(err, errLineTooLong):
			return res, &ChainError{Line: lineNo, Reason: fmt.Sprintf("line longer than %d bytes", limit)}
		case err != nil:
			return res, fmt.Errorf("read audit log: %w", err)
		}
		l, reason := parseLine(line)
		switch {
		case reason != "":
		case l.seq != res.LastSeq+1:
			reason = fmt.Sprintf("seq %d where %d was expected (record missing, inserted or reordered)", l.seq, res.LastSeq+1)
		case l.prev != prev && lineNo == 1:
			reason = "prev of the first record is not 64 zeros"
		case l.prev != prev:
			reason = fmt.Sprintf("prev is not the hash of line %d (record missing, inserted or reordered)", lineNo-1)
		}
		for _, a := range anchors {
			if reason == "" && a.Seq == l.seq && a.Hash != l.hash {
				reason = fmt.Sprintf("record %d has hash %s, not the expected %s (the log was rewritten)", l.seq, l.hash, a.Hash)
			}
		}
		if reason != "" {
			return res, &ChainError{Line: lineNo, Reason: reason}
		}
		prev = l.hash
		res.Records++
		res.LastSeq = l.seq
		res.LastHash = l.hash
	}
}

// recordInProgress checks an unterminated last line of a log being
// written, in pieces: it passes only as what a reader can see of the next
// record's write, the start of {"seq":<next>,… (or zeros, where a file
// system extended the file before the data landed). Being written is
// inferred from a lock that anyone who can open the log can take, so it
// must not excuse anything else at the end of the log. On failure it
// returns the reason.
func recordInProgress(parts [][]byte, next uint64) string {
	zeros := true
	for _, p := range parts {
		zeros = zeros && len(bytes.Trim(p, "\x00")) == 0
	}
	if zeros {
		return ""
	}
	var head []byte // enough to hold {"seq":<20 digits>,
	for _, p := range parts {
		head = append(head, p[:min(len(p), len(seqPrefix)+21-len(head))]...)
	}
	want := strconv.AppendUint([]byte(seqPrefix), next, 10)
	want = append(want, ',')
	if !bytes.HasPrefix(want, head[:min(len(head), len(want))]) {
		return fmt.Sprintf("the log ends with a line that is not record %d being written, and no newline", next)
	}
	return ""
}

var errLineTooLong = errors.New("line too long")

// lineReader reads newline-terminated lines of bounded length. At the end of
// the input it keeps the bytes of an unfinished line, and a later call
// continues that line if the input grows (tail -f).
//
// A line longer than the read buffer is gathered in pieces and joined once
// its end is known: grown by appending, the line was copied over and over,
// five times its size in all (four when doubled).
type lineReader struct {
	br    *bufio.Reader
	buf   []byte   // the last long line; reused
	parts [][]byte // an unfinished long line, copied out of br
	n     int      // bytes in parts
	limit int
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

// next returns the next complete line without its newline; the slice is
// valid until the next call. It returns io.EOF at the end of the input and
// errLineTooLong for a line longer than the limit.
func (r *lineReader) next() ([]byte, error) {
	for {
		frag, err := r.br.ReadSlice('\n')
		n := r.n + len(frag)
		if err == nil {
			n-- // the newline
		}
		if n > r.limit {
			r.drop()
			return nil, errLineTooLong
		}
		switch {
		case err == nil && r.n == 0:
			return frag[:len(frag)-1], nil
		case err == nil:
			if cap(r.buf) < n+1 {
				r.buf = make([]byte, 0, n+1)
			}
			r.buf = r.buf[:0]
			for _, p := range r.parts {
				r.buf = append(r.buf, p...)
			}
			r.buf = append(r.buf, frag...)
			r.drop()
			return r.buf[:n], nil
		}
		if len(frag) > 0 {
			r.parts = append(r.parts, bytes.Clone(frag))
			r.n += len(frag)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// drop forgets an unfinished line.
func (r *lineReader) drop() {
	clear(r.parts)
	r.parts, r.n = r.parts[:0], 0
}

// pending returns the number of buffered bytes of an unfinished line.
func (r *lineReader) pending() int { return r.n }
