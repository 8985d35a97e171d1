package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"go.uber.org/zap"
)

// The journal makes a group commit durable without an fsync of the log.
//
// An fsync after an append must also commit the file's new size: on ext4
// that is a commit of the file system's own journal. An overwrite of blocks
// that are already allocated and written needs only the data to reach the
// disk. On the benchmark machine's disk, with 1.5 KiB records, an append
// plus fsync took 200–220 µs (95–117 µs of CPU), and an append plus an
// O_DSYNC overwrite in a preallocated file 140–180 µs (65–90 µs of CPU).
//
// With a journal, the log is appended to as before but not synced; each
// synced group's bytes are written, as one entry, into a preallocated file
// beside the log that is opened with O_DSYNC. The log itself is synced only
// when the journal is full (or on Close), after which the journal starts a
// new generation from its beginning.
//
// Each generation's header names the log position it starts from: the
// last record (seq and hash) and the log's size when the log was last
// synced. The generation's entries hold every log byte after it that a
// caller waited for. Recovery does not trust the log's bytes after that
// point, even where they read back whole: after a failed fsync Linux marks
// the pages clean and a later fsync reports success without writing them,
// and a process that opens the file afterwards is never told. So Open,
// whenever a journal is there (countersign stopped without closing the
// log), and the running log, after any failed fsync of the log, cut the
// log back to the generation's start and write the journal's records
// again, then sync, before anything else goes to the log. Open keeps the
// log's own records beyond the journal's last (records nobody waited for)
// where they continue the chain, and says in its "recovered" record how
// many records only the journal had.
//
// A journal whose start is not in the log (the log is shorter, or holds
// another record there) means the log lost records it had made durable,
// or the journal belongs to another log: Open refuses and says what to
// do, rather than guess.
//
// The file is opened with O_DIRECT too where the file system takes it: the
// write then goes to the disk without the page cache, another 10–25 µs
// less per group. Every write is therefore whole 4 KiB blocks from an
// aligned buffer.
//
// Layout: a header block (magic, generation, base seq, size and hash,
// CRC-32C) at offset 0, then
// entries from journalHead on, each starting on a block: magic, generation,
// length, CRC-32C of the generation, length and data, then the data (whole
// lines), then zeros to the end of its last block. Entries of one
// generation are written one after another and never rewound; a new
// generation gets a random number, so entries of an older one beyond the
// current end are never read as current.
const (
	// journalSize is the journal file's size. Entries take whole 4 KiB
	// blocks, so it holds 1,023 groups between two fsyncs of the log: as
	// many records at one connection, ten times that under load.
	journalSize  = 4 << 20
	journalBlock = 4096
	journalHead  = journalBlock
	journalMagic = "CSAUDJ02"
	entryMagic   = "CSJE"
	entryHeadLen = 4 + 8 + 4 + 4
	// The header: magic, generation, the base position (seq, size, hash),
	// CRC-32C of all that.
	journalHeadLen = len(journalMagic) + 8 + 8 + 8 + hashHex + 4
	// maxLogTail bounds what Open reads of the log after a journal's base:
	// more means the journal is older than the log's end, which a journal
	// in use never is.
	maxLogTail = 64 << 20
	// maxEntryData is the most data one entry holds.
	maxEntryData = journalSize - journalHead - entryHeadLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// JournalFile is what the journal needs from its file. A WriteAt must be on
// stable storage when it returns: the default opener uses O_DSYNC.
type JournalFile interface {
	io.ReaderAt
	io.WriterAt
	Stat() (fs.FileInfo, error)
	Close() error
}

// journal is the write-ahead file of a durable log. Only the flushing
// caller uses it, or Open and Close while no flush runs.
type journal struct {
	f      JournalFile
	path   string
	logger *zap.Logger
	gen    uint64
	// base is where the generation starts in the log: the log was synced
	// through it.
	base position
	// off is where the next entry goes.
	off int64
	// suspect is set when an fsync of the log failed: its bytes after base
	// may never reach the disk, whatever reads of them show. resync must
	// write them again before the log is written or synced again.
	suspect bool
	// held is what was written to the log since the last entry without
	// being synced (records nobody waited for): the next entry carries it
	// first, so the journal always holds every log byte after the last
	// fsync of the log.
	held []byte
	// stale is set when held had to be dropped or an entry failed: the log
	// must be synced, and a new generation begun, before the next entry.
	stale bool
	// disabled is set once a new generation could not be begun; the log is
	// then synced by fsync as if there were no journal.
	disabled bool
	// ghost is set when an entry's write failed and the fsync of the log
	// after it failed too. The entry may still read back whole (Linux keeps
	// the data of a failed O_DSYNC write in the page cache), and its
	// records, discarded, are about to have their seqs reused: a replay
	// would restore records callers were told failed, or refuse a log that
	// is fine. Nothing more goes to the log until retire has made the
	// generation holding it unreadable.
	ghost bool
	// ghostOff is where the ghost entry starts.
	ghostOff int64
	// closed is set once f is closed.
	closed bool
	buf    []byte
}

// openJournalFile opens or creates the journal at path, never through a
// symbolic link. created reports a new file, whose directory entry must be
// synced once it is initialised.
func openJournalFile(path string) (f JournalFile, created bool, err error) {
	file, created, err := openJournalFlags(path, oDSync|oDirect)
	if errors.Is(err, syscall.EINVAL) && oDirect != 0 {
		// A file system without O_DIRECT (tmpfs on older kernels, some
		// FUSE ones): the page cache and O_DSYNC alone.
		file, created2, err2 := openJournalFlags(path, oDSync)
		return file, created || created2, err2
	}
	return file, created, err
}

func openJournalFlags(path string, flags int) (f *os.File, created bool, err error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		file, err = openExistingJournal(path, os.O_RDWR|flags)
		return file, false, err
	}
	return file, err == nil, err
}

