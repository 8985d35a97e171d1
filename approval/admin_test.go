package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type adminFixture struct {
	b      *Broker
	aud    *fakeAuditor
	clock  *fakeClock
	srv    *httptest.Server
	client *Client
}

// newAdminFixture serves the admin API of a fresh broker on a test server.
func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	clock := newFakeClock()
	b, aud, _ := newTestBroker(t, Options{Now: clock.Now})
	srv := httptest.NewServer(NewAdminHandler(b, testToken, nil))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL+"/", testToken)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return &adminFixture{b: b, aud: aud, clock: clock, srv: srv, client: c}
}

// pending opens an approval whose hold has already run out.
func (f *adminFixture) pending(t *testing.T, session string, required int) *Record {
	t.Helper()
	rec := newRecord(session, "fp-"+session)
	rec.Required = required
	out, err := f.b.Hold(t.Context(), rec, 0)
	if err != nil || out.Kind != OutcomePending {
		t.Fatalf("Hold() = %v, %v; want pending", out.Kind, err)
	}
	f.clock.Advance(time.Second)
	return rec
}

type rawResponse struct {
	status int
	header http.Header
	body   string
}

// do sends one request with the given Authorization header ("" for none).
func (f *adminFixture) do(t *testing.T, method, path, auth, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{resp.StatusCode, resp.Header, string(b)}
}

func TestAdminAuthentication(t *testing.T) {
	f := newAdminFixture(t)
	rec := f.pending(t, "s1", 1)
	decision := `{"decision": "approve", "approver": "mallory"}`
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/approvals", ""},
		{http.MethodGet, "/api/v1/approvals/" + rec.ID, ""},
		{http.MethodPost, "/api/v1/approvals/" + rec.ID + "/decision", decision},
	}
	tests := []struct {
		name string
		auth string
	}{
		{name: "no header", auth: ""},
		{name: "wrong token", auth: "Bearer " + strings.Repeat("f", len(testToken))},
		{name: "token prefix", auth: "Bearer " + testToken[:len(testToken)-1]},
		{name: "token with extra", auth: "Bearer " + testToken + "0"},
		{name: "empty bearer", auth: "Bearer "},
		{name: "no scheme", auth: testToken},
		{name: "basic scheme", auth: "Basic " + testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range routes {
				got := f.do(t, r.method, r.path, tt.auth, r.body)
				if got.status != http.StatusUnauthorized {
					t.Errorf("%s %s with %q: status %d, want 401", r.method, r.path, tt.auth, got.status)
				}
				if cc := got.header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("%s %s: Cache-Control %q, want no-store", r.method, r.path, cc)
				}
				if strings.Contains(got.body, testToken) || strings.Contains(got.body, rec.Fingerprint) {
					t.Errorf("%s %s: 401 body leaks data: %s", r.method, r.path, got.body)
				}
			}
		})
	}
	if got, _ := f.b.Get(t.Context(), rec.ID); got.State != StatePending {
		t.Errorf("state after unauthenticated decisions = %v, want pending", got.State)
	}

	var apiErr *APIError
	wrong := NewClient(f.srv.URL, "not-the-token")
	defer wrong.HTTP.CloseIdleConnections()
	if _, err := wrong.List(t.Context(), false); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("Client.List() with a wrong token: error = %v, want APIError 401", err)
	}
}

func TestAdminEmptyTokenRefusesAll(t *testing.T) {
	b, _, _ := newTestBroker(t, Options{})
	srv := httptest.NewServer(NewAdminHandler(b, "", nil))
	defer srv.Close()
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/approvals", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("handler without a token, Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
}

