package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/aws"
	"github.com/countersign/countersign/action/git"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/action/graphql"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/termtext"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/proxy"
	"github.com/countersign/countersign/session"
)

// newClassifier is the provider list used everywhere a request is
// classified. Order matters: a request goes to the first provider that
// recognises it, and the generic http provider takes the rest.
//   - aws first: SigV4 signatures and *.amazonaws.com are unambiguous;
//   - git before github: pushes to github.com are git, not REST;
//   - mcp before graphql: a JSON-RPC body is MCP wherever it is posted;
//   - graphql before github: api.github.com/graphql is GraphQL (reported as
//     provider github by the graphql classifier);
//   - github before kubernetes: GHES's /api/v3 looks like a Kubernetes path.
func newClassifier(cfg *config.Config) *action.Classifier {
	// GHES serves GraphQL at /api/graphql: reported as GitHub, so that the
	// GitHub rules judge its mutations (found by review).
	ghes := map[string]string{}
	var ghesHosts []string
	for _, h := range cfg.GitHub.Hosts {
		// As requests' hosts are: canonical (validated before).
		if c, err := hostport.Canonical(h); err == nil {
			ghes[c] = "github"
			ghesHosts = append(ghesHosts, c)
		}
	}
	return action.NewClassifier(
		aws.New(aws.Options{}),
		git.New(git.Options{}),
		mcp.New(mcp.Options{}),
		graphql.New(graphql.Options{ProviderByHost: ghes}),
		github.New(github.Options{EnterpriseHosts: ghesHosts}),
		kubernetes.New(kubernetes.Options{Hosts: cfg.Kubernetes.Hosts}),
	)
}

func newPolicyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test policies and see how they decide a request",
	}
	cmd.AddCommand(newPolicyTestCmd(e), newPolicyEvalCmd(e), newPolicyReplayCmd(e))
	return cmd
}

