package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// ErrClosed is returned by Record and RecordAsync after Close.
var ErrClosed = errors.New("audit log closed")

// ErrInUse is returned by Open when another process is writing the log: two
// writers would fork its hash chain.
var ErrInUse = errors.New("audit log is in use by another countersign process")

// File is what Log needs from the file it appends to; *os.File implements
// it. Writes must append (the file is opened with O_APPEND), so that after
// Truncate the next Write lands at the new end.
type File interface {
	io.Writer
	io.ReaderAt
	// Sync commits written data to stable storage; an error means the
	// data written since the last successful Sync may be lost.
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Close() error
}

// Options configures a Log.
type Options struct {
	// Path is the log file. "-" means standard output: no chain resume, no
	// fsync and no repair after a failed write.
	Path string
	// Fsync makes Record return only once the record is on stable storage.
	// Concurrent records share fsyncs (group commit).
	Fsync bool
	// Now is the clock for record timestamps; nil means time.Now.
	Now func() time.Time
	// DeferDelay bounds how long RecordDeferred holds a record back; zero
	// means DefaultDeferDelay.
	DeferDelay time.Duration
	// OpenFile opens Path. nil means create it with mode 0600 (its
	// directory with 0700) and lock it against a second writer. Tests use it
	// to inject failing files.
	OpenFile func(path string) (File, error)
	// Journal, with Fsync, is a file beside the log that makes group
	// commits durable by overwriting it in place rather than by an fsync
	// of the log (see journal.go); "" means none. Open replays an existing
	// journal left by a crash even without Fsync. It is removed on Close.
	// Only on Linux, where the gain was measured; elsewhere it is ignored.
	Journal string
	// ReplayOnly makes Journal only replayed, if a crash left it, and
	// then removed: the log is synced by fsync.
	ReplayOnly bool
	// OpenJournal opens Journal; nil means create it with mode 0600 and
	// O_DSYNC. Tests use it to inject failing files.
	OpenJournal func(path string) (JournalFile, error)
}

// Log appends records to a hash-chained audit log. It is safe for
// concurrent use; records are totally ordered by seq in the file.
//
// Records are assembled into a pending buffer under the lock and written by
// one caller at a time (the leader) with a single write, followed by an fsync
// when the log is durable: every record assembled before a write (or fsync)
// began is covered by it. A request path that waits for its decision record
// therefore shares one system call, and one fsync, with every record
// assembled alongside it (group commit).
//
// A failed write or fsync is returned to the callers waiting for the records
// it covered and the file is cut back to the last good record, so the chain
// stays valid and seq never skips; later records succeed once the file can be
// written again.
type Log struct {
	logger *zap.Logger
	now    func() time.Time
	path   string
	fsync  bool
	// bodyEnc encodes event members outside the lock (see record).
	bodyEnc zapcore.Encoder

	mu   sync.Mutex
	cond sync.Cond // signals finished flushes; L is &mu
	f    File
	// tip is the last record assembled. pending holds the lines assembled
	// after written, the last record in the file; the file holds exactly
	// written.size bytes unless dirty is set, in which case a failed write
	// or a discarded torn tail left bytes after it that must be truncated
	// before the next write.
	tip     position
	written position
	pending []byte
	dirty   bool
	// durable is the last record known to be on stable storage.
	durable position
	// batch is the group of pending records; flushing is true while one
	// caller (the leader) writes and syncs without holding mu.
	batch    *batch
	flushing bool
	closed   bool
	// timer flushes deferred records nobody else writes, deferDelay after
	// the first; timerSet is true while it is due.
	timer      *time.Timer
	timerSet   bool
	deferDelay time.Duration
	// spare is a drained pending buffer kept for reuse.
	spare []byte
	// j, when set, makes synced groups durable instead of an fsync of f.
	j *journal
	// appended, when set (tests only), is called under mu after a record
	// joins pending.
	appended func()
}

// position is a point in the chain: the last record's seq and hash and the
// file size just after it.
type position struct {
	seq  uint64
	hash chainHash
	size int64
}

// chainHash is a record's hash as its line spells it (hex). Kept as an
// array, a chain position costs no allocation per record.
type chainHash [2 * sha256.Size]byte

func hashOf(hexHash string) chainHash {
	var h chainHash
	copy(h[:], hexHash)
	return h
}

// batch is a group of records written, and synced, together.
type batch struct {
	done bool
	err  error
	// waiters counts the callers waiting for the batch; a batch nobody
	// waits for holds only asynchronous records.
	waiters int
}

// maxPending bounds the bytes assembled while a flush runs; a record beyond
// it waits for the flush rather than grow the buffer without limit.
const maxPending = 4 << 20

