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
	"github.com/countersign/countersign/internal/config"
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
	warnReadablePasswordFiles(cfg, logger)
	warnShortPasswords(cfg, passwords, logger)
	if msg := readableInlineSecrets(cfg); msg != "" {
		logger.Warn(msg)
	}
	for _, msg := range weakenedSafety(cfg) {
		logger.Warn(msg)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var anonymous *session.Info
	if len(passwords) == 0 {
		anonymous = &session.Info{ID: "anonymous", Name: "anonymous"}
	}
	store, pageSecret, err := openStore(ctx, cfg)
	if err != nil {
		return usageError(err)
	}
	defer store.Close()
	if cfg.State != "" && !approval.PostgresVerified(cfg.State) {
		logger.Warn("state: the database server is not verified; whoever sits between could read and change approvals. Add sslmode=verify-full to the state URL")
	}
	a, err := newApp(ctx, cfg, logger, appOptions{
		policy:        policySource(cfg, e.cwd, policies),
		anonymous:     anonymous,
		discoveryName: "serve-" + strconv.Itoa(os.Getpid()),
		store:         store,
		pageSecret:    pageSecret,
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

// closingStore is an approval store serve closes on exit.
type closingStore interface {
	approval.Store
	Close() error
}

// openStore opens the approval store serve keeps, so that pending approvals
// survive a restart and can still be decided: the embedded SQLite file in
// state_dir, or with state: postgres://… the database that several
// replicas share. With a shared database the approval page's key is shared
// too (nil otherwise: a random one per process).
func openStore(ctx context.Context, cfg *config.Config) (closingStore, []byte, error) {
	if cfg.State == "" {
		s, err := approval.OpenSQLite(ctx, filepath.Join(cfg.StateDir, "state.db"))
		return s, nil, err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := approval.OpenPostgres(openCtx, cfg.State)
	if err != nil {
		return nil, nil, err
	}
	secret, err := s.Secret(openCtx, "approval-page")
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, secret, nil
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

// minClientPassword is the shortest client password not warned about: 16
// random characters are beyond guessing at the rate authGuard allows from
// one address, and a password a person chose is usually shorter.
const minClientPassword = 16

// warnShortPasswords warns, by key, about client passwords shorter than
// minClientPassword: the proxy listens on a network under serve.
func warnShortPasswords(cfg *config.Config, passwords map[string]string, logger *zap.Logger) {
	for i, c := range cfg.Clients {
		if pw, ok := passwords[c.Name]; ok && len(pw) < minClientPassword {
			key := fmt.Sprintf("clients[%d].password", i)
			if c.PasswordFile != "" {
				key += "_file"
			}
			logger.Warn(fmt.Sprintf("a client password is shorter than %d characters and could be guessed; generate one, e.g. `openssl rand -base64 24`", minClientPassword),
				zap.String("key", key), zap.String("client", c.Name), zap.Int("length", len(pw)))
		}
	}
}

// warnReadablePasswordFiles warns about client password files that users
// other than their owner can read. It does not refuse them: Docker and
// Kubernetes mount secrets readable by all (0444, 0644) inside a container
// where no other user runs.
func warnReadablePasswordFiles(cfg *config.Config, logger *zap.Logger) {
	for i, c := range cfg.Clients {
		if c.PasswordFile == "" {
			continue
		}
		fi, err := os.Stat(c.PasswordFile)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		logger.Warn("a client password file can be read by other users; chmod 600 it unless only countersign's user runs here",
			zap.String("key", fmt.Sprintf("clients[%d].password_file", i)), zap.String("file", c.PasswordFile),
			zap.String("mode", fmt.Sprintf("%#o", fi.Mode().Perm())))
	}
}