func TestAdminListAndGet(t *testing.T) {
	f := newAdminFixture(t)
	ctx := t.Context()

	empty, err := f.client.List(ctx, false)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("List() on no approvals = %#v, %v; want an empty list", empty, err)
	}

	older := f.pending(t, "s1", 1)
	denied := f.pending(t, "s2", 1)
	newer := f.pending(t, "s3", 1)
	if _, err := f.b.Decide(ctx, denied.ID, Decision{Approver: "bob", Via: "cli"}); err != nil {
		t.Fatalf("Decide() error = %v", err)
	}

	tests := []struct {
		name        string
		pendingOnly bool
		want        []string
	}{
		{name: "all", want: []string{newer.ID, denied.ID, older.ID}},
		{name: "pending", pendingOnly: true, want: []string{newer.ID, older.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.client.List(ctx, tt.pendingOnly)
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("List(%v) (-want +got):\n%s", tt.pendingOnly, diff)
			}
		})
	}

	want, _ := f.b.Get(ctx, denied.ID)
	got, err := f.client.Get(ctx, denied.ID)
	if err != nil {
		t.Fatalf("Get() error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get() (-want +got):\n%s", diff)
	}

	var apiErr *APIError
	if _, err := f.client.Get(ctx, "ap-nothere"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("Get(unknown) error = %v, want APIError 404", err)
	}

	for _, path := range []string{"/api/v1/approvals", "/api/v1/approvals?pending=1", "/api/v1/approvals/" + older.ID, "/api/v1/approvals/ap-nothere"} {
		r := f.do(t, http.MethodGet, path, "Bearer "+testToken, "")
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
		}
	}
}