// openExistingJournal opens a journal an earlier run left, for writing
// (flags has os.O_RDWR) or only to replay it. It must be a regular file: a
// FIFO would block the open, and a link (symbolic or hard) would have the
// journal overwrite, or be read from, something else. The advice on
// refusal is to move the file aside, never to delete it: a journal left by
// a crash may hold records the log lacks.
func openExistingJournal(path string, flags int) (*os.File, error) {
	writing := flags&os.O_RDWR != 0
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	refuse := func(what string) error {
		return fmt.Errorf("%s is %s, not a regular file of its own: move it aside (if a crash left it there, keep it: it may hold records the audit log lacks) and start again", path, what)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, refuse("a symbolic link")
	case !fi.Mode().IsRegular():
		return nil, refuse("a " + fi.Mode().Type().String() + " entry")
	}
	file, err := os.OpenFile(path, flags|noFollow, 0)
	if err != nil {
		return nil, err
	}
	ofi, err := file.Stat()
	switch {
	case err != nil:
	case !os.SameFile(fi, ofi):
		err = refuse("a file that changed while it was opened")
	case writing && links(ofi) > 1:
		// Overwritten from its start, it would clobber its other names.
		err = fmt.Errorf("%s has other names (hard links, as a backup made with cp -al leaves); countersign overwrites its audit journal, so give it a file of its own, which keeps what it holds: cp %s %s.new && mv %s.new %s", path, path, path, path, path)
	case writing && ofi.Mode().Perm()&0o077 != 0:
		if cerr := file.Chmod(0o600); cerr != nil {
			err = fmt.Errorf("make %s mode 0600: %w", path, cerr)
		}
	}
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return file, nil
}

// journalState is what a journal file holds: its generation, the log
// position that generation starts from, and the data of its entries.
type journalState struct {
	ok   bool // a valid header
	gen  uint64
	base position
	data []byte
}

// readJournal reads the journal's header and the data of the entries of
// its current generation, in order.
func readJournal(f JournalFile) (journalState, error) {
	var st journalState
	fi, err := f.Stat()
	if err != nil {
		return st, err
	}
	size := min(fi.Size(), journalSize)
	if size < journalHead {
		return st, nil
	}
	// Whole blocks into an aligned buffer, as O_DIRECT wants them; a file
	// cut short by a crash while it was made ends in a short read.
	all := alignedBuf(int(blocks(size)))
	n, err := f.ReadAt(all, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return st, fmt.Errorf("read: %w", err)
	}
	size = min(size, int64(n))
	all = all[:size]
	if st.gen, st.base, st.ok = parseJournalHeader(all); !st.ok {
		return st, nil
	}
	for off := int64(journalHead); off+entryHeadLen <= size; {
		e := all[off:]
		if string(e[:4]) != entryMagic || binary.LittleEndian.Uint64(e[4:12]) != st.gen {
			break
		}
		n := int64(binary.LittleEndian.Uint32(e[12:16]))
		if n == 0 || n > size-off-entryHeadLen {
			break
		}
		crc := crc32.Update(crc32.Checksum(e[4:16], castagnoli), castagnoli, e[entryHeadLen:entryHeadLen+n])
		if crc != binary.LittleEndian.Uint32(e[16:20]) {
			break // torn: its write never completed, so nobody was told it had
		}
		st.data = append(st.data, e[entryHeadLen:entryHeadLen+n]...)
		off += blocks(entryHeadLen + n)
	}
	return st, nil
}

