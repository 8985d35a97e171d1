package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// RepairResult says what Repair did.
type RepairResult struct {
	// Cut is false when the chain was intact and nothing changed.
	Cut bool
	// Line is the first bad line, Reason what was wrong with it.
	Line   int
	Reason string
	// Bytes were cut from Offset on; KeptIn holds the whole log as it was.
	Offset, Bytes int64
	SHA256        string
	KeptIn        string
}

// Repair cuts a log whose chain breaks before its end back to the last
// record before the break, for an operator who has looked at it (`audit
// repair`). Open cuts only a torn last record by itself. A break further
// back, which a power cut can leave in a log without the journal (a page
// of records lost, later ones kept), would otherwise keep countersign from
// starting or fail every verify. The log as it was is kept beside it, and
// a "recovered" record in the repaired log says what was cut. Repair
// refuses a log that a countersign process is writing (where flock(2)
// exists to tell), one with a journal (opening the log replays it first,
// which may restore what was lost), and one whose first line is already
// bad.
func Repair(path string, now func() time.Time, logger *zap.Logger) (RepairResult, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	var res RepairResult
	if _, err := os.Lstat(path); err != nil {
		return res, err
	}
	f, err := openFile(path, false, logger)
	if errors.Is(err, ErrInUse) {
		return res, fmt.Errorf("%s: countersign is writing this log; stop it before repairing: %w", path, err)
	}
	if err != nil {
		return res, err
	}
	file, ok := f.(*os.File)
	if !ok {
		_ = f.Close()
		return res, fmt.Errorf("%s: not a file", path)
	}
	defer func() {
		if file != nil {
			_ = file.Close()
		}
	}()
	// Checked under the lock: a countersign that started and crashed
	// before it could leave one.
	if _, err := os.Lstat(path + ".journal"); err == nil {
		return res, fmt.Errorf("%s.journal exists: start countersign on this log first (it replays the journal, which may restore what the log lost), then verify it again; if countersign cannot open the log, keep a copy of the journal, move it aside, and repair", path)
	}
	fi, err := file.Stat()
	if err != nil {
		return res, err
	}
	size := fi.Size()
	_, verr := Verify(io.NewSectionReader(file, 0, size))
	var ce *ChainError
	if verr == nil {
		return res, nil
	}
	if !errors.As(verr, &ce) {
		return res, verr
	}
	if ce.Line <= 1 {
		return res, fmt.Errorf("%s: line 1 is already bad (%s): not a countersign audit log, or damaged from its start; nothing to keep, so nothing is cut", path, ce.Reason)
	}
	off, err := lineStart(file, ce.Line)
	if err != nil {
		return res, err
	}
	res = RepairResult{Cut: true, Line: ce.Line, Reason: ce.Reason, Offset: off, Bytes: size - off}

	// The whole log as it was, beside it, before anything is cut.
	res.KeptIn = path + ".broken-" + now().UTC().Format("20060102T150405Z")
	h := sha256.New()
	if err := copyOut(file, size, res.KeptIn); err != nil {
		return res, err
	}
	if _, err := io.Copy(h, io.NewSectionReader(file, off, size-off)); err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	// From here on the log is cut: an error says so, and where the log
	// as it was is.
	cutErr := func(what string, err error) error {
		return fmt.Errorf("%s: %s: %w; the log is cut at byte %d (line %d) and the cut is not recorded in it; the log as it was is in %s", path, what, err, off, res.Line, res.KeptIn)
	}
	if err := file.Truncate(off); err != nil {
		return res, fmt.Errorf("cut %s at byte %d: %w (the log as it was is in %s)", path, off, err, res.KeptIn)
	}
	if err := file.Sync(); err != nil {
		return res, cutErr("fsync", err)
	}
	// The record of the cut goes through the file still locked: a
	// countersign starting meanwhile would find a log that ends well and
	// write on without it.
	locked := file
	file = nil
	l, err := Open(Options{Path: path, Fsync: true, Now: now, OpenFile: func(string) (File, error) { return locked, nil }}, logger)
	if err != nil {
		_ = locked.Close()
		return res, cutErr("reopen", err)
	}
	rerr := l.Record(&Event{Type: "recovered",
		Detail: fmt.Sprintf("audit repair cut the log at line %d (%s): %d bytes, kept with the rest of the log in %s", res.Line, res.Reason, res.Bytes, filepath.Base(res.KeptIn)),
		Fields: map[string]any{"discarded_bytes": res.Bytes, "discarded_sha256": res.SHA256, "cut_at_line": res.Line,
			"cut_at_byte": res.Offset, "reason": res.Reason, "kept_in": filepath.Base(res.KeptIn)}})
	if cerr := l.Close(); rerr == nil {
		rerr = cerr
	}
	if rerr != nil {
		return res, cutErr("record the repair", rerr)
	}
	return res, nil
}

// lineStart returns the offset at which 1-based line n starts.
func lineStart(r io.ReaderAt, n int) (int64, error) {
	buf := make([]byte, 64<<10)
	var off int64
	for seen := 1; seen < n; {
		m, err := r.ReadAt(buf, off)
		for i := 0; i < m; i++ {
			if buf[i] == '\n' {
				seen++
				if seen == n {
					return off + int64(i) + 1, nil
				}
			}
		}
		off += int64(m)
		if err != nil {
			return 0, fmt.Errorf("find line %d: %w", n, err)
		}
	}
	return 0, nil
}

// copyOut writes r's first size bytes to a new file at path, durably.
func copyOut(r io.ReaderAt, size int64, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already: move it away and repair again", path)
	}
	if err != nil {
		return err
	}
	fail := func(err error) error {
		// A partial copy must not be taken for the whole log later.
		_ = out.Close()
		_ = os.Remove(path)
		return fmt.Errorf("keep the log in %s: %w", path, err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(r, 0, size)); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("keep the log in %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}