func TestAdminDecide(t *testing.T) {
	tests := []struct {
		name       string
		required   int
		body       string
		wantStatus int
		wantState  State
	}{
		{name: "approve", required: 1, body: `{"decision": "approve", "approver": "alice"}`, wantStatus: http.StatusOK, wantState: StateApproved},
		{name: "deny", required: 1, body: `{"decision": "deny", "approver": "bob", "reason": "no"}`, wantStatus: http.StatusOK, wantState: StateDenied},
		{name: "first of two", required: 2, body: `{"decision": "approve", "approver": "alice"}`, wantStatus: http.StatusOK, wantState: StatePending},
		{name: "bad JSON", required: 1, body: `{"decision": "approve", `, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "not an object", required: 1, body: `"approve"`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "empty body", required: 1, body: ``, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "unknown field", required: 1, body: `{"decision": "approve", "approver": "alice", "required": 0}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "unknown decision", required: 1, body: `{"decision": "maybe", "approver": "alice"}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "decision in capitals", required: 1, body: `{"decision": "APPROVE", "approver": "alice"}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "missing approver", required: 1, body: `{"decision": "approve"}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		{name: "blank approver", required: 1, body: `{"decision": "approve", "approver": "  "}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
		// Past MaxScope (8h): the operator's mistake, not the server's
		// (found by review: answered 500).
		{name: "scope too long", required: 1, body: `{"decision": "approve", "approver": "alice", "scope_for": "9h"}`, wantStatus: http.StatusBadRequest, wantState: StatePending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			rec := f.pending(t, "s1", tt.required)
			got := f.do(t, http.MethodPost, "/api/v1/approvals/"+rec.ID+"/decision", "Bearer "+testToken, tt.body)
			if got.status != tt.wantStatus {
				t.Errorf("POST decision %s: status %d, want %d (body %s)", tt.body, got.status, tt.wantStatus, got.body)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			stored, err := f.b.Get(t.Context(), rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.State != tt.wantState {
				t.Errorf("state = %v, want %v", stored.State, tt.wantState)
			}
			if got.status != http.StatusOK {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(got.body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q, want {\"error\": …}", got.body)
				}
				return
			}
			var answered Record
			if err := json.Unmarshal([]byte(got.body), &answered); err != nil {
				t.Fatalf("decode answer %q: %v", got.body, err)
			}
			if diff := cmp.Diff(stored, &answered); diff != "" {
				t.Errorf("answer against the store (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAdminDecideWithClient(t *testing.T) {
	f := newAdminFixture(t)
	ctx := t.Context()
	var apiErr *APIError

	approved := f.pending(t, "s1", 1)
	got, err := f.client.Decide(ctx, approved.ID, true, "alice", "fine")
	if err != nil {
		t.Fatalf("Decide(approve) error = %v", err)
	}
	wantDecision := []Decision{{Approve: true, Approver: "cli:alice", Via: "cli", Reason: "fine", At: f.clock.Now(), Identity: "cli"}}
	if diff := cmp.Diff(wantDecision, got.Decisions); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	var decided []string
	for _, ev := range f.aud.forApproval(approved.ID) {
		if ev.Decision != "" {
			decided = append(decided, ev.Decision+" by "+ev.Approver+" via "+ev.Via)
		}
	}
	if diff := cmp.Diff([]string{"approved by cli:alice via cli"}, decided); diff != "" {
		t.Errorf("audited decisions (-want +got):\n%s", diff)
	}
	if _, err := f.client.Decide(ctx, approved.ID, false, "bob", ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("Decide() twice: error = %v, want APIError 409", err)
	}

	denied := f.pending(t, "s2", 1)
	got, err = f.client.Decide(ctx, denied.ID, false, "bob", "too risky")
	if err != nil {
		t.Fatalf("Decide(deny) error = %v", err)
	}
	if who, why := got.DenyReason(); who != "cli:bob" || why != "too risky" {
		t.Errorf("DenyReason() = %q, %q; want cli:bob, too risky", who, why)
	}

	twoPerson := f.pending(t, "s3", 2)
	if _, err := f.client.Decide(ctx, twoPerson.ID, true, "alice", ""); err != nil {
		t.Fatalf("first approval: %v", err)
	}
	if _, err := f.client.Decide(ctx, twoPerson.ID, true, "alice", ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("same approver twice: error = %v, want APIError 409", err)
	}

	expiring := f.pending(t, "s4", 1)
	f.clock.Advance(25 * time.Hour)
	if _, err := f.client.Decide(ctx, expiring.ID, true, "alice", ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("Decide() after expiry: error = %v, want APIError 409", err)
	}

	if _, err := f.client.Decide(ctx, "ap-nothere", true, "alice", ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("Decide(unknown) error = %v, want APIError 404", err)
	}
}

func TestAdminUnknownRoute(t *testing.T) {
	f := newAdminFixture(t)
	rec := f.pending(t, "s1", 1)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/api/v1/approvals/" + rec.ID + "/decision", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/v1/approvals/" + rec.ID, http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v2/approvals", http.StatusNotFound},
	}
	for _, tt := range tests {
		got := f.do(t, tt.method, tt.path, "Bearer "+testToken, "")
		if got.status != tt.want {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, got.status, tt.want)
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := NewClient(url, testToken)
	defer c.HTTP.CloseIdleConnections()
	if _, err := c.List(t.Context(), false); err == nil {
		t.Error("List() against a closed server succeeded")
	}
}

func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, testToken)
	defer c.HTTP.CloseIdleConnections()
	_, err := c.Get(t.Context(), "ap-x")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("Get() error = %v, want an APIError", err)
	}
	if diff := cmp.Diff(&APIError{Status: http.StatusBadGateway, Message: "upstream exploded"}, apiErr); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
}

// A list cuts each held body: whole, twenty of them as large as
// inspect.body_limit allows would outgrow what clients read (found by
// review). `approvals show` (Get) has the whole body.
func TestAdminListCutsLargeBodies(t *testing.T) {
	f := newAdminFixture(t)
	ctx := t.Context()
	var ids []string
	for i := range 20 {
		rec := newRecord("s1", fmt.Sprintf("fp-%d", i))
		rec.Request.Body = strings.Repeat("é", 512<<10) // 1 MiB of two-byte runes
		if out, err := f.b.Hold(ctx, rec, 0); err != nil || out.Kind != OutcomePending {
			t.Fatalf("Hold() = %v, %v", out.Kind, err)
		}
		ids = append(ids, rec.ID)
	}
	got, err := f.client.List(ctx, true)
	if err != nil || len(got) != 20 {
		t.Fatalf("List() = %d records, %v", len(got), err)
	}
	for _, rec := range got {
		if len(rec.Request.Body) > listBodyLimit+100 || !utf8.ValidString(rec.Request.Body) || !strings.Contains(rec.Request.Body, "countersign approvals show "+rec.ID) {
			t.Errorf("listed body of %s: %d bytes, ends %q", rec.ID, len(rec.Request.Body), rec.Request.Body[len(rec.Request.Body)-60:])
		}
	}
	whole, err := f.client.Get(ctx, ids[0])
	if err != nil || len(whole.Request.Body) != 1<<20 {
		t.Errorf("Get() body %d bytes, %v; want the whole MiB", len(whole.Request.Body), err)
	}
}