// Open opens or creates the audit log at opts.Path and resumes its chain
// from the last complete line, reading backwards from the end of the file.
// A torn last line left by a crash is cut off and a "recovered" record is
// written first. Open fails if the last complete line does not match its own
// hash.
func Open(opts Options, logger *zap.Logger) (*Log, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Path == "" {
		return nil, errors.New("open audit log: no path")
	}
	l := &Log{
		logger:  logger.Named("audit"),
		now:     opts.Now,
		path:    opts.Path,
		fsync:   opts.Fsync,
		bodyEnc: newBodyEncoder(),
		batch:   &batch{},
	}
	l.cond.L = &l.mu
	l.timer = time.AfterFunc(time.Hour, l.flushDeferred)
	l.timer.Stop()
	l.deferDelay = opts.DeferDelay
	if l.deferDelay <= 0 {
		l.deferDelay = DefaultDeferDelay
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.tip.hash = hashOf(zeroHash)

	if opts.Path == "-" {
		l.fsync = false
		if opts.OpenFile != nil {
			f, err := opts.OpenFile(opts.Path)
			if err != nil {
				return nil, fmt.Errorf("open audit log %s: %w", opts.Path, err)
			}
			l.f = f
		} else {
			l.f = stdoutFile{os.Stdout}
		}
		l.written, l.durable = l.tip, l.tip
		return l, nil
	}

	open := opts.OpenFile
	if open == nil {
		open = func(p string) (File, error) { return openFile(p, opts.Fsync, l.logger) }
	}
	f, err := open(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, err)
	}
	l.f = f
	r, err := resume(f)
	var ce *ChainError
	if errors.As(err, &ce) && opts.Journal != "" && journalSupported {
		// The last line is damaged, as a lost block leaves it. A journal
		// left by a crash covers the log after its base and puts that
		// right; openJournal fails with this error if there is none.
		r = resumed{pos: position{hash: hashOf(zeroHash)}, damaged: fmt.Errorf("resume audit log %s (run `countersign audit verify %s`): %w", opts.Path, opts.Path, err)}
		err = nil
	}
	if err != nil {
		_ = f.Close()
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("resume audit log %s (run `countersign audit verify %s`): %w", opts.Path, opts.Path, err)
		}
		return nil, fmt.Errorf("resume audit log %s: %w", opts.Path, err)
	}
	pos, dirty := r.pos, r.torn > 0
	torn, tornSHA256 := r.torn, r.tornSHA256
	var rec recovery
	var keptIn, notKept string
	if opts.Journal != "" && journalSupported {
		var rewritten bool
		rewritten, rec, pos, err = l.openJournal(opts, r)
		if err == nil && !rewritten && r.damaged != nil {
			err = r.damaged
		}
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		if rewritten {
			// The rewrite cut away what it did not keep of the log.
			dirty = false
			torn = int64(len(rec.discarded))
			sum := sha256.Sum256(rec.discarded)
			tornSHA256 = hex.EncodeToString(sum[:])
			keptIn, notKept = rec.keptIn, rec.notKept
		}
	}
	if dirty {
		// The torn bytes are cut before the next record is written: a copy
		// beside the log first, so that a failure to write the record of
		// the cut (a full disk) does not lose them unrecorded.
		tail := make([]byte, torn)
		if _, err := f.ReadAt(tail, pos.size); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("read the torn tail of audit log %s: %w", opts.Path, err)
		}
		if keptIn, err = keepDiscarded(opts.Path, tail, l.now); err != nil {
			if !cannotWriteBeside(err) {
				_ = f.Close()
				return nil, err
			}
			// A log in a directory countersign may not write (a
			// pre-created log file): recovered as before, without a copy
			// (found by review), the record saying so.
			notKept = err.Error()
			l.logger.Warn("the torn tail of the audit log cannot be kept beside it; it is cut with its size and hash recorded", zap.Error(err))
		}
	}
	l.tip, l.written, l.durable = pos, pos, pos
	l.dirty = dirty // the torn bytes are cut off before the next record is written
	if torn == 0 && rec.restored == 0 {
		l.logger.Debug("audit log opened", zap.String("path", opts.Path), zap.Uint64("seq", pos.seq))
		return l, nil
	}

	ev := &Event{Type: "recovered"}
	var details []string
	if torn > 0 {
		l.logger.Warn("audit log had a torn or lost tail; discarding it",
			zap.String("path", opts.Path), zap.Int64("bytes", torn), zap.Uint64("seq", pos.seq))
		details = append(details, fmt.Sprintf("discarded %d torn bytes", torn))
		ev.Fields = map[string]any{"discarded_bytes": torn, "discarded_sha256": tornSHA256}
		if keptIn != "" {
			ev.Fields["discarded_kept_in"] = keptIn
		}
		if notKept != "" {
			ev.Fields["discarded_not_kept"] = notKept
		}
	}
	if rec.restored > 0 {
		l.logger.Warn("audit log restored records from its journal after a crash",
			zap.String("path", opts.Path), zap.Int("records", rec.restored), zap.Uint64("seq", pos.seq))
		details = append(details, fmt.Sprintf("restored %d records from the journal", rec.restored))
		if ev.Fields == nil {
			ev.Fields = map[string]any{}
		}
		ev.Fields["restored_records"] = rec.restored
		ev.Fields["restored_from_seq"] = rec.fromSeq
	}
	ev.Detail = strings.Join(details, "; ")
	err = l.Record(ev)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("recover audit log %s: %w", opts.Path, err)
	}
	return l, nil
}