func parseJournalHeader(b []byte) (gen uint64, base position, ok bool) {
	if len(b) < journalHeadLen || string(b[:len(journalMagic)]) != journalMagic {
		return 0, position{}, false
	}
	n := journalHeadLen - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:n+4]) {
		return 0, position{}, false
	}
	b = b[len(journalMagic):]
	gen = binary.LittleEndian.Uint64(b[0:8])
	base.seq = binary.LittleEndian.Uint64(b[8:16])
	base.size = int64(binary.LittleEndian.Uint64(b[16:24]))
	if base.size < 0 || !isLowerHex(b[24:24+hashHex]) {
		return 0, position{}, false
	}
	copy(base.hash[:], b[24:24+hashHex])
	return gen, base, true
}

// recovery is what Open writes into the log after a journal's base, and
// what it reports of that.
type recovery struct {
	// tail is what the log holds after the base: the journal's records,
	// then the log's own records after them that continue the chain.
	tail []byte
	// restored counts the journal's records the log did not read back
	// whole, from fromSeq on.
	restored int
	fromSeq  uint64
	// discarded is the log's bytes after the base that are not kept: a
	// torn or lost stretch and everything after it.
	discarded []byte
	// keptIn is the file discarded was copied to before the cut; notKept
	// says why there is none, when the directory may not be written.
	keptIn, notKept string
	// matched counts the log's lines that are journal records, by hash.
	matched int
}

// recoverTail decides what the log must hold after st.base, given
// logTail, the log's bytes after it. The log's own lines are read in
// order while they continue the chain from the base: those the journal
// also has must be the same records, and those after the journal's last
// are kept; the first line that does neither (torn, zeroed, repeated)
// ends what counts of the log. It fails if the journal's records do not
// chain from its base, or the log holds another record at a seq the
// journal has.
func recoverTail(st journalState, logTail []byte, journalPath, logPath string) (recovery, error) {
	var rec recovery
	var hashes []string // of the journal's records, from base.seq+1
	prev, seq := string(st.base.hash[:]), st.base.seq
	for start := 0; start < len(st.data); {
		i := bytes.IndexByte(st.data[start:], '\n')
		l, reason := link{}, "no newline"
		if i >= 0 {
			l, reason = parseLine(st.data[start : start+i])
		}
		if reason != "" || l.seq != seq+1 || l.prev != prev {
			return rec, fmt.Errorf("the audit journal %s breaks its own chain after record %d: move it aside (keep it for investigation) and start again", journalPath, seq)
		}
		hashes = append(hashes, l.hash)
		prev, seq = l.hash, l.seq
		start += i + 1
	}
	rec.tail = append([]byte(nil), st.data...)
	lprev, lseq := string(st.base.hash[:]), st.base.seq
	kept := 0
	for kept < len(logTail) {
		i := bytes.IndexByte(logTail[kept:], '\n')
		if i < 0 {
			break // a torn last line
		}
		line := logTail[kept : kept+i+1]
		l, reason := parseLine(line[:i])
		if reason != "" || l.seq != lseq+1 || l.prev != lprev {
			break // where data was lost: nothing after it counts
		}
		if l.seq <= seq {
			if hashes[l.seq-st.base.seq-1] != l.hash {
				return rec, fmt.Errorf("the audit journal %s does not match the log %s: its record %d is not the log's (the journal belongs to another log, or the log was edited). Keep both files for investigation, move the journal aside, and start again", journalPath, logPath, l.seq)
			}
			rec.matched++
		} else {
			rec.tail = append(rec.tail, line...)
		}
		lprev, lseq = l.hash, l.seq
		kept += i + 1
	}
	if seq > lseq {
		rec.restored, rec.fromSeq = int(seq-lseq), lseq+1
	}
	rec.discarded = logTail[kept:]
	return rec, nil
}

