package policy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/termtext"
)

// Outcome is a decision as replay compares it: the verdict, with held for
// approve, and error for a decision policy.on_error made.
type Outcome string

// The outcomes.
const (
	OutcomeAllow Outcome = "allow"
	OutcomeHeld  Outcome = "held"
	OutcomeDeny  Outcome = "deny"
	OutcomeError Outcome = "error"
)

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// Examples is how many requests each transition lists (default 3).
	Examples int
	// Name is the audit log's name in the report.
	Name string
}

// ReplayReport says how a policy would have decided the requests of an
// audit log.
type ReplayReport struct {
	Audit string `json:"audit"`
	// Revision is the policy replayed under; Recorded lists the revisions
	// the records were made under, in order of first appearance.
	Revision string   `json:"revision"`
	Recorded []string `json:"recorded_revisions"`
	// Replayed counts decision records re-decided; Skipped those that
	// could not be (see SkipReasons).
	Replayed    int            `json:"replayed"`
	Skipped     int            `json:"skipped"`
	SkipReasons map[string]int `json:"skip_reasons,omitempty"`
	// Transitions holds one entry per (recorded, replayed) pair, changes
	// first, then by count.
	Transitions []Transition `json:"transitions"`
}

// Transition counts the records that went from one outcome to another.
type Transition struct {
	From     Outcome         `json:"from"`
	To       Outcome         `json:"to"`
	Count    int             `json:"count"`
	Examples []ReplayExample `json:"examples,omitempty"`
}

func (t Transition) label() string { return string(t.From) + " → " + string(t.To) }

// Changed reports whether the outcome differs.
func (t Transition) Changed() bool { return t.From != t.To }

// ReplayExample is one request of a transition.
type ReplayExample struct {
	Line      int    `json:"line"`
	RequestID string `json:"request_id,omitempty"`
	Request   string `json:"request"`
	Session   string `json:"session,omitempty"`
	// Reasons are the replayed decision's messages.
	Reasons []string `json:"reasons,omitempty"`
}

// Changed counts the records whose outcome would change.
func (r *ReplayReport) Changed() int {
	n := 0
	for _, t := range r.Transitions {
		if t.Changed() {
			n += t.Count
		}
	}
	return n
}

// ErrNothingToReplay means the audit log holds no decision with a recorded
// input: a replay that checked nothing must not pass for one that found no
// change.
var ErrNothingToReplay = errors.New("no decision record with a recorded input")

// Replay re-decides the recorded input of every decision record in an audit
// log (JSON Lines, see package audit) under the engine's policy and compares
// the outcome with the recorded one (would_deny counts as deny, and so on).
// An error means the log could not be read: a line that is not a record
// (except a torn last line, which is skipped), or no decision to replay.
//
// Inputs are recorded redacted: a policy that looks at credential values
// ("[redacted]" in the log) cannot be replayed faithfully.
func Replay(ctx context.Context, e *Engine, r io.Reader, opts ReplayOptions) (*ReplayReport, error) {
	if opts.Examples <= 0 {
		opts.Examples = 3
	}
	rep := &ReplayReport{Audit: opts.Name, Revision: e.Revision(), SkipReasons: map[string]int{}}
	type key struct{ from, to Outcome }
	byKey := map[key]*Transition{}
	skip := func(reason string) {
		rep.Skipped++
		rep.SkipReasons[reason]++
	}

	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(br, maxReplayLine)
		if len(b) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: read line %d: %w", opts.Name, line, err)
		}
		torn := !bytes.HasSuffix(b, []byte("\n"))
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec, perr := audit.ParseRecord(b)
		if perr != nil {
			if torn {
				// The writer was cut off mid-line (or is writing it now).
				skip("torn last line")
				break
			}
			return nil, fmt.Errorf("%s:%d: not an audit record: %w", opts.Name, line, perr)
		}
		if rec.Type != "decision" {
			continue
		}
		from, ok := recordedOutcome(rec)
		switch {
		case slices.Contains(rec.RuleIDs, "SELF"):
			skip("request to countersign's own listener (not a policy decision)")
			continue
		case rec.Input == nil:
			skip("no recorded input (refused before policy, or recorded without input)")
			continue
		case !ok:
			skip(fmt.Sprintf("unknown recorded decision %q", rec.Decision))
			continue
		}
		if rev := rec.PolicyRevision; rev != "" && !slices.Contains(rep.Recorded, rev) {
			rep.Recorded = append(rep.Recorded, rev)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		doc := RecordedInput(rec)
		if req, _ := doc["request"].(map[string]any); req["body_omitted"] == true {
			// The proxy decided on a body the log does not keep (past
			// 16 KiB): replayed without it, a rule that reads the body
			// would seem not to change anything (found by review).
			skip("request body not recorded (over 16 KiB): rules that read it cannot be replayed")
			continue
		} else if req["masked"] == true {
			// Likewise for what the log masks that the policy read: a
			// token in the path, base64 that decodes to a credential.
			skip("recorded with values masked that the policy read (a token in the path, an encoded credential)")
			continue
		}
		d := e.DecideDocument(ctx, doc)
		to := decisionOutcome(d, isTunnel(doc))
		rep.Replayed++
		k := key{from, to}
		t := byKey[k]
		if t == nil {
			t = &Transition{From: from, To: to}
			byKey[k] = t
		}
		t.Count++
		if len(t.Examples) < opts.Examples {
			t.Examples = append(t.Examples, example(line, rec, d))
		}
	}
	if rep.Replayed == 0 {
		return rep, ErrNothingToReplay
	}
	for _, t := range byKey {
		rep.Transitions = append(rep.Transitions, *t)
	}
	slices.SortFunc(rep.Transitions, func(a, b Transition) int {
		if a.Changed() != b.Changed() {
			if a.Changed() {
				return -1
			}
			return 1
		}
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(string(a.From)+string(a.To), string(b.From)+string(b.To))
	})
	if len(rep.SkipReasons) == 0 {
		rep.SkipReasons = nil
	}
	return rep, nil
}