// Path returns the log's path as given in Options.
func (l *Log) Path() string { return l.path }

// openJournal opens (or creates) opts.Journal. If it holds a generation
// (countersign stopped without closing the log), the log after the
// generation's base is written again from it (see journal.go), and
// openJournal reports that, how many records only the journal had, and
// the log's new end. The journal is then kept for writing if the log is
// durable, or else removed.
func (l *Log) openJournal(opts Options, r resumed) (rewritten bool, rec recovery, end position, err error) {
	end = r.pos
	where := fmt.Sprintf("audit journal %s", opts.Journal)
	writing := l.fsync && !opts.ReplayOnly
	var jf JournalFile
	created := false
	if opts.OpenJournal != nil {
		jf, err = opts.OpenJournal(opts.Journal)
	} else if writing {
		jf, created, err = openJournalFile(opts.Journal)
	} else {
		var file *os.File
		file, err = openExistingJournal(opts.Journal, os.O_RDONLY)
		if errors.Is(err, fs.ErrNotExist) {
			return false, rec, end, nil
		}
		jf = file
	}
	if err != nil {
		if writing {
			return false, rec, end, fmt.Errorf("open %s (audit.journal: false turns it off): %w", where, err)
		}
		return false, rec, end, fmt.Errorf("open %s, which a crash left: %w", where, err)
	}
	j := &journal{f: jf, path: opts.Journal, logger: l.logger}
	st, err := readJournal(jf)
	if err != nil {
		_ = jf.Close()
		return false, rec, end, fmt.Errorf("read %s: %w", where, err)
	}
	if !st.ok && r.damaged != nil {
		_ = jf.Close()
		if created {
			_ = os.Remove(opts.Journal)
		}
		return false, rec, end, r.damaged
	}
	if st.ok {
		rec, err = l.journalTail(st, opts)
		if err == nil && r.damaged != nil && st.base.size == 0 && rec.matched == 0 {
			// Nothing ties a journal from the log's start to this log.
			err = r.damaged
		}
		if err == nil && len(rec.discarded) > 0 {
			// Kept beside the log before the rewrite cuts them, so that
			// they survive a failure to record the cut (found by review).
			rec.keptIn, err = keepDiscarded(opts.Path, rec.discarded, l.now)
			if err != nil && cannotWriteBeside(err) {
				rec.notKept, err = err.Error(), nil
			}
		}
		if err == nil {
			end, err = l.rewriteTail(st.base, rec.tail)
		}
		if err != nil {
			// The journal stays: it may hold the only copy of records.
			_ = jf.Close()
			return false, recovery{}, r.pos, err
		}
		rewritten = true
	} else if err := l.f.Sync(); err != nil {
		// No generation: the log may still hold records a writer without
		// a journal never synced. Sync before a new generation begins.
		_ = jf.Close()
		return false, rec, end, fmt.Errorf("fsync audit log %s: %w", opts.Path, err)
	}
	if !writing {
		if err := j.remove(); err != nil {
			return rewritten, rec, end, fmt.Errorf("remove %s: %w", where, err)
		}
		return rewritten, rec, end, nil
	}
	l.j = j
	l.startJournal(created, end)
	return rewritten, rec, end, nil
}

// journalTail checks that the log holds st's base, the record its
// generation starts after, and returns what the log must hold after it.
func (l *Log) journalTail(st journalState, opts Options) (recovery, error) {
	fi, err := l.f.Stat()
	if err != nil {
		return recovery{}, fmt.Errorf("stat audit log %s: %w", opts.Path, err)
	}
	size := fi.Size()
	if st.base.size > size {
		return recovery{}, fmt.Errorf("the audit journal %s starts after record %d at byte %d, but the log %s has only %d bytes: records the log had made durable are missing. Keep both files for investigation, move the journal aside, and start again", opts.Journal, st.base.seq, st.base.size, opts.Path, size)
	}
	if st.base.seq > 0 || st.base.size > 0 {
		start := int64(0)
		if st.base.size > 1 {
			nl, err := lastNewline(l.f, st.base.size-1, maxLineBytes+1)
			if err != nil {
				return recovery{}, err
			}
			start = nl + 1
		}
		line := make([]byte, st.base.size-start)
		if _, err := l.f.ReadAt(line, start); err != nil {
			return recovery{}, fmt.Errorf("read audit log %s: %w", opts.Path, err)
		}
		got, reason := parseLine(bytes.TrimSuffix(line, []byte("\n")))
		if reason != "" || !bytes.HasSuffix(line, []byte("\n")) || got.seq != st.base.seq || got.hash != string(st.base.hash[:]) {
			return recovery{}, fmt.Errorf("the audit journal %s does not continue the log %s: the log does not hold the record %d it starts after (the journal belongs to another log, or the log was edited). Keep both files for investigation, move the journal aside, and start again", opts.Journal, opts.Path, st.base.seq)
		}
	}
	if size-st.base.size > maxLogTail {
		return recovery{}, fmt.Errorf("the audit journal %s is older than the last %d MiB of the log %s: move it aside and start again", opts.Journal, maxLogTail>>20, opts.Path)
	}
	logTail := make([]byte, size-st.base.size)
	if _, err := l.f.ReadAt(logTail, st.base.size); err != nil && !errors.Is(err, io.EOF) {
		return recovery{}, fmt.Errorf("read audit log %s: %w", opts.Path, err)
	}
	return recoverTail(st, logTail, opts.Journal, opts.Path)
}

