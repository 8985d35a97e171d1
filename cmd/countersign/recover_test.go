package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/config"
)

// A session that wrote its own log (the shared one was in use) and crashed
// leaves a journal holding records its log may lack. No later run opens
// that log again, so a later run replays it; a log that a running session
// holds is left alone.
func TestRecoverSessionLogs(t *testing.T) {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	dir := filepath.Join(cfg.StateDir, "audit")

	// A live session, writing with its journal.
	live := filepath.Join(dir, "s-live.jsonl")
	opts := auditOptions(&cfg, live)
	opts.Fsync = true
	l, err := audit.Open(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, id := range []string{"r-1", "r-2", "r-3"} {
		if err := l.Record(&audit.Event{Type: "decision", RequestID: id, Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	// The crashed one: the live session's files as a power cut could leave
	// them, the log without its last record, which only the journal holds.
	crashed := filepath.Join(dir, "s-crashed.jsonl")
	logBytes, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	last := bytes.LastIndexByte(logBytes[:len(logBytes)-1], '\n') + 1
	if err := os.WriteFile(crashed, logBytes[:last], 0o600); err != nil {
		t.Fatal(err)
	}
	journal, err := os.ReadFile(live + ".journal")
	if err != nil {
		t.Fatalf("the live session has no journal: %v", err)
	}
	if err := os.WriteFile(crashed+".journal", journal, 0o600); err != nil {
		t.Fatal(err)
	}

	got := recoverSessionLogs(&cfg, zap.NewNop())
	if !slices.Equal(got, []string{crashed}) {
		t.Fatalf("recovered %v, want only %s", got, crashed)
	}
	if _, err := os.Stat(crashed + ".journal"); !os.IsNotExist(err) {
		t.Errorf("the crashed session's journal is still there: %v", err)
	}
	if _, err := os.Stat(live + ".journal"); err != nil {
		t.Errorf("the live session's journal was touched: %v", err)
	}
	f, err := os.Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := audit.Verify(f)
	if err != nil {
		t.Fatalf("the recovered log does not verify: %v", err)
	}
	// Three decisions and the record of the recovery.
	if res.Records < 4 {
		t.Errorf("the recovered log holds %d records, want the 3 decisions and the recovery's", res.Records)
	}
}

// `audit verify` on a log countersign is writing: a last line still being
// appended is not a broken chain, and the anchor comes with a warning that
// the last records may not be durable yet. The same bytes with no writer
// are a truncated log (found by review: verify raised false alarms on
// live logs).
func TestAuditVerifyOnALiveLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.Open(audit.Options{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r-1", "r-2"} {
		if err := l.Record(&audit.Event{Type: "decision", RequestID: id, Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	// Half of a third record, as a reader can see a write in progress.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":3,"ts":"2026-`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, errOut, code := cli(t, dir, "audit", "verify", path)
	if code != 0 || !strings.Contains(out, "ok, 2 records") || !strings.Contains(errOut, "writing this log now") || !strings.Contains(errOut, "not checked") {
		t.Errorf("live: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	l.Close()
	out, errOut, code = cli(t, dir, "audit", "verify", path)
	if code != 1 || !strings.Contains(errOut, "truncated record") {
		t.Errorf("closed: exit %d, want 1 for the truncated last line\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// A lock on the log makes verify take its last line for one being written,
// but anyone who can open the log can take that lock: a last line that
// cannot be the next record's start is still a broken chain (found by
// review).
func TestAuditVerifyOnALiveLogWithJunkAtItsEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.Open(audit.Options{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Record(&audit.Event{Type: "decision", RequestID: "r-1", Decision: "allow"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("not a record, never being written"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, errOut, code := cli(t, dir, "audit", "verify", path)
	if code != 1 || !strings.Contains(errOut, ":2: chain broken") {
		t.Errorf("exit %d, want 1 naming line 2\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// `audit repair` cuts a log broken before its end (records lost to a
// power cut without the journal) so that verify passes again, keeping the
// log as it was.
func TestAuditRepairCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.Open(audit.Options{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r-1", "r-2", "r-3"} {
		if err := l.Record(&audit.Event{Type: "decision", RequestID: id, Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.IndexByte(b, '\n') + 1
	copy(b[first:first+10], make([]byte, 10)) // zeros inside line 2
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := cli(t, dir, "audit", "verify", path); code != 1 {
		t.Fatalf("verify of the broken log: exit %d, want 1", code)
	}
	out, errOut, code := cli(t, dir, "audit", "repair", path)
	if code != 0 || !strings.Contains(out, "cut at line 2") || !strings.Contains(out, path+".broken-") {
		t.Fatalf("repair: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	out, errOut, code = cli(t, dir, "audit", "verify", path)
	if code != 0 || !strings.Contains(out, "ok, 2 records") {
		t.Errorf("verify after repair: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// `audit tail -f` reads the file it opened: once the path names another
// file (the log moved aside, a new one in its place), it stops and says
// to run it again, rather than follow a file nothing writes.
func TestAuditTailFollowStopsWhenTheLogIsReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	wait := followWait(path, file, func(context.Context) error { return nil })
	if err := wait(t.Context()); err != nil {
		t.Fatalf("wait() on the same file = %v", err)
	}
	if err := os.WriteFile(path+".new", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if err := wait(t.Context()); err == nil || !strings.Contains(err.Error(), "run audit tail again") {
		t.Errorf("wait() after the log was replaced = %v, want an error saying to run tail again", err)
	}
}
