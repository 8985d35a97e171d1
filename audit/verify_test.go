package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// sampleLog returns the lines of a freshly written log of n records.
func sampleLog(t testing.TB, n int) [][]byte {
	t.Helper()
	enc := newEncoder()
	clock := testClock()
	prev := zeroHash
	var lines [][]byte
	for i := 1; i <= n; i++ {
		line, hash, err := encodeLine(enc, nil, sampleEvent(i), uint64(i), prev, clock())
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		prev = hash
	}
	return lines
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 5
	join := func(lines ...[]byte) []byte { return bytes.Join(lines, nil) }
	// edit replaces byte i with c, or with '0' if it already is c.
	edit := func(line []byte, i int, c byte) []byte {
		l := bytes.Clone(line)
		if l[i] == c {
			c = '0'
		}
		l[i] = c
		return l
	}
	lines := sampleLog(t, n)
	l1, l2, l3, l4, l5 := lines[0], lines[1], lines[2], lines[3], lines[4]
	recovered, _, err := encodeLine(newEncoder(), nil, &Event{Type: "recovered", Detail: "discarded 3 torn bytes"}, 6,
		string(l5[len(l5)-67:len(l5)-3]), testStart)
	if err != nil {
		t.Fatal(err)
	}
	seqOff := bytes.Index(l3, []byte(`"seq":3`)) + len(`"seq":`)
	reqOff := bytes.Index(l3, []byte(`"r-3"`)) + 1
	prevOff := bytes.Index(l3, []byte(`"prev":"`)) + len(`"prev":"`)

	tests := []struct {
		name  string
		give  []byte
		want  *ChainError
		wantN int // records that verified
	}{
		{name: "intact", give: join(lines...), wantN: n},
		{name: "empty", give: nil},
		{name: "recovered record", give: join(l1, l2, l3, l4, l5, recovered), wantN: n + 1},
		{name: "edited request id", give: join(l1, l2, edit(l3, reqOff, 'X'), l4, l5),
			want: &ChainError{Line: 3, Reason: "hash mismatch (record edited)"}, wantN: 2},
		{name: "edited seq", give: join(l1, l2, edit(l3, seqOff, '4'), l4, l5),
			want: &ChainError{Line: 3, Reason: "hash mismatch (record edited)"}, wantN: 2},
		{name: "edited prev", give: join(l1, l2, edit(l3, prevOff, 'f'), l4, l5),
			want: &ChainError{Line: 3, Reason: "hash mismatch (record edited)"}, wantN: 2},
		{name: "edited hash", give: join(l1, l2, edit(l3, len(l3)-10, 'f'), l4, l5),
			want: &ChainError{Line: 3, Reason: "hash mismatch (record edited)"}, wantN: 2},
		{name: "upper-case hash", give: join(l1, l2, edit(l3, len(l3)-10, 'F'), l4, l5),
			want: &ChainError{Line: 3, Reason: "not an audit record (no seq or hash member)"}, wantN: 2},
		{name: "deleted first line", give: join(l2, l3, l4, l5),
			want: &ChainError{Line: 1, Reason: "seq 2 where 1 was expected (record missing, inserted or reordered)"}},
		{name: "deleted line 3", give: join(l1, l2, l4, l5),
			want: &ChainError{Line: 3, Reason: "seq 4 where 3 was expected (record missing, inserted or reordered)"}, wantN: 2},
		{name: "swapped lines 2 and 3", give: join(l1, l3, l2, l4, l5),
			want: &ChainError{Line: 2, Reason: "seq 3 where 2 was expected (record missing, inserted or reordered)"}, wantN: 1},
		{name: "duplicated line", give: join(l1, l2, l2, l3),
			want: &ChainError{Line: 3, Reason: "seq 2 where 3 was expected (record missing, inserted or reordered)"}, wantN: 2},
		{name: "record from another log", give: join(l1, l2, replaceSeq(t, l5, 3), l4),
			want: &ChainError{Line: 3, Reason: "prev is not the hash of line 2 (record missing, inserted or reordered)"}, wantN: 2},
		{name: "first record with non-zero prev", give: replaceSeq(t, l2, 1),
			want: &ChainError{Line: 1, Reason: "prev of the first record is not 64 zeros"}},
		{name: "truncated last line", give: join(l1, l2, l3, l4, l5[:len(l5)-20]),
			want: &ChainError{Line: 5, Reason: "truncated record (no final newline)"}, wantN: 4},
		{name: "missing final newline", give: join(l1, l2, l3, l4, l5[:len(l5)-1]),
			want: &ChainError{Line: 5, Reason: "truncated record (no final newline)"}, wantN: 4},
		{name: "garbage appended", give: join(l1, l2, l3, l4, l5, []byte("garbage\n")),
			want: &ChainError{Line: 6, Reason: "not valid JSON"}, wantN: n},
		{name: "garbage appended without newline", give: join(l1, l2, l3, l4, l5, []byte("x")),
			want: &ChainError{Line: 6, Reason: "truncated record (no final newline)"}, wantN: n},
		{name: "JSON that is not a record", give: join(l1, []byte(`{"seq":2,"event":"x"}`+"\n")),
			want: &ChainError{Line: 2, Reason: "not an audit record (no seq or hash member)"}, wantN: 1},
		{name: "empty line", give: join(l1, []byte("\n"), l2),
			want: &ChainError{Line: 2, Reason: "empty line"}, wantN: 1},
		{name: "CRLF line ending", give: join(l1, append(bytes.TrimSuffix(l2, []byte("\n")), '\r', '\n')),
			want: &ChainError{Line: 2, Reason: "not an audit record (no seq or hash member)"}, wantN: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Verify(bytes.NewReader(tt.give))
			var got *ChainError
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("Verify() = %v, want a *ChainError", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() error mismatch (-want +got):\n%s", diff)
			}
			if res.Records != tt.wantN {
				t.Errorf("Verify().Records = %d, want %d", res.Records, tt.wantN)
			}
		})
	}
}

