package audit

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testStart = time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC)

// testClock starts at testStart and advances one second per call.
func testClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time {
		return testStart.Add(time.Duration(n.Add(1)-1) * time.Second)
	}
}

func sampleEvent(i int) *Event {
	return &Event{
		Type:      "decision",
		RequestID: fmt.Sprintf("r-%d", i),
		Session:   &SessionRef{ID: "s-1", Name: "alice/claude", User: "alice", Labels: map[string]string{"team": "infra"}},
		Request: &RequestSummary{
			Method: "POST", URL: "https://ec2.us-east-1.amazonaws.com/", Host: "ec2.us-east-1.amazonaws.com", Port: 443,
			Headers:  map[string][]string{"Authorization": {"[redacted]"}, "Content-Type": {"application/x-www-form-urlencoded"}},
			BodySize: 64, BodySHA256: "ab12",
		},
		Action:         map[string]any{"provider": "aws", "service": "ec2", "operation": "TerminateInstances", "resources": []any{"i-0abc"}},
		Decision:       "deny",
		Reasons:        []string{"countersign: denied by policy AWS-003"},
		RuleIDs:        []string{"AWS-003"},
		PolicyRevision: "rev-1",
		EvalMicros:     42,
	}
}

func openTestLog(t *testing.T, opts Options) *Log {
	t.Helper()
	if opts.Now == nil {
		opts.Now = testClock()
	}
	l, err := Open(opts, nil)
	if err != nil {
		t.Fatalf("Open(%s) = %v", opts.Path, err)
	}
	return l
}

// writeLog writes n sample records to a new log and returns its path.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openTestLog(t, Options{Path: path})
	for i := 1; i <= n; i++ {
		if err := l.Record(sampleEvent(i)); err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func splitLines(b []byte) [][]byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func verifyFile(t *testing.T, path string) VerifyResult {
	t.Helper()
	res, err := Verify(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatalf("Verify(%s) = %v", path, err)
	}
	return res
}

// faultFile wraps a real file and injects write, sync and truncate faults.
type faultFile struct {
	*os.File

	// Hooks are set before the file is used and never changed.
	afterWrite func()
	beforeSync func()

	syncs atomic.Int64

	mu       sync.Mutex
	writeErr error // Write writes partial bytes, then fails with writeErr
	partial  int
	syncErr  error
	truncErr error
}

func openFaultFile(t *testing.T, path string) *faultFile {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return &faultFile{File: f}
}

func (f *faultFile) opener() func(string) (File, error) {
	return func(string) (File, error) { return f, nil }
}

func (f *faultFile) setWriteErr(err error, partial int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr, f.partial = err, partial
}

func (f *faultFile) setSyncErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

func (f *faultFile) setTruncErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truncErr = err
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	werr, partial := f.writeErr, f.partial
	f.mu.Unlock()
	if werr != nil {
		n, _ := f.File.Write(p[:min(partial, len(p))])
		return n, werr
	}
	n, err := f.File.Write(p)
	if f.afterWrite != nil {
		f.afterWrite()
	}
	return n, err
}

func (f *faultFile) Sync() error {
	f.syncs.Add(1)
	if f.beforeSync != nil {
		f.beforeSync()
	}
	f.mu.Lock()
	err := f.syncErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	f.mu.Lock()
	err := f.truncErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// memFile is an in-memory File for the "-" (standard output) path.
type memFile struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (m *memFile) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buf.Write(p)
}
func (m *memFile) ReadAt([]byte, int64) (int, error) { return 0, fs.ErrInvalid }
func (m *memFile) Sync() error                       { return nil }
func (m *memFile) Truncate(int64) error              { return nil }
func (m *memFile) Stat() (fs.FileInfo, error)        { return nil, fs.ErrInvalid }
func (m *memFile) Close() error                      { return nil }

func (m *memFile) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.buf.Bytes())
}
