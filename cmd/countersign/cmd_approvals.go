package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/internal/termtext"
)

func newApprovalsCmd(e *env) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List and decide requests that are waiting for a human",
		Long: `approvals talks to the admin API of running countersign instances. Without
--server it finds every run and serve instance that uses the same state_dir;
the admin token is read from <state_dir>/admin-token.`,
	}
	cmd.PersistentFlags().StringVar(&server, "server", "", "approval listener URL (default: every running instance)")

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List pending approvals (--all for decided ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clients, err := approvalClients(cmd, e, server)
			if err != nil {
				return err
			}
			var recs []*approval.Record
			for _, c := range clients {
				rs, err := c.List(cmd.Context(), !all)
				if err != nil {
					return fmt.Errorf("list approvals at %s: %w", c.BaseURL, err)
				}
				recs = append(recs, rs...)
			}
			slices.SortFunc(recs, func(a, b *approval.Record) int { return b.Created.Compare(a.Created) })
			if len(recs) == 0 {
				fmt.Fprintln(e.stdout, "no pending approvals")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSESSION\tAGE\tAPPROVALS\tREQUEST")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.State, oneLine(r.SessionName, 40),
					time.Since(r.Created).Round(time.Second), len(r.Approvers()), r.Required, oneLine(r.Summary, 100))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include decided and expired approvals")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show everything about one approval: the exact request, the policy messages, decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rec, err := findApproval(cmd, e, server, args[0])
			if err != nil {
				return err
			}
			_ = c
			enc := json.NewEncoder(termtext.JSONWriter{W: e.stdout})
			enc.SetIndent("", "  ")
			return enc.Encode(rec)
		},
	}

	decide := func(approve bool) *cobra.Command {
		var reason string
		var scope time.Duration
		verb := "deny"
		if approve {
			verb = "approve"
		}
		c := &cobra.Command{
			Use:   verb + " ID",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a pending request",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				client, _, err := findApproval(cmd, e, server, args[0])
				if err != nil {
					return err
				}
				rec, err := client.DecideScoped(cmd.Context(), args[0], approve, currentUser(), reason, scope)
				if err != nil {
					var ae *approval.APIError
					if errors.As(err, &ae) {
						return checkFailed(fmt.Errorf("%s %s: %s", verb, args[0], ae.Message))
					}
					return err
				}
				fmt.Fprintf(e.stdout, "%s: %s (%d of %d approvals)\n", rec.ID, rec.State, len(rec.Approvers()), rec.Required)
				switch {
				case scope == 0 || rec.State == approval.StatePending:
				case rec.AgreedScope() > 0:
					fmt.Fprintf(e.stdout, "scoped grant for %s: countersign approvals grants lists it\n", rec.AgreedScope())
				default:
					fmt.Fprintln(e.stdout, "no scoped grant: under the two-person rule every approver must ask for one, and another did not")
				}
				return nil
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "comment shown to the agent and recorded in the audit log")
		if approve {
			c.Flags().DurationVar(&scope, "for", 0, "also allow this operation on these resources for this session for this long (a scoped grant, e.g. 30m)")
		}
		return c
	}

	var allGrants bool
	grants := &cobra.Command{
		Use:   "grants",
		Short: "List scoped grants (--all for expired and revoked ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clients, err := approvalClients(cmd, e, server)
			if err != nil {
				return err
			}
			var all []approval.Scope
			for _, c := range clients {
				gs, err := c.Grants(cmd.Context(), !allGrants)
				if err != nil {
					return fmt.Errorf("list grants at %s: %w", c.BaseURL, err)
				}
				all = append(all, gs...)
			}
			if len(all) == 0 {
				fmt.Fprintln(e.stdout, "no active scoped grants")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSESSION\tOPERATION\tRESOURCES\tEXPIRES\tUSES\tSTATE")
			for _, g := range all {
				state := "active"
				switch {
				case g.Revoked:
					state = "revoked by " + g.RevokedBy
				case !g.Active(time.Now()):
					state = "expired"
				}
				// Operations and resources come from the agent's requests
				// (an MCP method name): printed as one line of text.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", oneLine(g.ID, 20), oneLine(g.SessionID, 40), oneLine(g.Operation, 80), oneLine(strings.Join(g.Resources, ","), 60),
					g.Expires.Local().Format(time.Kitchen), g.Uses, oneLine(state, 60))
			}
			return tw.Flush()
		},
	}
	grants.Flags().BoolVar(&allGrants, "all", false, "include expired and revoked grants")

	revoke := &cobra.Command{
		Use:   "revoke GRANT_ID",
		Short: "Revoke a scoped grant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clients, err := approvalClients(cmd, e, server)
			if err != nil {
				return err
			}
			for _, c := range clients {
				g, err := c.Revoke(cmd.Context(), args[0], currentUser())
				var ae *approval.APIError
				if errors.As(err, &ae) && ae.Status == 404 {
					continue
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s: revoked (%s for session %s)\n", oneLine(g.ID, 20), oneLine(g.Operation, 80), oneLine(g.SessionID, 40))
				return nil
			}
			return checkFailed(fmt.Errorf("no grant %s in any running countersign", args[0]))
		},
	}

	link := &cobra.Command{
		Use:   "link ID",
		Short: "Print a fresh single-use approval page link (for a second approver)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := findApproval(cmd, e, server, args[0])
			if err != nil {
				return err
			}
			l, err := client.Link(cmd.Context(), args[0])
			if err != nil {
				return checkFailed(err)
			}
			fmt.Fprintln(e.stdout, l)
			return nil
		},
	}
	cmd.AddCommand(list, show, decide(true), decide(false), grants, revoke, link, newWatchCmd(e, &server))
	return cmd
}

// approvalClients returns admin API clients for --server or for every live
// instance registered in <state_dir>/run.
func approvalClients(cmd *cobra.Command, e *env, server string) ([]*approval.Client, error) {
	cfg, err := loadConfigLenient(cmd, e)
	if err != nil {
		return nil, err
	}
	token, err := approval.ReadToken(filepath.Join(cfg.StateDir, "admin-token"))
	if err != nil {
		return nil, usageError(err)
	}
	if server != "" {
		return []*approval.Client{approval.NewClient(server, token)}, nil
	}
	files, _ := filepath.Glob(filepath.Join(cfg.StateDir, "run", "*.json"))
	var out []*approval.Client
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var info discoveryInfo
		if json.Unmarshal(b, &info) != nil || info.URL == "" {
			continue
		}
		if !processAlive(info.PID) {
			_ = os.Remove(f) // left behind by a crash
			continue
		}
		out = append(out, approval.NewClient(info.URL, token))
	}
	if len(out) == 0 {
		return nil, usageError(fmt.Errorf("no running countersign found in %s; pass --server URL", filepath.Join(cfg.StateDir, "run")))
	}
	return out, nil
}

func findApproval(cmd *cobra.Command, e *env, server, id string) (*approval.Client, *approval.Record, error) {
	clients, err := approvalClients(cmd, e, server)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	for _, c := range clients {
		rec, err := c.Get(ctx, id)
		if err == nil {
			return c, rec, nil
		}
		var ae *approval.APIError
		if errors.As(err, &ae) && ae.Status == 404 {
			continue
		}
		return nil, nil, err
	}
	return nil, nil, checkFailed(fmt.Errorf("no approval %s in any running countersign", id))
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
