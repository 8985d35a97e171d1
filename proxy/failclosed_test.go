package proxy

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/policy"
)

// faultPolicy fails in the way the request's X-Fault header asks, and allows
// everything else.
const faultPolicy = `package countersign

fault := input.request.headers["x-fault"][0]

# A built-in that errors: strict built-in errors make this an evaluation
# error, not an undefined (and so silently false) deny body.
deny contains "unreachable" if {
	fault == "builtin"
	json.unmarshal("{not json") == 1
}

# A policy that runs past policy.eval_timeout.
deny contains "unreachable" if {
	fault == "slow"
	n := count([x |
		some i in numbers.range(1, 5000)
		some j in numbers.range(1, 5000)
		x := i * j
	])
	n < 0
}

# A rule of the wrong type: approve must be a set.
default approve := set()

approve := 42 if fault == "type"

# A deny member of the wrong shape.
deny contains {"no": "msg"} if fault == "member"
`

// panickyDecider panics for requests that ask it to, standing in for a bug
// anywhere in evaluation (OPA, the decision cache, interpretation).
type panickyDecider struct{ Decider }

func (p panickyDecider) Decide(ctx context.Context, in *policy.Input) policy.Decision {
	if v := in.Request.Headers["x-fault"]; len(v) > 0 && v[0] == "panic" {
		panic("evaluation bug")
	}
	return p.Decider.Decide(ctx, in)
}

func TestPolicyFaultsFailClosed(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: faultPolicy, evalTimeout: 250 * time.Millisecond, configure: func(o *Options) {
		o.Decider = panickyDecider{o.Decider}
	}})
	faults := []string{"builtin", "slow", "type", "member", "panic"}

	// Faulty and ordinary requests at the same time: each fault denies, is
	// audited, and leaves the others alone.
	type result struct {
		fault  string
		status int
		body   string
		id     string
	}
	results := make(chan result, 4*len(faults))
	var wg sync.WaitGroup
	for range 2 {
		for _, f := range append(faults, "", "") {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://api.github.com/repos/acme/shop", nil)
				if f != "" {
					req.Header.Set("X-Fault", f)
				}
				resp, err := h.client().Do(req)
				if err != nil {
					results <- result{fault: f, status: -1, body: err.Error()}
					return
				}
				defer resp.Body.Close()
				b := new(strings.Builder)
				_, _ = copyAtMost(b, resp.Body, 4096)
				results <- result{fault: f, status: resp.StatusCode, body: b.String(), id: resp.Header.Get("X-Countersign-Request")}
			}()
		}
	}
	wg.Wait()
	close(results)

	denied := map[string]string{} // request id → fault
	for r := range results {
		if r.fault == "" {
			if r.status != 200 {
				t.Errorf("ordinary request next to faulty ones: %d %q", r.status, r.body)
			}
			continue
		}
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "policy error") {
			t.Errorf("fault %s: %d %q, want 403 policy error", r.fault, r.status, r.body)
		}
		if strings.Contains(r.body, "evaluation bug") || strings.Contains(r.body, "json") {
			t.Errorf("fault %s: internal error text reached the agent: %q", r.fault, r.body)
		}
		denied[r.id] = r.fault
	}
	if n := h.up.Count("", ""); n != 4 {
		t.Errorf("upstream saw %d requests, want the 4 ordinary ones", n)
	}
	for _, rec := range h.decisions() {
		f, ok := denied[rec.RequestID]
		if !ok {
			continue
		}
		delete(denied, rec.RequestID)
		if rec.Decision != "deny" || !strings.HasPrefix(rec.Error, "policy error") {
			t.Errorf("fault %s: decision record %s, error %q; want deny with the policy error", f, rec.Decision, rec.Error)
		}
	}
	for id, f := range denied {
		t.Errorf("fault %s: no decision record for request %s", f, id)
	}
}

func copyAtMost(dst *strings.Builder, src interface{ Read([]byte) (int, error) }, n int) (int, error) {
	buf := make([]byte, n)
	total := 0
	for total < n {
		k, err := src.Read(buf[total:])
		total += k
		if err != nil {
			break
		}
	}
	dst.Write(buf[:total])
	return total, nil
}

func TestMissingPolicyFileKeepsTheLastGoodPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: denyDeletes})
	var files []string
	for _, f := range h.engine.Files() {
		if !strings.HasPrefix(f, "builtin:") {
			files = append(files, f)
		}
	}
	if len(files) != 1 {
		t.Fatalf("policy files %v", h.engine.Files())
	}
	rev := h.engine.Revision()
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Dir(files[0])); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Reload(t.Context()); err == nil {
		t.Fatal("reloading a policy whose files are gone succeeded")
	}
	if _, lastErr := h.engine.Health(); lastErr == nil {
		t.Error("Health does not report the failed reload")
	}
	// The last good policy is still in force: deletes are still denied,
	// and recorded under its revision.
	resp, _ := h.do("DELETE", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE after the policy file vanished: %d, want 403", resp.StatusCode)
	}
	resp, _ = h.do("GET", "https://api.github.com/repos/acme/shop", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET after the policy file vanished: %d", resp.StatusCode)
	}
	for _, d := range h.decisions() {
		if d.PolicyRevision != rev {
			t.Errorf("decision under revision %q, want the last good %q", d.PolicyRevision, rev)
		}
	}
}

// panicAuditor panics on the decision record of a request to /boom, as a
// fault anywhere in serving a request might.
type panicAuditor struct{ log *audit.Log }

func (p panicAuditor) Record(ev *audit.Event) error {
	if ev.Type == "decision" && ev.Request != nil && strings.Contains(ev.Request.URL, "/boom") {
		panic("injected fault")
	}
	return p.log.Record(ev)
}
func (p panicAuditor) RecordAsync(ev *audit.Event) error    { return p.Record(ev) }
func (p panicAuditor) RecordDeferred(ev *audit.Event) error { return p.Record(ev) }

// A panic while serving a request inside a tunnel closes that connection
// and nothing else: the request is not forwarded, and the proxy goes on
// serving (found by review: nothing recovered the tunnels' goroutines, so
// one fault ended the process and every held approval with it).
func TestPanicInATunnelClosesOnlyItsConnection(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: allowAll, auditor: func(l *audit.Log) Auditor { return panicAuditor{log: l} }})
	req, err := http.NewRequestWithContext(t.Context(), "DELETE", "https://example.test/boom", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := h.client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the faulting request was answered %d; want its connection closed", resp.StatusCode)
	}
	if n := h.up.Count("DELETE", "/boom"); n != 0 {
		t.Errorf("the faulting request reached the upstream %d times", n)
	}
	if resp, _ := h.do("GET", "https://example.test/fine", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the next request: %d, want 200", resp.StatusCode)
	}
}
