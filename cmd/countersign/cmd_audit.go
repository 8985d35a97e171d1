package main

import (
	"context"
	"errors"
	"fmt"
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
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Check the hash chain; exit 1 and name the first bad line on any break",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageError(err)
			}
			defer f.Close()
			res, err := audit.Verify(f)
			if err != nil {
				var ce *audit.ChainError
				if errors.As(err, &ce) {
					return checkFailed(fmt.Errorf("%s:%d: chain broken: %s", args[0], ce.Line, ce.Reason))
				}
				return checkFailed(fmt.Errorf("%s: %w", args[0], err))
			}
			fmt.Fprintf(e.stdout, "%s: ok, %d records, chain intact (last seq %d, hash %s)\n", args[0], res.Records, res.LastSeq, res.LastHash)
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
				wait = audit.Poll(250 * time.Millisecond)
			}
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
