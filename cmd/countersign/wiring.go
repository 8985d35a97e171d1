package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/connlimit"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/mitm"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/proxy"
	"github.com/countersign/countersign/session"
)

// loadConfig reads --config, or ./countersign.yaml when it exists, over the
// defaults. Validation happens after flags are applied (see validate).
func loadConfig(cmd *cobra.Command, e *env) (*config.Config, error) {
	return loadConfigEnv(cmd, e, false)
}

// loadConfigLenient is loadConfig for commands that use neither the proxy's
// client passwords nor the Slack secrets (approvals, audit, ca, policy): an
// unset ${VAR} in a secret expands to "" instead of stopping an approver who
// does not have the service's secrets in their shell. Elsewhere (state_dir)
// it is still an error.
func loadConfigLenient(cmd *cobra.Command, e *env) (*config.Config, error) {
	return loadConfigEnv(cmd, e, true)
}

func loadConfigEnv(cmd *cobra.Command, e *env, unsetSecretsEmpty bool) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		candidate := filepath.Join(e.cwd, config.DefaultFile)
		if _, err := os.Stat(candidate); err == nil {
			path = candidate
		}
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, Getenv: e.getenv, Home: e.home, UnsetSecretsEmpty: unsetSecretsEmpty})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, usageError(fmt.Errorf("load configuration %s: %w", path, err))
	}
	return cfg, nil
}

func validate(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return nil
}

// policySource resolves which policies to load: --policy flags, else
// policy.paths; when neither the file nor a flag named a path and
// ./policies is absent, the built-in default policy.
func policySource(cfg *config.Config, cwd string, flagPaths []string) policy.Source {
	if len(flagPaths) > 0 {
		return policy.Source{Paths: flagPaths}
	}
	if cfg.Policy.Bundle.URL != "" && !cfg.IsSet("policy.paths") {
		// The bundle alone (newApp fetches it); commands that do not
		// fetch bundles ask for --policy.
		return policy.Source{}
	}
	if !cfg.IsSet("policy.paths") {
		// The default ./policies is, like every relative path of a
		// configuration file, beside that file: `run --config
		// ~/cs/countersign.yaml` in an agent's repository must not take
		// the repository's policies/.
		dir := cwd
		if cfg.Source.File != "" {
			if abs, err := filepath.Abs(cfg.Source.File); err == nil {
				dir = filepath.Dir(abs)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "policies")); errors.Is(err, fs.ErrNotExist) {
			return policy.Source{Builtin: true}
		}
		return policy.Source{Paths: []string{filepath.Join(dir, "policies")}}
	}
	if len(cfg.Policy.Paths) == 0 {
		return policy.Source{Builtin: true}
	}
	return policy.Source{Paths: cfg.Policy.Paths}
}

// newLogger builds the operational log (never the audit log).
func newLogger(cfg *config.Config, w io.Writer) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, usageError(fmt.Errorf("log.level: %w", err))
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.Log.Format == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core), nil
}

// app is one running countersign: proxy, approval listener, policy, audit.
type app struct {
	cfg      *config.Config
	logger   *zap.Logger
	ca       *mitm.CA
	audit    *audit.Log
	engine   *policy.Engine
	broker   *approval.Broker
	slack    *approval.Slack
	proxy    *proxy.Server
	metrics  *proxy.Metrics
	registry *session.Registry
	token    string

	// Policy updates: the bundle loader and the file watcher (see
	// startPolicyUpdates).
	bundle     *policy.BundleLoader
	watchPaths bool
	watcher    *policy.Watcher
	watchErr   error

	proxyLn    net.Listener
	approvalLn net.Listener
	// approvalConns caps approvalLn's connections (see newApp).
	approvalConns *connlimit.Listener
	// stateAddrs are the shared state database's addresses, resolved at
	// start: the proxy never dials them, by whatever name or address.
	stateAddrs []netip.AddrPort
	approvals  *http.Server
	discovery  string

	wg      sync.WaitGroup
	serveMu sync.Mutex
	errs    []error
}