// prepare makes the file journalSize bytes of written blocks (an overwrite
// of allocated, written blocks is what makes the journal cheap) and begins
// a generation.
func (j *journal) prepare(created bool, base position) error {
	fi, err := j.f.Stat()
	if err != nil {
		return err
	}
	zeros := alignedBuf(1 << 20)
	// From the start of the block the file ends in: O_DIRECT writes whole
	// blocks. What the journal held is in the log by now.
	for off := fi.Size() &^ (journalBlock - 1); off < journalSize; {
		n := min(int64(len(zeros)), journalSize-off)
		if _, err := j.f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	if created || fi.Size() < journalSize {
		// A journal whose directory entry a crash loses would lose the
		// records it holds. A short file may be new too: where O_DIRECT
		// is refused, the first open creates the file and then fails.
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			return err
		}
	}
	return j.restart(base)
}

// restart begins a new generation from base, the log's end: the entries
// written so far are no longer read. Call it only when the log has been
// synced through base.
func (j *journal) restart(base position) error {
	var g [8]byte
	_, _ = rand.Read(g[:])
	gen := binary.LittleEndian.Uint64(g[:])
	head := alignedBuf(journalHead)
	b := append(head[:0], journalMagic...)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = binary.LittleEndian.AppendUint64(b, base.seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(base.size))
	b = append(b, base.hash[:]...)
	binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := j.f.WriteAt(head, 0); err != nil {
		return fmt.Errorf("write audit journal %s: %w", j.path, err)
	}
	j.gen, j.base, j.off, j.stale = gen, base, journalHead, false
	return nil
}

// resync writes the log's bytes from the generation's base to durable
// again, from the journal, and syncs the log: after a failed fsync of the
// log they may never reach the disk otherwise. An error leaves the journal
// suspect, and the caller must not write.
func (j *journal) resync(log File, durable position) error {
	st, err := readJournal(j.f)
	if err != nil {
		return fmt.Errorf("read audit journal %s: %w", j.path, err)
	}
	need := durable.size - j.base.size
	if !st.ok || st.gen != j.gen || need < 0 || int64(len(st.data)) < need {
		return fmt.Errorf("the audit journal %s no longer holds the records after the log's last fsync", j.path)
	}
	if err := log.Truncate(j.base.size); err != nil {
		return err
	}
	if n, err := log.Write(st.data[:need]); err != nil || int64(n) != need {
		return errors.Join(err, io.ErrShortWrite)
	}
	if err := log.Sync(); err != nil {
		return err
	}
	j.suspect = false
	return nil
}

// hold keeps data, just written to the log without a sync, for the next
// entry.
func (j *journal) hold(data []byte) {
	if j.disabled || j.stale {
		return
	}
	if len(j.held)+len(data) > maxEntryData {
		j.held, j.stale = j.held[:0], true
		return
	}
	j.held = append(j.held, data...)
}

// commit makes data, just written to the log, durable, together with what
// hold kept: as a journal entry when it fits, else by an fsync of log
// followed by a new generation. An error means an fsync of log failed.
func (j *journal) commit(data []byte, log File, end position) error {
	failed := false
	if !j.disabled && !j.stale {
		n := blocks(int64(entryHeadLen + len(j.held) + len(data)))
		if len(j.held)+len(data) == 0 {
			return nil
		}
		if j.off+n <= journalSize {
			err := j.writeEntry(data)
			j.held = j.held[:0]
			if err == nil {
				j.off += n
				return nil
			}
			j.logger.Warn("audit journal write failed; syncing the log instead", zap.String("path", j.path), zap.Error(err))
			// The entry may have landed anyway (see ghost): blank its
			// first block, which ends the generation before it.
			failed = !j.blank(j.off)
		}
	}
	j.held, j.stale = j.held[:0], true
	if err := log.Sync(); err != nil {
		// The records will be discarded. If the failed entry landed after
		// all, it must not outlive them (see ghost). Entries that were not
		// attempted hold only records the log keeps, but the log may lose
		// its copy of them (see suspect).
		if failed && !j.ghost {
			j.ghost, j.ghostOff = true, j.off
		}
		j.suspect = !j.disabled
		return err
	}
	if j.disabled {
		return nil
	}
	if err := j.restart(end); err != nil {
		j.disable(err)
	}
	return nil
}