// rewriteTail cuts the log back to base, appends tail and syncs, and
// returns the log's new end.
func (l *Log) rewriteTail(base position, tail []byte) (position, error) {
	if err := l.f.Truncate(base.size); err != nil {
		return position{}, fmt.Errorf("truncate audit log %s to %d bytes: %w", l.path, base.size, err)
	}
	if n, err := l.f.Write(tail); err != nil || n != len(tail) {
		return position{}, fmt.Errorf("write audit log %s: %w", l.path, errors.Join(err, io.ErrShortWrite))
	}
	if err := l.f.Sync(); err != nil {
		return position{}, fmt.Errorf("fsync audit log %s: %w", l.path, err)
	}
	if len(tail) == 0 {
		return base, nil
	}
	lastStart := bytes.LastIndexByte(tail[:len(tail)-1], '\n') + 1
	last, _ := parseLine(tail[lastStart : len(tail)-1])
	return position{seq: last.seq, hash: hashOf(last.hash), size: base.size + int64(len(tail))}, nil
}

// startJournal makes l.j ready for a new generation from base, the log's
// end, or, if it cannot (a full disk), removes it: the log is then synced
// the plain way. The log must have been synced through base.
func (l *Log) startJournal(created bool, base position) {
	err := l.j.prepare(created, base)
	if err == nil {
		return
	}
	l.logger.Warn("cannot prepare the audit journal; every group commit syncs the log instead",
		zap.String("path", l.j.path), zap.Error(err))
	if rerr := l.j.remove(); rerr != nil {
		l.logger.Warn("cannot remove the audit journal", zap.String("path", l.j.path), zap.Error(rerr))
	}
	l.j = nil
}

// Record appends ev. It returns once the record is written to the file and,
// with Options.Fsync, on stable storage. An error (a failed write or fsync,
// or ErrClosed) means the record is not in the log.
func (l *Log) Record(ev *Event) error {
	return l.record(ev, waitWritten)
}

// RecordAsync appends ev without waiting. The record is written at once when
// no other write is under way, or else by the caller running it, right
// after; the next fsync (a later Record, or Close) makes it durable. An error
// means the record was not assembled. If its write or that later fsync
// fails, the record is discarded with the rest of the unsynced records, and
// the error goes to the callers that wait.
func (l *Log) RecordAsync(ev *Event) error {
	return l.record(ev, writeNow)
}

// RecordDeferred appends ev for the next write: the next Record's, or at
// the latest Options.DeferDelay from now. It is for records nothing waits to read,
// such as the outcome of a forwarded request: on a busy proxy they then
// share the write of the next decision record instead of costing a system
// call each. Errors are as for RecordAsync.
func (l *Log) RecordDeferred(ev *Event) error {
	return l.record(ev, writeLater)
}

// DefaultDeferDelay is Options.DeferDelay when it is zero.
const DefaultDeferDelay = 2 * time.Millisecond

// mode is what a caller of record waits for.
type mode int

const (
	waitWritten mode = iota // Record: written, and synced if the log is durable
	writeNow                // RecordAsync: written now unless a flush is under way
	writeLater              // RecordDeferred: written with the next flush
)

func (l *Log) record(ev *Event, m mode) error {
	if ev == nil || ev.Type == "" {
		return errors.New("record audit event: event has no type")
	}
	// The event's members are encoded before taking the lock: only the
	// chain position (seq, ts, prev) and the hash need it, so concurrent
	// requests do not queue behind each other's JSON encoding.
	body, err := encodeBody(l.bodyEnc, ev)
	if err != nil {
		return err
	}
	defer body.Free()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.flushing && len(l.pending) >= maxPending {
		l.cond.Wait()
	}
	if l.closed {
		return fmt.Errorf("record audit event: %w", ErrClosed)
	}
	b, err := l.appendLocked(body.Bytes())
	if err != nil {
		return err
	}
	switch m {
	case writeNow:
		// A waiting caller about to flush takes this record along.
		if !l.flushing && l.batch.waiters == 0 {
			l.flushLocked()
		}
		return nil
	case writeLater:
		if !l.flushing && l.batch.waiters == 0 && !l.timerSet {
			l.timerSet = true
			l.timer.Reset(l.deferDelay)
		}
		return nil
	}
	b.waiters++
	for !b.done {
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
	return b.err
}

// appendLocked assembles one record onto pending and returns the batch whose
// write will cover it.
func (l *Log) appendLocked(body []byte) (*batch, error) {
	seq := l.tip.seq + 1
	start := len(l.pending)
	line, hash, err := assemble(l.pending, body, seq, &l.tip.hash, l.now())
	if err != nil {
		l.pending = line[:start]
		return nil, err
	}
	l.pending = line
	l.tip = position{seq: seq, hash: hash, size: l.tip.size + int64(len(line)-start)}
	if l.appended != nil {
		l.appended()
	}
	return l.batch, nil
}

// flushDeferred writes deferred records that no flush has taken along.
func (l *Log) flushDeferred() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timerSet = false
	if l.closed || l.flushing || l.batch.waiters > 0 || len(l.pending) == 0 {
		// A flush under way or about to start takes them; Close writes
		// what is left.
		return
	}
	l.flushLocked()
}

