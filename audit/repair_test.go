package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A power cut can lose a page of records from a log without the journal
// and keep later ones: the chain then breaks before the end, which Open
// does not cut by itself. Repair cuts at the break, keeps the log as it
// was beside it, and records what it did; the log verifies again.
func TestRepairCutsAtTheFirstBreak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openTestLog(t, Options{Path: path, Now: testClock()})
	for _, id := range []string{"r-1", "r-2", "r-3", "r-4", "r-5"} {
		if err := l.Record(&Event{Type: "decision", RequestID: id, Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Line 3 lost to zeros, as a page the file system never wrote.
	lines := bytes.SplitAfter(orig, []byte("\n"))
	at := len(lines[0]) + len(lines[1])
	broken := bytes.Clone(orig)
	for i := at; i < at+len(lines[2])-1; i++ {
		broken[i] = 0
	}
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	// Open refuses nothing here (the last line is whole), but verify
	// fails for good.
	if _, err := Verify(bytes.NewReader(broken)); err == nil {
		t.Fatal("the broken log verifies")
	}

	res, err := Repair(path, testClock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cut || res.Line != 3 || res.Offset != int64(at) || res.Bytes != int64(len(broken)-at) {
		t.Errorf("repair: %+v, want a cut at line 3, byte %d", res, at)
	}
	kept, err := os.ReadFile(res.KeptIn)
	if err != nil || !bytes.Equal(kept, broken) {
		t.Errorf("the log as it was is not kept in %s: %v", res.KeptIn, err)
	}
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := Verify(bytes.NewReader(now))
	if err != nil || vr.Records != 3 {
		t.Fatalf("after repair: %d records, %v; want the 2 before the break and the repair's", vr.Records, err)
	}
	sum := sha256.Sum256(broken[at:])
	if res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("discarded_sha256 %s is not that of the bytes cut", res.SHA256)
	}
	if !bytes.HasPrefix(now, orig[:at]) || !strings.Contains(string(now[at:]), `"cut_at_line":3`) || !strings.Contains(string(now[at:]), `"cut_at_byte":`+strconv.Itoa(at)) {
		t.Errorf("after repair the log is\n%s", now)
	}

	// An intact log is left alone.
	res, err = Repair(path, testClock(), nil)
	if err != nil || res.Cut {
		t.Errorf("repair of an intact log: %+v, %v", res, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, now) {
		t.Error("repair changed an intact log")
	}
}

// Repair refuses a log being written, one with a journal beside it, and
// one bad from its first line.
func TestRepairRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l := openTestLog(t, Options{Path: path, Now: testClock()})
	if err := l.Record(&Event{Type: "decision", RequestID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(path, testClock(), nil); !errors.Is(err, ErrInUse) {
		t.Errorf("repair of a log being written: %v, want ErrInUse", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".journal", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(path, testClock(), nil); err == nil || !strings.Contains(err.Error(), "journal") {
		t.Errorf("repair with a journal beside the log: %v", err)
	}
	if err := os.Remove(path + ".journal"); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("shopping list\nmilk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(other, testClock(), nil); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("repair of a file that is no log: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "shopping list\nmilk\n" {
		t.Error("repair changed a file that is no log")
	}
}

// lineStart finds a line's offset across its read buffer: lines longer
// than it, and a newline right at its edge.
func TestLineStart(t *testing.T) {
	long := strings.Repeat("a", 70000) + "\n"
	edge := strings.Repeat("b", 64<<10-1) + "\n" // its newline is the buffer's last byte
	for _, tt := range []struct {
		data string
		line int
		want int
	}{
		{long + edge + "c\n", 1, 0},
		{long + edge + "c\n", 2, len(long)},
		{long + edge + "c\n", 3, len(long) + len(edge)},
		{edge + "c\n", 2, len(edge)},
	} {
		got, err := lineStart(strings.NewReader(tt.data), tt.line)
		if err != nil || got != int64(tt.want) {
			t.Errorf("line %d of %d bytes: offset %d, %v; want %d", tt.line, len(tt.data), got, err, tt.want)
		}
	}
}