type appOptions struct {
	policy    policy.Source
	anonymous *session.Info
	notifiers []approval.Notifier
	// discoveryName names the file in <state_dir>/run that lets
	// `countersign approvals` find this instance.
	discoveryName string
	// auditFallback, for run sessions, names a per-session audit log in
	// <state_dir>/audit/ used when the shared default log is held by another
	// session.
	auditFallback string
	// store is the approval store; nil means in memory.
	store approval.Store
	// operatorLinks: approval links are announced to the operator (run's
	// terminal), see approval.Options.NotificationLinkIsOperators.
	operatorLinks bool
	// pinPolicy: reloads keep to the policy directories loaded at start
	// (run --isolate; see policy.Options.PinPaths).
	pinPolicy bool
	// pageSecret keys the approval page's form tokens; nil means a random
	// one for this process. Replicas that share a store share it.
	pageSecret []byte
}

// newApp builds every component in dependency order and opens the listeners.
// Nothing is served until start.
func newApp(ctx context.Context, cfg *config.Config, logger *zap.Logger, opts appOptions) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, usageError(fmt.Errorf("create state_dir %s: %w", cfg.StateDir, err))
	}

	certPath, keyPath := cfg.CAPaths()
	if cfg.CA.Cert != "" {
		a.ca, err = mitm.Load(certPath, keyPath)
		if err == nil && time.Now().After(a.ca.Certificate().NotAfter) {
			// As LoadOrCreate refuses its own (found by review: started,
			// and every client then failed its handshake).
			err = fmt.Errorf("CA certificate %s expired on %s: configure a current one", certPath, a.ca.Certificate().NotAfter.Format(time.DateOnly))
		}
	} else {
		var created bool
		a.ca, created, err = mitm.LoadOrCreate(certPath, keyPath, time.Now)
		if created {
			logger.Info("created the local CA", zap.String("cert", certPath))
		}
	}
	if err != nil {
		key := "state_dir"
		if cfg.CA.Cert != "" || cfg.CA.Key != "" {
			key = "ca"
		}
		return nil, usageError(fmt.Errorf("%s: CA: %w", cfg.Where(key), err))
	}

	a.audit, err = audit.Open(auditOptions(cfg, cfg.Audit.Path), logger)
	if errors.Is(err, audit.ErrInUse) && opts.auditFallback != "" && !cfg.IsSet("audit.path") && !cfg.IsSet("audit") {
		// Another session holds the shared log; one chain has one writer,
		// so this session keeps its own.
		fallback := filepath.Join(cfg.StateDir, "audit", opts.auditFallback+".jsonl")
		logger.Info("the shared audit log is in use; this session writes its own", zap.String("path", fallback))
		a.audit, err = audit.Open(auditOptions(cfg, fallback), logger)
	}
	if err != nil {
		return nil, usageError(fmt.Errorf("audit log: %w", err))
	}
	if opts.auditFallback != "" {
		recoverSessionLogs(cfg, logger)
	}
	// Metrics are read off the audit stream: every record the proxy and the
	// broker write goes through the metered auditor.
	a.metrics = proxy.NewMetrics()
	auditor := a.metrics.Auditor(a.audit)

	onError, err := policy.ParseVerdict(cfg.Policy.OnError)
	if err != nil {
		return nil, usageError(fmt.Errorf("policy.on_error: %w", err))
	}
	src, err := a.withBundle(ctx, opts.policy)
	if err != nil {
		return nil, err
	}
	a.watchPaths = len(src.Paths) > 0
	a.engine, err = policy.New(ctx, policy.Options{Source: src, OnError: onError, EvalTimeout: cfg.Policy.EvalTimeout, OnReload: a.policyReloaded, PinPaths: opts.pinPolicy,
		TestRunner: childPolicyTests(logger)}, logger)
	if err != nil {
		key := "policy.paths"
		if !cfg.IsSet(key) {
			key = "policy" // ./policies, or the built-in policy
		}
		return nil, usageError(fmt.Errorf("%s: %w", cfg.Where(key), err))
	}

	a.proxyLn, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, usageError(fmt.Errorf("listen %s: %w", cfg.Listen, err))
	}
	a.approvalLn, err = net.Listen("tcp", cfg.Approval.Listen)
	if err != nil {
		return nil, usageError(fmt.Errorf("approval.listen %s: %w", cfg.Approval.Listen, err))
	}

	store := opts.store
	if store == nil {
		store = approval.NewMemoryStore()
	}
	bo := approval.Options{
		Store:     store,
		Auditor:   auditor,
		Notifiers: opts.notifiers,
		Expire:    cfg.Approval.Expire,
		GrantTTL:  cfg.Approval.GrantTTL,
		PageURL: func(id, token string) string {
			return a.approvalURL() + "/approvals/" + url.PathEscape(id) + "?t=" + url.QueryEscape(token)
		},
	}
	// run announces each approval's link on its own terminal, whose
	// user also holds the admin token: one person, one approver.
	bo.NotificationLinkIsOperators = opts.operatorLinks
	bo.Operator = cfg.Approval.Operator
	if bo.Operator != "" {
		logger.Info("decisions made with the admin token count as this Slack user's under the two-person rule", zap.String("approval.operator", bo.Operator))
	}
	if opts.store != nil {
		// serve: sessions share the proxy. Each may hold 10,000 (SPEC
		// 11), and none can take the slots of the others.
		bo.MaxPending, bo.MaxPendingPerSession = 20000, 10000
	}
	a.broker, err = approval.NewBroker(bo, logger)
	if err != nil {
		return nil, err
	}
	if sc := cfg.Approval.Slack; sc.WebhookURL != "" || sc.BotToken != "" {
		a.slack, err = approval.NewSlack(approval.SlackOptions{
			WebhookURL: sc.WebhookURL, BotToken: sc.BotToken, Channel: sc.Channel,
			SigningSecret: sc.SigningSecret, Approvers: cfg.Approval.Approvers,
		}, a.broker, logger)
		if err != nil {
			return nil, usageError(fmt.Errorf("approval.slack: %w", err))
		}
		a.broker.AddNotifier(a.slack)
		if sc.BotToken != "" && len(cfg.Approval.Approvers) == 0 {
			// Everyone who sees the channel can press Approve, guests of
			// a shared (Slack Connect) channel included.
			logger.Warn("approval.approvers is empty: anyone who can press the buttons in the Slack channel can approve; list the approvers' Slack user IDs")
		}
	}
	a.token, err = approval.LoadOrCreateToken(filepath.Join(cfg.StateDir, "admin-token"))
	if err != nil {
		return nil, usageError(err)
	}

	roots, err := upstreamRoots(cfg)
	if err != nil {
		return nil, usageError(err)
	}

	a.registry = session.NewRegistry(opts.anonymous)
	var ownHosts []string
	if cfg.Approval.PublicURL != "" {
		if u, err := url.Parse(cfg.Approval.PublicURL); err == nil {
			if h, p, err := hostport.Split(u.Host, defaultPortFor(u.Scheme)); err == nil {
				ownHosts = append(ownHosts, hostport.Join(h, p))
			}
		}
	}
	// The shared state database: an agent must not reach it through the
	// proxy (whoever writes to it can approve), by its name or by its
	// address (found by review: by address, a tunnel the policy allowed
	// reached it).
	ownHosts = append(ownHosts, approval.PostgresAddrs(cfg.State)...)
	a.stateAddrs = resolveAddrs(ctx, approval.PostgresAddrs(cfg.State))
	a.proxy, err = proxy.New(proxy.Options{
		Issuer:          mitm.NewIssuer(a.ca, mitm.IssuerOptions{}),
		Decider:         a.engine,
		Audit:           auditor,
		Approvals:       a.broker,
		Sessions:        a.registry,
		Classifier:      newClassifier(cfg),
		RootCAs:         roots,
		UpstreamTimeout: cfg.Upstream.Timeout,
		Guard:           hostport.Guard{Allow: cfg.Upstream.AllowAddresses},
		Resolve:         cfg.Upstream.Resolve,
		OwnAddrs:        a.ownAddrs,
		OwnHosts:        ownHosts,
		BodyLimit:       int64(cfg.Inspect.BodyLimit),
		MITM:            cfg.Inspect.MITM,
		Shadow:          cfg.Policy.Mode == "shadow",
		Hold:            cfg.Approval.Hold,
		RecordInput:     true,
		// Only Kubernetes clusters commonly authenticate clients by
		// certificate; the explanation is the same for any host.
		ClientCertMessage: kubernetes.ClientCertMessage,
	}, logger)
	if err != nil {
		return nil, err
	}

	a.metrics.WatchServer(a.proxy)
	a.metrics.Gauge("countersign_requests_held", "Agent requests held open now, waiting for a human.",
		func() float64 { return float64(a.broker.Held()) })
	a.metrics.Gauge("countersign_approvals_pending", "Approvals waiting for a human decision (held or not).",
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := store.CountPending(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.Handle("/api/", approval.NewAdminHandler(a.broker, a.token, logger))
	pageSecret := opts.pageSecret
	if pageSecret == nil {
		pageSecret = make([]byte, 32)
		_, _ = rand.Read(pageSecret)
	}
	page := approval.NewPageHandler(a.broker, approval.PageOptions{
		// The page cannot verify a Slack identity: with a Slack approver
		// list it only shows the request.
		Decide:       len(cfg.Approval.Approvers) == 0,
		SlackButtons: cfg.Approval.Slack.BotToken != "",
		Secret:       pageSecret,
	}, logger)
	// Every method goes to the page, so that even a 405 carries its
	// security headers.
	mux.Handle("/approvals/{id}", page)
	if a.slack != nil {
		mux.Handle("POST /slack/interactive", a.slack.InteractiveHandler())
	}
	// Anyone who can reach the listener (an outsider, or the agent under a
	// plain run) may open connections to it: each is bounded in time and
	// their number is capped, so that they cannot use up the process's
	// file descriptors, the proxy's included; and past the cap a newcomer
	// closes the longest idle (or stalled) one, so that connections left
	// idle do not keep approvers out; a request being handled is never cut
	// (all found by review). Nothing here streams; a long list of
	// approvals from a shared store is the slowest answer.
	a.approvalConns = connlimit.New(a.approvalLn, maxApprovalConns, time.Second)
	a.approvals = &http.Server{
		Handler:           a.approvalConns.Handler(mux),
		ConnState:         a.approvalConns.ConnState,
		ConnContext:       a.approvalConns.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(logger.Named("approval-http")),
	}

	if opts.discoveryName != "" {
		if err := a.writeDiscovery(opts.discoveryName); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// maxApprovalConns caps the approval listener's connections: approvers,
// Slack's callbacks, the CLI and metrics scrapes need a handful.
const maxApprovalConns = 512

func defaultPortFor(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// ownAddrs lists the proxy's and approval listener's addresses.
func (a *app) ownAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, ln := range []net.Listener{a.proxyLn, a.approvalLn} {
		if ln == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return append(out, a.stateAddrs...)
}

// resolveAddrs resolves host:port pairs to addresses, each name within a
// few seconds; a name that does not resolve is left to the name check.
func resolveAddrs(ctx context.Context, hostports []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, hp := range hostports {
		host, portStr, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ips, _ := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
		cancel()
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	return out
}

func upstreamRoots(cfg *config.Config) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for i, f := range cfg.Upstream.CAFiles {
		key := fmt.Sprintf("upstream.ca_files[%d]", i)
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Where(key), err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", cfg.Where(key), f)
		}
	}
	return pool, nil
}

// proxyAddr is the proxy's address as clients should dial it.
func (a *app) proxyAddr() string { return dialable(a.proxyLn.Addr().String()) }

// approvalURL is the base URL of the approval listener.
func (a *app) approvalURL() string {
	if a.cfg.Approval.PublicURL != "" {
		return strings.TrimRight(a.cfg.Approval.PublicURL, "/")
	}
	return "http://" + dialable(a.approvalLn.Addr().String())
}

// dialable turns a listen address on an unspecified IP into a loopback one.
func dialable(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	if ap.Addr().IsUnspecified() {
		if ap.Addr().Is4() {
			return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String()
		}
		return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()).String()
	}
	return addr
}

// start serves the proxy and the approval listener in the background.
func (a *app) start() {
	a.startPolicyUpdates()
	a.broker.Start()
	serve := func(name string, f func() error) {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				a.logger.Error("listener stopped", zap.String("listener", name), zap.Error(err))
				a.serveMu.Lock()
				a.errs = append(a.errs, err)
				a.serveMu.Unlock()
			}
		}()
	}
	serve("proxy", func() error { return a.proxy.Serve(a.proxyLn) })
	serve("approval", func() error { return a.approvals.Serve(a.approvalConns) })
}

