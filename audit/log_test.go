package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordRoundTrip(t *testing.T) {
	events := []*Event{
		sampleEvent(1),
		{Type: "request", RequestID: "r-2", Request: &RequestSummary{Method: "CONNECT", Host: "example.com", Port: 443, Tunnel: true}},
		{
			Type: "decision", RequestID: "r-3", Decision: "would_deny",
			Input: map[string]any{
				"action":  map[string]any{"provider": "http", "params": map[string]any{"n": json.Number("3"), "ok": true, "none": nil}},
				"request": map[string]any{"headers": map[string]any{"X-Tricky": []any{"a\"b", "line\nbreak", "<html>&"}}},
			},
		},
		{Type: "approval", RequestID: "r-3", ApprovalID: "ap-7f3c", Approver: "U123/T9", Via: "slack", Detail: "approved"},
		{Type: "forward", RequestID: "r-3", UpstreamStatus: 200, UpstreamMillis: 12},
		{Type: "response", RequestID: "r-4", Error: "upstream: connection refused", Request: &RequestSummary{BodySize: -1, BodyTruncated: true}},
		{Type: "session", Session: &SessionRef{ID: "s-1", Command: "claude"}, Fields: map[string]any{"allowed": json.Number("4"), "denied": json.Number("1")}},
		{Type: "policy", PolicyRevision: "sha256:abc", Detail: "héllo ☃ \u2028 \x7f"},
	}

	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "audit.jsonl")
	l := openTestLog(t, Options{Path: path, Fsync: true})
	if got := l.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	for _, ev := range events {
		if err := l.Record(ev); err != nil {
			t.Fatalf("Record(%s) = %v", ev.Type, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	res := verifyFile(t, path)
	if res.Records != len(events) || res.LastSeq != uint64(len(events)) {
		t.Errorf("Verify() = %+v, want %d records", res, len(events))
	}

	lines := splitLines(readFile(t, path))
	if len(lines) != len(events) {
		t.Fatalf("got %d lines, want %d", len(lines), len(events))
	}
	prev := zeroHash
	for i, line := range lines {
		rec, err := ParseRecord(line)
		if err != nil {
			t.Fatalf("ParseRecord(line %d) = %v", i+1, err)
		}
		if diff := cmp.Diff(*events[i], rec.Event); diff != "" {
			t.Errorf("line %d event mismatch (-want +got):\n%s", i+1, diff)
		}
		want := Record{Seq: uint64(i + 1), Time: testStart.Add(time.Duration(i) * time.Second), Event: rec.Event, Prev: prev, Hash: rec.Hash}
		if diff := cmp.Diff(want, *rec); diff != "" {
			t.Errorf("line %d chain members mismatch (-want +got):\n%s", i+1, diff)
		}
		prev = rec.Hash
	}
	if res.LastHash != prev {
		t.Errorf("Verify().LastHash = %s, want %s", res.LastHash, prev)
	}

	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("mode of %s = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestEncodingGolden(t *testing.T) {
	ev := &Event{
		Type:       "decision",
		RequestID:  "r-1",
		Session:    &SessionRef{ID: "s-1", Name: "alice/claude", Labels: map[string]string{"team": "infra", "env": "prod"}},
		Action:     map[string]any{"service": "ec2", "operation": "TerminateInstances", "provider": "aws", "read_only": false},
		Decision:   "deny",
		Reasons:    []string{"countersign: denied"},
		RuleIDs:    []string{"AWS-003"},
		EvalMicros: 42,
	}
	body := `{"seq":1,"ts":"2026-11-26T13:45:00.5Z","event":"decision","request_id":"r-1",` +
		`"session":{"id":"s-1","name":"alice/claude","labels":{"env":"prod","team":"infra"}},` +
		`"action":{"operation":"TerminateInstances","provider":"aws","read_only":false,"service":"ec2"},` +
		`"decision":"deny","reasons":["countersign: denied"],"rule_ids":["AWS-003"],"eval_us":42,` +
		`"prev":"` + zeroHash + `"`
	sum := sha256.Sum256([]byte(body + "}"))
	want := body + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}` + "\n"

	ts := testStart.Add(500 * time.Millisecond).In(time.FixedZone("CET", 3600))
	got, hash, err := encodeLine(newEncoder(), nil, ev, 1, zeroHash, ts)
	if err != nil {
		t.Fatalf("encodeLine() = %v", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("encodeLine() mismatch (-want +got):\n%s", diff)
	}
	if hash != hex.EncodeToString(sum[:]) {
		t.Errorf("encodeLine() hash = %s, want %s", hash, hex.EncodeToString(sum[:]))
	}
}

func TestEncodingDeterministic(t *testing.T) {
	// Maps built in different orders (and Go's randomised iteration) must
	// encode to the same bytes.
	build := func(keys []string) *Event {
		action := map[string]any{}
		labels := map[string]string{}
		headers := map[string][]string{}
		for _, k := range keys {
			action[k] = map[string]any{"v": len(k), "list": []any{k, map[string]any{"z": 1, "a": 2}}}
			labels[k] = k
			headers[k] = []string{k}
		}
		return &Event{
			Type: "decision", Action: action, Input: map[string]any{"action": action},
			Session: &SessionRef{Labels: labels}, Request: &RequestSummary{Headers: headers},
			Fields: map[string]any{"m": action},
		}
	}
	// Small maps and large ones are sorted differently (sortedEntries).
	small := []string{"delta", "alpha", "charlie", "bravo", "echo", "foxtrot", "golf", "hotel"}
	large := append(slices.Clone(small), "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango")
	for _, keys := range [][]string{small, large} {
		reversed := slices.Clone(keys)
		slices.Reverse(reversed)
		enc := newEncoder()
		want, _, err := encodeLine(enc, nil, build(keys), 7, zeroHash, testStart)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			got, _, err := encodeLine(enc, nil, build(reversed), 7, zeroHash, testStart)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d keys, encoding %d differs:\n got %s\nwant %s", len(keys), i, got, want)
			}
		}
		// And in key order: "alpha" before "bravo" before … at each level.
		sorted := slices.Sorted(slices.Values(keys))
		var at []int
		for _, k := range sorted {
			at = append(at, bytes.Index(want, []byte(`"`+k+`":{"list"`)))
		}
		if !slices.IsSorted(at) || at[0] < 0 {
			t.Errorf("%d keys: not encoded in key order: %s", len(keys), want)
		}
	}
}

func TestEncodingOddValues(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	ev := &Event{Type: "decision", Action: map[string]any{
		"func":   func() {},
		"cyclic": cyclic,
		"float":  1.5,
		"bytes":  []byte("hi"),
	}}
	line, _, err := encodeLine(newEncoder(), nil, ev, 1, zeroHash, testStart)
	if err != nil {
		t.Fatalf("encodeLine() = %v", err)
	}
	if _, err := Verify(bytes.NewReader(line)); err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	rec, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rec.Action["func"].(string); !ok || !strings.HasPrefix(got, "!unencodable func()") {
		t.Errorf(`action["func"] = %#v, want an "!unencodable" marker`, rec.Action["func"])
	}
	if got := rec.Action["float"]; got != json.Number("1.5") {
		t.Errorf(`action["float"] = %#v, want 1.5`, got)
	}
	if !bytes.Contains(line, []byte(`"!nesting too deep"`)) {
		t.Errorf("cyclic map not cut off: %s", line)
	}
}

func TestRecordRejectsBadEvents(t *testing.T) {
	l := openTestLog(t, Options{Path: filepath.Join(t.TempDir(), "a.jsonl")})
	for _, ev := range []*Event{nil, {}} {
		if err := l.Record(ev); err == nil {
			t.Errorf("Record(%v) = nil, want an error", ev)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(sampleEvent(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	if err := l.RecordAsync(sampleEvent(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordAsync after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

func TestOpenResumesChain(t *testing.T) {
	path := writeLog(t, 3)
	l := openTestLog(t, Options{Path: path, Fsync: true})
	for i := 4; i <= 5; i++ {
		if err := l.Record(sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := verifyFile(t, path)
	if res.Records != 5 || res.LastSeq != 5 {
		t.Errorf("Verify() = %+v, want 5 records", res)
	}
	for _, line := range splitLines(readFile(t, path)) {
		if rec, _ := ParseRecord(line); rec.Type == "recovered" {
			t.Errorf("unexpected recovered record: %s", line)
		}
	}
}

func TestOpenRecoversTornTail(t *testing.T) {
	full := readFile(t, writeLog(t, 4))
	lines := splitLines(full)
	good3 := bytes.Join(lines[:3], nil)

	tests := []struct {
		name     string
		give     []byte
		wantSeq  uint64 // seq of the recovered record
		wantTorn []byte
	}{
		{name: "partial record", give: append(bytes.Clone(good3), lines[3][:37]...), wantSeq: 4, wantTorn: lines[3][:37]},
		{name: "record without newline", give: bytes.TrimSuffix(full, []byte("\n")), wantSeq: 4, wantTorn: bytes.TrimSuffix(lines[3], []byte("\n"))},
		{name: "torn first record", give: lines[0][:10], wantSeq: 1, wantTorn: lines[0][:10]},
		{name: "zeros from a lost extent", give: append(bytes.Clone(good3), 0, 0, 0), wantSeq: 4, wantTorn: []byte{0, 0, 0}},
		{name: "zeros only", give: []byte{0, 0, 0}, wantSeq: 1, wantTorn: []byte{0, 0, 0}},
		{name: "one byte", give: append(bytes.Clone(good3), '{'), wantSeq: 4, wantTorn: []byte("{")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, tt.give, 0o600); err != nil {
				t.Fatal(err)
			}
			l := openTestLog(t, Options{Path: path, Fsync: true})
			if err := l.Record(sampleEvent(9)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			res := verifyFile(t, path)
			if res.LastSeq != tt.wantSeq+1 {
				t.Errorf("Verify().LastSeq = %d, want %d", res.LastSeq, tt.wantSeq+1)
			}
			got := splitLines(readFile(t, path))
			rec, err := ParseRecord(got[tt.wantSeq-1])
			if err != nil {
				t.Fatal(err)
			}
			// The torn bytes are kept beside the log, as they were.
			kept, _ := rec.Fields["discarded_kept_in"].(string)
			if !strings.HasPrefix(kept, path+".torn-") {
				t.Errorf("discarded_kept_in %q, want %s.torn-TIME", kept, path)
			} else if b := readFile(t, kept); !bytes.Equal(b, tt.wantTorn) {
				t.Errorf("%s holds %q, want the torn bytes %q", kept, b, tt.wantTorn)
			}
			delete(rec.Fields, "discarded_kept_in")
			sum := sha256.Sum256(tt.wantTorn)
			want := Event{
				Type:   "recovered",
				Detail: fmt.Sprintf("discarded %d torn bytes", len(tt.wantTorn)),
				Fields: map[string]any{
					"discarded_bytes":  json.Number(fmt.Sprint(len(tt.wantTorn))),
					"discarded_sha256": hex.EncodeToString(sum[:]),
				},
			}
			if diff := cmp.Diff(want, rec.Event); diff != "" {
				t.Errorf("recovered record mismatch (-want +got):\n%s", diff)
			}
			if rec.Seq != tt.wantSeq {
				t.Errorf("recovered seq = %d, want %d", rec.Seq, tt.wantSeq)
			}
		})
	}
}

func TestOpenRejectsCorruptTail(t *testing.T) {
	good := readFile(t, writeLog(t, 3))
	edited := bytes.Clone(good)
	edited[bytes.LastIndex(edited, []byte(`"r-3"`))+1] = 'x'

	tests := []struct {
		name string
		give []byte
		want *ChainError
	}{
		{name: "edited last line", give: edited, want: &ChainError{Line: 3, Reason: "hash mismatch (record edited)"}},
		{name: "garbage line", give: append(bytes.Clone(good), "oops\n"...), want: &ChainError{Line: 4, Reason: "not valid JSON"}},
		{name: "tail that is not a torn record", give: append(bytes.Clone(good), "oops"...),
			want: &ChainError{Line: 4, Reason: "the log ends with 4 bytes that are not a record"}},
		{name: "not an audit log", give: []byte("#!/bin/sh\necho hi\n"), want: &ChainError{Line: 2, Reason: "not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, tt.give, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(Options{Path: path}, nil)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Open() = %v, want a *ChainError", err)
			}
			if diff := cmp.Diff(tt.want, ce); diff != "" {
				t.Errorf("Open() error mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), "countersign audit verify") {
				t.Errorf("Open() = %q, want it to suggest `countersign audit verify`", err)
			}
			if got := readFile(t, path); !bytes.Equal(got, tt.give) {
				t.Errorf("Open() changed the file")
			}
		})
	}
}

func TestStdout(t *testing.T) {
	var m memFile
	l := openTestLog(t, Options{Path: "-", Fsync: true, OpenFile: func(string) (File, error) { return &m, nil }})
	for i := range 3 {
		if err := l.Record(sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(bytes.NewReader(m.bytes()))
	if err != nil || res.Records != 3 {
		t.Errorf("Verify() = %+v, %v, want 3 records", res, err)
	}
}

func TestConcurrentRecords(t *testing.T) {
	const n = 50
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener()})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ev := sampleEvent(i)
			if i%5 == 0 {
				errs <- l.RecordAsync(ev)
				return
			}
			errs <- l.Record(ev)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Record() = %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	res := verifyFile(t, path)
	if res.Records != n {
		t.Errorf("Verify().Records = %d, want %d", res.Records, n)
	}
	seen := map[string]bool{}
	for _, line := range splitLines(readFile(t, path)) {
		rec, err := ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		seen[rec.RequestID] = true
	}
	if len(seen) != n {
		t.Errorf("got %d distinct request ids, want %d", len(seen), n)
	}
	if syncs := ff.syncs.Load(); syncs < 1 || syncs > n {
		t.Errorf("fsyncs = %d, want between 1 and %d", syncs, n)
	}
}

func TestGroupCommit(t *testing.T) {
	// While one fsync runs, followers assemble their records and wait; a
	// single write and a single second fsync then cover all of them.
	const followers = 20
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	var writes atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ff.afterWrite = func() { writes.Add(1) }
	ff.beforeSync = func() { once.Do(func() { close(started); <-release }) }
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener()})
	appended := make(chan struct{}, followers+1)
	l.mu.Lock()
	l.appended = func() { appended <- struct{}{} }
	l.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, followers+1)
	wg.Go(func() { errs <- l.Record(sampleEvent(0)) })
	<-appended
	<-started // the leader is inside its fsync
	for i := range followers {
		wg.Go(func() { errs <- l.Record(sampleEvent(i + 1)) })
	}
	for range followers {
		<-appended
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Record() = %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ff.syncs.Load(); got != 2 {
		t.Errorf("fsyncs = %d, want 2 for %d records", got, followers+1)
	}
	if got := writes.Load(); got != 2 {
		t.Errorf("writes = %d, want 2 for %d records", got, followers+1)
	}
	if res := verifyFile(t, path); res.Records != followers+1 {
		t.Errorf("Verify().Records = %d, want %d", res.Records, followers+1)
	}
}

func TestAsyncRecordRidesAlong(t *testing.T) {
	// An asynchronous record assembled while an fsync runs does not wait
	// for it, and is written by the flushing caller right after, without a
	// second fsync: nobody waits for it to be durable.
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ff.beforeSync = func() { once.Do(func() { close(started); <-release }) }
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener()})

	done := make(chan error, 1)
	go func() { done <- l.Record(sampleEvent(1)) }()
	<-started
	if err := l.RecordAsync(sampleEvent(2)); err != nil {
		t.Fatalf("RecordAsync() during an fsync = %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Record() = %v", err)
	}
	if res := verifyFile(t, path); res.Records != 2 {
		t.Errorf("Verify().Records = %d once the leader returned, want 2", res.Records)
	}
	if got := ff.syncs.Load(); got != 1 {
		t.Errorf("fsyncs = %d, want 1", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ff.syncs.Load(); got != 2 {
		t.Errorf("fsyncs after Close = %d, want 2: Close syncs the asynchronous record", got)
	}
}

func TestDeferredRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	writes := make(chan struct{}, 8)
	ff.afterWrite = func() { writes <- struct{}{} }
	// The timer is out of the way while the first part runs.
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener(), DeferDelay: time.Hour})

	// A deferred record rides with the next Record: one write for both.
	if err := l.RecordDeferred(sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(sampleEvent(2)); err != nil {
		t.Fatal(err)
	}
	if n := len(writes); n != 1 {
		t.Errorf("writes for a deferred record and a Record = %d, want 1", n)
	}
	<-writes
	if res := verifyFile(t, path); res.Records != 2 {
		t.Errorf("Verify().Records = %d, want 2", res.Records)
	}

	// Alone, it is written by the timer, without an fsync.
	l.mu.Lock()
	l.deferDelay = time.Millisecond
	l.mu.Unlock()
	syncs := ff.syncs.Load()
	if err := l.RecordDeferred(sampleEvent(3)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-writes:
	case <-time.After(10 * time.Second):
		t.Fatal("a deferred record was not written within 10s")
	}
	if res := verifyFile(t, path); res.Records != 3 {
		t.Errorf("Verify().Records = %d, want 3", res.Records)
	}
	if got := ff.syncs.Load(); got != syncs {
		t.Errorf("fsyncs = %d, want %d: nothing waits for a deferred record", got, syncs)
	}

	// Close writes and syncs one that is still due.
	if err := l.RecordDeferred(sampleEvent(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFile(t, path); res.Records != 4 {
		t.Errorf("Verify().Records after Close = %d, want 4", res.Records)
	}
}

func TestWriteFailure(t *testing.T) {
	tests := []struct {
		name string
		// fault is set after 3 good records; the next Record must fail
		// with wantErr. clear undoes it.
		fault   func(*faultFile)
		clear   func(*faultFile)
		wantErr error
		fsync   bool
		// torn is set when the fault leaves a torn line in the file until
		// it clears.
		torn bool
	}{
		{
			name:    "ENOSPC mid-record",
			fault:   func(f *faultFile) { f.setWriteErr(syscall.ENOSPC, 40) },
			clear:   func(f *faultFile) { f.setWriteErr(nil, 0) },
			wantErr: syscall.ENOSPC,
		},
		{
			name:    "ENOSPC before any byte, fsync on",
			fault:   func(f *faultFile) { f.setWriteErr(syscall.ENOSPC, 0) },
			clear:   func(f *faultFile) { f.setWriteErr(nil, 0) },
			wantErr: syscall.ENOSPC,
			fsync:   true,
		},
		{
			name: "ENOSPC and the repair fails too",
			fault: func(f *faultFile) {
				f.setWriteErr(syscall.ENOSPC, 40)
				f.setTruncErr(syscall.EIO)
			},
			clear: func(f *faultFile) {
				f.setWriteErr(nil, 0)
				f.setTruncErr(nil)
			},
			wantErr: syscall.ENOSPC,
			torn:    true,
		},
		{
			name:    "fsync fails",
			fault:   func(f *faultFile) { f.setSyncErr(syscall.EIO) },
			clear:   func(f *faultFile) { f.setSyncErr(nil) },
			wantErr: syscall.EIO,
			fsync:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			ff := openFaultFile(t, path)
			l := openTestLog(t, Options{Path: path, Fsync: tt.fsync, OpenFile: ff.opener()})
			for i := 1; i <= 3; i++ {
				if err := l.Record(sampleEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			tt.fault(ff)
			if err := l.Record(sampleEvent(4)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Record() during fault = %v, want %v", err, tt.wantErr)
			}
			if err := l.Record(sampleEvent(5)); err == nil {
				t.Fatal("second Record() during fault = nil, want an error")
			}
			res, err := Verify(bytes.NewReader(readFile(t, path)))
			var ce *ChainError
			switch {
			case tt.torn && !errors.As(err, &ce):
				t.Errorf("Verify() during fault = %v, want a torn line", err)
			case !tt.torn && (err != nil || res.Records != 3):
				t.Errorf("Verify() during fault = %+v, %v, want 3 records", res, err)
			}
			tt.clear(ff)
			if err := l.Record(sampleEvent(6)); err != nil {
				t.Fatalf("Record() after fault = %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			res = verifyFile(t, path)
			if res.Records != 4 || res.LastSeq != 4 {
				t.Errorf("Verify() = %+v, want 4 records ending at seq 4", res)
			}
		})
	}
}

func TestFailedFsyncDiscardsAsyncRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ff := openFaultFile(t, path)
	l := openTestLog(t, Options{Path: path, Fsync: true, OpenFile: ff.opener()})
	if err := l.Record(sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordAsync(sampleEvent(2)); err != nil {
		t.Fatal(err)
	}
	ff.setSyncErr(syscall.EIO)
	if err := l.Record(sampleEvent(3)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Record() = %v, want EIO", err)
	}
	if err := l.RecordAsync(sampleEvent(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close() = %v, want EIO for the unsynced async record", err)
	}
	res := verifyFile(t, path)
	if res.Records != 1 {
		t.Errorf("Verify().Records = %d, want 1", res.Records)
	}
}

func BenchmarkRecord(b *testing.B) {
	for _, c := range []struct {
		name           string
		fsync, journal bool
	}{{"fsync=false", false, false}, {"fsync=true", true, false}, {"fsync=true/journal", true, true}} {
		for _, serial := range []bool{false, true} {
			name := c.name
			if serial {
				name += "/serial"
			}
			b.Run(name, func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "audit.jsonl")
				opts := Options{Path: path, Fsync: c.fsync}
				if c.journal {
					opts.Journal = path + ".journal"
				}
				l, err := Open(opts, nil)
				if err != nil {
					b.Fatal(err)
				}
				ev := sampleEvent(1)
				b.ReportAllocs()
				if serial {
					// One waiting caller at a time: each record is its
					// own group, as at one connection.
					for b.Loop() {
						if err := l.Record(ev); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := l.Record(ev); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func TestAssembledLineEqualsEncodedLine(t *testing.T) {
	ts := time.Date(2026, 11, 26, 13, 45, 0, 123456789, time.UTC)
	prefix := []byte("{\"earlier\":1}\n")
	for _, ev := range []*Event{
		{Type: "decision", RequestID: "r-1", Decision: "deny", Reasons: []string{"no <script> & \"quotes\""},
			Request: &RequestSummary{Method: "POST", URL: "https://x/y?z=1", Host: "x", Port: 443, Headers: map[string][]string{"b": {"2"}, "a": {"1"}}},
			Action:  map[string]any{"provider": "aws", "resources": []any{"i-1"}}, Fields: map[string]any{"n": 1}},
		{Type: "session", Detail: "started"},
	} {
		want, wantHash, err := encodeLine(newEncoder(), nil, ev, 7, zeroHash, ts)
		if err != nil {
			t.Fatal(err)
		}
		body, err := encodeBody(newBodyEncoder(), ev)
		if err != nil {
			t.Fatal(err)
		}
		zero := hashOf(zeroHash)
		got, gotHash, err := assemble(bytes.Clone(prefix), body.Bytes(), 7, &zero, ts)
		body.Free()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("assemble overwrote what it appends to: %q", got)
		}
		if got = got[len(prefix):]; string(got) != string(want) || string(gotHash[:]) != wantHash {
			t.Errorf("assembled line differs:\n got %s\nwant %s", got, want)
		}
	}
}

// A symbolic link where the log should be (planted after the log was
// rotated away, say) is refused, not followed: the records would go into
// whatever file it names. A dangling one too.
func TestOpenRefusesALinkForTheLog(t *testing.T) {
	dir := t.TempDir()
	// Empty, as a fresh start-up file is: a log could resume there.
	target := filepath.Join(dir, "bashrc")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"to a file": target, "dangling": filepath.Join(dir, "nowhere")} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.Symlink(to, path); err != nil {
				t.Fatal(err)
			}
			l, err := Open(Options{Path: path, Now: testClock()}, nil)
			if err == nil {
				l.Close()
				t.Fatal("Open through a symbolic link succeeded")
			}
			if b, _ := os.ReadFile(target); len(b) != 0 {
				t.Errorf("the link's target changed: %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("the dangling link's target was created")
			}
		})
	}
}

// A torn tail survives a failure to write the record of its cut (a full
// disk at the first start after the crash): it is kept beside the log
// before it is cut, and the next start, which finds the log clean, does
// not lose it unrecorded (found by review).
func TestTornTailKeptWhenItsRecordFails(t *testing.T) {
	path := writeLog(t, 3)
	torn := []byte(`{"seq":4,"ts":"2026-`)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ff := openFaultFile(t, path)
	ff.setWriteErr(syscall.ENOSPC, 0)
	if _, err := Open(Options{Path: path, Fsync: true, Now: testClock(), OpenFile: ff.opener()}, nil); err == nil {
		t.Fatal("Open succeeded although the recovered record could not be written")
	}
	kept, err := filepath.Glob(path + ".torn-*")
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept copies %v (%v), want one", kept, err)
	}
	if b := readFile(t, kept[0]); !bytes.Equal(b, torn) {
		t.Errorf("%s holds %q, want %q", kept[0], b, torn)
	}
}

// A torn tail whose copy cannot be written beside the log, in a directory
// countersign may not write, is cut as before with its size and hash
// recorded (found by review: recovery had come to need that directory).
func TestCannotWriteBeside(t *testing.T) {
	for _, err := range []error{
		&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES},
		&fs.PathError{Op: "open", Path: "x", Err: syscall.EPERM},
		fmt.Errorf("keep: %w", &fs.PathError{Op: "open", Path: "x", Err: syscall.EROFS}),
	} {
		if !cannotWriteBeside(err) {
			t.Errorf("cannotWriteBeside(%v) = false", err)
		}
	}
	if cannotWriteBeside(&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}) {
		t.Error("a full disk is not a directory that may not be written: recovery must stop")
	}
}
