package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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
