package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// tailLog returns a small log with one record of each common kind.
func tailLog(t *testing.T) []byte {
	t.Helper()
	alice := &SessionRef{ID: "s-a", Name: "alice/claude"}
	bob := &SessionRef{ID: "s-b", Name: "bob/codex"}
	events := []*Event{
		sampleEvent(1),
		{Type: "decision", RequestID: "r-2", Session: bob, Decision: "allow",
			Request: &RequestSummary{Method: "GET", URL: "https://api.github.com/repos/x/y"},
			Action:  map[string]any{"provider": "github", "operation": "repos.get"}},
		{Type: "approval", RequestID: "r-3", Session: alice, ApprovalID: "ap-7f3c", Approver: "carol", Via: "slack", Detail: "approved"},
		{Type: "response", RequestID: "r-3", Session: alice, UpstreamStatus: 200, UpstreamMillis: 12},
		{Type: "request", RequestID: "r-4", Session: bob, Request: &RequestSummary{Method: "CONNECT", Host: "db.internal", Port: 5432, Tunnel: true}},
		{Type: "decision", RequestID: "r-5", Session: alice, Decision: "deny", Error: "policy evaluation timed out",
			Request: &RequestSummary{Method: "DELETE", URL: "https://evil.example/\x1b[2J"}, Action: map[string]any{"provider": "http"}},
	}
	var m memFile
	l := openTestLog(t, Options{Path: "-", OpenFile: func(string) (File, error) { return &m, nil }})
	for _, ev := range events {
		if err := l.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return m.bytes()
}

func TestTail(t *testing.T) {
	var (
		deny1 = "2026-11-26T13:45:00Z  deny   alice/claude  POST https://ec2.us-east-1.amazonaws.com/  ec2:TerminateInstances  — countersign: denied by policy AWS-003"
		allow = "2026-11-26T13:45:01Z  allow  bob/codex  GET https://api.github.com/repos/x/y  repos.get"
		appr  = "2026-11-26T13:45:02Z  approval alice/claude  ap-7f3c  by carol via slack  — approved"
		resp  = "2026-11-26T13:45:03Z  response alice/claude  → 200 in 12ms"
		tun   = "2026-11-26T13:45:04Z  request bob/codex  CONNECT db.internal:5432"
		deny2 = `2026-11-26T13:45:05Z  deny   alice/claude  DELETE https://evil.example/\x1b[2J  http  — error: policy evaluation timed out`
	)
	tests := []struct {
		name string
		give Filter
		want []string
	}{
		{name: "all", want: []string{deny1, allow, appr, resp, tun, deny2}},
		{name: "session by name", give: Filter{Session: "alice/claude"}, want: []string{deny1, appr, resp, deny2}},
		{name: "session by id", give: Filter{Session: "s-b"}, want: []string{allow, tun}},
		{name: "decision", give: Filter{Decision: "deny"}, want: []string{deny1, deny2}},
		{name: "event", give: Filter{Event: "approval"}, want: []string{appr}},
		{name: "session and decision", give: Filter{Session: "bob/codex", Decision: "deny"}},
	}
	log := tailLog(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Tail(t.Context(), bytes.NewReader(log), &out, tt.give, nil); err != nil {
				t.Fatalf("Tail() = %v", err)
			}
			if diff := cmp.Diff(tt.want, outputLines(&out)); diff != "" {
				t.Errorf("Tail() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// followed runs Tail on r with wait and returns its output lines: "!!"
// notes as they are, each record's line as part picks it out.
func followed(t *testing.T, ctx context.Context, r io.Reader, wait func(context.Context) error, part func(string) string) []string {
	t.Helper()
	var out bytes.Buffer
	if err := Tail(ctx, r, &out, Filter{}, wait); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range outputLines(&out) {
		if strings.HasPrefix(line, "!!") {
			got = append(got, line)
			continue
		}
		got = append(got, part(line))
	}
	return got
}

// logFile writes lines to a new log and opens it for reading; the file is
// closed when the test ends.
func logFile(t *testing.T, lines [][]byte) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, join(lines...), 0o600); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close() })
	return path, rf
}

func outputLines(b *bytes.Buffer) []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestTailNotARecord(t *testing.T) {
	log := append(tailLog(t)[:0:0], "not json\n"...)
	log = append(log, sampleLog(t, 1)[0]...)
	log = append(log, "{\"seq\":2"...) // unfinished: held back
	var out bytes.Buffer
	if err := Tail(t.Context(), bytes.NewReader(log), &out, Filter{}, nil); err != nil {
		t.Fatalf("Tail() = %v", err)
	}
	want := []string{
		"!! line 1 is not an audit record",
		"2026-11-26T13:45:00Z  deny   alice/claude  POST https://ec2.us-east-1.amazonaws.com/  ec2:TerminateInstances  — countersign: denied by policy AWS-003",
	}
	if diff := cmp.Diff(want, outputLines(&out)); diff != "" {
		t.Errorf("Tail() mismatch (-want +got):\n%s", diff)
	}
}

// growingFile hands out its content in steps: each call to wait appends the
// next chunk, as a writer appending to the log would.
type growingFile struct {
	buf    bytes.Buffer
	chunks [][]byte
	out    *bytes.Buffer
	seen   []string // output at each wait
	cancel context.CancelFunc
}

func (g *growingFile) Read(p []byte) (int, error) { return g.buf.Read(p) }

func (g *growingFile) wait(ctx context.Context) error {
	g.seen = append(g.seen, g.out.String())
	if len(g.chunks) == 0 {
		g.cancel()
		return ctx.Err()
	}
	g.buf.Write(g.chunks[0])
	g.chunks = g.chunks[1:]
	return nil
}

func TestTailFollow(t *testing.T) {
	lines := sampleLog(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	g := &growingFile{
		chunks: [][]byte{lines[1][:50], lines[1][50:], {}, lines[2]},
		out:    &out,
		cancel: cancel,
	}
	g.buf.Write(lines[0])
	if err := Tail(ctx, g, &out, Filter{Event: "decision"}, g.wait); err != nil {
		t.Fatalf("Tail() = %v", err)
	}
	line := func(i int) string {
		rec, err := parseTailRecord(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		return formatRecord(rec) + "\n"
	}
	want := []string{
		line(0),                     // before the first wait
		line(0),                     // half of line 2 is held back
		line(0) + line(1),           // line 2 completed
		line(0) + line(1),           // nothing new
		line(0) + line(1) + line(2), // line 3
	}
	if diff := cmp.Diff(want, g.seen); diff != "" {
		t.Errorf("output at each wait mismatch (-want +got):\n%s", diff)
	}
}

func TestTailWaitError(t *testing.T) {
	boom := errors.New("boom")
	err := Tail(t.Context(), strings.NewReader(""), io.Discard, Filter{}, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Tail() = %v, want %v", err, boom)
	}
}

func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Poll(3 * time.Second)(t.Context()); err != nil {
			t.Fatalf("Poll() = %v", err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("Poll(3s) waited %v", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := Poll(time.Hour)(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Poll() with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func TestClean(t *testing.T) {
	tests := []struct{ give, want string }{
		{"plain ☃ text", "plain ☃ text"},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"a\nb\tc", `a\nb\tc`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"c1 \u0085 \u009b", `c1 \u0085 \u009b`},
		{"evil\u202Etxt.exe ma\u200Bin", `evil\u202etxt.exe ma\u200bin`},
		// Line and paragraph separators break the line in viewers that
		// honour them (found by review).
		{"a\u2028b\u2029c", `a\u2028b\u2029c`},
	}
	for _, tt := range tests {
		if got := clean(tt.give); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// formatRecord renders one record as Tail prints it, without the newline.
func formatRecord(r *tailRecord) string {
	var b strings.Builder
	writeRecord(&b, r)
	return b.String()
}

// Tail reads lines it does not check, which an agent's requests fill:
// one long line must cost Tail little more than its own size, however
// its members are shaped. Decoding input and fields into maps of any, as
// ParseRecord does, took 66 times the line (found by review).
func TestTailMemoryPerLine(t *testing.T) {
	const n = 8 << 20 // the line limit is 64 MiB
	head := `{"seq":1,"ts":"2026-01-01T00:00:00Z","event":"decision",`
	tail := `"prev":"` + zeroHash + `","hash":"` + zeroHash + "\"}\n"
	tests := []struct {
		name             string
		open, elem, shut string
	}{
		{name: "numbers in fields", open: `"fields":{"a":[`, elem: `0,`, shut: `0]},`},
		{name: "keys in input", open: `"input":{`, elem: `"k":1,`, shut: `"z":0},`},
		{name: "headers", open: `"request":{"headers":{"a":[`, elem: `"",`, shut: `""]}},`},
		{name: "action members", open: `"action":{`, elem: `"service":"",`, shut: `"x":0},`},
		{name: "empty reasons", open: `"reasons":[`, elem: `"",`, shut: `""],`},
		{name: "escaped URL", open: `"request":{"url":"`, elem: `\u001b`, shut: `"},`},
	}
	// The line is read (twice its size: see lineReader), then decoded.
	// encoding/json unquotes a string with escapes into a new buffer the
	// size of its literal, with slices.Grow. Under the race detector the
	// compiler instruments the code and drops the optimization that makes
	// slices.Grow allocate once: it allocates that buffer twice, so an
	// escaped member costs the line's size once more than it does in a
	// normal build (4.2 times the line, rather than 3.2, for the escaped
	// URL). That copy is not Tail's.
	bound := 4.0
	if raceEnabled {
		bound = 5
	}
	for _, tt := range tests {
		for _, f := range []Filter{{}, {Decision: "none"}} {
			t.Run(fmt.Sprintf("%s, filter %+v", tt.name, f), func(t *testing.T) {
				var b bytes.Buffer
				b.WriteString(head + tt.open)
				b.WriteString(strings.Repeat(tt.elem, n/len(tt.elem)))
				b.WriteString(tt.shut + tail)
				line := b.Bytes()
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				if err := Tail(t.Context(), bytes.NewReader(line), io.Discard, f, nil); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&m1)
				alloc := m1.TotalAlloc - m0.TotalAlloc
				if ratio := float64(alloc) / float64(len(line)); ratio > bound {
					t.Errorf("Tail allocated %.1f times the line's %d bytes, want at most %g (race detector: %t)", ratio, len(line), bound, raceEnabled)
				}
			})
		}
	}
}

// writeEscape spells a character as strconv.QuoteRuneToASCII does.
func TestWriteEscape(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !mustEscape(r) {
			continue
		}
		var b strings.Builder
		writeEscape(&b, r)
		if want := strings.Trim(strconv.QuoteRuneToASCII(r), "'"); b.String() != want {
			t.Errorf("writeEscape(%U) = %s, want %s", r, b.String(), want)
		}
	}
}

// Tail prints reasons from a textList and action members from optStrings:
// they must read a value as encoding/json reads it into a []string or a
// string.
func FuzzTextList(f *testing.F) {
	for _, s := range []string{
		`null`, `[]`, `[""]`, `["a","b"]`, `[null,"x"]`, ` [ "a" , "b" ] `, `[1]`, `"a"`, `{}`, `[["a"]]`,
		`["\u00e9\ud83d\ude00\n\t\"\\\/"]`, `["\ud800"]`, `["\ud800\u0041"]`, `["\udc00\ud800"]`, "[\"\xff\xfe\"]",
		`["\uD83D\uDE00"]`, `[true]`, `"\ud83d\ude00\u0041\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var ws string
		if err := json.Unmarshal(b, &ws); err == nil {
			var o optString
			if err := json.Unmarshal(b, &o); err != nil || string(o) != ws {
				t.Errorf("%s: optString = %q, %v, want %q", b, o, err, ws)
			}
		}
		var want []string
		werr := json.Unmarshal(b, &want)
		var got textList
		gerr := json.Unmarshal(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: textList error %v, []string error %v", b, gerr, werr)
		}
		if werr != nil {
			return
		}
		if got.n != len(want) || got.joined.String() != strings.Join(want, "; ") {
			t.Errorf("%s: textList = %d %q, want %d %q", b, got.n, got.joined.String(), len(want), strings.Join(want, "; "))
		}
	})
}

// tail -f after the writer cut the log back and wrote new records in the
// place of the ones it discarded (a failed fsync, here): Tail has shown a
// discarded record, since it was in the file when read, and must say so,
// then read the new records from where they start rather than from its
// old offset, where it misread them (found by review).
func TestTailFollowAfterCutBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener()})
	defer l.Close()
	record := func(i int, reason string, async bool) error {
		ev := sampleEvent(i)
		ev.Reasons = []string{reason}
		if async {
			return l.RecordAsync(ev)
		}
		return l.Record(ev)
	}
	if err := record(1, "rec-1", false); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	ctx, cancel := context.WithCancel(t.Context())
	step := 0
	wait := func(context.Context) error {
		step++
		switch step {
		case 1: // written, not synced: Tail reads it
			if err := record(2, "rec-2-discarded", true); err != nil {
				t.Fatal(err)
			}
		case 2: // the next fsync fails: records 2 and 3 are cut off
			ff.setSyncErr(syscall.EIO)
			if err := record(3, "rec-3-failed", false); err == nil {
				t.Fatal("Record(3) succeeded")
			}
			ff.setSyncErr(nil)
			for i := 4; i <= 6; i++ { // seq 2, 3 and 4, over the old ones
				if err := record(i, fmt.Sprintf("rec-%d", i), false); err != nil {
					t.Fatal(err)
				}
			}
		default:
			cancel()
		}
		return nil
	}
	reasons := followed(t, ctx, rf, wait, func(line string) string {
		return line[strings.LastIndex(line, "— ")+len("— "):]
	})
	want := []string{
		"rec-1",
		"rec-2-discarded",
		fmt.Sprintf("!! the log was cut back at byte %d; records shown after line 1 were discarded", bytes.IndexByte(readFile(t, path), '\n')+1),
		"rec-4", "rec-5", "rec-6",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("tail -f output mismatch (-want +got):\n%s\nlog:\n%s", diff, readFile(t, path))
	}
}

// Cut-backs as Tail meets them in the file: below what it read, over an
// unfinished line it held back, and further back than it remembers.
func TestTailFollowNoticesCuts(t *testing.T) {
	lines := sampleLog(t, 4)
	ts := func(i int) string { return testStart.Add(time.Duration(i) * time.Second).Format(time.RFC3339) }
	other := testStart.Add(time.Hour).Format(time.RFC3339)
	tests := []struct {
		name  string
		start []byte
		steps [][]byte // the file's content after each wait
		want  []string // the times of the records shown (see ts), and !! lines
	}{
		{
			name:  "below what was read",
			start: join(lines[:3]...),
			steps: [][]byte{join(lines[0]), join(lines[0], otherLine(t, 2, lines[0]))},
			want: []string{ts(0), ts(1), ts(2),
				fmt.Sprintf("!! the log was cut back at byte %d; records shown after line 1 were discarded", len(lines[0])),
				other},
		},
		{
			name:  "over an unfinished line",
			start: join(lines[0], lines[1][:40]),
			steps: [][]byte{join(lines[0], otherLine(t, 2, lines[0]))},
			want:  []string{ts(0), fmt.Sprintf("!! the log was cut back at byte %d", len(lines[0])), other},
		},
		{
			name:  "to nothing",
			start: join(lines[:2]...),
			steps: [][]byte{nil, join(lines[0])},
			want:  []string{ts(0), ts(1), "!! the log was cut back at byte 0; records shown after line 0 were discarded", ts(0)},
		},
		{
			name:  "appended to",
			start: join(lines[:2]...),
			steps: [][]byte{join(lines[:3]...), join(lines...)},
			want:  []string{ts(0), ts(1), ts(2), ts(3)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, rf := logFile(t, [][]byte{tt.start})
			ctx, cancel := context.WithCancel(t.Context())
			steps := tt.steps
			wait := func(context.Context) error {
				if len(steps) == 0 {
					cancel()
					return nil
				}
				// In place, as the writer cuts its log back.
				wf, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer wf.Close()
				if err := wf.Truncate(0); err != nil {
					t.Fatal(err)
				}
				if _, err := wf.Write(steps[0]); err != nil {
					t.Fatal(err)
				}
				steps = steps[1:]
				return nil
			}
			got := followed(t, ctx, rf, wait, func(line string) string {
				return line[:len("2006-01-02T15:04:05Z")] // its time
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tail -f output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func join(lines ...[]byte) []byte { return bytes.Join(lines, nil) }

// otherLine returns record seq chained after prev, unlike sampleLog's:
// its detail is "other".
func otherLine(t *testing.T, seq uint64, prev []byte) []byte {
	t.Helper()
	p, _ := parseLine(bytes.TrimSuffix(prev, []byte("\n")))
	line, _, err := encodeLine(newEncoder(), nil, &Event{Type: "decision", Decision: "allow", Detail: "other"}, seq, p.hash, testStart.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// cutFile is a log that the writer cuts back, and writes new records into,
// between Tail's first and second reads: Tail is reading a backlog longer
// than its buffer when an fsync fails.
type cutFile struct {
	*os.File
	reads   int
	rewrite func()
}

func (f *cutFile) Read(p []byte) (int, error) {
	f.reads++
	if f.reads == 2 {
		f.rewrite()
	}
	return f.File.Read(p)
}

// recordOfLen returns record seq chained after prev, its line n bytes long
// (its detail padded).
func recordOfLen(t *testing.T, seq uint64, prev []byte, n int) []byte {
	t.Helper()
	p, _ := parseLine(bytes.TrimSuffix(prev, []byte("\n")))
	mk := func(detail string) []byte {
		line, _, err := encodeLine(newEncoder(), nil, &Event{Type: "decision", Decision: "allow", Detail: detail}, seq, p.hash, testStart.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	tag := fmt.Sprintf("new-%d ", seq)
	base := len(mk(tag))
	if base > n {
		t.Fatalf("record %d cannot be %d bytes long: it takes %d", seq, n, base)
	}
	return mk(tag + strings.Repeat("x", n-base))
}

// tail -f reads on at its old offset after a cut-back made between two of
// its reads, inside the records written in place of the ones cut. What it
// then reads does not chain to the last record it showed: it must say the
// log was cut back and show the new records, rather than go on as if the
// records it showed were still there (found by review).
func TestTailFollowCutBackBetweenReads(t *testing.T) {
	lines := sampleLog(t, 3)
	tests := []struct {
		name string
		// The new records 2, 3, … are this many bytes longer than
		// records 2, 3, 3 (for 4) of the old log.
		longer []int
		// Tail reads the end of a new record too short to be taken for
		// one, and shows it as not one before it sees the cut.
		fragment bool
	}{
		{name: "at a new record's start", longer: []int{0, 0, 0}},
		{name: "inside a new record", longer: []int{300, 0, 0}},
		{name: "inside a new record's last members", longer: []int{50, 0, 0}, fragment: true},
		{name: "inside the last new record's last members", longer: []int{50, 0}, fragment: true},
		{name: "inside a later new record", longer: []int{-50, 0, 0}},
		{name: "past the new records' end", longer: []int{-50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			news := [][]byte{lines[0]}
			for i, d := range tt.longer {
				news = append(news, recordOfLen(t, uint64(i+2), news[i], len(lines[min(i+1, 2)])+d))
			}
			path, rf := logFile(t, lines)
			f := &cutFile{File: rf, rewrite: func() {
				// In place, as the writer cuts its log back.
				wf, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer wf.Close()
				if err := wf.Truncate(int64(len(lines[0]))); err != nil {
					t.Fatal(err)
				}
				if _, err := wf.WriteAt(join(news[1:]...), int64(len(lines[0]))); err != nil {
					t.Fatal(err)
				}
			}}
			ctx, cancel := context.WithCancel(t.Context())
			waits := 0
			wait := func(context.Context) error {
				if waits++; waits == 2 {
					cancel()
				}
				return nil
			}
			var out bytes.Buffer
			if err := Tail(ctx, f, &out, Filter{}, wait); err != nil {
				t.Fatal(err)
			}
			show := func(line []byte) string {
				rec, err := parseTailRecord(line)
				if err != nil {
					t.Fatal(err)
				}
				return formatRecord(rec)
			}
			var want []string
			for _, l := range lines {
				want = append(want, show(l))
			}
			if tt.fragment {
				want = append(want, "!! line 4 is not an audit record")
			}
			want = append(want, fmt.Sprintf("!! the log was cut back at byte %d; records shown after line 1 were discarded", len(lines[0])))
			for _, l := range news[1:] {
				want = append(want, show(l))
			}
			if diff := cmp.Diff(want, outputLines(&out)); diff != "" {
				t.Errorf("tail -f output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A record that does not chain to the one before it, in a log nobody
// cuts back, is a break that Verify reports: tail -f shows it and reads on.
func TestTailFollowChainBreakIsNotACut(t *testing.T) {
	lines := sampleLog(t, 2)
	lines = append(lines, otherLine(t, 3, lines[0]), otherLine(t, 3, lines[1]))
	_, rf := logFile(t, lines)
	ctx, cancel := context.WithCancel(t.Context())
	wait := func(context.Context) error { cancel(); return nil }
	var out bytes.Buffer
	if err := Tail(ctx, rf, &out, Filter{}, wait); err != nil {
		t.Fatal(err)
	}
	if got := outputLines(&out); len(got) != len(lines) || strings.Contains(out.String(), "!!") {
		t.Errorf("tail -f on a log with a break in its chain printed:\n%s\nwant its %d records and no !! line", out.String(), len(lines))
	}
}
