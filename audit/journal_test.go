package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// powerFile is a log file that remembers what a power loss would leave of
// it: its content as of the last Sync. The journal needs no such model:
// its writes are O_DSYNC, on disk when they return.
type powerFile struct {
	*os.File
	mu      sync.Mutex
	synced  []byte
	syncs   int
	syncErr error // returned by Sync, which then syncs nothing
	onSync  func(synced []byte)
}

func openPowerFile(t *testing.T, path string) *powerFile {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &powerFile{File: f}
	p.synced, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *powerFile) Sync() error {
	p.mu.Lock()
	if p.syncErr != nil {
		p.mu.Unlock()
		return p.syncErr
	}
	b, err := os.ReadFile(p.Name())
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.synced, p.syncs = b, p.syncs+1
	hook := p.onSync
	p.mu.Unlock()
	if hook != nil {
		hook(b)
	}
	return p.File.Sync()
}

// setOnSync sets a hook called with the content of each successful sync.
func (p *powerFile) setOnSync(hook func(synced []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onSync = hook
}

func (p *powerFile) setSyncErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.syncErr = err
}

func (p *powerFile) state() (synced []byte, syncs int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.synced), p.syncs
}

// crashCopy writes log as a crash left it, and a copy of the journal, into
// a new directory, and returns the log's path there.
func crashCopy(t *testing.T, log []byte, journal string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile(journal)
	if errors.Is(err, fs.ErrNotExist) {
		return path // removed, as after a clean Close or a retirement
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".journal", j, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// requireJournal skips where the journal is not used (it is Linux-only,
// as is CI).
func requireJournal(t testing.TB) {
	t.Helper()
	if !journalSupported {
		t.Skip("the audit journal is used on Linux only")
	}
}

// requestIDs returns the request_id of every record of a verified log, and
// the "recovered" records' details.
func requestIDs(t *testing.T, path string) (ids map[string]int, recovered []string) {
	t.Helper()
	verifyFile(t, path)
	ids = map[string]int{}
	for _, line := range splitLines(readFile(t, path)) {
		rec, err := ParseRecord(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == "recovered" {
			recovered = append(recovered, rec.Detail)
		}
		if rec.RequestID != "" {
			ids[rec.RequestID]++
		}
	}
	return ids, recovered
}

// journalLog opens a durable log with a journal on a powerFile.
func journalLog(t *testing.T, path string) (*Log, *powerFile) {
	t.Helper()
	requireJournal(t)
	pf := openPowerFile(t, path)
	l := openTestLog(t, Options{Path: path, Fsync: true, Journal: path + ".journal", OpenFile: func(string) (File, error) { return pf, nil }})
	return l, pf
}

// TestJournalKeepsAcknowledgedRecordsThroughPowerLoss records through a
// journal, then opens what a power loss could leave of the log (the part
// synced, a torn or zeroed tail, or all of it) beside the journal, and
// checks that every record Record acknowledged is there exactly once.
func TestJournalKeepsAcknowledgedRecordsThroughPowerLoss(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	const n = 40
	var acked []string
	for i := 1; i <= n; i++ {
		ev := sampleEvent(i)
		switch i % 3 {
		case 1:
			// Records nobody waits for ride with the next synced group.
			if err := l.RecordAsync(ev); err != nil {
				t.Fatal(err)
			}
			continue
		case 2:
			if err := l.RecordDeferred(ev); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := l.Record(ev); err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
		// Acknowledged: this record and every one before it.
		for k := len(acked) + 1; k <= i; k++ {
			acked = append(acked, fmt.Sprintf("r-%d", k))
		}
	}
	synced, syncs := pf.state()
	if syncs > 1 {
		t.Errorf("the log was synced %d times for %d durable records; want 1 (on Open), the journal taking the rest", syncs, n/3)
	}
	full := readFile(t, path)
	unsynced := full[len(synced):]
	if len(unsynced) == 0 {
		t.Fatal("nothing unsynced: the test would prove nothing")
	}
	crashes := []struct {
		name string
		log  []byte
		lost bool
	}{
		{"synced part only", synced, true},
		{"torn tail", append(bytes.Clone(synced), unsynced[:len(unsynced)/2]...), true},
		{"zeros where data was lost", append(bytes.Clone(synced), make([]byte, 300)...), true},
		{"all of it (kill -9)", full, false},
	}
	for _, c := range crashes {
		t.Run(c.name, func(t *testing.T) {
			cp := crashCopy(t, c.log, path+".journal")
			l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
			if err := l2.Record(sampleEvent(1000)); err != nil {
				t.Fatal(err)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			ids, recovered := requestIDs(t, cp)
			wantOnce(t, ids, acked...)
			if c.lost && (len(recovered) != 1 || !strings.Contains(recovered[0], "records from the journal")) {
				t.Errorf("recovered records = %q, want one saying what the journal restored", recovered)
			}
			if !c.lost && len(recovered) != 0 {
				t.Errorf("recovered records = %q after a crash that lost nothing, want none", recovered)
			}
			if _, err := os.Stat(cp + ".journal"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("journal after Close: %v, want it removed", err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".journal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal after Close: %v, want it removed", err)
	}
}

// TestJournalWraps fills the journal several times over: each time the log
// is synced and a new generation begins, and a power loss after that still
// loses nothing acknowledged.
func TestJournalWraps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	var acked []string
	for i := 1; i <= 40; i++ {
		ev := bigEvent(i)
		if err := l.Record(ev); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ev.RequestID)
	}
	// One record larger than the journal is synced the plain way.
	huge := sampleEvent(41)
	huge.Fields = map[string]any{"pad": strings.Repeat("y", journalSize)}
	if err := l.Record(huge); err != nil {
		t.Fatal(err)
	}
	acked = append(acked, huge.RequestID)
	// And a few after it, which only the journal holds.
	for i := 42; i <= 44; i++ {
		if err := l.Record(sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, fmt.Sprintf("r-%d", i))
	}
	synced, syncs := pf.state()
	// 1 on Open, 1 per journal's worth (12 MiB of records in a 4 MiB
	// journal) and 1 for the record too large for it: 5.
	if syncs < 4 || syncs > 6 {
		t.Errorf("log synced %d times for 44 records, want about 5 (once per journal's worth)", syncs)
	}
	cp := crashCopy(t, synced, path+".journal")
	l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	ids, _ := requestIDs(t, cp)
	wantOnce(t, ids, acked...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJournalThatDoesNotContinueTheLog checks that Open refuses a journal
// holding records past the log's end that do not follow it, instead of
// dropping them or writing them after the wrong record.
func TestJournalThatDoesNotContinueTheLog(t *testing.T) {
	// A log of 10 records, then 5 more through a journal, then a crash
	// that keeps only what was synced: the first 10.
	path := writeLog(t, 10)
	l, pf := journalLog(t, path)
	recordAll(t, l, 11, 15)
	synced, _ := pf.state()
	lines := splitLines(synced)
	if len(lines) != 10 {
		t.Fatalf("synced %d lines, want 10", len(lines))
	}
	other := splitLines(readFile(t, writeLog(t, 12)))
	for i := range other {
		other[i] = bytes.Replace(other[i], []byte("alice"), []byte("mallory"), -1)
	}
	tests := []struct {
		name string
		log  []byte
		want string
	}{
		{"records the log had synced are missing", bytes.Join(lines[:7], nil), "records the log had made durable are missing"},
		{"another log", reseal(t, other[:10]), "does not continue the log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := crashCopy(t, tt.log, path+".journal")
			_, err := Open(Options{Path: cp, Fsync: true, Journal: cp + ".journal"}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "move the journal aside") {
				t.Fatalf("Open() = %v, want an error containing %q that says what to do", err, tt.want)
			}
			if got := readFile(t, cp); !bytes.Equal(got, tt.log) {
				t.Error("Open changed the log it refused")
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// reseal recomputes the hash chain of edited lines.
func reseal(t *testing.T, lines [][]byte) []byte {
	t.Helper()
	return resealAfter(t, position{hash: hashOf(zeroHash)}, lines)
}

// resealAfter chains edited lines after the record at pos.
func resealAfter(t *testing.T, pos position, lines [][]byte) []byte {
	t.Helper()
	var out []byte
	prev := pos.hash
	for i, line := range lines {
		body := line[:len(line)-1-hashSuffixLen]
		body = body[:len(body)-prevSuffixLen]
		rest := body[bytes.IndexByte(body, ',')+1:]
		rest = rest[bytes.IndexByte(rest, ',')+1:] // drop seq and ts; assemble writes them
		var err error
		var h chainHash
		out, h, err = assemble(out, append(append([]byte("{"), rest...), '}'), pos.seq+uint64(i+1), &prev, testClock()())
		if err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	return out
}

// TestJournalTornEntryIsNotReplayed corrupts the journal's last entry, as a
// write that never completed leaves it: its records are not restored, the
// ones before it are, and the log verifies.
func TestJournalTornEntryIsNotReplayed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	recordAll(t, l, 1, 5)
	synced, _ := pf.state()
	cp := crashCopy(t, synced, path+".journal")
	j := readFile(t, cp+".journal")
	// The last entry's last data byte (its newline) is the last non-zero.
	last := bytes.LastIndexFunc(j, func(r rune) bool { return r != 0 })
	j[last-10] ^= 0xff
	if err := os.WriteFile(cp+".journal", j, 0o600); err != nil {
		t.Fatal(err)
	}
	l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	ids, recovered := requestIDs(t, cp)
	for i := 1; i <= 4; i++ {
		if id := fmt.Sprintf("r-%d", i); ids[id] != 1 {
			t.Errorf("record %s appears %d times, want 1", id, ids[id])
		}
	}
	if ids["r-5"] != 0 {
		t.Error("the torn entry's record was restored")
	}
	if len(recovered) != 1 || !strings.Contains(recovered[0], "restored 4 records") {
		t.Errorf("recovered = %q, want one that restored 4 records", recovered)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJournalLeftByACrashIsReplayedWithoutFsync opens a crashed log with
// fsync off: the journal's records are restored and the journal removed.
func TestJournalLeftByACrashIsReplayedWithoutFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	recordAll(t, l, 1, 3)
	synced, _ := pf.state()
	cp := crashCopy(t, synced, path+".journal")
	l2 := openTestLog(t, Options{Path: cp, Journal: cp + ".journal"})
	if _, err := os.Stat(cp + ".journal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal after Open without fsync: %v, want it removed", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	ids, _ := requestIDs(t, cp)
	if len(ids) != 3 {
		t.Errorf("records after the crash = %v, want r-1…r-3", ids)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// failingJournal is a journal file whose writes fail once failWrites is
// set, and, with landWrites, fail after the data landed (as a failed
// O_DSYNC write's data stays in Linux's page cache, where later reads see
// it).
type failingJournal struct {
	*os.File
	mu                     sync.Mutex
	failWrites, landWrites bool
	// failLanding, then failNext, when positive, fail that many writes,
	// after the data landed and without it.
	failLanding, failNext int
}

func (f *failingJournal) set(fail, land bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWrites, f.landWrites = fail, land
}

func (f *failingJournal) failNextWrites(landing, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLanding, f.failNext = landing, n
}

func (f *failingJournal) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	fail, land := f.failWrites, f.landWrites
	switch {
	case f.failLanding > 0:
		f.failLanding--
		fail, land = true, true
	case f.failNext > 0:
		f.failNext--
		fail, land = true, false
	}
	f.mu.Unlock()
	if fail {
		if land {
			_, _ = f.File.WriteAt(p, off)
		}
		return 0, errors.New("injected journal write error")
	}
	return f.File.WriteAt(p, off)
}

// faultyJournalLog opens a durable log with a journal whose writes can be
// made to fail, on a powerFile.
func faultyJournalLog(t *testing.T) (l *Log, pf *powerFile, fj *failingJournal, path string) {
	t.Helper()
	requireJournal(t)
	path = filepath.Join(t.TempDir(), "audit.jsonl")
	pf = openPowerFile(t, path)
	l = openTestLog(t, Options{
		Path: path, Fsync: true, Journal: path + ".journal",
		OpenFile: func(string) (File, error) { return pf, nil },
		OpenJournal: func(p string) (JournalFile, error) {
			f, _, err := openJournalFile(p)
			if err != nil {
				return nil, err
			}
			fj = &failingJournal{File: f.(*os.File)}
			return fj, nil
		},
	})
	return l, pf, fj, path
}

// TestJournalFailureFallsBackToFsync breaks the journal's writes: records
// still succeed, each made durable by an fsync of the log instead; once
// the journal writes again, a new generation carries on, and a power loss
// then loses nothing acknowledged.
func TestJournalFailureFallsBackToFsync(t *testing.T) {
	for _, permanent := range []bool{false, true} {
		t.Run(fmt.Sprintf("permanent=%v", permanent), func(t *testing.T) {
			l, pf, fj, path := faultyJournalLog(t)
			if err := l.Record(sampleEvent(1)); err != nil {
				t.Fatal(err)
			}
			_, before := pf.state()
			if permanent {
				fj.set(true, false)
			} else {
				fj.failNextWrites(0, 1) // the entry; its blanking and the new generation succeed
			}
			if err := l.Record(sampleEvent(2)); err != nil {
				t.Fatalf("Record with a broken journal = %v, want the log synced instead", err)
			}
			if _, after := pf.state(); after != before+1 {
				t.Errorf("log syncs for a record whose journal entry failed = %d, want 1", after-before)
			}
			_, before = pf.state()
			recordAll(t, l, 3, 5)
			synced, after := pf.state()
			want := 0 // the new generation carries them
			if permanent {
				want = 3 // the journal is off: one fsync each
			}
			if after-before != want {
				t.Errorf("log syncs for 3 records = %d, want %d", after-before, want)
			}
			cp := crashCopy(t, synced, path+".journal")
			l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			if ids, _ := requestIDs(t, cp); len(ids) != 5 {
				t.Errorf("records after a power loss = %v, want r-1…r-5", ids)
			}
			fj.set(false, false)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestJournalGhostEntry fails a journal entry after its data landed, and
// the fsync of the log after it: the record is reported failed, and no
// restart may bring it back, nor refuse the log because of it.
func TestJournalGhostEntry(t *testing.T) {
	tests := []struct {
		name string
		// blankLands: the blanking right after the failed entry lands.
		blankLands bool
		// next: a later record whose journal works; the crash copy is
		// taken at the log's first fsync after the failure, the moment a
		// ghost would do harm.
		next bool
	}{
		{name: "crash at once", blankLands: true},
		{name: "ghost kept, then a record", next: true},
		{name: "blanked, then a record", blankLands: true, next: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, pf, fj, path := faultyJournalLog(t)
			if err := l.Record(sampleEvent(1)); err != nil {
				t.Fatal(err)
			}
			if tt.blankLands {
				fj.failNextWrites(2, 0)
			} else {
				fj.failNextWrites(1, 1)
			}
			pf.setSyncErr(errors.New("injected EIO"))
			if err := l.Record(sampleEvent(2)); err == nil {
				t.Fatal("Record with its journal entry and the log's fsync failing = nil, want an error")
			}
			pf.setSyncErr(nil)
			want := map[string]int{"r-1": 1}
			synced, _ := pf.state()
			cp := crashCopy(t, synced, path+".journal")
			if tt.next {
				var once sync.Once
				pf.setOnSync(func(b []byte) {
					once.Do(func() { cp = crashCopy(t, b, path+".journal") })
				})
				if err := l.Record(sampleEvent(3)); err != nil {
					t.Fatal(err)
				}
				pf.setOnSync(nil)
			}
			l2, err := Open(Options{Path: cp, Fsync: true, Journal: cp + ".journal", Now: testClock()}, nil)
			if err != nil {
				t.Fatalf("Open after a crash = %v, want the log opened", err)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			ids, _ := requestIDs(t, cp)
			delete(ids, "r-3") // acknowledged or not, depending on the moment
			if !maps.Equal(ids, want) {
				t.Errorf("records after the crash = %v, want %v (r-2 was reported failed)", ids, want)
			}
			_ = l.Close()
		})
	}
}

// TestJournalKeptWhenTheLogIsNotSafe checks the two places a journal must
// survive: a replay that cannot write the log, and a Close whose fsync
// fails.
func TestJournalKeptWhenTheLogIsNotSafe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	recordAll(t, l, 1, 3)
	synced, _ := pf.state()

	t.Run("replay cannot write", func(t *testing.T) {
		cp := crashCopy(t, synced, path+".journal")
		ff := openFaultFile(t, cp)
		ff.setWriteErr(errors.New("injected ENOSPC"), 0)
		if _, err := Open(Options{Path: cp, Fsync: true, Journal: cp + ".journal", OpenFile: ff.opener()}, nil); err == nil {
			t.Fatal("Open with a log that cannot be written = nil, want an error")
		}
		if _, err := os.Stat(cp + ".journal"); err != nil {
			t.Fatalf("journal after a failed replay: %v, want it kept", err)
		}
		l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		if ids, _ := requestIDs(t, cp); len(ids) != 3 {
			t.Errorf("records after the second try = %v, want r-1…r-3", ids)
		}
	})

	t.Run("replay syncs the log", func(t *testing.T) {
		cp := crashCopy(t, synced, path+".journal")
		pf2 := openPowerFile(t, cp)
		l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal", OpenFile: func(string) (File, error) { return pf2, nil }})
		got, _ := pf2.state()
		if n := len(splitLines(got)); n < 3 {
			t.Errorf("records synced once Open restored them = %d, want at least 3", n)
		}
		_ = l2.Close()
	})

	t.Run("close cannot sync", func(t *testing.T) {
		pf.setSyncErr(errors.New("injected EIO"))
		if err := l.Close(); err == nil {
			t.Fatal("Close with a failing fsync = nil, want an error")
		}
		if _, err := os.Stat(path + ".journal"); err != nil {
			t.Fatalf("journal after a failed Close: %v, want it kept", err)
		}
	})
}

// TestRecoverTail covers what Open writes after a journal's base, on data
// built from two logs.
func TestRecoverTail(t *testing.T) {
	a := splitLines(readFile(t, writeLog(t, 6)))
	other := splitLines(readFile(t, writeLog(t, 6)))
	for i := range other {
		other[i] = bytes.Replace(other[i], []byte("alice"), []byte("mallory"), -1)
	}
	b := splitLines(reseal(t, other))
	tipOf := func(lines [][]byte) position {
		if len(lines) == 0 {
			return position{hash: hashOf(zeroHash)}
		}
		l, reason := parseLine(bytes.TrimSuffix(lines[len(lines)-1], []byte("\n")))
		if reason != "" {
			t.Fatal(reason)
		}
		return position{seq: l.seq, hash: hashOf(l.hash)}
	}
	join := func(parts ...[][]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, bytes.Join(p, nil)...)
		}
		return out
	}
	// c is a's records with the fourth and later changed and chained
	// again: a log that continues a's base with other records.
	base := tipOf(a[:3])
	var changed [][]byte
	for _, line := range a[3:] {
		changed = append(changed, bytes.Replace(line, []byte("alice"), []byte("mallory"), -1))
	}
	c := append(bytes.Clone(join(a[:3])), resealAfter(t, base, changed)...)
	tests := []struct {
		name      string
		data      []byte // the journal's records after base (record 3)
		logTail   []byte // the log after base
		want      []byte
		restored  int
		discarded int
		err       string
	}{
		{name: "the log lost them", data: join(a[3:]), want: join(a[3:]), restored: 3},
		{name: "the log has some", data: join(a[3:]), logTail: join(a[3:5]), want: join(a[3:]), restored: 1},
		{name: "the log has more", data: join(a[3:5]), logTail: join(a[3:]), want: join(a[3:])},
		{name: "a zeroed stretch ends what is kept of the log", data: join(a[3:4]), logTail: append(make([]byte, 40), join(a[4:])...), want: join(a[3:4]), restored: 1, discarded: 40 + len(join(a[4:]))},
		{name: "a torn line is dropped", data: join(a[3:4]), logTail: append(join(a[3:5]), a[5][:30]...), want: join(a[3:5]), discarded: 30},
		{name: "a repeated record ends what is kept", data: join(a[3:4]), logTail: join(a[3:5], a[4:5]), want: join(a[3:5]), discarded: len(a[4])},
		{name: "the log holds another record", data: join(a[3:5]), logTail: join(splitLines(c)[3:5]), err: "record 4 is not the log's"},
		{name: "the journal's chain breaks", data: join(a[3:5], b[5:]), err: "breaks its own chain after record 5"},
		{name: "the journal does not start after its base", data: join(a[4:]), err: "breaks its own chain after record 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := journalState{ok: true, base: base, data: tt.data}
			rec, err := recoverTail(st, tt.logTail, "j", "l")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("recoverTail() = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || rec.restored != tt.restored || len(rec.discarded) != tt.discarded || !bytes.Equal(rec.tail, tt.want) {
				t.Fatalf("recoverTail() = %d lines, %d restored, %d discarded, %v; want %d lines, %d restored, %d discarded",
					len(splitLines(rec.tail)), rec.restored, len(rec.discarded), err, len(splitLines(tt.want)), tt.restored, tt.discarded)
			}
			if rec.restored > 0 && rec.fromSeq != base.seq+uint64(len(splitLines(tt.data))-tt.restored)+1 {
				t.Errorf("fromSeq = %d", rec.fromSeq)
			}
		})
	}
}

// lossyFile models Linux's fsync error semantics on top of powerFile: a
// failed fsync reports a writeback error once, the pages it failed to
// write are marked clean and are not on disk, and the next fsync succeeds
// without writing them. Only pages written again reach the disk.
type lossyFile struct {
	*powerFile
	lmu        sync.Mutex
	failNext   bool
	lost       bool
	lostFrom   int64
	rewriteMin int64
}

func (f *lossyFile) failNextSync() {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	f.failNext = true
}

func (f *lossyFile) Write(p []byte) (int, error) {
	f.lmu.Lock()
	if f.lost {
		if fi, err := f.powerFile.File.Stat(); err == nil {
			f.rewriteMin = min(f.rewriteMin, fi.Size()&^4095)
		}
	}
	f.lmu.Unlock()
	return f.powerFile.Write(p)
}

func (f *lossyFile) Sync() error {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	if f.failNext {
		f.failNext = false
		synced, _ := f.powerFile.state()
		f.lost, f.lostFrom, f.rewriteMin = true, int64(len(synced)), 1<<62
		return errors.New("injected EIO (writeback error)")
	}
	if err := f.powerFile.Sync(); err != nil {
		return err
	}
	if f.lost {
		f.powerFile.mu.Lock()
		for i := f.lostFrom; i < min(f.rewriteMin, int64(len(f.powerFile.synced))); i++ {
			f.powerFile.synced[i] = 0
		}
		f.powerFile.mu.Unlock()
		f.lost = false
	}
	return nil
}

// TestJournalSurvivesAFailedLogFsync fails one fsync of the log (as Linux
// reports a writeback error: once, with the pages lost and marked clean)
// at a journal wrap, in a plain group commit's place, and at Close: every
// record acknowledged before or after must survive a power loss.
func TestJournalSurvivesAFailedLogFsync(t *testing.T) {
	for _, when := range []string{"at a wrap", "at a wrap, then close", "at close"} {
		t.Run(when, func(t *testing.T) {
			requireJournal(t)
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			lf := &lossyFile{powerFile: openPowerFile(t, path)}
			l := openTestLog(t, Options{Path: path, Fsync: true, Journal: path + ".journal",
				OpenFile: func(string) (File, error) { return lf, nil }})
			var acked []string
			failed := 0
			if strings.HasPrefix(when, "at a wrap") {
				lf.failNextSync()
				for i := 1; failed == 0 && i < 100; i++ {
					ev := bigEvent(i)
					if err := l.Record(ev); err != nil {
						failed = i
						break
					}
					acked = append(acked, ev.RequestID)
				}
				if failed == 0 {
					t.Fatal("the journal never wrapped")
				}
				if when == "at a wrap, then close" {
					// Nothing more is written: Close itself must write
					// the lost records again before it removes the journal.
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					synced, _ := lf.powerFile.state()
					ids := openCopy(t, crashCopy(t, synced, path+".journal"))
					wantOnce(t, ids, acked...)
					return
				}
				next := sampleEvent(failed + 1)
				if err := l.Record(next); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, next.RequestID)
			} else {
				for i := 1; i <= 5; i++ {
					if err := l.Record(sampleEvent(i)); err != nil {
						t.Fatal(err)
					}
					acked = append(acked, fmt.Sprintf("r-%d", i))
				}
				lf.failNextSync()
				if err := l.Close(); err == nil {
					t.Fatal("Close with a failing fsync = nil, want an error")
				}
				// A new process: its fsync is never told of the failure,
				// but the pages stay lost unless written again.
				pf2 := openPowerFile(t, path)
				old, _ := lf.powerFile.state()
				pf2.synced = old
				lf = &lossyFile{powerFile: pf2, lost: lf.lost, lostFrom: lf.lostFrom, rewriteMin: lf.rewriteMin}
				l = openTestLog(t, Options{Path: path, Fsync: true, Journal: path + ".journal",
					OpenFile: func(string) (File, error) { return lf, nil }})
				if err := l.Record(sampleEvent(6)); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, "r-6")
			}
			synced, _ := lf.powerFile.state()
			cp := crashCopy(t, synced, path+".journal")
			ids := openCopy(t, cp)
			wantOnce(t, ids, acked...)
			_ = l.Close()
		})
	}
}

// TestJournalReadOnlyReplaySyncsFirst opens a crashed log with the journal
// off: the log is synced before the journal that covered it is removed.
func TestJournalReadOnlyReplaySyncsFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, _ := journalLog(t, path)
	recordAll(t, l, 1, 2)
	cp := crashCopy(t, readFile(t, path), path+".journal")
	pf2 := openPowerFile(t, cp)
	l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal", ReplayOnly: true, OpenFile: func(string) (File, error) { return pf2, nil }})
	if _, syncs := pf2.state(); syncs == 0 {
		t.Error("the journal was removed before the log it covered was synced")
	}
	if _, err := os.Stat(cp + ".journal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal with audit.journal off: %v, want it removed", err)
	}
	_ = l2.Close()
	_ = l.Close()
}

// TestJournalIsNotALink checks that Open refuses a journal path that is a
// symbolic link rather than write records into the file it names.
func TestJournalIsNotALink(t *testing.T) {
	requireJournal(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "bashrc")
	if err := os.WriteFile(target, []byte("echo hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.Symlink(target, path+".journal"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Path: path, Fsync: true, Journal: path + ".journal"}, nil)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open() = %v, want a refusal naming the link", err)
	}
	if got := readFile(t, target); string(got) != "echo hi\n" {
		t.Errorf("the link's target was written: %q", got)
	}
}

// FuzzJournalReplay feeds arbitrary journal files and log tails to the
// reader and to recoverTail: they must never panic, and whatever they keep
// must be whole records chaining from the journal's base.
func FuzzJournalReplay(f *testing.F) {
	requireJournal(f)
	dir := f.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(Options{Path: path, Fsync: true, Journal: path + ".journal", Now: testClock()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	recordAll(f, l, 1, 3)
	j, err := os.ReadFile(path + ".journal")
	if err != nil {
		f.Fatal(err)
	}
	log, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	end := bytes.LastIndexFunc(j, func(r rune) bool { return r != 0 }) + 1
	lines := splitLines(log)
	f.Add(j[:end], log)
	f.Add(j[:end], bytes.Join(lines[:2], nil))
	f.Add(j[:end], append(bytes.Join(lines[:2], nil), lines[2][:20]...))
	f.Add(j[:end-5], []byte(nil))
	f.Fuzz(func(t *testing.T, journal, logTail []byte) {
		st, err := readJournal(memJournal(journal))
		if err != nil || !st.ok {
			return
		}
		rec, err := recoverTail(st, logTail, "j", "l")
		if err != nil {
			return
		}
		tail := rec.tail
		prev, seq := string(st.base.hash[:]), st.base.seq
		for _, line := range splitLines(tail) {
			l, reason := parseLine(bytes.TrimSuffix(line, []byte("\n")))
			if reason != "" || l.seq != seq+1 || l.prev != prev {
				t.Fatalf("kept a line that does not continue the chain: %q (%s)", line, reason)
			}
			prev, seq = l.hash, l.seq
		}
	})
}

type memJournal []byte

func (m memJournal) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, fs.ErrInvalid
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m memJournal) WriteAt([]byte, int64) (int, error) { return 0, errors.ErrUnsupported }
func (m memJournal) Stat() (fs.FileInfo, error)         { return memInfo(len(m)), nil }
func (m memJournal) Close() error                       { return nil }

type memInfo int64

func (i memInfo) Name() string       { return "journal" }
func (i memInfo) Size() int64        { return int64(i) }
func (i memInfo) Mode() fs.FileMode  { return 0o600 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// TestJournalHeldOverflow writes more records that nobody waits for than an
// entry can carry: the next synced group must then sync the log itself, or
// a power loss would leave a gap the journal cannot fill.
func TestJournalHeldOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	for i := 1; i <= 16; i++ {
		ev := bigEvent(i)
		if err := l.RecordAsync(ev); err != nil {
			t.Fatal(err)
		}
	}
	recordAll(t, l, 17, 18)
	synced, _ := pf.state()
	cp := crashCopy(t, synced, path+".journal")
	l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	ids, _ := requestIDs(t, cp)
	for i := 1; i <= 18; i++ {
		if id := fmt.Sprintf("r-%d", i); ids[id] != 1 {
			t.Errorf("acknowledged record %s appears %d times after the crash, want 1", id, ids[id])
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJournalGhostBlankedOnClose leaves a ghost that nothing wrote after,
// then closes with the log unable to sync (so the journal, which alone holds
// r-1, is kept): Close must blank the ghost.
func TestJournalGhostBlankedOnClose(t *testing.T) {
	l, pf, fj, path := faultyJournalLog(t)
	if err := l.Record(sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	fj.failNextWrites(1, 1) // the entry lands but fails; blanking it fails once
	pf.setSyncErr(errors.New("injected EIO"))
	if err := l.Record(sampleEvent(2)); err == nil {
		t.Fatal("Record with its journal entry and the log's fsync failing = nil, want an error")
	}
	if err := l.Close(); err == nil {
		t.Fatal("Close with a failing fsync = nil, want an error")
	}
	synced, _ := pf.state()
	cp := crashCopy(t, synced, path+".journal")
	l2 := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := requestIDs(t, cp); !maps.Equal(ids, map[string]int{"r-1": 1}) {
		t.Errorf("records after the crash = %v, want r-1 only (r-2 was reported failed)", ids)
	}
}

// TestJournalRetire checks what retire does before a record follows a
// ghost: blank the ghost entry and nothing else, or, when that fails, sync
// the log and begin a new generation before the log is written. Crash
// copies are taken at each fsync of the log during the next Record, and
// after it.
func TestJournalRetire(t *testing.T) {
	// The ghost is blanked: a crash just before the next fsync (the log
	// as it was, the journal as it is then) keeps r-1, which only the
	// journal holds, and not r-2.
	t.Run("retire blanks the ghost only", func(t *testing.T) {
		l, pf, fj, path := faultyJournalLog(t)
		ghost(t, l, pf, fj, 1)
		before, _ := pf.state()
		var copies []string
		pf.setOnSync(func([]byte) { copies = append(copies, crashCopy(t, before, path+".journal")) })
		if err := l.Record(sampleEvent(3)); err != nil {
			t.Fatal(err)
		}
		pf.setOnSync(nil)
		if len(copies) == 0 {
			t.Fatal("no fsync of the log during the record after the failure")
		}
		if ids := openCopy(t, copies[0]); !maps.Equal(ids, map[string]int{"r-1": 1}) {
			t.Errorf("records after the crash = %v, want r-1 only", ids)
		}
		_ = l.Close()
	})
	// The ghost cannot be blanked: the log is synced and a new generation
	// begun before r-3 reuses seq 2. A crash at any fsync must not find
	// the log refused, and one after the record restores r-3, not r-2.
	t.Run("retire cannot blank it", func(t *testing.T) {
		l, pf, fj, path := faultyJournalLog(t)
		// The commit's blank and the one before the next write both fail.
		ghost(t, l, pf, fj, 2)
		var copies []string
		pf.setOnSync(func(b []byte) { copies = append(copies, crashCopy(t, b, path+".journal")) })
		if err := l.Record(sampleEvent(3)); err != nil {
			t.Fatal(err)
		}
		pf.setOnSync(nil)
		for _, cp := range copies {
			openCopy(t, cp)
		}
		synced, _ := pf.state()
		if ids := openCopy(t, crashCopy(t, synced, path+".journal")); !maps.Equal(ids, map[string]int{"r-1": 1, "r-3": 1}) {
			t.Errorf("records after a crash after r-3 = %v, want r-1 and r-3", ids)
		}
		_ = l.Close()
	})
}

// ghost records r-1, then fails r-2's journal entry after it lands and
// the log's fsync after it, with blanks failing blanks times.
func ghost(t *testing.T, l *Log, pf *powerFile, fj *failingJournal, blanks int) {
	t.Helper()
	if err := l.Record(sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	fj.failNextWrites(1, blanks)
	pf.setSyncErr(errors.New("injected EIO"))
	if err := l.Record(sampleEvent(2)); err == nil {
		t.Fatal("Record with its journal entry and the log's fsync failing = nil, want an error")
	}
	pf.setSyncErr(nil)
}

// openCopy opens a crash copy and returns its records' request ids.
func openCopy(t *testing.T, cp string) map[string]int {
	t.Helper()
	l, err := Open(Options{Path: cp, Fsync: true, Journal: cp + ".journal", Now: testClock()}, nil)
	if err != nil {
		t.Fatalf("Open after a crash = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ids, _ := requestIDs(t, cp)
	return ids
}

// TestJournalFileChecks covers what Open accepts at the journal's path.
func TestJournalFileChecks(t *testing.T) {
	requireJournal(t)
	// A journal a crash left, holding 3 records the log lacks.
	crashed := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, pf := journalLog(t, path)
		recordAll(t, l, 1, 3)
		synced, _ := pf.state()
		cp := crashCopy(t, synced, path+".journal")
		_ = l.Close()
		return cp
	}

	t.Run("a FIFO does not block Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := syscall.Mkfifo(path+".journal", 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{true, false} {
			done := make(chan error, 1)
			go func() {
				l, err := Open(Options{Path: path, Fsync: true, Journal: path + ".journal", ReplayOnly: ro}, nil)
				if l != nil {
					_ = l.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("ReplayOnly=%v: Open() = %v, want a refusal", ro, err)
				}
			case <-time.After(10 * time.Second): // detects a hang; not synchronisation
				if w, _ := os.OpenFile(path+".journal", os.O_WRONLY, 0); w != nil {
					w.Close()
				}
				<-done
				t.Fatalf("ReplayOnly=%v: Open blocked on a FIFO at the journal's path", ro)
			}
		}
	})

	t.Run("a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.Mkdir(path+".journal", 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{Path: path, Fsync: true, Journal: path + ".journal"}, nil)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "move it aside") {
			t.Errorf("Open() = %v, want a refusal that says to move it aside", err)
		}
	})

	t.Run("a hard link", func(t *testing.T) {
		cp := crashed(t)
		if err := os.Link(cp+".journal", cp+".journal.backup"); err != nil {
			t.Fatal(err)
		}
		backup := readFile(t, cp+".journal.backup")
		_, err := Open(Options{Path: cp, Fsync: true, Journal: cp + ".journal"}, nil)
		if err == nil || !strings.Contains(err.Error(), "cp ") || strings.Contains(err.Error(), "remove") {
			t.Errorf("Open() = %v, want a refusal that says how to keep what it holds", err)
		}
		// Replaying only does not write it: the link is fine there.
		l := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal", ReplayOnly: true})
		_ = l.Close()
		if ids, _ := requestIDs(t, cp); len(ids) != 3 {
			t.Errorf("records after a replay through a hard-linked journal = %v, want 3", ids)
		}
		if !bytes.Equal(readFile(t, cp+".journal.backup"), backup) {
			t.Error("the journal's other name was changed")
		}
	})

	t.Run("wider permissions are narrowed", func(t *testing.T) {
		cp := crashed(t)
		if err := os.Chmod(cp+".journal", 0o644); err != nil {
			t.Fatal(err)
		}
		l := openTestLog(t, Options{Path: cp, Fsync: true, Journal: cp + ".journal"})
		fi, err := os.Stat(cp + ".journal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("journal mode = %v, want 0600", fi.Mode().Perm())
		}
		_ = l.Close()
	})

	t.Run("one that cannot be prepared", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		pf := openPowerFile(t, path)
		l := openTestLog(t, Options{Path: path, Fsync: true, Journal: path + ".journal",
			OpenFile: func(string) (File, error) { return pf, nil },
			OpenJournal: func(p string) (JournalFile, error) {
				f, _, err := openJournalFile(p)
				if err != nil {
					return nil, err
				}
				fj := &failingJournal{File: f.(*os.File)}
				fj.set(true, false) // a full disk
				return fj, nil
			}})
		if _, err := os.Stat(path + ".journal"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("journal that could not be prepared: %v, want it removed", err)
		}
		_, before := pf.state()
		recordAll(t, l, 1, 2)
		if _, after := pf.state(); after-before != 2 {
			t.Errorf("log syncs for 2 records without a journal = %d, want 2", after-before)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// recordAll records sample events from through to, failing the test on an
// error.
func recordAll(t testing.TB, l *Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := l.Record(sampleEvent(i)); err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
	}
}

// TestJournalAsyncRecordsMoveTheBase writes more records nobody waits for
// than an entry holds, and no others: the log is synced and a new
// generation begun as they pass that, so that what Open must read after a
// journal's base stays bounded, and a crash then opens.
func TestJournalAsyncRecordsMoveTheBase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	recordAll(t, l, 1, 1)
	_, before := pf.state()
	for i := 2; i <= 30; i++ {
		ev := bigEvent(i)
		if err := l.RecordAsync(ev); err != nil {
			t.Fatal(err)
		}
	}
	synced, after := pf.state()
	if after-before < 2 {
		t.Errorf("log syncs during 8.7 MiB of records nobody waited for = %d, want one per journal's worth", after-before)
	}
	l.mu.Lock()
	for l.flushing {
		l.cond.Wait()
	}
	base := l.j.base
	l.mu.Unlock()
	full := readFile(t, path)
	if gap := int64(len(full)) - base.size; gap > journalSize {
		t.Errorf("the log runs %d bytes past the journal's base, more than the journal holds", gap)
	}
	ids := openCopy(t, crashCopy(t, synced, path+".journal"))
	if ids["r-1"] != 1 {
		t.Errorf("records after the crash = %v, want r-1", ids)
	}
	_ = l.Close()
}

// TestJournalAsyncOverflowThenAFailedFsync syncs the log for records nobody
// waited for (their overflow), then fails the next such fsync: what the
// first made durable must stay so, later records must succeed, and a crash
// must open.
func TestJournalAsyncOverflowThenAFailedFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, pf := journalLog(t, path)
	recordAll(t, l, 1, 1)
	i := 2
	async := func() {
		ev := bigEvent(i)
		if err := l.RecordAsync(ev); err != nil {
			t.Fatal(err)
		}
		i++
	}
	_, before := pf.state()
	for n := 0; n < 100; n++ {
		if async(); func() bool { _, s := pf.state(); return s > before }() {
			break
		}
	}
	pf.setSyncErr(errors.New("injected EIO"))
	for range 20 {
		async()
	}
	pf.setSyncErr(nil)
	recordAll(t, l, 1000, 1001)
	ids := openCopy(t, crashCopy(t, readFile(t, path), path+".journal"))
	wantOnce(t, ids, []string{"r-1", "r-2", "r-1000", "r-1001"}...)
	_ = l.Close()
}

// TestJournalRepairsADamagedLastLine zeroes the start of the log's last
// record, as a lost block does while its end survives: without a journal
// Open refuses the log, with one left by the crash it writes the record
// again.
func TestJournalRepairsADamagedLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, _ := journalLog(t, path)
	recordAll(t, l, 1, 5)
	damaged := damageLastLine(readFile(t, path))
	cp := crashCopy(t, damaged, path+".journal")
	if ids := openCopy(t, cp); len(ids) != 5 {
		t.Errorf("records after the repair = %v, want r-1…r-5", ids)
	}
	noJournal := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(noJournal, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: noJournal, Fsync: true, Journal: noJournal + ".journal"}, nil); err == nil || !strings.Contains(err.Error(), "audit verify") {
		t.Errorf("Open of the damaged log without a journal = %v, want the chain error", err)
	}
	if _, err := os.Stat(noJournal + ".journal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal after a refused Open: %v, want none left behind", err)
	}
	_ = l.Close()
}

// TestJournalFromTheStartDoesNotRepairAnotherLog puts beside a log whose
// last line is damaged a journal from another log that starts at the
// log's beginning: nothing ties the two, so Open refuses, as it would
// without a journal, instead of dropping the damaged record or replacing
// the log with the other's records.
func TestJournalFromTheStartDoesNotRepairAnotherLog(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other.jsonl")
	lo, _ := journalLog(t, other)
	empty := readFile(t, other+".journal") // a generation with no entries
	recordAll(t, lo, 100, 102)
	full := readFile(t, other+".journal")
	_ = lo.Close()

	for _, tt := range []struct {
		name    string
		records int
		journal []byte
	}{
		{"an empty journal of another log", 5, empty},
		{"another log's records, and a one-record log", 1, full},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := damageLastLine(readFile(t, writeLog(t, tt.records)))
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, log, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".journal", tt.journal, 0o600); err != nil {
				t.Fatal(err)
			}
			if l, err := Open(Options{Path: path, Fsync: true, Journal: path + ".journal"}, nil); err == nil {
				_ = l.Close()
				t.Fatal("Open repaired a damaged log from a journal nothing ties to it")
			}
			if !bytes.Equal(readFile(t, path), log) {
				t.Error("Open changed the log it refused")
			}
		})
	}
}

// bigEvent is sampleEvent(i) padded to 300 KiB: a few fill the journal.
func bigEvent(i int) *Event {
	ev := sampleEvent(i)
	ev.Fields = map[string]any{"pad": strings.Repeat("x", 300<<10)}
	return ev
}

// wantOnce checks that each of want appears exactly once among a log's
// request ids.
func wantOnce(t *testing.T, ids map[string]int, want ...string) {
	t.Helper()
	for _, id := range want {
		if ids[id] != 1 {
			t.Errorf("record %s appears %d times, want once", id, ids[id])
		}
	}
}

// damageLastLine zeroes the start of log's last record, as a lost block
// does while the record's end survives.
func damageLastLine(log []byte) []byte {
	d := bytes.Clone(log)
	start := bytes.LastIndexByte(d[:len(d)-1], '\n') + 1
	clear(d[start : start+20])
	return d
}
