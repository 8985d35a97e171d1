package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/testinfra"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

func newDemoCmd(e *env) *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained scenario: fake AWS and GitHub, the default policy, a scripted agent",
		Long: `demo needs no credentials and no network. It starts local fakes of the EC2 and
GitHub APIs, starts countersign with the built-in default policy, and runs a
scripted "agent" that reads, tries to reach the cloud metadata endpoint, and
attempts two destructive calls that wait for a human. The demo approves one
and denies the other through the admin API (with --interactive, you do), then
verifies the audit chain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), e, interactive)
		},
	}
	cmd.Flags().BoolVar(&interactive, "interactive", false, "wait for you to approve or deny with `countersign approvals`")
	return cmd
}

type demoOut struct {
	w     io.Writer
	start time.Time
}

func (d *demoOut) step(format string, args ...any) {
	fmt.Fprintf(d.w, "%6.2fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func demo(ctx context.Context, e *env, interactive bool) error {
	out := &demoOut{w: e.stdout, start: time.Now()}
	dir, err := os.MkdirTemp("", "countersign-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	upCA, err := testinfra.NewCA()
	if err != nil {
		return err
	}
	up, err := testinfra.StartUpstream(upCA, testinfra.FakeAPIs())
	if err != nil {
		return err
	}
	defer up.Close()
	upCAFile := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(upCAFile, upCA.CertPEM(), 0o644); err != nil {
		return err
	}

	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Audit.Path = filepath.Join(cfg.StateDir, "audit.jsonl")
	cfg.Upstream.CAFiles = []string{upCAFile}
	cfg.Upstream.AllowAddresses = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.Upstream.Resolve = up.Resolve("ec2.us-east-1.amazonaws.com", "api.github.com")
	cfg.Approval.Hold = 30 * time.Second
	if interactive {
		cfg.Approval.Hold = 3 * time.Minute
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// A config file naming the demo's state_dir lets `countersign approvals
	// --config FILE` in another terminal find this instance and its token.
	demoConfig := filepath.Join(dir, "countersign.yaml")
	if err := os.WriteFile(demoConfig, []byte("state_dir: "+cfg.StateDir+"\n"), 0o600); err != nil {
		return err
	}

	fmt.Fprintln(e.stdout, "countersign demo: a scripted agent meets the built-in default policy")
	fmt.Fprintf(e.stdout, "  fake EC2 and GitHub APIs on %s (real TLS, a throwaway CA); nothing leaves this machine\n\n", up.Addr)

	sess := &session.Info{ID: session.NewID(), Name: "demo/agent", User: "demo", Command: "agent"}
	term := &linkRecorder{links: map[string]string{}}
	a, err := newApp(ctx, &cfg, zap.NewNop(), appOptions{policy: policy.Source{Builtin: true}, notifiers: []approval.Notifier{term}, discoveryName: sess.ID, operatorLinks: true})
	if err != nil {
		return err
	}
	password := session.NewPassword()
	a.registry.Add(session.Credential{Username: sess.ID, Password: password, Session: sess})
	a.start()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.shutdown(sctx)
		}
	}
	defer stop()
	out.step("countersign is up: proxy %s, approvals %s, policy %s", a.proxyAddr(), a.approvalURL(), a.engine.Revision())

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(a.ca.CertPEM())
	proxyURL := &url.URL{Scheme: "http", User: url.UserPassword(sess.ID, password), Host: a.proxyAddr()}
	agent := &http.Client{
		Timeout: 5 * time.Minute,
		Transport: &http.Transport{
			Proxy:           http.ProxyURL(proxyURL),
			TLSClientConfig: &tls.Config{RootCAs: roots},
		},
	}
	admin := approval.NewClient(a.approvalURL(), a.token)

	type result struct {
		status int
		body   string
		err    error
	}
	call := func(method, target, contentType, body string) result {
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		if err != nil {
			return result{err: err}
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer ghp_demo0000000000000000000000000000000000")
		resp, err := agent.Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return result{status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	show := func(r result) {
		if r.err != nil {
			out.step("  ✗ %v", r.err)
			return
		}
		out.step("  → %d %s", r.status, oneLine(r.body, 220))
	}

	out.step("agent: GET https://api.github.com/repos/acme/shop  (a read)")
	show(call("GET", "https://api.github.com/repos/acme/shop", "", ""))

	out.step("agent: GET http://169.254.169.254/latest/meta-data/iam/security-credentials/  (steal the machine's credentials)")
	show(call("GET", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "", ""))

	// decideWhenPending waits for the approval the agent's call opens and
	// decides it like a human would.
	decideWhenPending := func(approve bool, reason string) {
		for i := 0; i < 200; i++ {
			recs, err := admin.List(ctx, true)
			if err == nil && len(recs) > 0 {
				r := recs[0]
				if interactive {
					verb := map[bool]string{true: "approve", false: "deny"}[approve]
					out.step("  ⏸ held as %s: %s", r.ID, r.Summary)
					out.step("    open the approval page and click %s:  %s", map[bool]string{true: "Approve", false: "Deny"}[approve], term.link(r.ID))
					out.step("    or, in another terminal:  countersign approvals %s %s --config %s", verb, r.ID, demoConfig)
					return
				}
				out.step("  ⏸ held as %s — policy: %s", r.ID, strings.Join(r.Messages, "; "))
				who := "demo-approver"
				if _, err := admin.Decide(ctx, r.ID, approve, who, reason); err != nil {
					out.step("  ✗ decide: %v", err)
					return
				}
				verb := "approves"
				if !approve {
					verb = "denies"
				}
				out.step("  human (%s) %s %s via the admin API%s", who, verb, r.ID, map[bool]string{true: "", false: ": " + reason}[reason == ""])
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}

	out.step("agent: POST https://ec2.us-east-1.amazonaws.com/ Action=TerminateInstances InstanceId.1=i-0abc")
	done := make(chan result, 1)
	go func() {
		done <- call("POST", "https://ec2.us-east-1.amazonaws.com/", "application/x-www-form-urlencoded", "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0abc")
	}()
	decideWhenPending(true, "")
	show(<-done)

	out.step("agent: DELETE https://api.github.com/repos/acme/shop  (delete the repository)")
	go func() { done <- call("DELETE", "https://api.github.com/repos/acme/shop", "", "") }()
	decideWhenPending(false, "we never delete repositories from an agent session")
	show(<-done)

	counts := a.proxy.Counts(sess.ID)
	auditPath := a.audit.Path()
	stop()

	fmt.Fprintln(e.stdout)
	out.step("upstream saw: %d GET repos, %d EC2 calls, %d DELETE repos (denied calls never arrive)",
		up.Count("GET", "/repos/acme/shop"), up.Count("POST", "/"), up.Count("DELETE", "/repos/acme/shop"))
	out.step("session: allowed %d · denied %d · approved %d · timed out %d", counts.Allowed, counts.Denied, counts.Approved, counts.Pending)

	f, err := os.Open(auditPath)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := audit.Verify(f)
	if err != nil {
		var ce *audit.ChainError
		if errors.As(err, &ce) {
			return checkFailed(fmt.Errorf("audit chain broken at line %d: %s", ce.Line, ce.Reason))
		}
		return err
	}
	out.step("audit log: %d records, hash chain verified (countersign audit verify)", res.Records)
	fmt.Fprintln(e.stdout, "\nThe audit trail:")
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := audit.Tail(ctx, bufio.NewReader(f), e.stdout, audit.Filter{}, nil); err != nil {
		return err
	}
	return nil
}

// linkRecorder remembers the approval page link of each approval, so that
// the interactive demo can show it.
type linkRecorder struct {
	mu    sync.Mutex
	links map[string]string
}

func (l *linkRecorder) Notify(_ context.Context, n approval.Notification) {
	if n.Link == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.links[n.Record.ID] = n.Link
}

func (l *linkRecorder) link(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.links[id]
}