func newPolicyTestCmd(e *env) *cobra.Command {
	var verbose bool
	var runFilter string
	cmd := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "Run Rego unit tests (opa test semantics; built-in errors are raised as in the proxy)",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfigLenient(cmd, e)
			if err != nil {
				return err
			}
			src := policySource(cfg, e.cwd, args)
			res, err := policy.RunTests(cmd.Context(), policy.TestOptions{Source: src, Verbose: verbose, Run: runFilter}, e.stdout)
			if err != nil {
				return usageError(err)
			}
			if !res.OK() {
				if res.Passed+res.Failed+res.Errored == 0 {
					return checkFailed(errors.New("no tests ran"))
				}
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every test and its trace on failure")
	cmd.Flags().StringVarP(&runFilter, "run", "r", "", "run only tests whose name matches this regular expression")
	return cmd
}

type evalFlags struct {
	request     string
	headers     []string
	body        string
	sessionName string
	labels      []string
	input       string
	explain     bool
	policies    []string
}

func newPolicyEvalCmd(e *env) *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval --request 'METHOD URL' [flags]",
		Short: "Print the action, the policy input and the decision for one request",
		Example: `  countersign policy eval --request 'POST https://ec2.us-east-1.amazonaws.com/' \
      --header 'Content-Type: application/x-www-form-urlencoded' \
      --body 'Action=TerminateInstances&InstanceId.1=i-0abc' --explain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return policyEval(cmd, e, f)
		},
	}
	cmd.Flags().StringVar(&f.request, "request", "", "the request line, e.g. 'DELETE https://api.github.com/repos/o/r'")
	cmd.Flags().StringArrayVar(&f.headers, "header", nil, "a request header 'Name: value' (repeatable)")
	cmd.Flags().StringVar(&f.body, "body", "", "request body, or @FILE to read it from a file")
	cmd.Flags().StringVar(&f.sessionName, "session-name", "alice/agent", "session name in the input")
	cmd.Flags().StringArrayVar(&f.labels, "label", nil, "k=v session label (repeatable)")
	cmd.Flags().StringVar(&f.input, "input", "", "a complete input document (JSON file) instead of --request")
	cmd.Flags().BoolVar(&f.explain, "explain", false, "list the rules that fired")
	cmd.Flags().StringArrayVar(&f.policies, "policy", nil, "policy directory or file (repeatable; overrides policy.paths)")
	return cmd
}

func policyEval(cmd *cobra.Command, e *env, f evalFlags) error {
	cfg, err := loadConfigLenient(cmd, e)
	if err != nil {
		return err
	}
	onError, err := policy.ParseVerdict(cfg.Policy.OnError)
	if err != nil {
		return usageError(err)
	}
	engine, err := policy.New(cmd.Context(), policy.Options{Source: policySource(cfg, e.cwd, f.policies), OnError: onError, EvalTimeout: cfg.Policy.EvalTimeout}, nil)
	if err != nil {
		return usageError(fmt.Errorf("policy: %w", err))
	}

	var doc map[string]any
	var act any
	var refused map[string]any
	switch {
	case f.input != "" && f.request != "":
		return usageError(errors.New("give either --input or --request, not both"))
	case f.input != "":
		b, err := os.ReadFile(f.input)
		if err != nil {
			return usageError(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return usageError(fmt.Errorf("--input %s: %w", f.input, err))
		}
		act = doc["action"]
	case f.request != "":
		labels, err := parseLabels(f.labels)
		if err != nil {
			return usageError(err)
		}
		ar, rawQuery, err := evalRequest(f, int64(cfg.Inspect.BodyLimit))
		if err != nil {
			return usageError(err)
		}
		// What the proxy refuses before any policy runs is reported with
		// the policy's decision, which the proxy would never reach (found
		// by review: eval reported the policy's allow).
		r := proxy.HeadRefusal(ar.Method, ar.Header, rawQuery, ar.Upgrade, ar.BodySize)
		a, bodyRefusal := proxy.Screen(newClassifier(cfg), ar, rawQuery, func(r *action.Request) error {
			return action.Inflate(r, int64(cfg.Inspect.BodyLimit))
		})
		if r == nil {
			r = bodyRefusal
		}
		if r != nil {
			refused = map[string]any{"status": r.Status, "reason": r.Reason}
		}
		sess := &session.Info{ID: "s-eval", Name: f.sessionName, User: currentUser(), Command: "eval", Cwd: e.cwd, Labels: labels}
		in := policy.NewInput(ar, a, sess, time.Now())
		doc = in.Map()
		act = in.Action.Map()
	default:
		return usageError(errors.New("give --request 'METHOD URL' or --input FILE"))
	}

	var d policy.Decision
	var fired []policy.FiredRule
	if f.explain {
		d, fired = engine.Explain(cmd.Context(), doc)
	} else {
		d = engine.DecideDocument(cmd.Context(), doc)
	}
	out := map[string]any{
		"action": act,
		"input":  doc,
		"decision": map[string]any{
			"verdict":  d.Verdict.String(),
			"reasons":  d.Reasons,
			"revision": d.Revision,
			"eval_us":  d.Eval.Microseconds(),
		},
	}
	if d.Err != nil {
		out["decision"].(map[string]any)["error"] = d.Err.Error()
	}
	if refused != nil {
		out["refused_before_policy"] = refused
	}
	if f.explain {
		if fired == nil {
			fired = []policy.FiredRule{}
		}
		out["fired"] = fired
	}
	enc := json.NewEncoder(termtext.JSONWriter{W: e.stdout})
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// evalRequest builds the classifier's view of a request from the flags as
// the proxy would (hop-by-hop fields removed, an upgrade noted, the body
// cut after limit bytes, an empty path sent as "/"), and returns the query
// as given. The method is taken in upper case, for convenience on the
// command line.
func evalRequest(f evalFlags, limit int64) (*action.Request, string, error) {
	method, rawURL, ok := strings.Cut(strings.TrimSpace(f.request), " ")
	if !ok {
		return nil, "", fmt.Errorf("--request %q: want 'METHOD URL'", f.request)
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fmt.Errorf("--request %q: the URL must be absolute http(s)", f.request)
	}
	defPort := 443
	if u.Scheme == "http" {
		defPort = 80
	}
	host, port, err := hostport.Split(u.Host, defPort)
	if err != nil {
		return nil, "", fmt.Errorf("--request: %w", err)
	}
	h := http.Header{}
	for _, kv := range f.headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, "", fmt.Errorf("--header %q: want 'Name: value'", kv)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	var body []byte
	switch {
	case strings.HasPrefix(f.body, "@"):
		body, err = os.ReadFile(f.body[1:])
		if err != nil {
			return nil, "", fmt.Errorf("--body: %w", err)
		}
	case f.body != "":
		body = []byte(f.body)
	}
	if len(body) == 0 {
		body = nil // as the proxy sees a request with Content-Length: 0
	}
	// The proxy takes Host into the request's target and chunked framing
	// off the header; the length a client declares stays.
	h.Del("Host")
	if te := h.Get("Transfer-Encoding"); strings.EqualFold(te, "chunked") {
		h.Del("Transfer-Encoding")
	} else if h.Get("Content-Length") == "" && te == "" && body != nil {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	upgrade := proxy.PrepareHeader(h)
	if u.Scheme == "http" {
		// Plain http:// through the proxy is forwarded without its
		// upgrade (only tunnels carry one).
		upgrade = ""
	}
	ar := &action.Request{
		Method:   strings.ToUpper(method),
		Scheme:   u.Scheme,
		Host:     host,
		Port:     port,
		Path:     u.Path,
		RawPath:  u.EscapedPath(),
		Query:    action.ValidKeys(u.Query()),
		Header:   h,
		Body:     body,
		BodySize: int64(len(body)),
		Upgrade:  upgrade,
	}
	if ar.Path == "" {
		ar.Path, ar.RawPath = "/", "/"
	}
	if int64(len(body)) > limit {
		// As the proxy reads it: the limit and one byte more, the rest
		// unseen.
		ar.Body, ar.BodyTruncated = body[:limit+1], true
	} else if body != nil {
		// The hash of the bytes as sent, as the proxy computes it while
		// they arrive: the body may be inflated before the input is made.
		sum := sha256.Sum256(body)
		ar.BodySHA256 = sum[:]
	}
	return ar, u.RawQuery, nil
}

type replayFlags struct {
	audit    string
	policies []string
	examples int
	json     bool
}

func newPolicyReplayCmd(e *env) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay --audit FILE [--policy DIR]...",
		Short: "Re-decide the requests of an audit log under a policy and show what would change",
		Long: `replay reads the decision records of an audit log, evaluates the policy input
recorded with each (the full, redacted input) under the given policy, and
prints a table of what would change (allow → held, held → deny, …) with
the first requests of each change.

Exit codes: 0 nothing would change; 1 something would (so it can gate a
policy pull request in CI); 2 the log or the policy could not be read, or the
log holds no decision with a recorded input.

Inputs are recorded redacted: credentials appear as "[redacted]", so a policy
that looks at credential values cannot be replayed faithfully.`,
		Example: `  countersign policy replay --audit ~/.countersign/audit.jsonl --policy ./policies`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return policyReplay(cmd, e, f)
		},
	}
	cmd.Flags().StringVar(&f.audit, "audit", "", "the audit log to replay (JSON Lines)")
	cmd.Flags().StringArrayVar(&f.policies, "policy", nil, "policy directory or file (repeatable; overrides policy.paths)")
	cmd.Flags().IntVar(&f.examples, "examples", 3, "requests listed for each change")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the report as JSON")
	return cmd
}

func policyReplay(cmd *cobra.Command, e *env, f replayFlags) error {
	if f.audit == "" {
		return usageError(errors.New("give the audit log with --audit FILE"))
	}
	cfg, err := loadConfigLenient(cmd, e)
	if err != nil {
		return err
	}
	onError, err := policy.ParseVerdict(cfg.Policy.OnError)
	if err != nil {
		return usageError(fmt.Errorf("policy.on_error: %w", err))
	}
	engine, err := policy.New(cmd.Context(), policy.Options{Source: policySource(cfg, e.cwd, f.policies), OnError: onError, EvalTimeout: cfg.Policy.EvalTimeout}, nil)
	if err != nil {
		return usageError(fmt.Errorf("policy: %w", err))
	}
	path := f.audit
	if !filepath.IsAbs(path) {
		path = filepath.Join(e.cwd, path)
	}
	// A FIFO would block the open, a device never end.
	if info, err := os.Stat(path); err == nil && !info.Mode().IsRegular() {
		return usageError(fmt.Errorf("--audit %s: not a regular file (%s); give the audit log's path", f.audit, info.Mode().Type()))
	}
	file, err := os.Open(path)
	if err != nil {
		return usageError(fmt.Errorf("--audit: %w", err))
	}
	defer file.Close()
	rep, err := policy.Replay(cmd.Context(), engine, file, policy.ReplayOptions{Examples: f.examples, Name: f.audit})
	if err != nil {
		return usageError(fmt.Errorf("replay %s: %w", f.audit, err))
	}
	if f.json {
		enc := json.NewEncoder(termtext.JSONWriter{W: e.stdout})
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.Format(e.stdout)
	}
	if err != nil {
		return err
	}
	if rep.Changed() > 0 {
		return &exitError{code: 1}
	}
	return nil
}