// repair cuts the file back to the end of the last written record. Only the
// flushing caller, or a caller holding mu while none flushes, touches the
// file.
func (l *Log) repair() error {
	if err := l.f.Truncate(l.written.size); err != nil {
		return fmt.Errorf("truncate audit log %s to %d bytes: %w", l.path, l.written.size, err)
	}
	l.dirty = false
	return nil
}

// flushLocked writes every pending record with one write, and syncs the file
// when the log is durable and someone waits, releasing mu while it does.
// Callers wait for the batch it covers; records assembled meanwhile form the
// next batch, which a waiting caller flushes in turn.
func (l *Log) flushLocked() {
	for {
		b := l.batch
		sync := l.fsync && b.waiters > 0
		if len(l.pending) == 0 && (!sync || l.written == l.durable) {
			// Nothing owed: an earlier flush covered the batch's records.
			b.done = true
			l.cond.Broadcast()
			return
		}
		data, target := l.pending, l.tip
		l.pending, l.spare = l.spare[:0], nil
		if l.timerSet {
			// This write takes the deferred records along.
			l.timer.Stop()
			l.timerSet = false
		}
		l.batch = &batch{}
		l.flushing = true
		l.mu.Unlock()
		synced, werr, serr := l.write(data, sync, target)
		l.mu.Lock()
		l.flushing = false
		if cap(data) <= maxPending {
			l.spare = data[:0]
		}
		if werr != nil || serr != nil {
			l.failLocked(b, werr, serr)
			l.cond.Broadcast()
			return
		}
		l.written = target
		if synced || !l.fsync {
			l.durable = target
		}
		b.done = true
		l.cond.Broadcast()
		// Records that arrived during this flush and that nobody waits
		// for would otherwise sit unwritten until the next Record: write
		// them now, without an fsync, as RecordAsync promises.
		if len(l.pending) == 0 || l.batch.waiters > 0 || l.closed {
			return
		}
	}
}

// write writes data, then syncs if asked (synced reports a sync, asked or
// not: the journal syncs the log when records nobody waits for overflow it); it runs without mu, as the only
// flush. werr is a failed write (nothing of data counts as written), serr a
// failed fsync (nothing since the last good one counts as durable).
func (l *Log) write(data []byte, sync bool, target position) (synced bool, werr, serr error) {
	if l.dirty {
		if err := l.repair(); err != nil {
			return false, fmt.Errorf("write audit log %s: %w", l.path, err), nil
		}
	}
	if l.j != nil && l.j.ghost && l.j.blank(l.j.ghostOff) {
		// First, so that a crash during the resync below cannot read it.
		l.j.ghost = false
	}
	if l.j != nil && l.j.suspect {
		if err := l.j.resync(l.f, l.written); err != nil {
			return false, fmt.Errorf("write audit log %s: an fsync of the log failed, and the records it lost cannot be written again from the journal yet: %w", l.path, err), nil
		}
	}
	if l.j != nil && l.j.ghost {
		if err := l.j.retire(l.f, l.written); err != nil {
			return false, fmt.Errorf("write audit log %s: a failed journal entry may still be read back, and the log cannot be synced to retire it: %w", l.path, err), nil
		}
	}
	if len(data) > 0 {
		n, err := l.f.Write(data)
		if err == nil && n != len(data) {
			err = io.ErrShortWrite
		}
		if err != nil {
			l.dirty = true
			return false, fmt.Errorf("write audit log %s: %w", l.path, err), nil
		}
	}
	if l.j != nil {
		if !sync {
			l.j.hold(data)
			if l.j.stale && !l.j.disabled {
				// More unsynced records than an entry holds: sync the log
				// and begin a new generation now, so that what recovery
				// must read after the base stays bounded.
				if err := l.j.commit(nil, l.f, target); err != nil {
					return false, nil, fmt.Errorf("fsync audit log %s: %w", l.path, err)
				}
				return true, nil, nil
			}
			return false, nil, nil
		}
		if err := l.j.commit(data, l.f, target); err != nil {
			return false, nil, fmt.Errorf("fsync audit log %s: %w", l.path, err)
		}
		return true, nil, nil
	}
	if !sync {
		return false, nil, nil
	}
	if err := l.f.Sync(); err != nil {
		return false, nil, fmt.Errorf("fsync audit log %s: %w", l.path, err)
	}
	return true, nil, nil
}

