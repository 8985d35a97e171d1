package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
	"go.uber.org/zap"

	"github.com/countersign/countersign/internal/redact"
)

// Bundle is the content of an OPA bundle as countersign compiles it: Rego
// modules and data. Its modules are compiled together with Source.Paths,
// with the same capabilities and the embedded library; they appear in error
// messages and Files as "bundle:<path>".
type Bundle struct {
	// Revision is the manifest's revision (may be empty).
	Revision string
	// ETag is the bundle service's ETag for this bundle.
	ETag    string
	Modules []BundleModule
	// Data is the bundle's data document, rooted at data.
	Data map[string]any
}

// BundleModule is one Rego file of a bundle.
type BundleModule struct {
	Path string
	Raw  []byte
}

func (b *Bundle) revision() string {
	if b == nil {
		return ""
	}
	return b.Revision
}

// bundlePrefix marks bundle modules in file names and messages.
const bundlePrefix = "bundle:"

// addBundle parses the bundle's modules (skipping those filter excludes,
// such as tests) into modules and raw, and merges its data into docs.
func addBundle(b *Bundle, filter loader.Filter, caps *ast.Capabilities, modules map[string]*ast.Module, raw map[string][]byte, docs map[string]any) (map[string]any, error) {
	for _, m := range b.Modules {
		name := bundlePrefix + strings.TrimPrefix(m.Path, "/")
		if filter != nil && filter(name, bundleFileInfo(path.Base(m.Path)), 1) {
			continue
		}
		parsed, err := ast.ParseModuleWithOpts(name, string(m.Raw), ast.ParserOptions{
			RegoVersion: ast.RegoV1, Capabilities: caps, ProcessAnnotation: true,
		})
		if err != nil {
			return nil, err
		}
		if _, dup := modules[name]; dup {
			return nil, fmt.Errorf("bundle module %s is given twice", name)
		}
		modules[name] = parsed
		raw[name] = m.Raw
	}
	if docs == nil {
		docs = map[string]any{}
	}
	data, _ := deepCopy(b.Data).(map[string]any) // a bundle without data.json has none
	if err := mergeData(docs, data, "data"); err != nil {
		return nil, err
	}
	return docs, nil
}

// mergeData adds src to dst. Objects merge; any other value defined on both
// sides is a conflict, reported with its path.
func mergeData(dst, src map[string]any, at string) error {
	for k, v := range src {
		p := at + "." + k
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s is defined both by the bundle and by policy.paths", p)
		}
		if err := mergeData(om, nm, p); err != nil {
			return err
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	default:
		// null stays null (found by review: it became {}, so a policy
		// testing is_null(data.x) decided otherwise from a bundle).
		return v
	}
}

// bundleFileInfo lets a loader.Filter judge a bundle file by its name.
type bundleFileInfo string

func (n bundleFileInfo) Name() string       { return string(n) }
func (n bundleFileInfo) Size() int64        { return 0 }
func (n bundleFileInfo) Mode() fs.FileMode  { return 0o444 }
func (n bundleFileInfo) ModTime() time.Time { return time.Time{} }
func (n bundleFileInfo) IsDir() bool        { return false }
func (n bundleFileInfo) Sys() any           { return nil }

// fromOPABundle checks a downloaded bundle and keeps what countersign
// compiles. A delta bundle, a bundle with Wasm modules or one without a
// `package countersign` module is rejected.
func fromOPABundle(b *bundle.Bundle, etag string) (*Bundle, error) {
	if b.Type() == bundle.DeltaBundleType {
		return nil, errors.New("delta bundles are not supported: serve a snapshot bundle")
	}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return nil, errors.New("bundle carries Wasm or plan modules; countersign evaluates Rego only")
	}
	want := ast.MustParseRef("data." + Package)
	out := &Bundle{Revision: b.Manifest.Revision, ETag: etag, Data: b.Data}
	declares := false
	for _, m := range b.Modules {
		out.Modules = append(out.Modules, BundleModule{Path: m.Path, Raw: m.Raw})
		if m.Parsed != nil && !strings.HasSuffix(m.Path, "_test.rego") && m.Parsed.Package.Path.Equal(want) {
			declares = true
		}
	}
	if !declares {
		return nil, fmt.Errorf("bundle has no module declaring `package %s`; countersign evaluates data.%s.deny, .approve and .allow", Package, Package)
	}
	slices.SortFunc(out.Modules, func(a, b BundleModule) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// ActivateBundle compiles the policy paths together with b (and runs their
// tests) and swaps the result in, or rejects b and keeps the set in force.
func (e *Engine) ActivateBundle(ctx context.Context, b *Bundle) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	src := e.opts.Source
	src.Bundle = b
	return e.reloadLocked(ctx, src, OriginBundle)
}

