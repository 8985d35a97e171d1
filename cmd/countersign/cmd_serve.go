package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/session"
)

func newServeCmd(e *env) *cobra.Command {
	var policies []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy and the approval server for a team",
		Long: `serve runs the same pipeline as run, as a long-lived service: clients
authenticate with the proxy credentials listed under clients: in the
configuration, and approvers decide through the approval listener.

On SIGINT or SIGTERM it stops accepting, answers every held request, lets
in-flight requests finish (up to 30s) and closes the audit log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, e, policies)
		},
	}
	cmd.Flags().StringArrayVar(&policies, "policy", nil, "policy directory or file (repeatable; overrides policy.paths)")
	return cmd
}

func serve(cmd *cobra.Command, e *env, policies []string) error {
	cfg, err := loadConfig(cmd, e)
	if err != nil {
		return err
	}
	cfg.UseServeDefaults()
	if err := validate(cfg); err != nil {
		return err
	}
	passwords, err := cfg.ClientPasswords(os.ReadFile)
	if err != nil {
		return usageError(err)
	}
	if len(passwords) == 0 && !loopbackListen(cfg.Listen) {
		return usageError(fmt.Errorf("listen %s is not a loopback address and no clients are configured: anyone who can reach it could use the proxy. Add clients: [{name: ..., password: ${...}}] or listen on 127.0.0.1", cfg.Listen))
	}

	logger, err := newLogger(cfg, e.stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // best effort on exit

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var anonymous *session.Info
	if len(passwords) == 0 {
		anonymous = &session.Info{ID: "anonymous", Name: "anonymous"}
	}
	if cfg.State != "" {
		return usageError(errors.New("state: a shared PostgreSQL store is not available in this build yet; leave state empty for the embedded store"))
	}
	// serve keeps approvals in state_dir so that pending ones survive a
	// restart and can still be decided.
	store, err := approval.OpenSQLite(ctx, filepath.Join(cfg.StateDir, "state.db"))
	if err != nil {
		return usageError(err)
	}
	defer store.Close()
	a, err := newApp(ctx, cfg, logger, appOptions{
		policy:        policySource(cfg, e.cwd, policies),
		anonymous:     anonymous,
		discoveryName: "serve-" + strconv.Itoa(os.Getpid()),
		store:         store,
	})
	if err != nil {
		return err
	}
	for name, pw := range passwords {
		a.registry.Add(session.Credential{Username: name, Password: pw, Session: &session.Info{ID: name, Name: name}})
	}
	a.start()
	logger.Info("countersign serving",
		zap.String("proxy", a.proxyLn.Addr().String()),
		zap.String("approvals", a.approvalURL()),
		zap.String("policy_revision", a.engine.Revision()),
		zap.String("audit", a.audit.Path()),
		zap.Int("clients", len(passwords)))
	fmt.Fprintf(e.stderr, "countersign: proxy on %s, approvals on %s\n", a.proxyLn.Addr(), a.approvalURL())

	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.shutdown(shutdownCtx)
	if len(a.errs) > 0 {
		return errors.Join(a.errs...)
	}
	return nil
}

func loopbackListen(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		// "localhost:8080" and the like.
		host := addr
		if h, _, ok := cutLast(addr, ":"); ok {
			host = h
		}
		return host == "localhost"
	}
	return ap.Addr().IsLoopback()
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}
