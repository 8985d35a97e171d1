package proxy

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/session"
)

// connAuthUpstream authenticates connections, not requests, as NTLM and
// Negotiate do: once a request on a connection carried "Authorization: NTLM
// <user>", every later request on it is served as that user.
type connAuthUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	who map[string]string // by the proxy's end of the connection
}

func startConnAuthUpstream(t *testing.T) *connAuthUpstream {
	u := &connAuthUpstream{who: map[string]string{}}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		if user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "NTLM "); ok {
			u.who[r.RemoteAddr] = user
		}
		user := u.who[r.RemoteAddr]
		u.mu.Unlock()
		if user == "" {
			user = "nobody"
		}
		_, _ = io.WriteString(w, user)
	}))
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

// TestUpstreamConnectionsAreNotSharedBetweenSessions: a connection that one
// session's request authenticated (NTLM binds the connection) must not
// carry another session's request, on the direct path (small bodies) or
// through http.Transport (bodies past maxDirectBody).
func TestUpstreamConnectionsAreNotSharedBetweenSessions(t *testing.T) {
	up := startConnAuthUpstream(t)
	h, other, otherPassword := twoSessions(t, up)
	// One upstream connection per host and transport: without a pool per
	// session, the other session's request would have to wait for, and
	// take, the authenticated one.
	h.srv.transport.MaxConnsPerHost = 1

	alice := h.client()
	mallory := h.clientAs(other.ID, otherPassword)
	send := func(c *http.Client, body, auth string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://example.com/whoami", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, %v: %s", resp.StatusCode, err, b)
		}
		return string(b)
	}

	for _, tt := range []struct {
		name string
		body string
		idle func() bool // the authenticated connection is back in its pool
	}{
		{"direct", "small", func() bool {
			h.srv.direct.mu.Lock()
			defer h.srv.direct.mu.Unlock()
			return h.srv.direct.nidle > 0
		}},
		// http.Transport's single connection (MaxConnsPerHost) is waited
		// for, so nothing needs to be idle first.
		{"transport", strings.Repeat("b", maxDirectBody+1), func() bool { return true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := send(alice, tt.body, "NTLM alice"); got != "alice" {
				t.Fatalf("alice's authenticating request served as %q", got)
			}
			// The pool works within a session: the next request rides on
			// the authenticated connection.
			waitFor(t, tt.idle)
			if got := send(alice, tt.body, ""); got != "alice" {
				t.Fatalf("alice's second request served as %q, want alice (her connection reused)", got)
			}
			waitFor(t, tt.idle)
			if got := send(mallory, tt.body, ""); got != "nobody" {
				t.Errorf("another session's request without credentials served as %q: it rode on alice's connection", got)
			}
		})
	}
}

// twoSessions is a harness whose example.com is up, with the harness's
// session and another, whose ID and password it returns.
func twoSessions(t *testing.T, up *connAuthUpstream) (*harness, *session.Info, string) {
	other := &session.Info{ID: "s-other", Name: "mallory/agent"}
	const otherPassword = "pw-other-yyyyyyyyyyyyyyyy"
	h := newHarness(t, harnessOptions{configure: func(o *Options) {
		roots := x509.NewCertPool()
		roots.AddCert(up.srv.Certificate())
		o.RootCAs = roots
		o.Resolve = map[string]string{"example.com:443": up.srv.Listener.Addr().String()}
		o.Sessions = session.NewRegistry(nil,
			session.Credential{Username: "s-test", Password: "pw-" + strings.Repeat("x", 20), Session: &session.Info{ID: "s-test"}},
			session.Credential{Username: other.ID, Password: otherPassword, Session: other})
	}})
	return h, other, otherPassword
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met in 10 s")
		case <-time.After(time.Millisecond):
		}
	}
}