// rejectBundle records a bundle that was downloaded but could not be read
// (bad signature, bad archive, no package countersign).
func (e *Engine) rejectBundle(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := e.cur.Load().revision
	now := e.opts.Now()
	e.lastError.Store(&reloadError{err: err, at: now})
	e.status.mu.Lock()
	e.status.rejected++
	e.status.mu.Unlock()
	e.logger.Error("policy bundle rejected; keeping the last good policy", zap.String("revision", prev), zap.Error(err))
	e.notify(ReloadEvent{Origin: OriginBundle, Revision: prev, Previous: prev, Err: err, At: now})
}

// BundleOptions configures a BundleLoader (config policy.bundle).
type BundleOptions struct {
	// URL is the bundle service's base URL; with Resource empty it is the
	// bundle's own URL.
	URL string
	// Resource is the bundle's path on the service.
	Resource string
	// Polling is the delay between downloads (whole seconds, at least 1s;
	// default 60s).
	Polling time.Duration
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// CACertFile adds a PEM file of roots for the service's TLS certificate
	// (the system roots are always trusted).
	CACertFile string
	// Verification, when set, requires bundles to be signed
	// (.signatures.json) with this key.
	Verification *BundleVerification
	// SizeLimit bounds the bundle's files (default 64 MiB).
	SizeLimit int64
}

// BundleVerification is the key that signed bundles must carry, as in
// OPA's bundle verification config.
type BundleVerification struct {
	// KeyID is the key id ("keyid" in the signature); default "default".
	KeyID string
	// Key is a PEM public key (RS*, PS*, ES*), an HMAC secret (HS*), or a
	// file holding one.
	Key string
	// Algorithm defaults to RS256.
	Algorithm string
	// Scope, when set, must match the signature's scope.
	Scope string
}

// BundleStatus is what /healthz shows about the bundle service.
type BundleStatus struct {
	URL string
	// Revision and ETag describe the last bundle downloaded (activated or
	// not; see Engine.Status for what is in force).
	Revision, ETag string
	LastSuccess    time.Time
	// LastError is the last download failure; nil after a download succeeds.
	LastError   error
	LastErrorAt time.Time
}

// BundleLoader downloads bundles with OPA's bundle downloader (the part of
// OPA's bundle plugin that fetches, polls with ETags, backs off and verifies
// signatures) and hands them to an Engine, which compiles and tests them
// like a reload from files: a bundle that does not compile, fails its tests
// or lacks `package countersign` is rejected and the last good policy
// stays in force.
//
// OPA's plugin manager is not used: it would activate bundles into its own
// store and compiler (with OPA's default capabilities, http.send included),
// a second policy set whose last-good state countersign does not control.
type BundleLoader struct {
	opts   BundleOptions
	logger *zap.Logger
	client rest.Client
	path   string
	vc     *bundle.VerificationConfig

	mu      sync.Mutex
	status  BundleStatus
	running *download.Downloader
}