// disable stops using the journal after a new generation could not begin,
// when the log holds all it held: it is removed, so that a journal found on
// Open is always one in use. Later records are synced the plain way.
func (j *journal) disable(cause error) {
	j.disabled = true
	j.logger.Warn("audit journal disabled; every group commit now syncs the log", zap.String("path", j.path), zap.Error(cause))
	// Unreadable first: a journal whose base falls ever further behind
	// the log would stop the next Open after a crash.
	blanked := j.closed || j.blank(0)
	if err := j.remove(); err != nil {
		if !blanked {
			j.logger.Error("cannot blank or remove the disabled audit journal; move it aside before countersign next starts after a crash", zap.String("path", j.path), zap.Error(err))
		} else {
			j.logger.Warn("cannot remove the disabled audit journal", zap.String("path", j.path), zap.Error(err))
		}
		return
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		j.logger.Warn("cannot sync the directory of the disabled audit journal", zap.String("path", j.path), zap.Error(err))
	}
}

func (j *journal) writeEntry(data []byte) error {
	size := int(blocks(int64(entryHeadLen + len(j.held) + len(data))))
	if cap(j.buf) < size {
		j.buf = alignedBuf(max(size, 64<<10))
	}
	b := append(j.buf[:0], entryMagic...)
	b = binary.LittleEndian.AppendUint64(b, j.gen)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(j.held)+len(data)))
	b = append(b, 0, 0, 0, 0)
	b = append(b, j.held...)
	b = append(b, data...)
	crc := crc32.Update(crc32.Checksum(b[4:16], castagnoli), castagnoli, b[entryHeadLen:])
	binary.LittleEndian.PutUint32(b[16:20], crc)
	clear(b[len(b):size])
	_, err := j.f.WriteAt(b[:size], j.off)
	if cap(j.buf) > 1<<20 {
		j.buf = nil
	}
	return err
}

// blocks rounds n up to whole journal blocks.
func blocks(n int64) int64 {
	return (n + journalBlock - 1) &^ (journalBlock - 1)
}

// alignedBuf returns n zero bytes starting on a journal block boundary in
// memory, as O_DIRECT needs.
func alignedBuf(n int) []byte {
	b := make([]byte, n+journalBlock)
	k := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (journalBlock - 1))
	if k != 0 {
		k = journalBlock - k
	}
	return b[k : k+n : k+n]
}

// retire makes a ghost generation unreadable when blanking the ghost
// (which write tries first) failed, before more records go to the log: it
// syncs the log (which then durably ends at the last record kept, so the
// generation's good entries are no longer needed) and begins a new
// generation, or, if that fails, removes the file and disables the
// journal. An error means the ghost may still be read: the caller must not
// write.
func (j *journal) retire(log File, at position) error {
	// A crash between this fsync and the new generation could still read
	// the ghost. So could one at any time since the failed commit: the
	// ghost lives until the next write or Close blanks it. Both need a
	// journal that could not be written and a log that could not be
	// synced, then a crash; the record then restored is one reported
	// failed, and the "recovered" record says it came from the journal.
	if err := log.Sync(); err != nil {
		j.suspect = true
		return err
	}
	if err := j.restart(at); err == nil {
		j.ghost = false
		return nil
	}
	if err := j.remove(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return err
	}
	j.ghost, j.disabled = false, true
	j.logger.Warn("audit journal removed after failures; every group commit now syncs the log", zap.String("path", j.path))
	return nil
}

// blank overwrites the block at off with zeros, ending the generation
// there, and reports whether that worked.
func (j *journal) blank(off int64) bool {
	_, err := j.f.WriteAt(alignedBuf(journalBlock), off)
	return err == nil
}

// remove deletes the journal once the log holds everything durably.
func (j *journal) remove() error {
	var err error
	if !j.closed {
		err = j.f.Close()
		j.closed = true
	}
	if rerr := os.Remove(j.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// close closes the file, leaving it in place.
func (j *journal) close() {
	if !j.closed {
		_ = j.f.Close()
		j.closed = true
	}
}