// One session's held bodies cannot take every other session's room to be
// held: each keeps a floor of the budget (found by review: ten copies of one
// request made every other session's approvals 503).
func TestHeldBodiesLeaveEachSessionAFloor(t *testing.T) {
	other := &session.Info{ID: "s-other"}
	const otherPassword = "pw-other-yyyyyyyyyyyyyyyy"
	h := newHarness(t, harnessOptions{policy: `package countersign

approve contains "posts need a human" if input.request.method == "POST"
`, hold: time.Minute, configure: func(o *Options) {
		o.MaxHeldBodies = 32 * 200 // a floor of 200 bytes each (a body and what the approver is shown)
		o.Sessions = session.NewRegistry(nil,
			session.Credential{Username: "s-test", Password: "pw-" + strings.Repeat("x", 20), Session: &session.Info{ID: "s-test"}},
			session.Credential{Username: other.ID, Password: otherPassword, Session: other})
	}})
	post := func(c *http.Client, path string, n int) <-chan int {
		done := make(chan int, 1)
		go func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://example.test"+path, strings.NewReader(strings.Repeat("a", n)))
			if err != nil {
				done <- 0
				return
			}
			resp, err := c.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	// The greedy session holds three copies of one 1,000-byte request (one
	// approval) and one more request: all of the budget.
	greedy := h.client()
	for range 3 {
		post(greedy, "/same", 1000)
	}
	first := h.waitPending()
	post(greedy, "/fill", 200)
	second := h.waitPending()
	waitFor(t, func() bool {
		h.srv.heldBodies.mu.Lock()
		defer h.srv.heldBodies.mu.Unlock()
		return h.srv.heldBodies.total == 6400
	})
	if code := <-post(greedy, "/more", 1000); code != http.StatusServiceUnavailable {
		t.Errorf("the greedy session's fourth body past the budget: %d, want 503", code)
	}
	// The other session is still held, within its floor.
	otherDone := post(h.clientAs(other.ID, otherPassword), "/mine", 80)
	rec := h.waitPending()
	if rec.SessionID != other.ID || rec.ID == first.ID || rec.ID == second.ID {
		t.Fatalf("pending approval %s of %s, want a new one of %s", rec.ID, rec.SessionID, other.ID)
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if code := <-otherDone; code != http.StatusOK {
		t.Errorf("the other session's approved request: %d", code)
	}
}

// Past maxSessionTransports, the least recently used session's transport is
// the one dropped.
func TestSessionTransportsDropTheLeastRecentlyUsed(t *testing.T) {
	st := newSessionTransports(&http.Transport{})
	ctxOf := func(id string) context.Context {
		return context.WithValue(t.Context(), upstreamSessionKey{}, id)
	}
	first := st.get(ctxOf("s-0"))
	for i := 1; i < maxSessionTransports; i++ {
		st.get(ctxOf("s-" + strconv.Itoa(i)))
	}
	st.get(ctxOf("s-0")) // used again: s-1 is now the least recent
	st.get(ctxOf("s-new"))
	if st.get(ctxOf("s-0")) != first {
		t.Error("the most recently used session lost its transport")
	}
	st.mu.Lock()
	_, kept := st.m["s-1"]
	n := len(st.m)
	st.mu.Unlock()
	if kept || n != maxSessionTransports {
		t.Errorf("s-1 kept %v, %d transports; want s-1 dropped and %d kept", kept, n, maxSessionTransports)
	}
}

// TestSessionsGetLeavesOfTheirOwn: a leaf certificate shows when it was
// made, and a cached one that its host was visited before. Sessions of a
// shared proxy get leaves of their own, so that none learns from them what
// another visited or when (found by review).
func TestSessionsGetLeavesOfTheirOwn(t *testing.T) {
	up := startConnAuthUpstream(t)
	h, other, otherPassword := twoSessions(t, up)
	// leaf makes a request on a new connection and returns the serial of
	// the certificate countersign presented.
	leaf := func(c *http.Client) string {
		t.Helper()
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://example.com/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			t.Fatal("no certificate")
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	alice := leaf(h.client())
	if again := leaf(h.client()); again != alice {
		t.Fatalf("the session's second connection got another leaf (%s, then %s): not cached", alice, again)
	}
	if mallory := leaf(h.clientAs(other.ID, otherPassword)); mallory == alice {
		t.Errorf("another session was given the first session's leaf (serial %s)", alice)
	}
}