// NewBundleLoader checks the options. Nothing is downloaded until Fetch or
// Start.
func NewBundleLoader(opts BundleOptions, logger *zap.Logger) (*BundleLoader, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("bundle")
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("policy.bundle.url %q: want an absolute http:// or https:// URL", opts.URL)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		// Anyone on the path could serve an empty package countersign,
		// which allows everything, and read the bearer token.
		switch {
		case opts.Token != "":
			return nil, fmt.Errorf("policy.bundle.url %q: the bundle token would cross the network in clear text; use https://", opts.URL)
		case opts.Verification == nil:
			return nil, fmt.Errorf("policy.bundle.url %q: an unsigned bundle over plain http:// could be replaced on the way; use https://, or require signed bundles (policy.bundle.verification)", opts.URL)
		}
	}
	base, resource := strings.TrimRight(opts.URL, "/"), opts.Resource
	if resource == "" {
		base = u.Scheme + "://" + u.Host
		resource = u.EscapedPath()
		if u.RawQuery != "" {
			return nil, fmt.Errorf("policy.bundle.url %q: a query string is not supported", opts.URL)
		}
		if strings.Trim(resource, "/") == "" {
			return nil, fmt.Errorf("policy.bundle.url %q names no bundle: add its path, or set policy.bundle.resource", opts.URL)
		}
	}
	if opts.Polling <= 0 {
		opts.Polling = 60 * time.Second
	}
	if opts.SizeLimit <= 0 {
		opts.SizeLimit = 64 << 20
	}
	cfg := map[string]any{"name": "countersign", "url": base}
	if opts.Token != "" {
		cfg["credentials"] = map[string]any{"bearer": map[string]any{"token": opts.Token}}
	}
	if opts.CACertFile != "" {
		cfg["tls"] = map[string]any{"ca_cert": opts.CACertFile, "system_ca_required": true}
	}
	raw, _ := json.Marshal(cfg)
	client, err := rest.New(raw, nil, rest.Logger(opaLogger{logger}))
	if err != nil {
		return nil, fmt.Errorf("policy.bundle: %w", err)
	}
	l := &BundleLoader{opts: opts, logger: logger, client: client, path: resource}
	// The URL as /healthz and the logs show it: no password, no
	// credential in its query.
	shown := base
	if bu, err := url.Parse(base); err == nil {
		shown = strings.TrimRight(redact.URL(bu), "/")
	}
	l.status.URL = shown + "/" + strings.TrimLeft(resource, "/")
	if v := opts.Verification; v != nil {
		if v.Key == "" {
			return nil, errors.New("policy.bundle verification: no key given")
		}
		id, alg := v.KeyID, v.Algorithm
		if id == "" {
			id = "default"
		}
		if alg == "" {
			alg = "RS256"
		}
		kc, err := keys.NewKeyConfig(v.Key, alg, v.Scope)
		if err != nil {
			return nil, fmt.Errorf("policy.bundle verification key: %w", err)
		}
		l.vc = bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{id: kc}, id, v.Scope, nil)
	}
	return l, nil
}

func (l *BundleLoader) downloader(trigger plugins.TriggerMode, cb func(context.Context, download.Update) error) *download.Downloader {
	secs := max(int64((l.opts.Polling+time.Second-1)/time.Second), 1)
	cfg := download.Config{Trigger: &trigger, Polling: download.PollingConfig{MinDelaySeconds: &secs, MaxDelaySeconds: &secs}}
	// The values above are valid by construction.
	_ = cfg.ValidateAndInjectDefaults()
	d := download.New(cfg, l.client, l.path).
		WithCallback(cb).
		WithSizeLimitBytes(l.opts.SizeLimit).
		WithBundleName("countersign").
		WithBundleParserOpts(ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if l.vc != nil {
		d = d.WithBundleVerificationConfig(l.vc)
	}
	return d
}

// Fetch downloads the bundle once and checks it. countersign fetches the
// first bundle before it starts, so that it never runs without a policy.
func (l *BundleLoader) Fetch(ctx context.Context) (*Bundle, error) {
	var got *Bundle
	var convErr error
	d := l.downloader(plugins.TriggerManual, func(_ context.Context, u download.Update) error {
		if u.Error != nil || u.Bundle == nil {
			return nil
		}
		got, convErr = fromOPABundle(u.Bundle, u.ETag)
		return nil
	})
	err := d.Trigger(ctx)
	if err == nil && convErr == nil && got == nil {
		err = errors.New("the bundle service answered without a bundle")
	}
	if err == nil {
		err = convErr
	}
	l.record(got, err)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", l.status.URL, err)
	}
	return got, nil
}