// failLocked handles a failed flush of batch b. b's records and the ones
// assembled since (which chain onto b's) are discarded; after a failed fsync
// so is every record written since the last good one, as its durability is
// unknown. The callers waiting for any of them are told.
func (l *Log) failLocked(b *batch, werr, serr error) {
	err := werr
	if serr != nil {
		err = serr
		l.dirty = true
		if l.written != l.durable {
			l.logger.Warn("fsync failed; discarding unsynced audit records",
				zap.Uint64("from_seq", l.durable.seq+1), zap.Uint64("to_seq", l.tip.seq))
		}
		l.written = l.durable
	}
	later := l.batch
	l.batch = &batch{}
	l.pending = l.pending[:0]
	b.done, b.err = true, err
	later.done, later.err = true, err
	l.tip = l.written
	if l.dirty {
		if rerr := l.repair(); rerr != nil {
			// The next flush retries the truncation before it writes.
			l.logger.Warn("cannot cut audit log back to the last good record", zap.Error(rerr))
		}
	}
}

// Close writes and syncs what is pending and closes the log. Records still
// waiting get the result.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("close audit log %s: %w", l.path, ErrClosed)
	}
	l.closed = true
	l.timer.Stop()
	for l.flushing {
		l.cond.Wait()
	}
	var errs []error
	if l.dirty && len(l.pending) == 0 {
		if err := l.repair(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(l.pending) > 0 || l.written != l.durable {
		// The final flush's error also goes to any waiters; Close reports
		// it because RecordAsync callers have no one else to hear it from.
		b := l.batch
		b.waiters++
		l.flushLocked()
		if b.err != nil {
			errs = append(errs, b.err)
		}
	}
	if j := l.j; j != nil {
		if j.ghost && !j.closed && j.blank(j.ghostOff) {
			j.ghost = false
		}
		if j.suspect && !j.closed && len(errs) == 0 {
			// A plain fsync could report success for bytes an earlier
			// failed one lost: write them again from the journal first.
			if err := j.resync(l.f, l.written); err != nil {
				errs = append(errs, fmt.Errorf("close audit log %s: %w", l.path, err))
			}
		}
		// The journal goes once the log holds all it held; a journal
		// found on Open therefore means a crash.
		if len(errs) == 0 {
			if err := l.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("fsync audit log %s: %w", l.path, err))
			}
		}
		if len(errs) == 0 {
			if err := j.remove(); err != nil {
				errs = append(errs, fmt.Errorf("remove audit journal %s: %w", j.path, err))
			} else if j.ghost {
				// Its removal must not come undone and bring the ghost
				// back.
				if err := syncDir(filepath.Dir(j.path)); err != nil {
					errs = append(errs, err)
				}
			}
		} else {
			j.close()
		}
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close audit log %s: %w", l.path, err))
	}
	return errors.Join(errs...)
}

// newEncoder returns the zap JSON encoder that writes every record body.
func newEncoder() zapcore.Encoder {
	return zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:    "ts",
		MessageKey: "event",
		EncodeTime: func(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
			enc.AppendString(t.UTC().Format(time.RFC3339Nano))
		},
		EncodeDuration: zapcore.NanosDurationEncoder,
		SkipLineEnding: true,
	})
}

// newBodyEncoder encodes an event's "event" member and its own members,
// without the chain position.
func newBodyEncoder() zapcore.Encoder {
	return zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		MessageKey:     "event",
		EncodeDuration: zapcore.NanosDurationEncoder,
		SkipLineEnding: true,
	})
}

// encodeBody returns {"event":…,<members>} for ev. The encoder is safe for
// concurrent use: EncodeEntry works on a clone.
func encodeBody(enc zapcore.Encoder, ev *Event) (*buffer.Buffer, error) {
	buf, err := enc.EncodeEntry(zapcore.Entry{Message: ev.Type}, []zapcore.Field{zap.Inline(eventFields{ev})})
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	out := buf.Bytes()
	if len(out) < 2 || out[0] != '{' || out[len(out)-1] != '}' {
		buf.Free()
		return nil, errors.New("encode audit record: encoder did not write an object")
	}
	return buf, nil
}

