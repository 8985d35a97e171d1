package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
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
	if f.Session != "" && (r.Session == nil || (r.Session.ID != f.Session && r.Session.Name != f.Session)) {
		return false
	}
	if f.Decision != "" && r.Decision != f.Decision {
		return false
	}
	if f.Event != "" && r.Type != f.Event {
		return false
	}
	return true
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
// not check the chain (see Verify). Text from records is printed with
// control characters escaped, so a record cannot drive the terminal.
func Tail(ctx context.Context, r io.Reader, w io.Writer, f Filter, wait func(context.Context) error) error {
	lr := newLineReader(r, maxLineBytes)
	bw := bufio.NewWriter(w)
	lineNo := 0
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
			continue
		case errors.Is(err, errLineTooLong):
			return flush(bw, fmt.Errorf("tail audit log: line %d is longer than %d bytes", lineNo+1, maxLineBytes))
		case err != nil:
			return flush(bw, fmt.Errorf("tail audit log: %w", err))
		}
		lineNo++
		rec, err := ParseRecord(line)
		if err != nil {
			if _, err := fmt.Fprintf(bw, "!! line %d is not an audit record\n", lineNo); err != nil {
				return fmt.Errorf("tail audit log: %w", err)
			}
			continue
		}
		if !f.Match(rec) {
			continue
		}
		if _, err := bw.WriteString(formatRecord(rec) + "\n"); err != nil {
			return fmt.Errorf("tail audit log: %w", err)
		}
	}
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

// formatRecord renders one record on one line: time, decision (or record
// type), session, request, action, approval and upstream details, then the
// reasons or other text after a dash.
func formatRecord(r *Record) string {
	var b strings.Builder
	ts := "-"
	if !r.Time.IsZero() {
		ts = r.Time.UTC().Format(time.RFC3339)
	}
	verb := r.Decision
	if verb == "" {
		verb = r.Type
	}
	fmt.Fprintf(&b, "%s  %-6s", ts, clean(verb))

	var cols []string
	if s := r.Session; s != nil {
		cols = append(cols, firstNonEmpty(s.Name, s.ID))
	}
	if q := r.Request; q != nil {
		switch {
		case q.Tunnel:
			cols = append(cols, "CONNECT "+q.Host+":"+strconv.Itoa(q.Port))
		case q.URL != "":
			cols = append(cols, strings.TrimSpace(q.Method+" "+q.URL))
		}
	}
	if a := actionLabel(r.Action); a != "" {
		cols = append(cols, a)
	}
	if r.ApprovalID != "" {
		cols = append(cols, r.ApprovalID)
	}
	if r.Approver != "" || r.Via != "" {
		by := "by " + firstNonEmpty(r.Approver, "?")
		if r.Via != "" {
			by += " via " + r.Via
		}
		cols = append(cols, by)
	}
	if r.UpstreamStatus != 0 {
		cols = append(cols, fmt.Sprintf("→ %d in %dms", r.UpstreamStatus, r.UpstreamMillis))
	}
	sep := " " // the verb column is padded already
	for _, c := range cols {
		if c != "" {
			b.WriteString(sep)
			b.WriteString(clean(c))
			sep = "  "
		}
	}

	var text []string
	text = append(text, r.Reasons...)
	if r.Detail != "" {
		text = append(text, r.Detail)
	}
	if r.Error != "" {
		text = append(text, "error: "+r.Error)
	}
	if len(text) > 0 {
		b.WriteString("  — ")
		b.WriteString(clean(strings.Join(text, "; ")))
	}
	return b.String()
}

// actionLabel names an action as "service:operation" (ec2:TerminateInstances),
// falling back to the operation or the provider.
func actionLabel(a map[string]any) string {
	str := func(k string) string { s, _ := a[k].(string); return s }
	svc, op := str("service"), str("operation")
	switch {
	case svc != "" && op != "":
		return svc + ":" + op
	case op != "":
		return op
	default:
		return str("provider")
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
// overrides, zero-width) and invalid UTF-8 so that agent-supplied text
// (URLs, reasons) cannot move the cursor, rewrite the terminal or reorder
// what is read.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			b.WriteString(strings.Trim(strconv.QuoteRuneToASCII(r), "'"))
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}
