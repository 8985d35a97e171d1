package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/internal/termtext"
	"github.com/countersign/countersign/session"
)

type runFlags struct {
	policies []string
	name     string
	labels   []string
	proxyURL string
	isolate  bool
}

func newRunCmd(e *env) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARGS...]",
		Short: "Wrap one agent session: every request it makes is decided by policy",
		Long: `run starts a proxy on loopback, points the child's proxy and CA variables at
it, runs CMD, and prints a summary when CMD exits. It exits with CMD's exit
code.

Without --isolate, a process that ignores the proxy variables is not
contained: countersign decides what goes through it, nothing else.

With --isolate (Linux), CMD runs in its own user, network and mount
namespaces whose only way out is the proxy. state_dir (CA key, admin token,
audit log) is hidden from it, and /tmp and /run are private. A self-test
proves this before CMD starts. See docs/isolation.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSession(cmd, e, f, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringArrayVar(&f.policies, "policy", nil, "policy directory or file (repeatable; overrides policy.paths)")
	cmd.Flags().StringVar(&f.name, "name", "", "session name shown to approvers (default user/CMD)")
	cmd.Flags().StringArrayVar(&f.labels, "label", nil, "k=v label for input.session.labels (repeatable)")
	cmd.Flags().StringVar(&f.proxyURL, "proxy", "", "attach to a running `countersign serve` at this URL instead of starting a proxy (or set COUNTERSIGN_PROXY, which keeps a password out of the process list)")
	cmd.Flags().BoolVar(&f.isolate, "isolate", false, "run CMD in its own user, network and mount namespaces whose only way out is the proxy (Linux)")
	return cmd
}

func parseLabels(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func runSession(cmd *cobra.Command, e *env, f runFlags, args []string) error {
	if f.isolate && runtime.GOOS != "linux" {
		return usageError(session.ErrIsolationUnsupported)
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return usageError(err)
	}
	if f.proxyURL == "" {
		// The URL may hold the client's password: from the environment it
		// stays out of the process list, which every local user can read
		// (found by review).
		if v, ok := e.getenv("COUNTERSIGN_PROXY"); ok {
			f.proxyURL = v
		}
	} else if u, err := url.Parse(f.proxyURL); err == nil {
		if _, ok := u.User.Password(); ok {
			fmt.Fprintln(e.stderr, "countersign: warning: the --proxy URL holds a password, which every user of this machine can read in the process list; pass it in COUNTERSIGN_PROXY instead")
		}
	}
	if f.proxyURL != "" && (f.name != "" || len(labels) > 0) {
		// They would be dropped without a word: serve knows the session
		// only by the client credentials in the URL.
		return usageError(errors.New("--name and --label do not reach `countersign serve`: it names the session after the client in the --proxy URL (clients: in its configuration), and that client's approvals and grants are shared by every agent that uses it; give each agent a client of its own"))
	}
	cfg, err := loadConfig(cmd, e)
	if err != nil {
		return err
	}
	if err := validate(cfg); err != nil {
		return err
	}

	username := currentUser()
	sess := &session.Info{
		ID:      session.NewID(),
		Name:    f.name,
		User:    username,
		Command: filepath.Base(args[0]),
		Cwd:     e.cwd,
		Labels:  labels,
	}
	if sess.Name == "" {
		sess.Name = session.DefaultName(username, args[0])
	}

	tmp, err := os.MkdirTemp("", "countersign-"+sess.ID+"-")
	if err != nil {
		return fmt.Errorf("create session directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	var iso *isolation
	if f.isolate {
		iso = newIsolation(cfg, policySource(cfg, e.cwd, f.policies).Paths)
	}
	var overrides []string
	if iso == nil {
		overrides = warnProxyOverrides(e)
	}
	if f.proxyURL != "" {
		return runAttached(cmd.Context(), e, cfg.StateDir, cfgCA(cfg), f.proxyURL, sess, tmp, args, iso, runSecrets(cfg))
	}

	// The operational log goes to a file: the agent owns the terminal.
	logPath := filepath.Join(cfg.StateDir, "logs", sess.ID+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return usageError(fmt.Errorf("create log directory: %w", err))
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return usageError(fmt.Errorf("open log %s: %w", logPath, err))
	}
	defer logFile.Close()
	logger, err := newLogger(cfg, logFile)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // best effort on exit

	if msg := readableInlineSecrets(cfg); msg != "" {
		fmt.Fprintln(e.stderr, "countersign: "+msg+".")
		logger.Warn(msg)
	}
	for _, msg := range weakenedSafety(cfg) {
		fmt.Fprintln(e.stderr, "countersign: warning: "+msg+".")
		logger.Warn(msg)
	}
	if cfg.State != "" {
		// Shared state is serve's (SPEC 3): a run session's approvals live
		// and die with it. Say so rather than let a team believe this
		// session's approvals reach their shared store.
		fmt.Fprintln(e.stderr, "countersign: state (shared PostgreSQL) is used by `countersign serve`; this session keeps its approvals in memory. To use the team's, run the agent with --proxy URL of that serve.")
		logger.Warn("state is ignored by run; approvals are kept in memory for this session")
	}
	term := &terminalNotifier{w: e.stderr}
	ctx := cmd.Context()
	a, err := newApp(ctx, cfg, logger, appOptions{
		policy:        policySource(cfg, e.cwd, f.policies),
		notifiers:     []approval.Notifier{term},
		discoveryName: sess.ID,
		auditFallback: sess.ID,
		operatorLinks: true,
		pinPolicy:     f.isolate,
	})
	if err != nil {
		return err
	}
	term.baseURL = a.approvalURL()
	if iso != nil {
		iso.secrets = append(iso.secrets, a.token)
		iso.logger = logger
	}
	password := session.NewPassword()
	a.registry.Add(session.Credential{Username: sess.ID, Password: password, Session: sess})
	a.start()

	if err := a.audit.Record(&audit.Event{Type: "session", Session: sessionRef(sess), Detail: "started",
		PolicyRevision: a.engine.Revision(),
		Fields:         startedFields(args, a, iso != nil, overrides)}); err != nil {
		a.shutdown(context.Background())
		return fmt.Errorf("audit log: %w", err)
	}

	proxyURL := (&url.URL{Scheme: "http", User: url.UserPassword(sess.ID, password), Host: a.proxyAddr()}).String()
	named := namedPolicyPaths(cfg, e.cwd)
	discovered := snapshotDiscovery(e.cwd, named)
	code, childErr := runChild(ctx, e, a.ca, proxyURL, sess, tmp, args, iso, append(runSecrets(cfg), a.token))
	after := snapshotDiscovery(e.cwd, named)
	planted := after.changedSince(discovered)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := a.proxy.Counts(sess.ID)
	ended := map[string]any{"exit_code": code, "allowed": counts.Allowed, "denied": counts.Denied,
		"approved": counts.Approved, "pending": counts.Pending, "shadowed": counts.Shadowed}
	if len(planted) > 0 {
		ended["changed_config_files"] = changeList(planted, 100)
		if len(planted) > 100 {
			ended["changed_config_files_more"] = len(planted) - 100
		}
	}
	_ = a.audit.Record(&audit.Event{Type: "session", Session: sessionRef(sess), Detail: "ended", Fields: ended})
	auditPath := a.audit.Path()
	a.shutdown(shutdownCtx)

	fmt.Fprintf(e.stderr, "\ncountersign: session %s (%s) ended, exit code %d\n", sess.ID, sess.Name, code)
	fmt.Fprintf(e.stderr, "  allowed %d · denied %d · approved %d · timed out %d", counts.Allowed, counts.Denied, counts.Approved, counts.Pending)
	if counts.Shadowed > 0 {
		fmt.Fprintf(e.stderr, " · would have been stopped (shadow mode) %d", counts.Shadowed)
	}
	fmt.Fprintf(e.stderr, "\n  audit log: %s  (countersign audit tail --session %s %s)\n", auditPath, sess.ID, auditPath)
	if w := plantedWarning(planted, after.truncated); w != "" {
		fmt.Fprintln(e.stderr, w)
	}
	if childErr != nil {
		return &exitError{code: code, err: childErr}
	}
	return &exitError{code: code}
}

// startedFields are the fields of a session's "started" record. Client
// settings that send requests around countersign are recorded with it: a
// reviewer of the log should know the session was not wholly covered.
func startedFields(args []string, a *app, isolated bool, overrides []string) map[string]any {
	f := map[string]any{"command": strings.Join(redact.Args(args), " "), "proxy": a.proxyAddr(), "approvals": a.approvalURL(), "isolated": isolated}
	if len(overrides) > 0 {
		f["client_proxy_overrides"] = overrides
	}
	return f
}

// warnProxyOverrides tells the user which of their clients' configuration
// files send requests around the proxy variables (a kubeconfig's
// proxy-url, ~/.curlrc's noproxy, ~/.wgetrc's use_proxy = off), and
// returns them. Without --isolate those requests are never decided.
func warnProxyOverrides(e *env) []string {
	overrides, problems := session.ProxyOverrides(os.Environ())
	var lines []string
	for _, o := range overrides {
		lines = append(lines, o.String())
	}
	if len(lines) > 0 {
		fmt.Fprintln(e.stderr, "countersign: warning: these settings send some of the agent's requests around countersign; no policy sees them:")
		for _, l := range lines {
			fmt.Fprintln(e.stderr, "  "+l)
		}
		fmt.Fprintln(e.stderr, "  Remove them for agent sessions, or use `countersign run --isolate`, under which those requests fail instead.")
	}
	for _, p := range problems {
		fmt.Fprintln(e.stderr, "countersign: warning: "+p)
	}
	return lines
}

func cfgCA(cfg interface{ CAPaths() (string, string) }) string {
	c, _ := cfg.CAPaths()
	return c
}

// runAttached runs CMD against an existing `countersign serve`.
func runAttached(ctx context.Context, e *env, stateDir, caCert, proxyURL string, sess *session.Info, tmp string, args []string, iso *isolation, secrets []string) error {
	// The URL may carry a password: name it only redacted.
	u, err := url.Parse(proxyURL)
	if err != nil {
		return usageError(errors.New("--proxy is not a URL: want http://[user:password@]host:port"))
	}
	if u.Scheme != "http" || u.Host == "" {
		return usageError(fmt.Errorf("--proxy %q: want http://[user:password@]host:port", u.Redacted()))
	}
	// What serve calls the session: the client's name, or anonymous.
	sess.ID = "anonymous"
	if name := u.User.Username(); name != "" {
		sess.ID = name
	}
	ca, err := readCACert(caCert)
	if err != nil {
		return usageError(fmt.Errorf("--proxy needs the serve instance's CA certificate at %s (copy it from `countersign ca export` on that host): %w", caCert, err))
	}
	discovered := snapshotDiscovery(e.cwd, nil)
	code, childErr := runChild(ctx, e, ca, proxyURL, sess, tmp, args, iso, secrets)
	after := snapshotDiscovery(e.cwd, nil)
	if w := plantedWarning(after.changedSince(discovered), after.truncated); w != "" {
		fmt.Fprintln(e.stderr, w)
	}
	if childErr != nil {
		return &exitError{code: code, err: childErr}
	}
	return &exitError{code: code}
}

// runChild starts CMD with the session environment, without any inherited
// variable that holds one of secrets (in isolation when iso is set), and
// waits for it, forwarding SIGTERM and SIGHUP. SIGINT from the terminal
// reaches the child directly (same process group); countersign ignores it
// and waits. An isolated child without a terminal has a group of its own,
// and SIGINT and SIGQUIT are passed on to it.
func runChild(ctx context.Context, e *env, ca certPEMer, proxyURL string, sess *session.Info, tmp string, args []string, iso *isolation, secrets []string) (int, error) {
	// A client password in the --proxy URL is the agent's own credential
	// for the proxy: filtering on it would take the proxy variables away
	// and let the agent's traffic go around countersign.
	var own string
	if u, err := url.Parse(proxyURL); err == nil {
		own, _ = u.User.Password()
	}
	notOwn := func(s string) bool { return own != "" && s == own }
	secrets = slices.DeleteFunc(slices.Clone(secrets), notOwn)
	if iso != nil {
		iso.secrets = slices.DeleteFunc(iso.secrets, notOwn)
	}
	caPath := filepath.Join(tmp, "countersign-ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM(), 0o644); err != nil {
		return 1, fmt.Errorf("write CA certificate: %w", err)
	}
	bundle, err := session.WriteCABundle(tmp, ca.CertPEM())
	if err != nil {
		return 1, err
	}
	envOpts := session.EnvOptions{ProxyURL: proxyURL, CABundle: bundle, CACert: caPath, SessionID: sess.ID,
		GitProxyKeys: session.GitURLProxies(ctx, os.Environ(), e.cwd)}
	if iso != nil {
		return supervise(ctx, func() (child, int, error) {
			return iso.start(ctx, e, envOpts, tmp, args)
		})
	}
	return supervise(ctx, func() (child, int, error) {
		c := exec.Command(args[0], args[1:]...)
		c.Env = session.ChildEnv(inheritedEnv(e, secrets), envOpts)
		c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
		c.Dir = e.cwd
		if err := c.Start(); err != nil {
			return nil, 127, fmt.Errorf("start %s: %w", args[0], err)
		}
		return plainChild{c}, 0, nil
	})
}

// child is a started CMD: plain, or inside the isolation namespaces.
type child interface {
	Signal(os.Signal) error
	// Wait returns the exit code, 128+signal when a signal ended CMD.
	Wait() (int, error)
}

// supervise starts a child and waits for it, forwarding SIGTERM and SIGHUP
// and, when ctx ends, sending SIGTERM. Signals are caught before the start
// so that none can end countersign while the child runs.
func supervise(ctx context.Context, start func() (child, int, error)) (int, error) {
	sigs := make(chan os.Signal, 4)
	// SIGINT and SIGQUIT come from the terminal to its whole foreground
	// group, CMD included: caught, so that ^\ ends CMD and not countersign
	// before it records the session's end (Go would dump and exit).
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	c, code, err := start()
	if err != nil {
		return code, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				_ = c.Signal(syscall.SIGTERM)
				return
			case s := <-sigs:
				if s != syscall.SIGINT && s != syscall.SIGQUIT || inOwnGroup(c) {
					_ = c.Signal(s)
				}
			}
		}
	}()
	code, err = c.Wait()
	close(done)
	wg.Wait()
	return code, err
}

// inOwnGroup reports whether c is outside countersign's process group,
// which signals sent to the group (a CI runner's SIGINT on cancel) do not
// reach by themselves.
func inOwnGroup(c child) bool {
	g, ok := c.(interface{ InOwnGroup() bool })
	return ok && g.InOwnGroup()
}

// plainChild is CMD started without isolation.
type plainChild struct{ c *exec.Cmd }

func (p plainChild) Signal(s os.Signal) error { return p.c.Process.Signal(s) }

func (p plainChild) Wait() (int, error) {
	err := p.c.Wait()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, err
}

// isolation is what `run --isolate` hides from the agent and what it lets
// through, taken from the configuration (docs/isolation.md).
type isolation struct {
	hide     []string
	readOnly []string
	expose   []string
	secrets  []string
	logger   *zap.Logger
}

// newIsolation hides state_dir (CA key, admin token, audit log, state,
// logs), the CA key and audit log wherever they are, client password files,
// the bundle verification key's file, and the configuration file when it
// holds a secret. No environment variable holding one of the secrets
// reaches the child. The configuration file (when not hidden), the policy
// paths and the CA files countersign reads stay visible but read-only: the
// proxy reloads policies while the agent runs.
func newIsolation(cfg *config.Config, policyPaths []string) *isolation {
	certPath, keyPath := cfg.CAPaths()
	iso := &isolation{
		hide:   []string{cfg.StateDir, keyPath},
		expose: cfg.Isolate.Expose,
		logger: zap.NewNop(),
	}
	if cfg.Audit.Path != "" && cfg.Audit.Path != "-" {
		// The journal beside the log holds its latest records and is
		// replayed at the next start: read, it shows them; written, it
		// would put forged records into the log after a crash.
		iso.hide = append(iso.hide, cfg.Audit.Path, auditOptions(cfg, cfg.Audit.Path).Journal)
	}
	bundle := cfg.Policy.Bundle
	if key := bundle.Verification.Key; key != "" {
		if fi, err := os.Stat(key); err == nil && fi.Mode().IsRegular() {
			iso.hide = append(iso.hide, key)
		}
	}
	if cfg.Source.File != "" && slices.ContainsFunc(configSecrets(cfg), func(s string) bool { return s != "" }) {
		// The values may be written in the file itself.
		iso.hide = append(iso.hide, cfg.Source.File)
	}
	for _, c := range cfg.Clients {
		if c.PasswordFile != "" {
			iso.hide = append(iso.hide, c.PasswordFile)
		}
	}
	iso.secrets = runSecrets(cfg)
	if cfg.Source.File != "" && !slices.Contains(iso.hide, cfg.Source.File) {
		iso.readOnly = append(iso.readOnly, cfg.Source.File)
	}
	iso.readOnly = append(iso.readOnly, policyPaths...)
	iso.readOnly = append(iso.readOnly, cfg.Upstream.CAFiles...)
	iso.readOnly = append(iso.readOnly, certPath)
	if bundle.CAFile != "" {
		iso.readOnly = append(iso.readOnly, bundle.CAFile)
	}
	// Relative paths in the configuration are relative to the working
	// directory; the namespaces need them absolute.
	for _, paths := range [][]string{iso.hide, iso.readOnly} {
		for i, p := range paths {
			if abs, err := filepath.Abs(p); err == nil {
				paths[i] = abs
			}
		}
	}
	return iso
}

// start runs CMD in the isolation namespaces. Inside, the proxy is at
// 127.0.0.1 on the real proxy's port, where the forwarder listens.
func (iso *isolation) start(ctx context.Context, e *env, envOpts session.EnvOptions, tmp string, args []string) (child, int, error) {
	// As in plain run (isolation filters again, and hides more).
	inherited := inheritedEnv(e, iso.secrets)
	u, err := url.Parse(envOpts.ProxyURL)
	if err != nil {
		return nil, 2, fmt.Errorf("proxy URL: %w", err)
	}
	host, port, err := hostport.Split(u.Host, 80)
	if err != nil {
		return nil, 2, fmt.Errorf("proxy URL %s: %w", u.Redacted(), err)
	}
	inside := *u
	inside.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	envOpts.ProxyURL = inside.String()

	cmdPath := args[0]
	if !strings.Contains(cmdPath, "/") {
		cmdPath, _ = exec.LookPath(cmdPath)
	} else if !filepath.IsAbs(cmdPath) {
		cmdPath = filepath.Join(e.cwd, cmdPath)
	}
	var prefixes []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				prefixes = append(prefixes, p)
			}
		}
	}
	proc, err := session.StartIsolated(ctx, session.IsolateOptions{
		Args:        args,
		Env:         session.ChildEnv(inherited, envOpts),
		Dir:         e.cwd,
		Stdin:       e.stdin,
		Stdout:      e.stdout,
		Stderr:      e.stderr,
		ProxyAddr:   hostport.Join(host, port),
		ListenPort:  port,
		CommandPath: cmdPath,
		SessionDir:  tmp,
		Hide:        iso.hide,
		ReadOnly:    iso.readOnly,
		Expose:      iso.expose,
		Secrets:     iso.secrets,
		Probes:      session.MachineProbes(prefixes, port),
	}, iso.logger)
	if err != nil {
		var se *session.SetupError
		if errors.As(err, &se) {
			return nil, se.Code, err
		}
		return nil, 2, err
	}
	return proc, 0, nil
}

func newIsolateInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:    session.InitCommand,
		Short:  "The init process of `run --isolate` (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if code := session.IsolateInit(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}

type certPEMer interface{ CertPEM() []byte }

// pemCert is a CA certificate read from a file, without its key.
type pemCert []byte

func (p pemCert) CertPEM() []byte { return p }

func readCACert(path string) (pemCert, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return pemCert(b), nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func sessionRef(s *session.Info) *audit.SessionRef {
	return &audit.SessionRef{ID: s.ID, Name: s.Name, User: s.User, Command: s.Command, Labels: s.Labels}
}

// terminalNotifier prints one line per approval event to the run terminal.
type terminalNotifier struct {
	mu      sync.Mutex
	w       io.Writer
	baseURL string
}

func (t *terminalNotifier) Notify(_ context.Context, n approval.Notification) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := n.Record
	switch n.Event {
	case "requested":
		where := "countersign approvals approve " + r.ID
		if n.Link != "" {
			where = n.Link
		}
		fmt.Fprintf(t.w, "\r\ncountersign: approval %s pending: %s — %s\r\n", r.ID, oneLine(r.Summary, 160), where)
	case "decided":
		fmt.Fprintf(t.w, "\r\ncountersign: approval %s %s\r\n", r.ID, r.State)
	}
}

// Target implements approval.Target.
func (t *terminalNotifier) Target(*approval.Record) string { return "the run terminal" }

// oneLine makes agent-controlled text safe for one terminal line.
func oneLine(s string, max int) string { return termtext.Line(s, max) }

// configSecrets are the secret values the configuration itself holds (or
// names, for a verification key that is not a file).
func configSecrets(cfg *config.Config) []string {
	sc := cfg.Approval.Slack
	bundle := cfg.Policy.Bundle
	out := []string{sc.WebhookURL, sc.BotToken, sc.SigningSecret, bundle.Token}
	if key := bundle.Verification.Key; key != "" {
		if fi, err := os.Stat(key); err != nil || !fi.Mode().IsRegular() {
			out = append(out, key)
		}
	}
	for _, c := range cfg.Clients {
		out = append(out, c.Password)
	}
	return append(out, stateSecrets(cfg.State)...)
}

// stateSecrets are the secrets of a state database address: the address
// itself, and its password as written and decoded, in the userinfo or in
// a password or sslpassword parameter (pgx reads both, and key=value
// addresses).
func stateSecrets(state string) []string {
	if state == "" {
		return nil
	}
	out := []string{state}
	if u, err := url.Parse(state); err == nil && u.Scheme != "" {
		if p, ok := u.User.Password(); ok {
			_, escaped, _ := strings.Cut(u.User.String(), ":")
			out = append(out, p, escaped)
		}
		q := u.Query()
		out = append(out, q.Get("password"), q.Get("sslpassword"))
		return out
	}
	for _, f := range strings.Fields(state) {
		if k, v, ok := strings.Cut(f, "="); ok && (k == "password" || k == "sslpassword") {
			out = append(out, strings.Trim(v, "'"))
		}
	}
	return out
}

// runSecrets are the values no environment variable of the agent may hold,
// with or without --isolate: the configuration's secrets, the client
// password files' contents and the admin token.
func runSecrets(cfg *config.Config) []string {
	out := configSecrets(cfg)
	// Variables a secret takes part of its value from (a webhook URL's
	// path in ${SLACK_HOOK_PATH}): their whole values are secrets too,
	// which no search for the whole secret finds (found by review). A
	// fragment of a few bytes would match unrelated variables.
	for _, name := range cfg.Source.SecretEnv {
		if v, ok := os.LookupEnv(name); ok && len(v) >= 4 {
			out = append(out, v)
		}
	}
	for _, c := range cfg.Clients {
		if c.PasswordFile != "" {
			if b, err := os.ReadFile(c.PasswordFile); err == nil {
				out = append(out, strings.TrimSpace(string(b)))
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, "admin-token")); err == nil {
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

// inheritedEnv is countersign's environment without the variables that hold
// one of secrets, named on standard error. Agents print their environment;
// the configuration's secrets (a Slack signing secret forges approvals)
// stay out of it. Only inherited variables are filtered: the session's own
// are set after.
func inheritedEnv(e *env, secrets []string) []string {
	kept, dropped := session.WithoutSecrets(os.Environ(), secrets)
	if len(dropped) > 0 {
		fmt.Fprintf(e.stderr, "countersign: left out of the agent's environment, as they hold a secret of the configuration: %s\n", strings.Join(dropped, ", "))
	}
	return kept
}