// shutdown answers held requests, drains connections until ctx is done and
// closes the audit log.
func (a *app) shutdown(ctx context.Context) {
	a.stopPolicyUpdates()
	if a.broker != nil {
		a.broker.Close()
	}
	if a.proxy != nil {
		_ = a.proxy.Shutdown(ctx)
	}
	if a.approvals != nil {
		_ = a.approvals.Shutdown(ctx)
	}
	// After the approval listener: callbacks arriving until then still get
	// their replies delivered.
	if a.slack != nil {
		a.slack.Close()
	}
	a.wg.Wait()
	a.close()
}

// close releases what newApp opened.
func (a *app) close() {
	if a.discovery != "" {
		_ = os.Remove(a.discovery)
		a.discovery = ""
	}
	if a.proxyLn != nil {
		_ = a.proxyLn.Close()
	}
	if a.approvalLn != nil {
		_ = a.approvalLn.Close()
	}
	a.stopPolicyUpdates()
	if a.audit != nil {
		if err := a.audit.Close(); err != nil {
			a.logger.Error("close audit log", zap.Error(err))
		}
		a.audit = nil
	}
}

func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"status": "ok"}
	a.policyHealth(body)
	a.stateHealth(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

// discoveryInfo is written to <state_dir>/run/<name>.json so that
// `countersign approvals` finds running instances without flags.
type discoveryInfo struct {
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
}

func (a *app) writeDiscovery(name string) error {
	dir := filepath.Join(a.cfg.StateDir, "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, _ := json.Marshal(discoveryInfo{URL: a.approvalURL(), PID: os.Getpid(), Name: name, Started: time.Now().UTC()})
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	a.discovery = path
	return nil
}

// withBundle fetches the first policy bundle when policy.bundle is set:
// countersign never starts without a policy, so a bundle service that
// cannot be reached or serves a bad bundle stops the start (exit 2).
func (a *app) withBundle(ctx context.Context, src policy.Source) (policy.Source, error) {
	bc := a.cfg.Policy.Bundle
	if bc.URL == "" {
		return src, nil
	}
	var err error
	bo := policy.BundleOptions{URL: bc.URL, Resource: bc.Resource, Polling: bc.Polling, Token: bc.Token, CACertFile: bc.CAFile}
	if v := bc.Verification; v.Key != "" {
		bo.Verification = &policy.BundleVerification{Key: v.Key, KeyID: v.KeyID, Algorithm: v.Algorithm, Scope: v.Scope}
	}
	a.bundle, err = policy.NewBundleLoader(bo, a.logger)
	if err != nil {
		return src, usageError(err)
	}
	fetchCtx, cancel := context.WithTimeout(ctx, a.cfg.Upstream.Timeout)
	defer cancel()
	b, err := a.bundle.Fetch(fetchCtx)
	if err != nil {
		return src, usageError(fmt.Errorf("policy.bundle: %w", err))
	}
	src.Bundle = b
	return src, nil
}

// startPolicyUpdates watches the policy paths and polls the bundle
// service. A change is compiled and tested, then swapped in or rejected
// (policyReloaded audits either). stopPolicyUpdates ends both.
func (a *app) startPolicyUpdates() {
	if a.watchPaths {
		a.watcher, a.watchErr = policy.NewWatcher(a.engine, policy.WatchOptions{}, a.logger)
		if a.watchErr != nil {
			// The policy in force is still enforced; only hot reload is
			// lost, which /healthz shows.
			a.logger.Error("cannot watch the policy files; changes need a restart", zap.Error(a.watchErr))
		}
	}
	if a.bundle != nil {
		a.bundle.Start(a.engine, a.bundle.Status().ETag)
	}
}

func (a *app) stopPolicyUpdates() {
	// Both are idempotent; the fields stay set for /healthz.
	if a.watcher != nil {
		_ = a.watcher.Close()
	}
	if a.bundle != nil {
		a.bundle.Close()
	}
}

// policyReloaded writes an audit record for every accepted or rejected
// policy reload.
func (a *app) policyReloaded(ev policy.ReloadEvent) {
	rec := &audit.Event{Type: "policy", PolicyRevision: ev.Revision, Detail: "reloaded",
		Fields: map[string]any{"origin": ev.Origin, "previous_revision": ev.Previous}}
	if ev.BundleRevision != "" {
		rec.Fields["bundle_revision"] = ev.BundleRevision
	}
	if n := ev.Tests.Passed + ev.Tests.Failed + ev.Tests.Errored; n > 0 {
		rec.Fields["tests_passed"] = ev.Tests.Passed
		rec.Fields["tests_failed"] = ev.Tests.Failed + ev.Tests.Errored
	}
	if ev.Err != nil {
		rec.Detail = "reload rejected: " + ev.Err.Error()
		rec.Error = ev.Err.Error()
	}
	if a.audit == nil {
		return
	}
	if err := a.audit.Record(rec); err != nil {
		a.logger.Error("audit write failed for a policy reload", zap.Error(err))
	}
}

// policyHealth adds the policy's state to the /healthz body: the revision
// in force, the last rejected reload (status "degraded" until a later
// reload is accepted), the watcher and the bundle service.
// stateHealth reports whether the approval store answers: with a shared
// database down, requests that need a human are refused (503).
func (a *app) stateHealth(body map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := a.broker.Store().CountPending(ctx)
	if err != nil {
		body["state"] = "error: " + err.Error()
		body["status"] = "degraded"
		return
	}
	body["state"] = "ok"
	body["approvals_pending"] = n
}

func (a *app) policyHealth(body map[string]any) {
	st := a.engine.Status()
	body["policy_revision"] = st.Revision
	body["policy_loaded_at"] = st.LoadedAt.UTC().Format(time.RFC3339Nano)
	body["policy_reloads"] = st.Reloads
	body["policy_rejected"] = st.Rejected
	if st.LastError != nil {
		body["policy_error"] = st.LastError.Error()
		body["policy_error_at"] = st.LastErrorAt.UTC().Format(time.RFC3339Nano)
		body["status"] = "degraded"
	}
	switch {
	case a.watchErr != nil:
		body["policy_watch"] = "off: " + a.watchErr.Error()
	case a.watcher != nil:
		body["policy_watch"] = "on"
	}
	if a.bundle != nil {
		bs := a.bundle.Status()
		b := map[string]any{"url": bs.URL, "revision": st.BundleRevision}
		if !bs.LastSuccess.IsZero() {
			b["last_success"] = bs.LastSuccess.UTC().Format(time.RFC3339Nano)
		}
		if bs.LastError != nil {
			b["error"] = bs.LastError.Error()
			b["error_at"] = bs.LastErrorAt.UTC().Format(time.RFC3339Nano)
		}
		body["policy_bundle"] = b
	}
}

// auditOptions opens the audit log at path as cfg says.
func auditOptions(cfg *config.Config, path string) audit.Options {
	opts := audit.Options{Path: path, Fsync: cfg.Audit.Fsync}
	if path != "-" {
		// Set even with the journal off, so that one a crash left is
		// replayed.
		opts.Journal = path + ".journal"
		opts.ReplayOnly = !cfg.Audit.Journal
	}
	return opts
}

// recoverSessionLogs replays the journals that crashed sessions left beside
// their own audit logs (state_dir/audit/ID.jsonl, written when the shared
// log was in use). A session's log is never opened again after it ends, so
// without this the records its journal alone held (acknowledged as
// durable) would stay out of the log for good. A log another session still
// writes is locked and skipped. It returns the logs it recovered.
func recoverSessionLogs(cfg *config.Config, logger *zap.Logger) []string {
	journals, err := filepath.Glob(filepath.Join(cfg.StateDir, "audit", "*.jsonl.journal"))
	if err != nil {
		return nil
	}
	var recovered []string
	for _, j := range journals {
		path := strings.TrimSuffix(j, ".journal")
		opts := auditOptions(cfg, path)
		opts.Fsync, opts.ReplayOnly = true, true
		l, err := audit.Open(opts, logger)
		if errors.Is(err, audit.ErrInUse) {
			continue // a session running now
		}
		if err == nil {
			err = l.Close()
		}
		if err != nil {
			logger.Warn("cannot recover the audit log of an earlier session; run `countersign audit verify` on it", zap.String("path", path), zap.Error(err))
			continue
		}
		logger.Info("recovered the audit log of an earlier session from its journal", zap.String("path", path))
		recovered = append(recovered, path)
	}
	return recovered
}

// childPolicyTests runs a reload's policy tests in a child countersign
// (policy.ChildTests), so that a test that panics OPA cannot end the
// proxy. Where the binary cannot be found they run in this process.
func childPolicyTests(logger *zap.Logger) policy.TestRunner {
	if runtime.GOOS == "linux" {
		// The running binary itself, not whatever its path names now: an
		// agent that can write where countersign is installed must not
		// have its program run outside --isolate on the next reload.
		return policy.ChildTests("/proc/self/exe", 2*time.Minute)
	}
	exe, err := os.Executable()
	if err == nil {
		// The file itself, not a link a package manager moves on upgrade
		// (found by review).
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		logger.Warn("policy tests on reload run in this process: cannot find the countersign binary", zap.Error(err))
		return nil
	}
	return policy.ChildTests(exe, 2*time.Minute)
}
