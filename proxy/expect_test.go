package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// expectPolicy denies uploads by path (decidable on the head), denies bodies
// that say so (decidable only with the body), and requires "safe" in JSON
// bodies, guarded by body_pending so that the head-only evaluation does not
// deny for want of a body.
const expectPolicy = `package countersign

deny contains {"id": "E-PATH", "msg": "no uploads here"} if startswith(input.request.path, "/uploads/")

deny contains {"id": "E-BODY", "msg": "the body asks to be denied"} if input.request.body.deny == true

deny contains {"id": "E-SAFE", "msg": "bodies must say they are safe"} if {
	input.request.path == "/strict"
	not input.request.body_pending
	not input.request.body.safe
}
`

// expectExchange sends a head with Expect: 100-continue and answers like a
// careful client: the body only after a 100 Continue. It returns the
// statuses it read, in order, and what the upstream received.
func expectExchange(t *testing.T, h *harness, path, body string) []int {
	t.Helper()
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(tc, "PUT %s HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", path, len(body))
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %v: %v", statuses, err)
		}
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusContinue {
			if _, err := io.WriteString(tc, body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 200 {
			return statuses
		}
	}
}

func TestExpectContinue(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: expectPolicy})
	tests := []struct {
		name, path, body string
		want             []int
		upstream         int
		audit            string // the deny rule, if any
		onHead           bool   // decided before the body was read
	}{
		{"allowed gets 100 then the answer", "/things", `{"x":1}`, []int{100, 200}, 1, "", false},
		{"denied by path before the body", "/uploads/a", `{"x":1}`, []int{403}, 0, "E-PATH", true},
		{"denied by the body after it", "/things", `{"deny":true}`, []int{100, 403}, 0, "E-BODY", false},
		{"body_pending guard lets the body come", "/strict", `{"safe":true}`, []int{100, 200}, 1, "", false},
		{"body_pending guard still denies on the body", "/strict", `{"x":1}`, []int{100, 403}, 0, "E-SAFE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.up.Count("", "")
			beforeRecs := len(h.records())
			got := expectExchange(t, h, tt.path, tt.body)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("statuses %v, want %v", got, tt.want)
			}
			if n := h.up.Count("", "") - before; n != tt.upstream {
				t.Errorf("upstream saw %d requests, want %d", n, tt.upstream)
			}
			if tt.upstream == 1 {
				reqs := h.up.Requests()
				last := reqs[len(reqs)-1]
				if string(last.Body) != tt.body || last.Header.Get("Expect") != "" {
					t.Errorf("upstream got body %q, Expect %q; want the body and no Expect", last.Body, last.Header.Get("Expect"))
				}
			}
			var ds []string
			for _, r := range h.records()[beforeRecs:] {
				if r.Type == "decision" {
					ds = append(ds, r.Decision+":"+strings.Join(r.RuleIDs, ",")+":"+r.Detail)
				}
			}
			// One decision per request: the head-only evaluation is recorded
			// only when it is the decision.
			if len(ds) != 1 {
				t.Fatalf("decision records %q, want exactly one", ds)
			}
			if tt.audit != "" && !strings.HasPrefix(ds[0], "deny:"+tt.audit+":") {
				t.Errorf("decision %q, want deny by %s", ds[0], tt.audit)
			}
			if onHead := strings.Contains(ds[0], "body was not read"); onHead != tt.onHead {
				t.Errorf("decision %q: decided on the head = %v, want %v", ds[0], onHead, tt.onHead)
			}
		})
	}
}

// TestExpectContinueDeniedThenConnectionEnds checks that after a head-only
// denial the proxy does not wait for body bytes: it answers and closes.
func TestExpectContinueDeniedThenConnectionEnds(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: expectPolicy})
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(tc, "PUT /uploads/x HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Fatalf("status %d close %v, want 403 with Connection: close", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("the connection did not end after the denial: %v", err)
	}
}

func TestExpectContinueShadowModeReadsTheBody(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: expectPolicy, configure: func(o *Options) { o.Shadow = true }})
	got := expectExchange(t, h, "/uploads/a", `{"x":1}`)
	if fmt.Sprint(got) != "[100 200]" {
		t.Fatalf("shadow mode statuses %v, want [100 200]", got)
	}
}

// A request refused before its body is read, from a client that waits for
// "100 Continue", is answered at once and the connection ended: the body
// is not coming (found by review: the refusal first waited for it until
// the idle timeout).
func TestExpectContinueRefusedWithoutWaitingForTheBody(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: expectPolicy})
	tc, br := h.tlsTunnel("example.test:443", "example.test")
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(tc, "POST /things HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nX-HTTP-Method-Override: DELETE\r\nContent-Length: 10\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body is held back: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("status %d close %v, want 400 with Connection: close", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("the connection did not end after the refusal: %v", err)
	}
	h.wantNoUpstream(t)
}
