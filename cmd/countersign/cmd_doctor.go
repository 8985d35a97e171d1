package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/doctor"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

func newDoctorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor [-- CMD [ARGS...]]",
		Short: "Check that common clients (and CMD) use the proxy and trust the CA",
		Long: `doctor starts a proxy of its own, gives curl, git, aws, kubectl, gh, node,
python and go the environment countersign run gives an agent, and has each
fetch a made-up host under ` + doctor.Domain + `. The proxy sends those hosts
to a local probe server and refuses everything else, so nothing leaves this
machine. A client that reached its probe uses the proxy and trusts the CA; one
whose TLS handshake failed at the proxy does not trust the CA; one the proxy
never saw does not use the proxy. Clients that are not installed are skipped.

With -- CMD, doctor also runs CMD in that environment and reports, for every
host it contacted, whether it came through the proxy and trusted the CA. Its
requests are refused (nothing is sent), so CMD itself will likely report
errors.

Exit code 0 when every installed client and CMD pass, 1 otherwise.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd, e, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// doctorPolicy lets through only the probes: whatever else a client or CMD
// asks for is refused, and nothing is sent.
const doctorPolicy = `package countersign

deny contains "countersign doctor refuses everything but its probes: nothing was sent" if {
	not endswith(input.request.host, ".` + doctor.Domain + `")
}
`

func runDoctor(cmd *cobra.Command, e *env, args []string) error {
	cfg, err := loadConfig(cmd, e)
	if err != nil {
		return err
	}
	if err := validate(cfg); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "countersign-doctor-")
	if err != nil {
		return fmt.Errorf("create scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	probe, err := doctor.StartProbe()
	if err != nil {
		return err
	}
	defer probe.Close()
	dc, err := doctorConfig(cfg, tmp, probe)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(tmp, "doctor.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger, err := newLogger(dc, logFile)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	a, err := newApp(ctx, dc, logger, appOptions{policy: policy.Source{Paths: []string{filepath.Join(tmp, "policy")}}})
	if err != nil {
		return err
	}
	a.start()
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.shutdown(sctx)
	}
	defer func() {
		if a != nil {
			shutdown()
		}
	}()

	newSession := func(name string) (*session.Info, []string, error) {
		sess := &session.Info{ID: session.NewID(), Name: name, User: currentUser(), Command: "doctor", Cwd: e.cwd}
		password := session.NewPassword()
		a.registry.Add(session.Credential{Username: sess.ID, Password: password, Session: sess})
		dir := filepath.Join(tmp, sess.ID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, err
		}
		caPath := filepath.Join(dir, "countersign-ca.pem")
		if err := os.WriteFile(caPath, a.ca.CertPEM(), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write CA certificate: %w", err)
		}
		bundle, err := session.WriteCABundle(dir, a.ca.CertPEM())
		if err != nil {
			return nil, nil, err
		}
		proxyURL := (&url.URL{Scheme: "http", User: url.UserPassword(sess.ID, password), Host: a.proxyAddr()}).String()
		return sess, session.ChildEnv(os.Environ(), session.EnvOptions{ProxyURL: proxyURL, CABundle: bundle, CACert: caPath, SessionID: sess.ID}), nil
	}

	fmt.Fprintf(e.stdout, "countersign doctor: clients through a proxy on %s (only the probes under %s get through; nothing leaves this machine)\n\n", a.proxyAddr(), doctor.Domain)
	_, probeEnv, err := newSession("countersign doctor")
	if err != nil {
		return err
	}
	results := make([]doctor.Result, len(doctor.Clients))
	runCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	var wg sync.WaitGroup
	for i, c := range doctor.Clients {
		wg.Go(func() { results[i] = doctor.Run(runCtx, c, probeEnv, filepath.Join(tmp, "clients")) })
	}
	wg.Wait()
	cancel()

	var cmdSess *session.Info
	cmdCode := 0
	if len(args) > 0 {
		var cmdEnv []string
		cmdSess, cmdEnv, err = newSession("countersign doctor: " + filepath.Base(args[0]))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "countersign doctor: running %s; its requests are refused, doctor only watches how they arrive\n", strings.Join(args, " "))
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Env = cmdEnv
		c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
		c.Dir = e.cwd
		c.WaitDelay = time.Second
		if err := c.Run(); err != nil {
			cmdCode = -1
			if ee, ok := err.(*exec.ExitError); ok {
				cmdCode = ee.ExitCode()
			} else {
				return usageError(fmt.Errorf("start %s: %w", args[0], err))
			}
		}
	}

	// The audit log is complete once the proxy has shut down.
	auditPath := a.audit.Path()
	shutdown()
	a = nil
	seen, err := readDoctorAudit(auditPath)
	if err != nil {
		return err
	}

	failed := false
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for i := range results {
		r := &results[i]
		host := doctor.Host(r.Client.Name)
		if r.Verdict != doctor.NotInstalled {
			_, hsFailed := seen.handshake[host]
			r.Verdict = doctor.Judge(doctor.Observed{Reached: probe.Reached(host), HandshakeFailed: hsFailed})
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Client.Name, r.Verdict, r.Message())
		if r.Verdict == doctor.NoTrust || r.Verdict == doctor.NoProxy {
			failed = true
			if last := lastLine(r.Output); last != "" {
				fmt.Fprintf(tw, "  \t\t%s said: %s\n", r.Client.Name, last)
			}
		}
	}
	_ = tw.Flush()

	// Settings the probes above cannot see: doctor gives kubectl an empty
	// kubeconfig, and a noproxy for other hosts spares the probe's.
	overrides, problems := session.ProxyOverrides(os.Environ())
	if len(overrides)+len(problems) > 0 {
		fmt.Fprintln(e.stdout, "\nclient configuration (preferred to the proxy variables):")
		for _, o := range overrides {
			failed = true
			fmt.Fprintf(e.stdout, "  FAIL  %s\n", o)
		}
		for _, p := range problems {
			fmt.Fprintf(e.stdout, "  warn  %s\n", p)
		}
		if len(overrides) > 0 {
			fmt.Fprintln(e.stdout, "        Remove these for agent sessions, or run the agent with `countersign run --isolate`, under which those requests fail instead.")
		}
	}

	if cmdSess != nil {
		fmt.Fprintf(e.stdout, "\n%s (exit code %d):\n", strings.Join(args, " "), cmdCode)
		hosts := seen.bySession[cmdSess.ID]
		if len(hosts) == 0 {
			failed = true
			fmt.Fprintln(e.stdout, "  FAIL  no request came through the proxy: it ignores HTTPS_PROXY (or made none).")
			fmt.Fprintln(e.stdout, "        Run it with `countersign run --isolate` so that nothing leaves except through the proxy.")
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, h := range slices.Sorted(maps.Keys(hosts)) {
			o := hosts[h]
			switch {
			case o.handshake != "":
				failed = true
				fmt.Fprintf(tw, "  FAIL\t%s\tthrough the proxy, but %s\n", h, o.handshake)
			default:
				fmt.Fprintf(tw, "  ok\t%s\tthrough the proxy, trusts the CA (requests: %d, refused by doctor)\n", h, o.requests)
			}
		}
		_ = tw.Flush()
	}
	if failed {
		return checkFailed(fmt.Errorf("some clients do not use the proxy or do not trust the countersign CA (see above)"))
	}
	return nil
}

// doctorConfig is the configuration of doctor's own proxy: the user's CA
// and state directory, everything else doctor's.
func doctorConfig(cfg *config.Config, tmp string, probe *doctor.Probe) (*config.Config, error) {
	dc := config.Default()
	dc.StateDir = cfg.StateDir
	dc.CA = cfg.CA
	dc.Log = cfg.Log
	dc.Audit = config.Audit{Path: filepath.Join(tmp, "audit.jsonl"), Fsync: false}
	probeCA := filepath.Join(tmp, "probe-ca.pem")
	if err := os.WriteFile(probeCA, probe.CertPEM, 0o600); err != nil {
		return nil, err
	}
	dc.Upstream.CAFiles = []string{probeCA}
	addr, err := netip.ParseAddrPort(probe.Addr)
	if err != nil {
		return nil, err
	}
	dc.Upstream.AllowAddresses = []netip.Prefix{netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())}
	dc.Upstream.Resolve = map[string]string{}
	for _, c := range doctor.Clients {
		dc.Upstream.Resolve[doctor.Host(c.Name)] = probe.Addr
	}
	polDir := filepath.Join(tmp, "policy")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(polDir, "doctor.rego"), []byte(doctorPolicy), 0o600); err != nil {
		return nil, err
	}
	dc.Policy.Paths = []string{polDir}
	return &dc, nil
}

// doctorSeen is what doctor's audit log says arrived.
type doctorSeen struct {
	// handshake maps a host to the reason its client's TLS handshake failed.
	handshake map[string]string
	// bySession maps a session to the hosts it contacted.
	bySession map[string]map[string]*hostSeen
}

type hostSeen struct {
	requests  int
	handshake string
}

func readDoctorAudit(path string) (*doctorSeen, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read doctor's audit log: %w", err)
	}
	seen := &doctorSeen{handshake: map[string]string{}, bySession: map[string]map[string]*hostSeen{}}
	for line := range strings.Lines(string(data)) {
		rec, err := audit.ParseRecord([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("doctor's audit log %s: %w", path, err)
		}
		if rec.Type != "decision" || rec.Request == nil || rec.Session == nil {
			continue
		}
		host := rec.Request.Host
		hs := seen.bySession[rec.Session.ID]
		if hs == nil {
			hs = map[string]*hostSeen{}
			seen.bySession[rec.Session.ID] = hs
		}
		h := hs[host]
		if h == nil {
			h = &hostSeen{}
			hs[host] = h
		}
		if rec.Request.Method == "CONNECT" && slices.Contains(rec.RuleIDs, "PROTOCOL") {
			reason := strings.Join(rec.Reasons, "; ")
			seen.handshake[host] = reason
			h.handshake = reason
			continue
		}
		h.requests++
	}
	return seen, nil
}

// lastLine is the last non-empty line of s, shortened.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return oneLine(lines[len(lines)-1], 160)
}