// assemble appends to dst the line {"seq":N,"ts":…,<body members>,
// "prev":…,"hash":…} built from an encoded body: byte for byte what
// encodeLine writes.
func assemble(dst, body []byte, seq uint64, prev *chainHash, ts time.Time) ([]byte, chainHash, error) {
	start := len(dst)
	line := append(dst, seqPrefix...)
	line = strconv.AppendUint(line, seq, 10)
	line = append(line, `,"ts":"`...)
	line = ts.UTC().AppendFormat(line, time.RFC3339Nano)
	line = append(line, `",`...)
	line = append(line, body[1:len(body)-1]...)
	line = append(line, `,"prev":"`...)
	line = append(line, prev[:]...)
	line = append(line, `"}`...)
	sum := sha256.Sum256(line[start:])
	line = append(line[:len(line)-1], hashKey...)
	line = hex.AppendEncode(line, sum[:])
	line = append(line, `"}`...)
	if n := len(line) - start; n > maxLineBytes {
		return dst, chainHash{}, fmt.Errorf("encode audit record: %d bytes exceeds the %d-byte limit", n, maxLineBytes)
	}
	if bytes.IndexByte(line[start:], '\n') >= 0 {
		return dst, chainHash{}, errors.New("encode audit record: newline in encoded record")
	}
	var h chainHash
	hex.Encode(h[:], sum[:])
	line = append(line, '\n')
	return line, h, nil
}

// encodeLine appends the line for ev to dst in one step. The log writes
// lines with encodeBody and assemble, which must produce the same
// bytes; tests hold the two to that. zap writes
// {"ts":…,"event":…,<members>,"prev":…}; seq goes first, ahead of zap's time
// key, and the hash member is added after the body is hashed.
func encodeLine(enc zapcore.Encoder, dst []byte, ev *Event, seq uint64, prev string, ts time.Time) ([]byte, string, error) {
	buf, err := enc.EncodeEntry(
		zapcore.Entry{Time: ts, Message: ev.Type},
		[]zapcore.Field{zap.Inline(eventFields{ev}), zap.String("prev", prev)},
	)
	if err != nil {
		return dst, "", fmt.Errorf("encode audit record: %w", err)
	}
	defer buf.Free()
	out := buf.Bytes()
	if len(out) < 2 || out[0] != '{' || out[len(out)-1] != '}' {
		return dst, "", errors.New("encode audit record: encoder did not write an object")
	}
	line := append(dst, seqPrefix...)
	line = strconv.AppendUint(line, seq, 10)
	line = append(line, ',')
	line = append(line, out[1:]...)
	sum := sha256.Sum256(line)
	line = append(line[:len(line)-1], hashKey...)
	line = hex.AppendEncode(line, sum[:])
	line = append(line, `"}`...)
	if len(line) > maxLineBytes {
		return dst, "", fmt.Errorf("encode audit record: %d bytes exceeds the %d-byte limit", len(line), maxLineBytes)
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		return dst, "", errors.New("encode audit record: newline in encoded record")
	}
	line = append(line, '\n')
	return line, hex.EncodeToString(sum[:]), nil
}

