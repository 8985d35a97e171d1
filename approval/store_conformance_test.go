package approval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stores runs f against every Store implementation.
func stores(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemoryStore()) })
	t.Run("sqlite", func(t *testing.T) {
		s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, _ := openPostgres(t)
		f(t, s)
	})
}

var t0 = time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)

func pendingRecord(id, session, fp string, required int) *Record {
	return &Record{
		ID: id, SessionID: session, SessionName: "alice/claude", Fingerprint: fp, Summary: "DELETE repo",
		Messages: []string{"needs a human"}, Required: required, State: StatePending,
		Created: t0, Expires: t0.Add(time.Hour), Operation: "github:repos/delete", Resources: []string{"acme/shop"},
	}
}

// Create stores a record and its tokens together, or neither.
func TestStoreCreateWithTokens(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		tok := Token{Hash: "h-link", ApprovalID: "ap-1", Label: "notification", Created: t0}
		if err := s.Create(ctx, pendingRecord("ap-1", "s-1", "fp-1", 1), tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.CheckToken(ctx, "ap-1", "h-link"); err != nil || got.Label != "notification" {
			t.Errorf("CheckToken after Create = %+v, %v", got, err)
		}
		// A duplicate id stores neither the record nor its token.
		if err := s.Create(ctx, pendingRecord("ap-1", "s-1", "fp-1", 1), Token{Hash: "h-dup", ApprovalID: "ap-1", Created: t0}); err == nil {
			t.Error("Create with a duplicate id succeeded")
		}
		if _, err := s.CheckToken(ctx, "ap-1", "h-dup"); !errors.Is(err, ErrBadToken) {
			t.Errorf("the duplicate's token was stored: %v", err)
		}
		// A token for another approval is refused, and the record is not
		// stored either.
		if err := s.Create(ctx, pendingRecord("ap-2", "s-1", "fp-2", 1), Token{Hash: "h-other", ApprovalID: "ap-9", Created: t0}); err == nil {
			t.Error("Create with another approval's token succeeded")
		}
		if _, err := s.Get(ctx, "ap-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(ap-2) after a refused Create = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreConformance(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		if err := s.Create(ctx, pendingRecord("ap-1", "s-1", "fp-1", 2)); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, pendingRecord("ap-1", "s-1", "fp-1", 2)); err == nil {
			t.Error("Create with a duplicate id succeeded")
		}
		if _, err := s.Get(ctx, "ap-nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
		}
		r, err := s.FindPending(ctx, "s-1", "fp-1", t0)
		if err != nil || r.ID != "ap-1" || r.Operation != "github:repos/delete" || len(r.Resources) != 1 {
			t.Fatalf("FindPending = %+v, %v", r, err)
		}
		if _, err := s.FindPending(ctx, "s-2", "fp-1", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindPending(other session) error = %v", err)
		}
		mine, err1 := s.CountPendingFor(ctx, "s-1")
		theirs, err2 := s.CountPendingFor(ctx, "s-2")
		if mine != 1 || theirs != 0 || err1 != nil || err2 != nil {
			t.Errorf("CountPendingFor = %d (%v) for s-1, %d (%v) for s-2; want 1 and 0", mine, err1, theirs, err2)
		}

		// Two-person rule through tokens and a plain decision.
		if err := s.AddToken(ctx, Token{Hash: "h1", ApprovalID: "ap-1", Created: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, Token{Hash: "hx", ApprovalID: "ap-unknown", Created: t0}); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddToken for an unknown approval: %v", err)
		}
		if _, err := s.CheckToken(ctx, "ap-1", "h2"); !errors.Is(err, ErrBadToken) {
			t.Errorf("CheckToken(wrong hash) = %v", err)
		}
		if tok, err := s.CheckToken(ctx, "ap-1", "h1"); err != nil || tok.Used {
			t.Fatalf("CheckToken = %+v, %v", tok, err)
		}
		r, err = s.DecideWithToken(ctx, "ap-1", "h1", Decision{Approve: true, Approver: "page:a", Via: "page", At: t0}, t0)
		if err != nil || r.State != StatePending || len(r.Approvers()) != 1 {
			t.Fatalf("first approval: %+v, %v", r, err)
		}
		if _, err := s.DecideWithToken(ctx, "ap-1", "h1", Decision{Approve: true, Approver: "page:b", Via: "page", At: t0}, t0); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("token replay: %v, want ErrTokenUsed", err)
		}
		if _, err := s.DecideWithToken(ctx, "ap-1", "nope", Decision{Approve: true, Approver: "page:c", Via: "page", At: t0}, t0); !errors.Is(err, ErrBadToken) {
			t.Errorf("bad token: %v", err)
		}
		if _, err := s.Decide(ctx, "ap-1", Decision{Approve: true, Approver: "page:a", Via: "page", At: t0}, t0); !errors.Is(err, ErrDuplicateApprover) {
			t.Errorf("same approver twice: %v", err)
		}
		r, err = s.Decide(ctx, "ap-1", Decision{Approve: true, Approver: "cli:bob", Via: "cli", At: t0}, t0)
		if err != nil || r.State != StateApproved {
			t.Fatalf("second approval: %+v, %v", r, err)
		}
		if _, err := s.Decide(ctx, "ap-1", Decision{Approve: false, Approver: "cli:eve", Via: "cli", At: t0}, t0); !errors.Is(err, ErrDecided) {
			t.Errorf("decide after approval: %v", err)
		}
		if list, _ := s.List(ctx, true); len(list) != 0 {
			t.Errorf("pending list = %d records", len(list))
		}
		if list, _ := s.List(ctx, false); len(list) != 1 {
			t.Errorf("full list = %d records", len(list))
		}

		// Expiry.
		if err := s.Create(ctx, pendingRecord("ap-2", "s-1", "fp-2", 1)); err != nil {
			t.Fatal(err)
		}
		exp, err := s.ExpirePending(ctx, t0.Add(2*time.Hour))
		if err != nil || len(exp) != 1 || exp[0].ID != "ap-2" || exp[0].State != StateExpired {
			t.Fatalf("ExpirePending = %+v, %v", exp, err)
		}

		// Grants: exactly one consumer under concurrency.
		if err := s.AddGrant(ctx, Grant{ApprovalID: "ap-1", SessionID: "s-1", Fingerprint: "fp-1", Expires: t0.Add(30 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.ConsumeGrant(ctx, "s-1", "fp-1", t0); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrNotFound) {
					t.Errorf("ConsumeGrant: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d concurrent retries consumed the grant, want exactly 1", wins.Load())
		}
		if err := s.AddGrant(ctx, Grant{ApprovalID: "ap-1", SessionID: "s-1", Fingerprint: "fp-9", Expires: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeGrant(ctx, "s-1", "fp-9", t0.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired grant consumed: %v", err)
		}

		// Scoped grants.
		sc := Scope{ID: "gr-1", ApprovalID: "ap-1", SessionID: "s-1", Operation: "github:repos/delete", Resources: []string{"acme/shop", "acme/web"}, Created: t0, Expires: t0.Add(time.Hour), Required: 1, RuleIDs: []string{"R1"}}
		if err := s.AddScope(ctx, sc); err != nil {
			t.Fatal(err)
		}
		got, err := s.UseScope(ctx, ScopeQuery{SessionID: "s-1", Operation: "github:repos/delete", Resources: []string{"acme/web"}, Required: 1, RuleIDs: []string{"R1"}}, t0)
		if err != nil || got.ID != "gr-1" || got.Uses != 1 {
			t.Fatalf("UseScope = %+v, %v", got, err)
		}
		for _, miss := range []struct {
			session, op string
			res         []string
			at          time.Time
			required    int
			rules       []string
		}{
			{"s-2", "github:repos/delete", []string{"acme/web"}, t0, 1, nil},
			{"s-1", "github:repos/update", []string{"acme/web"}, t0, 1, nil},
			{"s-1", "github:repos/delete", []string{"acme/other"}, t0, 1, nil},
			{"s-1", "github:repos/delete", []string{"acme/web"}, t0.Add(2 * time.Hour), 1, nil},
			{"s-1", "github:repos/delete", []string{"acme/web"}, t0, 2, nil},            // the policy now wants two approvers
			{"s-1", "github:repos/delete", []string{"acme/web"}, t0, 1, []string{"R9"}}, // a rule the approval did not see
		} {
			q := ScopeQuery{SessionID: miss.session, Operation: miss.op, Resources: miss.res, Required: miss.required, RuleIDs: miss.rules}
			if _, err := s.UseScope(ctx, q, miss.at); !errors.Is(err, ErrNotFound) {
				t.Errorf("UseScope(%+v) = %v, want ErrNotFound", miss, err)
			}
		}
		if _, err := s.RevokeScope(ctx, "gr-1", "cli:bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UseScope(ctx, ScopeQuery{SessionID: "s-1", Operation: "github:repos/delete", Resources: []string{"acme/web"}, Required: 1}, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked scope still admits: %v", err)
		}
		if all, _ := s.Scopes(ctx, false, t0); len(all) != 1 || !all[0].Revoked || all[0].Uses != 1 {
			t.Errorf("Scopes = %+v", all)
		}
		if active, _ := s.Scopes(ctx, true, t0); len(active) != 0 {
			t.Errorf("active scopes after revoke = %+v", active)
		}
		if _, err := s.RevokeScope(ctx, "gr-none", "cli:bob"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeScope(unknown) = %v", err)
		}

		// Notices and replay keys.
		if err := s.AddNotice(ctx, Notice{ApprovalID: "ap-1", Kind: "slack", Channel: "C1", Ref: "1.2"}); err != nil {
			t.Fatal(err)
		}
		if ns, _ := s.Notices(ctx, "ap-1"); len(ns) != 1 || ns[0].Ref != "1.2" {
			t.Errorf("Notices = %+v", ns)
		}
		first, _ := s.FirstSeen(ctx, "sig-1", t0.Add(10*time.Minute), t0)
		again, _ := s.FirstSeen(ctx, "sig-1", t0.Add(10*time.Minute), t0.Add(time.Minute))
		later, _ := s.FirstSeen(ctx, "sig-1", t0.Add(30*time.Minute), t0.Add(20*time.Minute))
		if !first || again || !later {
			t.Errorf("FirstSeen: first %v again %v after expiry %v", first, again, later)
		}
	})
}

func TestSQLiteStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), pendingRecord("ap-1", "s-1", "fp-1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToken(t.Context(), Token{Hash: "h1", ApprovalID: "ap-1", Created: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.FindPending(t.Context(), "s-1", "fp-1", t0)
	if err != nil || r.ID != "ap-1" {
		t.Fatalf("pending approval lost across reopen: %+v %v", r, err)
	}
	r, err = s.DecideWithToken(t.Context(), "ap-1", "h1", Decision{Approve: true, Approver: "page:a", Via: "page", At: t0}, t0)
	if err != nil || r.State != StateApproved {
		t.Fatalf("decide after reopen: %+v %v", r, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// A decision that approves with GrantUntil stores the grant with it; one
// that leaves the record pending, or denies, stores none.
func TestStoreDecisionIssuesGrant(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		until := t0.Add(30 * time.Minute)
		if err := s.Create(ctx, pendingRecord("ap-2p", "s-1", "fp-2p", 2), Token{Hash: "h-2p", ApprovalID: "ap-2p", Created: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Decide(ctx, "ap-2p", Decision{Approve: true, Approver: "u:a", Via: "cli", At: t0, GrantUntil: until}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeGrant(ctx, "s-1", "fp-2p", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("one of two approvals issued a grant: %v", err)
		}
		if _, err := s.DecideWithToken(ctx, "ap-2p", "h-2p", Decision{Approve: true, Approver: "u:b", Via: "page", At: t0, GrantUntil: until}, t0); err != nil {
			t.Fatal(err)
		}
		g, err := s.ConsumeGrant(ctx, "s-1", "fp-2p", t0)
		if err != nil || g.ApprovalID != "ap-2p" || !g.Expires.Equal(until) {
			t.Errorf("grant after the second approval = %+v, %v", g, err)
		}
		if _, err := s.ConsumeGrant(ctx, "s-1", "fp-2p", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("the grant admitted twice: %v", err)
		}
		if err := s.Create(ctx, pendingRecord("ap-no", "s-1", "fp-no", 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Decide(ctx, "ap-no", Decision{Approve: false, Approver: "u:a", Via: "cli", At: t0, GrantUntil: until}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeGrant(ctx, "s-1", "fp-no", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("a denial issued a grant: %v", err)
		}
	})
}

// TestDurableStoresForgetSettledRecords: the SQLite and PostgreSQL stores
// drop a decided or expired approval SettledRetention past its deadline,
// with its tokens, unless a grant of it is still live (found by review:
// they kept everything, and an agent could grow them without end), in
// batches of the size asked for.
func TestDurableStoresForgetSettledRecords(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		p, ok := s.(Purger)
		if !ok {
			return // MemoryStore: MemoryRetention, tested on its own
		}
		ctx := t.Context()
		for i, id := range []string{"ap-old", "ap-old2", "ap-granted", "ap-recent", "ap-pending"} {
			r := pendingRecord(id, "s-1", "fp-"+id, 1)
			if id == "ap-recent" || id == "ap-pending" {
				r.Created, r.Expires = t0.Add(SettledRetention), t0.Add(SettledRetention+time.Hour)
			}
			if err := s.Create(ctx, r, Token{Hash: "h-" + id, ApprovalID: id, Label: "notification", Created: r.Created}); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		if _, err := s.Decide(ctx, "ap-granted", Decision{Approve: true, Approver: "cli:bob", Via: "cli"}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, Grant{ApprovalID: "ap-granted", SessionID: "s-1", Fingerprint: "fp-ap-granted", Expires: t0.Add(30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExpirePending(ctx, t0.Add(2*time.Hour)); err != nil { // ap-old, ap-old2 expire
			t.Fatal(err)
		}
		if _, err := s.Decide(ctx, "ap-recent", Decision{Approve: false, Approver: "cli:bob", Via: "cli"}, t0.Add(SettledRetention+time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Before ap-old's deadline plus retention, nothing goes.
		if n, err := p.PurgeSettled(ctx, t0.Add(time.Hour-time.Minute), 10); n != 0 || err != nil {
			t.Errorf("PurgeSettled before the retention ended = %d, %v; want 0", n, err)
		}
		// Then one batch at a time.
		before := t0.Add(time.Hour) // a sweep at ap-old's deadline + SettledRetention
		if n, err := p.PurgeSettled(ctx, before, 1); n != 1 || err != nil {
			t.Errorf("PurgeSettled(limit 1) = %d, %v; want 1", n, err)
		}
		if n, err := p.PurgeSettled(ctx, before, 10); n != 1 || err != nil {
			t.Errorf("PurgeSettled(limit 10) = %d, %v; want the other 1", n, err)
		}
		for _, id := range []string{"ap-old", "ap-old2"} {
			if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s, expired SettledRetention ago: %v, want ErrNotFound", id, err)
			}
			if _, err := s.CheckToken(ctx, id, "h-"+id); !errors.Is(err, ErrBadToken) {
				t.Errorf("%s's page token: %v, want ErrBadToken", id, err)
			}
		}
		for _, id := range []string{"ap-granted", "ap-recent", "ap-pending"} {
			if _, err := s.Get(ctx, id); err != nil {
				t.Errorf("%s dropped: %v", id, err)
			}
			if _, err := s.CheckToken(ctx, id, "h-"+id); err != nil {
				t.Errorf("%s's token dropped: %v", id, err)
			}
		}
		all, err := s.List(ctx, false)
		if err != nil || len(all) != 3 {
			t.Errorf("List = %d records, %v; want 3", len(all), err)
		}
	})
}

// The broker purges in batches until nothing is left.
func TestBrokerPurgesSettledApprovals(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n := purgeBatch + 3
	for i := range n {
		r := pendingRecord(fmt.Sprintf("ap-%d", i), "s-1", fmt.Sprintf("fp-%d", i), 1)
		if err := s.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ExpirePending(t.Context(), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0.Add(time.Hour + SettledRetention)}
	b, _, _ := newTestBroker(t, Options{Store: s, Now: clock.Now})
	b.purge(t.Context())
	if all, err := s.List(t.Context(), false); err != nil || len(all) != 0 {
		t.Errorf("after purge: %d records, %v; want none", len(all), err)
	}
}