// Start polls the bundle service in the background and activates every new
// bundle in e. etag is the ETag of the bundle already in force (from
// Fetch), so that an unchanged bundle is not downloaded again. Close stops
// it.
func (l *BundleLoader) Start(e *Engine, etag string) {
	d := l.downloader(plugins.TriggerPeriodic, func(ctx context.Context, u download.Update) error {
		l.update(ctx, e, u)
		return nil
	})
	d.SetCache(etag)
	l.mu.Lock()
	l.running = d
	l.mu.Unlock()
	d.Start(context.Background())
}

// update handles one download result in the polling loop.
func (l *BundleLoader) update(ctx context.Context, e *Engine, u download.Update) {
	switch {
	case u.Error != nil && fetchFailure(u.Error):
		l.record(nil, u.Error)
		l.logger.Warn("policy bundle download failed; keeping the policy in force", zap.String("url", l.status.URL), zap.Error(u.Error))
	case u.Error != nil:
		// The service answered, but with something that is not a valid
		// (or not a correctly signed) bundle.
		l.record(nil, nil)
		e.rejectBundle(fmt.Errorf("policy bundle %s: %w", l.status.URL, u.Error))
	case u.Bundle == nil:
		l.record(nil, nil) // not modified
	default:
		b, err := fromOPABundle(u.Bundle, u.ETag)
		if err != nil {
			l.record(nil, nil)
			e.rejectBundle(fmt.Errorf("policy bundle %s: %w", l.status.URL, err))
			return
		}
		l.record(b, nil)
		// ActivateBundle logs, counts and reports a rejection itself.
		_ = e.ActivateBundle(ctx, b)
	}
}

// fetchFailure reports whether err means the bundle could not be fetched
// at all (network, HTTP status), as opposed to a bundle that was fetched
// and found bad.
func fetchFailure(err error) bool {
	var he download.HTTPError
	var ue *url.Error
	return errors.As(err, &he) || errors.As(err, &ue) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (l *BundleLoader) record(b *Bundle, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if err != nil {
		l.status.LastError, l.status.LastErrorAt = err, now
		return
	}
	l.status.LastError = nil
	l.status.LastSuccess = now
	if b != nil {
		l.status.Revision, l.status.ETag = b.Revision, b.ETag
	}
}

// Status reports the last download.
func (l *BundleLoader) Status() BundleStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Close stops polling and waits for a download in progress to end.
func (l *BundleLoader) Close() {
	l.mu.Lock()
	d := l.running
	l.running = nil
	l.mu.Unlock()
	if d != nil {
		d.Stop(context.Background())
	}
}

// opaLogger sends OPA's log lines to zap at debug level: countersign logs
// what matters (a failed download, a rejected bundle) itself, once.
type opaLogger struct{ l *zap.Logger }

func (o opaLogger) log(format string, a []any) {
	if ce := o.l.Check(zap.DebugLevel, "opa"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, a...)))
	}
}

func (o opaLogger) Debug(format string, a ...any) { o.log(format, a) }
func (o opaLogger) Info(format string, a ...any)  { o.log(format, a) }
func (o opaLogger) Warn(format string, a ...any)  { o.log(format, a) }
func (o opaLogger) Error(format string, a ...any) { o.log(format, a) }

func (o opaLogger) WithFields(f map[string]any) logging.Logger {
	fields := make([]zap.Field, 0, len(f))
	for k, v := range f {
		fields = append(fields, zap.Any(k, v))
	}
	return opaLogger{o.l.With(fields...)}
}

func (o opaLogger) GetLevel() logging.Level {
	if o.l.Core().Enabled(zap.DebugLevel) {
		return logging.Debug
	}
	return logging.Info
}

func (o opaLogger) SetLevel(logging.Level) {}

// loopbackHost reports whether host (a URL's host name) is this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