// openFile creates or opens the log for appending, mode 0600 in a 0700
// directory, and takes an exclusive lock so that two processes never
// interleave records.
func openFile(path string, fsync bool, logger *zap.Logger) (File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory %s: %w", dir, err)
	}
	created := true
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if errors.Is(err, fs.ErrExist) {
		created = false
		// Not through a symbolic link: one planted where a rotated log
		// was would send the records (request paths an agent chose
		// among them) into whatever file it names, a shell's start-up
		// file say.
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|noFollow, 0)
		if err != nil {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil, fmt.Errorf("%s is a symbolic link; countersign does not follow links to its audit log: set audit.path to the file itself", path)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if !created {
		// A FIFO there would take the records and then block every
		// write once its buffer filled; a file with other names (a backup
		// made with cp -al) would have its appends and repairs land in
		// them too.
		fi, err := f.Stat()
		switch {
		case err != nil:
		case !fi.Mode().IsRegular():
			err = fmt.Errorf("%s is a %s entry, not a regular file: move it aside and start again, or set audit.path to a file", path, fi.Mode().Type())
		case links(fi) > 1:
			err = fmt.Errorf("%s has other names (hard links, as a backup made with cp -al leaves); countersign appends to and repairs its audit log, so give it a file of its own, which keeps what it holds: cp %s %s.new && mv %s.new %s", path, path, path, path, path)
		}
		if err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// The records name what agents did, with request paths and policy
		// input: narrow an existing log's mode as the journal's is, and
		// refuse to write to one that stays open to other users.
		if err := f.Chmod(0o600); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%s has mode %v and cannot be made 0600 (%w): chmod 600 it, or set audit.path to a file countersign's user owns", path, fi.Mode().Perm(), err)
		}
		logger.Warn("audit log was open to other users; narrowed it to mode 0600",
			zap.String("path", path), zap.Stringer("was", fi.Mode().Perm()))
	}
	if created && fsync {
		// Make the new directory entry durable too, or a crash could lose
		// the whole file along with records reported as synced.
		if err := syncDir(dir); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// stdoutFile adapts standard output: nothing to sync, resume or repair.
type stdoutFile struct{ w io.Writer }

func (s stdoutFile) Write(p []byte) (int, error) { return s.w.Write(p) }
func (stdoutFile) ReadAt([]byte, int64) (int, error) {
	return 0, errors.New("standard output is not readable")
}
func (stdoutFile) Sync() error                { return nil }
func (stdoutFile) Truncate(int64) error       { return nil }
func (stdoutFile) Stat() (fs.FileInfo, error) { return nil, errors.New("standard output has no size") }
func (stdoutFile) Close() error               { return nil }

// resumed is what Open learns from an existing file.
type resumed struct {
	pos        position
	torn       int64  // bytes after the last newline
	tornSHA256 string // their hash, for the recovered record
	// damaged, when set, is why the last line could not be read: only a
	// journal's rewrite of the log after its base can open it.
	damaged error
}

// resume finds the last complete line by reading backwards from the end of
// the file, checks it against its own hash and returns the chain position
// after it.
func resume(f File) (resumed, error) {
	r := resumed{pos: position{hash: hashOf(zeroHash)}}
	fi, err := f.Stat()
	if err != nil {
		return r, err
	}
	size := fi.Size()
	if size == 0 {
		return r, nil
	}
	end, err := lastNewline(f, size, maxLineBytes+1)
	if err != nil {
		return r, err
	}
	if end < 0 && size > maxLineBytes {
		return r, fmt.Errorf("no line break in the last %d bytes", maxLineBytes)
	}
	if end >= 0 {
		start, err := lastNewline(f, end, maxLineBytes+1)
		if err != nil {
			return r, err
		}
		start++
		if start == 0 && end > maxLineBytes {
			return r, fmt.Errorf("last line is longer than %d bytes", maxLineBytes)
		}
		line := make([]byte, end-start)
		if _, err := f.ReadAt(line, start); err != nil {
			return r, fmt.Errorf("read last line: %w", err)
		}
		l, reason := parseLine(line)
		if reason != "" {
			n, err := countLines(f, start)
			if err != nil {
				return r, err
			}
			return r, &ChainError{Line: n + 1, Reason: reason}
		}
		r.pos = position{seq: l.seq, hash: hashOf(l.hash), size: end + 1}
	}
	r.torn = size - r.pos.size
	if r.torn > 0 {
		// A crash leaves the start of a record, or zeros where the file
		// system extended the file but lost the data. Anything else was not
		// written by Log (an edit, or the wrong file) and is not cut away.
		head := make([]byte, min(r.torn, int64(len(seqPrefix))))
		if _, err := f.ReadAt(head, r.pos.size); err != nil {
			return r, fmt.Errorf("read torn tail: %w", err)
		}
		if head[0] != 0 && !bytes.HasPrefix([]byte(seqPrefix), head) {
			n, err := countLines(f, r.pos.size)
			if err != nil {
				return r, err
			}
			return r, &ChainError{Line: n + 1, Reason: fmt.Sprintf("the log ends with %d bytes that are not a record", r.torn)}
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, r.pos.size, r.torn)); err != nil {
			return r, fmt.Errorf("read torn tail: %w", err)
		}
		r.tornSHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return r, nil
}

// lastNewline returns the offset of the last '\n' before offset end, looking
// at most limit bytes back, or -1 if there is none.
func lastNewline(r io.ReaderAt, end, limit int64) (int64, error) {
	buf := make([]byte, 32<<10)
	stop := max(end-limit, 0)
	for end > stop {
		n := min(int64(len(buf)), end-stop)
		chunk := buf[:n]
		if _, err := r.ReadAt(chunk, end-n); err != nil {
			return 0, fmt.Errorf("read at offset %d: %w", end-n, err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return end - n + int64(i), nil
		}
		end -= n
	}
	return -1, nil
}

// countLines counts the newlines before offset end. Open uses it only to
// name the bad line in an error.
func countLines(r io.ReaderAt, end int64) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for off := int64(0); off < end; {
		chunk := buf[:min(int64(len(buf)), end-off)]
		if _, err := r.ReadAt(chunk, off); err != nil {
			return 0, fmt.Errorf("read at offset %d: %w", off, err)
		}
		n += bytes.Count(chunk, []byte{'\n'})
		off += int64(len(chunk))
	}
	return n, nil
}

// keepDiscarded writes bytes about to be cut from the log at path to a new
// file beside it (path.torn-TIME, mode 0600), synced with its directory,
// and returns its name.
func keepDiscarded(path string, data []byte, now func() time.Time) (string, error) {
	base := path + ".torn-" + now().UTC().Format("20060102T150405Z")
	name := base
	for i := 2; ; i++ {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			name = fmt.Sprintf("%s-%d", base, i)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("keep the torn tail of audit log %s before cutting it: %w", path, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = syncDir(filepath.Dir(name))
		}
		if err != nil {
			_ = os.Remove(name)
			return "", fmt.Errorf("keep the torn tail of audit log %s in %s before cutting it: %w", path, name, err)
		}
		return name, nil
	}
}

// cannotWriteBeside reports whether err says the log's directory may not
// be written (permissions, a read-only file system).
func cannotWriteBeside(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}