// replaceSeq re-signs line with another seq, as a forger who can hash but
// does not rewrite the rest of the chain would.
func replaceSeq(t *testing.T, line []byte, seq int) []byte {
	t.Helper()
	body := line[:len(line)-hashSuffixLen-1]
	i := bytes.IndexByte(body, ',')
	nb := append([]byte(seqPrefix+strconv.Itoa(seq)), body[i:]...)
	return append(nb, []byte(`,"hash":"`+bodyHash(nb)+`"}`+"\n")...)
}

func TestVerifyEveryByteEdit(t *testing.T) {
	// Flipping any bit of any byte of line 3 is reported at line 3.
	lines := sampleLog(t, 5)
	for i := range lines[2] {
		for _, bit := range []byte{0x01, 0x20, 0x80} {
			edited := bytes.Clone(lines[2])
			edited[i] ^= bit
			log := bytes.Join([][]byte{lines[0], lines[1], edited, lines[3], lines[4]}, nil)
			_, err := Verify(bytes.NewReader(log))
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Line != 3 {
				t.Fatalf("byte %d ^ %#x: Verify() = %v, want an error at line 3", i, bit, err)
			}
		}
	}
}

func TestVerifyLongLine(t *testing.T) {
	lines := sampleLog(t, 2)
	limit := len(lines[0]) + 10
	long := append(bytes.Repeat([]byte("x"), limit+1), '\n')
	tests := []struct {
		name  string
		give  []byte
		limit int
		want  *ChainError
	}{
		{name: "fits", give: bytes.Join(lines, nil), limit: max(len(lines[0]), len(lines[1])) - 1},
		{name: "long line", give: bytes.Join([][]byte{lines[0], long}, nil), limit: limit,
			want: &ChainError{Line: 2, Reason: fmt.Sprintf("line longer than %d bytes", limit)}},
		{name: "long line without newline", give: bytes.Join([][]byte{lines[0], long[:limit+1]}, nil), limit: limit,
			want: &ChainError{Line: 2, Reason: fmt.Sprintf("line longer than %d bytes", limit)}},
		{name: "line at the limit", give: bytes.Join([][]byte{lines[0], long[1:]}, nil), limit: limit,
			want: &ChainError{Line: 2, Reason: "not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(iotest.HalfReader(bytes.NewReader(tt.give)), tt.limit, nil, false)
			var got *ChainError
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("verify() = %v, want a *ChainError", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verify() error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Verify(io.MultiReader(bytes.NewReader(sampleLog(t, 1)[0]), iotest.ErrReader(boom)))
	var ce *ChainError
	if !errors.Is(err, boom) || errors.As(err, &ce) {
		t.Errorf("Verify() = %v, want the read error, not a *ChainError", err)
	}
}

func FuzzVerify(f *testing.F) {
	lines := sampleLog(f, 4)
	full := bytes.Join(lines, nil)
	f.Add(full)
	f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1]}, nil))
	f.Add(full[:len(full)-7])
	f.Add(append(bytes.Clone(full), "{}\n"...))
	f.Add(lines[0])
	f.Add([]byte{})
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"seq":1,"prev":"` + zeroHash + `","hash":"` + zeroHash + `"}` + "\n"))
	for i := 0; i < len(lines[1]); i += 37 {
		edited := bytes.Clone(full)
		edited[len(lines[0])+i] ^= 0x04
		f.Add(edited)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(bytes.NewReader(data))
		// Reading in tiny pieces must not change the answer.
		res2, err2 := Verify(iotest.OneByteReader(bytes.NewReader(data)))
		if res != res2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Verify differs by read size: %+v, %v vs %+v, %v", res, err, res2, err2)
		}
		nLines := bytes.Count(data, []byte("\n"))
		if err == nil {
			if res.Records != nLines || (len(data) > 0 && data[len(data)-1] != '\n') {
				t.Fatalf("Verify() = %+v, nil for %d lines", res, nLines)
			}
			if res.Records > 0 && res.LastSeq != uint64(res.Records) {
				t.Fatalf("Verify() = %+v: LastSeq != Records", res)
			}
			return
		}
		var ce *ChainError
		if !errors.As(err, &ce) {
			t.Fatalf("Verify() = %v, want a *ChainError", err)
		}
		if ce.Line != res.Records+1 || ce.Line > nLines+1 {
			t.Fatalf("Verify() = %+v, %v: bad line number for %d lines", res, err, nLines)
		}
		if !utf8.ValidString(ce.Reason) {
			t.Fatalf("reason is not UTF-8: %q", ce.Reason)
		}
	})
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("r-1", "alice/claude", "POST", "https://example.com/?q=1", "service", "ec2", "approved", int64(42))
	f.Add("", "", "", "", "", "", "", int64(0))
	f.Add("\x00\n\r\t\"\\", "\u2028\u2029", "<>&", "\x7f\u0085", "k\"ey", "v\nal", "\xff", int64(-1))
	f.Fuzz(func(t *testing.T, reqID, session, method, url, key, val, detail string, n int64) {
		for _, s := range []string{reqID, session, method, url, key, val, detail} {
			if !utf8.ValidString(s) {
				return // zap replaces invalid UTF-8, so it cannot round-trip
			}
		}
		ev := Event{
			Type:       "decision",
			RequestID:  reqID,
			Session:    &SessionRef{Name: session, Labels: map[string]string{key: val}},
			Request:    &RequestSummary{Method: method, URL: url, Headers: map[string][]string{key: {val, detail}}},
			Action:     map[string]any{key: val, "nested": map[string]any{key: []any{val, true, nil}}},
			Reasons:    []string{detail},
			Detail:     detail,
			EvalMicros: n,
		}
		line, hash, err := encodeLine(newEncoder(), nil, &ev, 1, zeroHash, testStart)
		if err != nil {
			t.Fatalf("encodeLine() = %v", err)
		}
		res, err := Verify(bytes.NewReader(line))
		if err != nil || res.Records != 1 || res.LastHash != hash {
			t.Fatalf("Verify(%s) = %+v, %v", line, res, err)
		}
		rec, err := ParseRecord(line)
		if err != nil {
			t.Fatalf("ParseRecord(%s) = %v", line, err)
		}
		want := normalize(ev)
		if diff := cmp.Diff(want, rec.Event); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s\nline: %s", diff, line)
		}
	})
}

// normalize drops what the encoder omits (empty strings) so that a decoded
// event compares equal.
func normalize(ev Event) Event {
	if ev.Session.Name == "" && len(ev.Session.Labels) == 0 {
		ev.Session = nil
	}
	if ev.Request.Method == "" && ev.Request.URL == "" && len(ev.Request.Headers) == 0 {
		ev.Request = nil
	}
	return ev
}

func TestVerifyAnchors(t *testing.T) {
	lines := sampleLog(t, 5)
	full := bytes.Join(lines, nil)
	res, err := Verify(bytes.NewReader(bytes.Join(lines[:3], nil)))
	if err != nil {
		t.Fatal(err)
	}
	kept := Anchor{Seq: res.LastSeq, Hash: res.LastHash}
	// The log rewritten from scratch, with a valid chain: record 2 says
	// something else.
	var other [][]byte
	enc, clock, prev := newEncoder(), testClock(), zeroHash
	for i := 1; i <= 5; i++ {
		ev := sampleEvent(i)
		if i == 2 {
			ev.Detail = "rewritten"
		}
		line, hash, err := encodeLine(enc, nil, ev, uint64(i), prev, clock())
		if err != nil {
			t.Fatal(err)
		}
		other, prev = append(other, line), hash
	}
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{"log grew", full, ""},
		{"log unchanged", bytes.Join(lines[:3], nil), ""},
		{"cut off the end", bytes.Join(lines[:2], nil), "line 3: the log ends at seq 2, but record 3 was expected"},
		{"empty", nil, "line 1: the log ends at seq 0, but record 3 was expected"},
		{"rewritten", bytes.Join(other, nil), "line 3: record 3 has hash " + string(other[2][len(other[2])-67:len(other[2])-3]) + ", not the expected " + kept.Hash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(tt.give), kept)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("Verify(anchor %s) = %q, want %q", kept, got, tt.want)
			}
		})
	}

	a, err := ParseAnchor(" " + kept.String() + "\n")
	if err != nil || a != kept {
		t.Errorf("ParseAnchor(%q) = %v, %v; want %v", kept.String(), a, err, kept)
	}
	for _, bad := range []string{"", "3", "3:", ":" + kept.Hash, "0:" + kept.Hash, "-1:" + kept.Hash, "3:" + strings.ToUpper(kept.Hash), "3:" + kept.Hash[1:], "x:" + kept.Hash} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) accepted it", bad)
		}
	}
}

// VerifyWritten takes an unterminated last line for a write in progress
// only if it can be one: the start of the next record, or zeros. Whether
// the log is being written is inferred from a lock anyone who can open it
// can take, so anything else is a broken chain, as Verify reports it
// (found by review: any last line passed).
func TestVerifyWrittenChecksThePartialLine(t *testing.T) {
	var log []byte
	for _, l := range sampleLog(t, 3) {
		log = append(log, l...)
	}
	tests := []struct {
		name string
		give string
		ok   bool
	}{
		{name: "none", give: "", ok: true},
		{name: "a brace", give: "{", ok: true},
		{name: "part of seq", give: `{"se`, ok: true},
		{name: "seq key", give: `{"seq":`, ok: true},
		{name: "next seq", give: `{"seq":4`, ok: true},
		{name: "next record begun", give: `{"seq":4,"ts":"2026-`, ok: true},
		{name: "zeros", give: "\x00\x00\x00\x00", ok: true},
		{name: "text", give: "not a record, never being written"},
		{name: "another seq", give: `{"seq":9,"ts":"2026-`},
		{name: "a longer seq", give: `{"seq":40`},
		{name: "seq not a number", give: `{"seq":4x`},
		{name: "zeros then text", give: "\x00\x00junk"},
		{name: "all but the newline", give: strings.TrimSuffix(string(sampleLog(t, 4)[3]), "\n"), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(bytes.Clone(log), tt.give...)
			// Tiny reads, so the partial line comes in pieces.
			res, err := VerifyWritten(iotest.HalfReader(bytes.NewReader(in)))
			var ce *ChainError
			switch {
			case tt.ok && err != nil:
				t.Errorf("VerifyWritten(log + %q) = %v, want success", tt.give, err)
			case tt.ok && res.Partial != (tt.give != ""):
				t.Errorf("VerifyWritten(log + %q).Partial = %v", tt.give, res.Partial)
			case !tt.ok && !errors.As(err, &ce):
				t.Errorf("VerifyWritten(log + %q) = %+v, %v; want a chain error", tt.give, res, err)
			case !tt.ok && ce.Line != 4:
				t.Errorf("VerifyWritten(log + %q) names line %d, want 4", tt.give, ce.Line)
			}
		})
	}
}