// maxReplayLine bounds one line of a log to replay, as `audit verify`
// bounds it: a file that is one endless line (a link to /dev/zero) must not
// fill the memory (found by review).
const maxReplayLine = 64 << 20

// readLine is bufio.Reader.ReadBytes('\n') for lines of at most limit
// bytes.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, fmt.Errorf("a line longer than %d bytes", limit)
		}
		line = append(line, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// recordedOutcome reads the outcome of a decision record.
func recordedOutcome(rec *audit.Record) (Outcome, bool) {
	if strings.HasPrefix(rec.Error, "policy error:") {
		return OutcomeError, true
	}
	switch strings.TrimPrefix(rec.Decision, "would_") {
	case "allow":
		return OutcomeAllow, true
	case "deny":
		return OutcomeDeny, true
	case "approve":
		return OutcomeHeld, true
	}
	return "", false
}

// decisionOutcome is the outcome the proxy would act on: an opaque tunnel
// cannot be held, so approve means deny there.
func decisionOutcome(d Decision, tunnel bool) Outcome {
	if d.Err != nil {
		return OutcomeError
	}
	switch d.Verdict {
	case VerdictAllow:
		return OutcomeAllow
	case VerdictApprove:
		if tunnel {
			return OutcomeDeny
		}
		return OutcomeHeld
	default:
		return OutcomeDeny
	}
}

func example(line int, rec *audit.Record, d Decision) ReplayExample {
	ex := ReplayExample{Line: line, RequestID: rec.RequestID, Reasons: d.Messages()}
	if d.Err != nil {
		// The policy's author runs replay: show the real error.
		ex.Reasons = []string{"policy error: " + d.Err.Error()}
	}
	if r := rec.Request; r != nil {
		ex.Request = strings.TrimSpace(r.Method + " " + r.URL)
	}
	if s := rec.Session; s != nil {
		ex.Session = s.Name
		if ex.Session == "" {
			ex.Session = s.ID
		}
	}
	return ex
}

// Format writes the report as a table of changes, a summary line and the
// first requests of each change.
func (r *ReplayReport) Format(w io.Writer) error {
	var buf bytes.Buffer
	recorded := "no revision recorded"
	if len(r.Recorded) > 0 {
		recorded = "recorded under " + strings.Join(r.Recorded, ", ")
	}
	fmt.Fprintf(&buf, "policy replay: %d decisions in %s (%s), replayed under %s\n\n", r.Replayed, r.Audit, recorded, r.Revision)

	changed := r.Changed()
	if changed > 0 {
		// fmt pads by code points, so "→" counts as one column.
		width := len("CHANGE")
		for _, t := range r.Transitions {
			if t.Changed() {
				width = max(width, utf8.RuneCountInString(t.label()))
			}
		}
		fmt.Fprintf(&buf, "  %-*s  %5s\n", width, "CHANGE", "COUNT")
		for _, t := range r.Transitions {
			if t.Changed() {
				fmt.Fprintf(&buf, "  %-*s  %5d\n", width, t.label(), t.Count)
			}
		}
		buf.WriteString("\n")
	}
	var same []string
	for _, t := range r.Transitions {
		if !t.Changed() {
			same = append(same, fmt.Sprintf("%s %d", t.From, t.Count))
		}
	}
	fmt.Fprintf(&buf, "%d of %d decisions would change", changed, r.Replayed)
	if len(same) > 0 {
		fmt.Fprintf(&buf, "; %d unchanged (%s)", r.Replayed-changed, strings.Join(same, ", "))
	}
	if r.Skipped > 0 {
		reasons := make([]string, 0, len(r.SkipReasons))
		for reason, n := range r.SkipReasons {
			reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
		}
		slices.Sort(reasons)
		fmt.Fprintf(&buf, "; %d skipped: %s", r.Skipped, strings.Join(reasons, "; "))
	}
	buf.WriteString("\n")

	for _, t := range r.Transitions {
		if !t.Changed() {
			continue
		}
		fmt.Fprintf(&buf, "\n%s (%d):\n", t.label(), t.Count)
		for _, ex := range t.Examples {
			fmt.Fprintf(&buf, "  line %d: %s", ex.Line, oneLine(ex.Request, 200))
			if ex.Session != "" {
				fmt.Fprintf(&buf, "  [%s]", oneLine(ex.Session, 60))
			}
			buf.WriteString("\n")
			if len(ex.Reasons) > 0 {
				fmt.Fprintf(&buf, "      %s\n", oneLine(strings.Join(ex.Reasons, "; "), 200))
			}
		}
		if more := t.Count - len(t.Examples); more > 0 {
			fmt.Fprintf(&buf, "  … and %d more\n", more)
		}
	}
	// The log's names and revisions are as recorded, and a log is a file
	// anyone who can write it may have crafted (found by review).
	_, err := io.WriteString(w, termtext.Text(buf.String()))
	return err
}

// oneLine strips control characters (a recorded URL or message is
// agent-controlled) and shortens s.
func oneLine(s string, limit int) string { return termtext.Line(s, limit) }

// RecordedRequestMember reports whether input.request member k is left out
// of a decision record's input because the record's request summary holds it
// (see RecordedInput).
func RecordedRequestMember(k string) bool {
	switch k {
	case "method", "host", "port", "headers", "body_size", "body_truncated", "body_sha256":
		return true
	}
	return false
}

// RecordedInput returns the policy input of a decision record: the record's
// input member with the parts the proxy does not write twice put back — the
// action (the record's action), the request's method, host, port, headers
// and body size, truncation and hash (its request summary), and the session
// (its session member; the input keeps only the working directory). Records
// written before the input was trimmed carry those parts themselves; they
// are left as they are.
func RecordedInput(rec *audit.Record) map[string]any {
	doc := rec.Input
	if doc == nil {
		return nil
	}
	if _, ok := doc["action"]; !ok && rec.Action != nil {
		doc["action"] = rec.Action
	}
	if req, ok := doc["request"].(map[string]any); ok && rec.Request != nil {
		sum := rec.Request
		h := make(map[string]any, len(sum.Headers))
		for k, vs := range sum.Headers {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			h[k] = list
		}
		for k, v := range map[string]any{
			"method":         sum.Method,
			"host":           sum.Host,
			"port":           json.Number(strconv.Itoa(sum.Port)),
			"headers":        h,
			"body_size":      json.Number(strconv.FormatInt(sum.BodySize, 10)),
			"body_truncated": sum.BodyTruncated,
		} {
			if _, ok := req[k]; !ok {
				req[k] = v
			}
		}
		if _, ok := req["body_sha256"]; !ok && sum.BodySHA256 != "" {
			req["body_sha256"] = sum.BodySHA256
		}
	}
	if ref := rec.Session; ref != nil {
		sess, ok := doc["session"].(map[string]any)
		if !ok {
			sess = map[string]any{}
			doc["session"] = sess
		}
		labels := make(map[string]any, len(ref.Labels))
		for k, v := range ref.Labels {
			labels[k] = v
		}
		for k, v := range map[string]any{
			"id": ref.ID, "name": ref.Name, "user": ref.User, "command": ref.Command, "cwd": "", "labels": labels,
		} {
			if _, ok := sess[k]; !ok {
				sess[k] = v
			}
		}
	}
	return doc
}
