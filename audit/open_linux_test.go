//go:build linux

package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO or a file with other names where the log should be is refused:
// the FIFO would take records and then block every write, and appends and
// repairs would reach the other names of a hard-linked file (found by
// review; the journal's opener already refused both).
func TestOpenRefusesAFIFOOrALinkedFileForTheLog(t *testing.T) {
	t.Run("FIFO", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(Options{Path: path, Now: testClock()}, nil)
		if err == nil {
			l.Close()
			t.Fatal("Open on a FIFO succeeded")
		}
		if !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("error %q does not say what is wrong", err)
		}
	})
	t.Run("hard link", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "audit.jsonl")
		l, err := Open(Options{Path: path, Now: testClock()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record(&Event{Type: "request", RequestID: "r-1"}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		backup := filepath.Join(dir, "backup.jsonl")
		if err := os.Link(path, backup); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(backup)
		l, err = Open(Options{Path: path, Now: testClock()}, nil)
		if err == nil {
			_ = l.Record(&Event{Type: "request", RequestID: "r-2"})
			l.Close()
			t.Fatal("Open on a hard-linked log succeeded")
		}
		if !strings.Contains(err.Error(), "other names") {
			t.Errorf("error %q does not say what is wrong", err)
		}
		if after, _ := os.ReadFile(backup); !bytes.Equal(before, after) {
			t.Error("the other name's content changed")
		}
	})
}

// SPEC 10.6: the audit log is 0600. An existing log with a wider mode is
// narrowed on Open, as its journal is, rather than only warned about
// (found by review).
func TestOpenNarrowsAWideLogMode(t *testing.T) {
	for name, journal := range map[string]bool{"without journal": false, "with journal": true} {
		t.Run(name, func(t *testing.T) {
			path := writeLog(t, 2)
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := Options{Path: path, Fsync: true}
			if journal {
				opts.Journal = path + ".journal"
			}
			l := openTestLog(t, opts)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("log mode after Open = %v, want 0600", got)
			}
		})
	}
}
