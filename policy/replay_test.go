package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/session"
)

const (
	// replayA is the policy the log was recorded under.
	replayA = `package countersign

deny contains {"id": "A-1", "msg": "no deletes"} if input.request.method == "DELETE"

approve contains "posts need a human" if input.request.method == "POST"

allow if not input.request.tunnel

allow if input.request.host == "example.test"
`
	// replayB changes: admin reads are held, posts denied, PUT makes
	// the policy fail, and the tunnel asks for approval (a deny for a
	// tunnel).
	replayB = `package countersign

deny contains {"id": "A-1", "msg": "no deletes"} if input.request.method == "DELETE"

deny contains "posts are not allowed" if input.request.method == "POST"

deny contains x if {
	input.request.method == "PUT"
	x := sprintf("%d", [to_number("not a number")])
}

approve contains "admin reads need a human" if startswith(input.request.path, "/admin")

approve contains "tunnels need a human" if input.request.tunnel

allow if not input.request.tunnel
`
)

// recordLog decides requests under the policy in dir and writes the
// decision records as the proxy does (see proxy/pipeline.go decisionEvent),
// plus records replay must leave alone.
func recordLog(t *testing.T, polDir string) string {
	t.Helper()
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{polDir}}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := audit.Open(audit.Options{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	sess := &session.Info{ID: "s-replay", Name: "alice/agent", User: "alice", Command: "agent"}
	ref := &audit.SessionRef{ID: sess.ID, Name: sess.Name}
	record := func(ev *audit.Event) {
		t.Helper()
		if err := log.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	record(&audit.Event{Type: "session", Session: ref, Detail: "started", PolicyRevision: e.Revision()})

	classifier := action.NewClassifier()
	decide := func(method, rawURL, body string, shadow bool, ruleID string) {
		t.Helper()
		u, _ := url.Parse(rawURL)
		ar := &action.Request{Method: method, Scheme: u.Scheme, Host: u.Hostname(), Port: 443, Path: u.Path,
			RawPath: u.EscapedPath(), Query: u.Query(), Header: http.Header{"Authorization": {"Bearer ghp_secret"}}}
		if method == http.MethodConnect {
			ar = &action.Request{Method: method, Scheme: "tcp", Host: u.Hostname(), Port: 22, Tunnel: true, Header: http.Header{}, BodySize: -1}
		}
		if body != "" {
			ar.Header.Set("Content-Type", "application/json")
			ar.Body, ar.BodySize = []byte(body), int64(len(body))
		}
		in := NewInput(ar, classifier.Classify(ar), sess, time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC))
		d := e.Decide(t.Context(), in)
		decision := d.Verdict.String()
		if ruleID == "SELF" {
			decision, d.Reasons = "deny", []Reason{{ID: "SELF", Message: "countersign's own listener"}}
		}
		if method == http.MethodConnect && d.Verdict == VerdictApprove {
			decision = "deny"
		}
		if shadow && d.Verdict != VerdictAllow {
			decision = "would_" + decision
		}
		ev := &audit.Event{Type: "decision", RequestID: "r-" + method, Session: ref,
			Request:  &audit.RequestSummary{Method: method, URL: rawURL, Host: ar.Host, Port: ar.Port},
			Action:   in.Action.Map(),
			Input:    in.Map(),
			Decision: decision, Reasons: d.Messages(), RuleIDs: d.RuleIDs(), PolicyRevision: d.Revision}
		if d.Err != nil {
			ev.Error = "policy error: " + d.Err.Error()
		}
		record(ev)
	}
	decide("GET", "https://api.example/repos/acme/shop", "", false, "")
	decide("GET", "https://api.example/admin/users", "", false, "")
	decide("POST", "https://api.example/things", `{"name": "x"}`, false, "")
	decide("DELETE", "https://api.example/repos/acme/shop", "", false, "")
	decide("PUT", "https://api.example/things/1", `{"name": "y"}`, false, "")
	decide("CONNECT", "tcp://example.test:22", "", false, "")
	decide("DELETE", "https://api.example/repos/acme/other", "", true, "")
	decide("GET", "https://api.example/admin/keys", "", false, "")
	decide("GET", "https://countersign.internal/", "", false, "SELF")
	// A request refused before policy carries no input.
	record(&audit.Event{Type: "decision", RequestID: "r-bad", Session: ref, Decision: "deny",
		Reasons: []string{"ambiguous framing"}, RuleIDs: []string{"PROTOCOL"}})
	record(&audit.Event{Type: "session", Session: ref, Detail: "ended"})
	return path
}

func TestReplay(t *testing.T) {
	dirA := writePolicy(t, mod(replayA))
	dirB := writePolicy(t, mod(replayB))
	logPath := recordLog(t, dirA)

	eb, err := New(t.Context(), Options{Source: Source{Paths: []string{dirB}}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Replay(t.Context(), eb, f, ReplayOptions{Name: "audit.jsonl", Examples: 1})
	if err != nil {
		t.Fatal(err)
	}
	type tr struct {
		From, To Outcome
		Count    int
		First    string
	}
	var got []tr
	for _, x := range rep.Transitions {
		got = append(got, tr{x.From, x.To, x.Count, x.Examples[0].Request})
	}
	want := []tr{
		{OutcomeAllow, OutcomeHeld, 2, "GET https://api.example/admin/users"},
		{OutcomeAllow, OutcomeDeny, 1, "CONNECT tcp://example.test:22"},
		{OutcomeAllow, OutcomeError, 1, "PUT https://api.example/things/1"},
		{OutcomeHeld, OutcomeDeny, 1, "POST https://api.example/things"},
		{OutcomeDeny, OutcomeDeny, 2, "DELETE https://api.example/repos/acme/shop"},
		{OutcomeAllow, OutcomeAllow, 1, "GET https://api.example/repos/acme/shop"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if rep.Replayed != 8 || rep.Skipped != 2 || rep.Changed() != 5 || rep.Revision != eb.Revision() || len(rep.Recorded) != 1 {
		t.Errorf("report = replayed %d, skipped %d, changed %d, revision %s, recorded %v", rep.Replayed, rep.Skipped, rep.Changed(), rep.Revision, rep.Recorded)
	}
	if got := rep.Transitions[0].Examples[0]; got.Session != "alice/agent" || !cmp.Equal(got.Reasons, []string{"admin reads need a human"}) {
		t.Errorf("first example = %+v", got)
	}

	var out bytes.Buffer
	if err := rep.Format(&out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"policy replay: 8 decisions in audit.jsonl (recorded under sha256:",
		"  CHANGE         COUNT\n  allow → held       2\n  allow → deny       1\n  allow → error      1\n  held → deny        1\n",
		"policy.rego:9: eval_builtin_error: to_number",
		"5 of 8 decisions would change; 3 unchanged (deny 2, allow 1); 2 skipped: 1 no recorded input",
		"allow → held (2):\n  line 3: GET https://api.example/admin/users  [alice/agent]\n      admin reads need a human\n  … and 1 more\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("Format() lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "ghp_secret") {
		t.Error("the report shows a credential")
	}

	// The same policy changes nothing.
	ea, err := New(t.Context(), Options{Source: Source{Paths: []string{dirA}}, EvalTimeout: testEvalTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	same, err := Replay(t.Context(), ea, f, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.Changed() != 0 || same.Replayed != 8 {
		t.Errorf("replay under the recording policy: %d of %d changed", same.Changed(), same.Replayed)
	}
}

func TestReplayBadInput(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n"))
	good := func(t *testing.T) string {
		b, err := os.ReadFile(recordLog(t, writePolicy(t, mod(replayA))))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}(t)
	lines := strings.SplitAfter(good, "\n")
	tests := []struct {
		name    string
		give    string
		wantErr string // "" = success
		wantIs  error
	}{
		{name: "torn last line is skipped", give: good + lines[3][:40]},
		{name: "garbage in the middle", give: lines[0] + "not json\n" + strings.Join(lines[1:], ""), wantErr: "log.jsonl:2: not an audit record"},
		{name: "empty", give: "", wantIs: ErrNothingToReplay},
		{name: "no decision with input", give: lines[0] + lines[len(lines)-3], wantIs: ErrNothingToReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Replay(t.Context(), e, strings.NewReader(tt.give), ReplayOptions{Name: "log.jsonl"})
			switch {
			case tt.wantIs != nil:
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("Replay() = %v, want %v", err, tt.wantIs)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Replay() = %v, want an error containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Replay() = %v", err)
			}
		})
	}
}

// TestReplaySkipsDecisionsWithoutTheirBody: the log leaves out bodies past
// 16 KiB, which the proxy decided on; replayed without it, a rule that
// reads the body would seem to change nothing (found by review).
func TestReplaySkipsDecisionsWithoutTheirBody(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n\ndeny contains \"forced\" if input.request.body.force == true\n"))
	b, err := os.ReadFile(recordLog(t, writePolicy(t, mod(replayA))))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	omitted := 0
	for line := range strings.SplitAfterSeq(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["event"] == "decision" {
			if in, ok := rec["input"].(map[string]any); ok {
				req := in["request"].(map[string]any)
				delete(req, "body")
				req["body_omitted"] = true
				nb, _ := json.Marshal(rec)
				line = string(nb) + "\n"
				if !strings.Contains(string(nb), `"SELF"`) { // skipped for that first
					omitted++
				}
			}
		}
		out.WriteString(line)
	}
	if omitted == 0 {
		t.Fatal("no decision with an input to change")
	}
	rep, err := Replay(t.Context(), e, strings.NewReader(out.String()), ReplayOptions{Name: "log.jsonl"})
	if !errors.Is(err, ErrNothingToReplay) {
		t.Fatalf("Replay = %v, want nothing replayed", err)
	}
	if n := rep.SkipReasons["request body not recorded (over 16 KiB): rules that read it cannot be replayed"]; n != omitted {
		t.Errorf("skipped %v, want %d for the bodies not recorded", rep.SkipReasons, omitted)
	}
}

// TestReplayBoundsALine: a log that is one endless line (a link to
// /dev/zero) is refused at 64 MiB instead of filling the memory (found by
// review).
func TestReplayBoundsALine(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n"))
	_, err := Replay(t.Context(), e, io.LimitReader(zeros{}, maxReplayLine+1<<20), ReplayOptions{Name: "zero"})
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Replay = %v, want the line refused", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
