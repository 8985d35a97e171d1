//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/audit"
)

// soakScale is COUNTERSIGN_SOAK as a multiplier (make soak), 1 by default.
func soakScale(t *testing.T) int {
	t.Helper()
	v := os.Getenv("COUNTERSIGN_SOAK")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("COUNTERSIGN_SOAK=%q: want a positive integer scale", v)
	}
	return n
}

// proxyClient is an agent's client for a running serve: proxied through
// addr, trusting countersign's CA.
func proxyClient(t *testing.T, w *world, addr string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in state_dir")
	}
	tr := &http.Transport{
		Proxy:               http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: 8,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func readAudit(t *testing.T, path string) []*audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Record
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			// A torn last line; audit verify judges the file.
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestKillNineUnderLoad kills `countersign serve` with SIGKILL while
// requests are in flight, restarts it on the same state_dir, and repeats.
// After every restart the audit chain verifies (a torn tail is cut off and
// recorded), and every request the upstream received has its decision
// record: a decision is durable before its request is forwarded.
func TestKillNineUnderLoad(t *testing.T) {
	const allowAll = "package countersign\n"
	w := newWorld(t, allowAll, "listen: 127.0.0.1:0\n")
	rounds := 5 * soakScale(t)
	var seq atomic.Int64

	verify := func(when string, serving bool) {
		t.Helper()
		r := w.run("audit", "verify", w.auditPath)
		if r.code != 0 || !strings.Contains(r.stdout, "chain intact") {
			t.Fatalf("audit verify %s: code %d\n%s%s", when, r.code, r.stdout, r.stderr)
		}
		// While serve writes the log, its journal is there, and verify
		// says what that means; after a clean stop it is gone.
		if noted := strings.Contains(r.stderr, ".journal exists"); noted != serving {
			t.Errorf("audit verify %s: journal noted = %v, want %v\n%s", when, noted, serving, r.stderr)
		}
	}

	for round := range rounds {
		serve, addr, _ := startServe(t, w)
		if round > 0 {
			verify(fmt.Sprintf("after restart %d", round), true)
		}
		client := proxyClient(t, w, addr)

		// Load: 8 workers, each request with a unique path, until the kill.
		ctx, stop := context.WithCancel(t.Context())
		answered := make(chan struct{}, 1024)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					n := seq.Add(1)
					req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("https://example.test/crash/%d", n), strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					select {
					case answered <- struct{}{}:
					default:
					}
				}
			}()
		}
		// Kill once the load is flowing (bounded wait).
		deadline := time.After(30 * time.Second)
		for got := 0; got < 30; got++ {
			select {
			case <-answered:
			case <-deadline:
				stop()
				wg.Wait()
				t.Fatalf("round %d: only %d answers in 30s", round, got)
			}
		}
		if err := serve.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = serve.Wait()
		stop()
		wg.Wait()
		client.CloseIdleConnections()

		// The kill left the journal beside the log: serve made its
		// decisions durable there rather than by an fsync of the log.
		if _, err := os.Stat(w.auditPath + ".journal"); err != nil {
			t.Fatalf("round %d: no audit journal after a kill: %v", round, err)
		}
		if round == 2 {
			// A power loss, not just a kill, loses what the log never
			// synced: cut its last records away. The journal has them,
			// and the restart must put them back.
			cutDecisions(t, w.auditPath, 3)
		}
		if round == 1 {
			// Make sure at least one restart has a torn tail to repair: a
			// crash in the middle of a write leaves the start of a record.
			f, err := os.OpenFile(w.auditPath, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.WriteString(f, `{"seq":999999,"ts":"2026-`)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	// A last clean start and stop repairs the final kill's tail, if any.
	serve, _, _ := startServe(t, w)
	if err := serve.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve exit: %v", err)
	}
	verify("at the end", false)
	if _, err := os.Stat(w.auditPath + ".journal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("audit journal after a clean stop: %v, want it removed", err)
	}

	recs := readAudit(t, w.auditPath)
	decided := map[string]bool{}
	recovered, restored := 0, 0
	for _, r := range recs {
		if r.Type == "decision" && r.Decision == "allow" && r.Request != nil {
			decided[r.Request.URL] = true
		}
		if r.Type == "recovered" {
			recovered++
			if strings.Contains(r.Detail, "from the journal") {
				restored++
			}
		}
	}
	if recovered == 0 {
		t.Error("no recovered record after a restart over a torn tail")
	}
	if restored == 0 {
		t.Error("no recovered record restoring records from the journal after a simulated power loss")
	}
	reqs := w.up.Requests()
	if len(reqs) < 30*rounds {
		t.Errorf("the upstream saw %d requests over %d rounds, want at least %d", len(reqs), rounds, 30*rounds)
	}
	for _, r := range reqs {
		u := "https://example.test" + r.Path
		if !decided[u] {
			t.Errorf("the upstream received %s, but the audit log has no allow decision for it", u)
		}
	}
	t.Logf("%d rounds, %d requests reached the upstream, %d decisions, %d recovered records", rounds, len(reqs), len(decided), recovered)
}

// cutDecisions cuts the log at path back to before its last n decision
// records (which serve made durable before forwarding, so the journal has
// them), as a power loss takes what the log never synced.
func cutDecisions(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	for n > 0 && end > 0 {
		start := bytes.LastIndexByte(b[:end-1], '\n') + 1
		if bytes.Contains(b[start:end], []byte(`"event":"decision"`)) {
			n--
		}
		end = start
	}
	if n > 0 {
		t.Fatalf("%s has fewer decision records than the cut needs", path)
	}
	if err := os.Truncate(path, int64(end)); err != nil {
		t.Fatal(err)
	}
}
