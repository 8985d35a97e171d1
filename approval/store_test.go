package approval

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var storeT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func storedRecord(id, session, fp string, created time.Time, state State) *Record {
	return &Record{ID: id, SessionID: session, Fingerprint: fp, Required: 1, Created: created, Expires: created.Add(time.Hour), State: state}
}

func TestMemoryStoreCreateGet(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	rec := storedRecord("ap-1", "s1", "fp", storeT0, StatePending)
	rec.Messages = []string{"m"}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if err := s.Create(ctx, storedRecord("ap-1", "s2", "fp2", storeT0, StatePending)); err == nil {
		t.Error("Create() with an existing id succeeded, want an error")
	}

	rec.Messages[0] = "changed by the caller"
	rec.State = StateApproved
	got, err := s.Get(ctx, "ap-1")
	if err != nil {
		t.Fatalf("Get() error = %v", err)
	}
	want := storedRecord("ap-1", "s1", "fp", storeT0, StatePending)
	want.Messages = []string{"m"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get() after the caller changed its record (-want +got):\n%s", diff)
	}
	got.Decisions = append(got.Decisions, Decision{Approver: "x"})
	if again, _ := s.Get(ctx, "ap-1"); len(again.Decisions) != 0 {
		t.Error("changing a record returned by Get changed the store")
	}
	if _, err := s.Get(ctx, "ap-nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestMemoryStoreList(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	for _, r := range []*Record{
		storedRecord("ap-old", "s1", "a", storeT0, StatePending),
		storedRecord("ap-new", "s1", "b", storeT0.Add(2*time.Minute), StatePending),
		storedRecord("ap-mid", "s1", "c", storeT0.Add(time.Minute), StateDenied),
	} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatalf("Create() error = %v", err)
		}
	}
	tests := []struct {
		name        string
		pendingOnly bool
		want        []string
	}{
		{name: "all", want: []string{"ap-new", "ap-mid", "ap-old"}},
		{name: "pending", pendingOnly: true, want: []string{"ap-new", "ap-old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.pendingOnly)
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("List(%v) (-want +got):\n%s", tt.pendingOnly, diff)
			}
		})
	}
}

func TestMemoryStoreFindPending(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	for _, r := range []*Record{
		storedRecord("ap-pending", "s1", "fp", storeT0, StatePending),
		storedRecord("ap-denied", "s2", "fp", storeT0, StateDenied),
	} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatalf("Create() error = %v", err)
		}
	}
	tests := []struct {
		name        string
		session, fp string
		now         time.Time
		wantID      string
		wantErr     error
	}{
		{name: "match", session: "s1", fp: "fp", now: storeT0, wantID: "ap-pending"},
		{name: "just before expiry", session: "s1", fp: "fp", now: storeT0.Add(time.Hour - time.Nanosecond), wantID: "ap-pending"},
		{name: "at expiry", session: "s1", fp: "fp", now: storeT0.Add(time.Hour), wantErr: ErrNotFound},
		{name: "other session", session: "s3", fp: "fp", now: storeT0, wantErr: ErrNotFound},
		{name: "other fingerprint", session: "s1", fp: "other", now: storeT0, wantErr: ErrNotFound},
		{name: "decided", session: "s2", fp: "fp", now: storeT0, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindPending(ctx, tt.session, tt.fp, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FindPending() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got.ID != tt.wantID {
				t.Errorf("FindPending() = %s, want %s", got.ID, tt.wantID)
			}
		})
	}
}

func TestMemoryStoreDecide(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	if err := s.Create(ctx, storedRecord("ap-1", "s1", "fp", storeT0, StatePending)); err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	d := Decision{Approve: true, Approver: "alice", Via: "cli", At: storeT0}
	got, err := s.Decide(ctx, "ap-1", d, storeT0)
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	want := storedRecord("ap-1", "s1", "fp", storeT0, StateApproved)
	want.Decisions = []Decision{d}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decide() (-want +got):\n%s", diff)
	}
	if _, err := s.Decide(ctx, "ap-1", d, storeT0); !errors.Is(err, ErrDecided) {
		t.Errorf("second Decide() error = %v, want ErrDecided", err)
	}
	if _, err := s.Decide(ctx, "ap-nothere", d, storeT0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Decide(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestMemoryStoreExpirePending(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	for _, r := range []*Record{
		storedRecord("ap-due", "s1", "a", storeT0, StatePending),
		storedRecord("ap-later", "s1", "b", storeT0.Add(time.Minute), StatePending),
		storedRecord("ap-decided", "s1", "c", storeT0, StateApproved),
	} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatalf("Create() error = %v", err)
		}
	}
	now := storeT0.Add(time.Hour)
	for _, g := range []Grant{
		{ApprovalID: "ap-g1", SessionID: "s1", Fingerprint: "old", Expires: now},
		{ApprovalID: "ap-g2", SessionID: "s1", Fingerprint: "fresh", Expires: now.Add(time.Second)},
	} {
		if err := s.AddGrant(ctx, g); err != nil {
			t.Fatalf("AddGrant() error = %v", err)
		}
	}

	expired, err := s.ExpirePending(ctx, now)
	if err != nil {
		t.Fatalf("ExpirePending() error = %v", err)
	}
	want := []*Record{storedRecord("ap-due", "s1", "a", storeT0, StateExpired)}
	if diff := cmp.Diff(want, expired); diff != "" {
		t.Errorf("ExpirePending() (-want +got):\n%s", diff)
	}
	if again, _ := s.ExpirePending(ctx, now); len(again) != 0 {
		t.Errorf("second ExpirePending() = %v, want nothing new", ids(again))
	}
	s.mu.Lock()
	grants := len(s.grants)
	s.mu.Unlock()
	if grants != 1 {
		t.Errorf("grants kept after ExpirePending = %d, want only the unexpired one", grants)
	}
	if _, err := s.ConsumeGrant(ctx, "s1", "fresh", now); err != nil {
		t.Errorf("ConsumeGrant(fresh) error = %v", err)
	}
}

