package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/audit"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the audit log",
	}
	var expect []string
	verify := &cobra.Command{
		Use:   "verify [--expect SEQ:HASH] FILE",
		Short: "Check the hash chain; exit 1 and name the first bad line on any break",
		Long: `Check the hash chain; exit 1 and name the first bad line on any break.

The chain shows edits, deletions and reordering inside the file, but not
records cut off its end or a file rewritten with fresh hashes. For that,
keep the SEQ:HASH that verify prints somewhere the agent cannot write, and
pass it back with --expect: the log must still hold that record, unchanged.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var anchors []audit.Anchor
			for _, s := range expect {
				a, err := audit.ParseAnchor(s)
				if err != nil {
					return usageError(fmt.Errorf("--expect: %w", err))
				}
				anchors = append(anchors, a)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return usageError(err)
			}
			defer f.Close()
			live := audit.Writing(f)
			if _, err := os.Lstat(args[0] + ".journal"); err == nil {
				// Said whether or not a writer holds the lock: anyone who
				// can open the log can hold it.
				fmt.Fprintf(e.stderr, "note: %s.journal exists: countersign is writing this log now, or stopped without closing it; "+
					"the records the journal holds after the log's last one are appended when countersign next opens the log\n", args[0])
			}
			verify := audit.Verify
			if live {
				// Its last line may be half written, and its last records
				// not yet durable.
				verify = audit.VerifyWritten
			}
			res, err := verify(f, anchors...)
			if err != nil {
				var ce *audit.ChainError
				if errors.As(err, &ce) {
					return checkFailed(fmt.Errorf("%s:%d: chain broken: %s", args[0], ce.Line, ce.Reason))
				}
				return checkFailed(fmt.Errorf("%s: %w", args[0], err))
			}
			if res.Records == 0 {
				fmt.Fprintf(e.stdout, "%s: ok, 0 records: the log is empty\n", args[0])
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: ok, %d records, chain intact (last seq %d, hash %s)\n", args[0], res.Records, res.LastSeq, res.LastHash)
			if live {
				partial := ""
				if res.Partial {
					partial = "; its last line, still being written, was not checked"
				}
				fmt.Fprintf(e.stderr, "note: countersign is writing this log now%s. Its last records may not be durable yet, and a failed write can still take them back: "+
					"take an --expect anchor from a log countersign has closed, or from a record some way back\n", partial)
			}
			fmt.Fprintf(e.stdout, "to check later that none of them were cut off or rewritten: countersign audit verify --expect %s FILE\n",
				audit.Anchor{Seq: res.LastSeq, Hash: res.LastHash})
			return nil
		},
	}
	verify.Flags().StringArrayVar(&expect, "expect", nil, "SEQ:HASH of a record the log must still hold, as an earlier verify printed it (repeatable)")
	cmd.AddCommand(verify)

	cmd.AddCommand(&cobra.Command{
		Use:   "repair FILE",
		Short: "Cut a log whose chain breaks before its end back to the last good record, keeping the log as it was beside it",
		Long: "A power cut can leave a log without its journal (audit.journal: false, or not on Linux) with records lost " +
			"before later ones; verify then fails for good, and countersign may not start. repair cuts the log at the first " +
			"bad line, keeps the whole log as it was in FILE.broken-TIME, and writes a \"recovered\" record saying what it cut. " +
			"Look at what verify reports first: a break in the middle of a log can also be an edit.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := audit.Repair(args[0], time.Now, nil)
			if errors.Is(err, fs.ErrNotExist) {
				return usageError(err)
			}
			if err != nil {
				return checkFailed(err)
			}
			if !res.Cut {
				fmt.Fprintf(e.stdout, "%s: the chain is intact; nothing to repair\n", args[0])
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: cut at line %d (%s): %d bytes from byte %d, sha256 %s\nthe log as it was: %s\n",
				args[0], res.Line, res.Reason, res.Bytes, res.Offset, res.SHA256, res.KeptIn)
			return nil
		},
	})

	var f audit.Filter
	var follow bool
	tail := &cobra.Command{
		Use:   "tail [-f] [--session ID] [--decision D] FILE",
		Short: "Print audit records in a compact form, optionally following new ones",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.Open(args[0])
			if err != nil {
				return usageError(err)
			}
			defer file.Close()
			var wait func(context.Context) error
			if follow {
				wait = followWait(args[0], file, audit.Poll(250*time.Millisecond))
			}
			// Tail notices a log cut back in place through file itself.
			return audit.Tail(cmd.Context(), file, e.stdout, f, wait)
		},
	}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing records as they are appended")
	tail.Flags().StringVar(&f.Session, "session", "", "only this session (id or name)")
	tail.Flags().StringVar(&f.Decision, "decision", "", "only this decision (allow, deny, approve, …)")
	tail.Flags().StringVar(&f.Event, "event", "", "only this record type (decision, approval, response, session, …)")
	cmd.AddCommand(tail)
	return cmd
}

// followWait wraps poll for `audit tail -f`: it stops following once path
// names another file than the one open (the log was moved aside or
// replaced), which Tail, reading the open file, cannot see.
func followWait(path string, file *os.File, poll func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := poll(ctx); err != nil {
			return err
		}
		open, err := file.Stat()
		if err != nil {
			return err
		}
		now, err := os.Stat(path)
		if err != nil || !os.SameFile(open, now) {
			return fmt.Errorf("%s is no longer the file being followed (moved aside or replaced): run audit tail again to follow the log there now", path)
		}
		return nil
	}
}
