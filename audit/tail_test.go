package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

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
		rec, err := ParseRecord(lines[i])
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
	}
	for _, tt := range tests {
		if got := clean(tt.give); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