func TestMemoryStoreConsumeGrant(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	grants := []Grant{
		{ApprovalID: "ap-1", SessionID: "s1", Fingerprint: "fp", Expires: storeT0.Add(time.Minute)},
		{ApprovalID: "ap-2", SessionID: "s1", Fingerprint: "fp", Expires: storeT0.Add(2 * time.Minute)},
	}
	for _, g := range grants {
		if err := s.AddGrant(ctx, g); err != nil {
			t.Fatalf("AddGrant() error = %v", err)
		}
	}
	steps := []struct {
		session, fp string
		now         time.Time
		want        string
		wantErr     error
	}{
		{session: "s2", fp: "fp", now: storeT0, wantErr: ErrNotFound},
		{session: "s1", fp: "fp", now: storeT0.Add(time.Minute), want: "ap-2"}, // ap-1 expired
		{session: "s1", fp: "fp", now: storeT0, want: "ap-1"},
		{session: "s1", fp: "fp", now: storeT0, wantErr: ErrNotFound},
	}
	for i, st := range steps {
		g, err := s.ConsumeGrant(ctx, st.session, st.fp, st.now)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: ConsumeGrant() error = %v, want %v", i, err, st.wantErr)
		}
		if g.ApprovalID != st.want {
			t.Errorf("step %d: ConsumeGrant() = %q, want %q", i, g.ApprovalID, st.want)
		}
	}
}

// A long session forgets what was settled more than MemoryRetention ago,
// with its tokens and notices; what is pending, or recent, stays.
func TestMemoryStoreForgetsSettledRecords(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	approved := storedRecord("ap-approved", "s1", "a", storeT0, StateApproved)
	approved.Decisions = []Decision{{Approve: true, Approver: "cli:bob", At: storeT0.Add(time.Minute)}}
	recent := storedRecord("ap-recent", "s1", "b", storeT0, StateDenied)
	recent.Decisions = []Decision{{Approver: "cli:bob", At: storeT0.Add(90 * time.Minute)}}
	pending := storedRecord("ap-pending", "s1", "c", storeT0, StatePending)
	pending.Expires = storeT0.Add(24 * time.Hour)
	for _, r := range []*Record{approved, recent, pending, storedRecord("ap-expires", "s1", "d", storeT0, StatePending)} {
		if err := s.Create(ctx, r, Token{ApprovalID: r.ID, Hash: "h-" + r.ID}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddNotice(ctx, Notice{ApprovalID: r.ID, Kind: "slack", Ref: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// ap-expires expires at storeT0+1h, when the first sweep runs; by the
	// second, two hours later, it and ap-approved are past retention.
	if _, err := s.ExpirePending(ctx, storeT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExpirePending(ctx, storeT0.Add(2*time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ap-pending", "ap-recent"}, sortedIDs(all)); diff != "" {
		t.Errorf("records kept (-want +got):\n%s", diff)
	}
	for id, want := range map[string]error{"ap-approved": ErrBadToken, "ap-expires": ErrBadToken, "ap-recent": nil, "ap-pending": nil} {
		if _, err := s.CheckToken(ctx, id, "h-"+id); !errors.Is(err, want) && err != want {
			t.Errorf("CheckToken(%s) = %v, want %v", id, err, want)
		}
		n, _ := s.Notices(ctx, id)
		if kept := len(n) == 1; kept != (want == nil) {
			t.Errorf("notices of %s kept: %v", id, kept)
		}
	}
}

func sortedIDs(rs []*Record) []string {
	out := ids(rs)
	slices.Sort(out)
	return out
}

// Two processes on one SQLite store (two serves sharing a state_dir) race
// for the write lock: each transaction takes it when it begins, so the
// busy timeout applies and neither fails with SQLITE_BUSY_SNAPSHOT, which
// a deferred transaction got when the other wrote after its first read
// (found by review: 192 of 200 concurrent decisions failed).
func TestSQLiteStoreSharedByTwoOpeners(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	a, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 50
	for i := range n {
		id := fmt.Sprintf("ap-%d", i)
		if err := a.Create(ctx, storedRecord(id, "s1", fmt.Sprintf("fp-%d", i), storeT0, StatePending)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		id := fmt.Sprintf("ap-%d", i)
		for j, s := range []*SQLiteStore{a, b} {
			wg.Go(func() {
				d := Decision{Approve: true, Approver: fmt.Sprintf("approver-%d", j), Via: "cli", At: storeT0}
				if _, err := s.Decide(ctx, id, d, storeT0); err != nil && !errors.Is(err, ErrDecided) {
					errs <- fmt.Errorf("%s by store %d: %w", id, j, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		r, err := a.Get(ctx, fmt.Sprintf("ap-%d", i))
		if err != nil || r.State != StateApproved || len(r.Decisions) != 1 {
			t.Fatalf("ap-%d: %+v, %v; want approved once", i, r, err)
		}
	}
}
