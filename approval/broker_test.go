package approval

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/countersign/countersign/audit"
)

func TestNewBroker(t *testing.T) {
	tests := []struct {
		name    string
		give    Options
		wantErr bool
	}{
		{name: "no store", give: Options{Auditor: &fakeAuditor{}}, wantErr: true},
		{name: "no auditor", give: Options{Store: NewMemoryStore()}, wantErr: true},
		{name: "store and auditor", give: Options{Store: NewMemoryStore(), Auditor: &fakeAuditor{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroker(tt.give, nil)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewBroker() error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer b.Close()
			got := struct {
				Expire, GrantTTL time.Duration
				MaxPending       int
				HasNow           bool
			}{b.opts.Expire, b.GrantTTL(), b.opts.MaxPending, b.opts.Now != nil}
			want := struct {
				Expire, GrantTTL time.Duration
				MaxPending       int
				HasNow           bool
			}{24 * time.Hour, 30 * time.Minute, 10000, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHoldApprovedWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, notes := newTestBroker(t, Options{})
		start := time.Now()
		rec := newRecord("s1", "fp1")
		base := rec.Clone()

		held := startHold(t.Context(), b, rec, time.Minute)
		synctest.Wait()
		if _, ok := ready(held); ok {
			t.Fatal("Hold returned before anyone decided")
		}
		if got := waiterCount(b, rec.ID); got != 1 {
			t.Fatalf("waiters on %s = %d, want 1", rec.ID, got)
		}

		time.Sleep(10 * time.Second)
		decided, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli", Reason: "looks fine"})
		if err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		r := <-held
		if r.err != nil {
			t.Fatalf("Hold() error = %v", r.err)
		}
		if r.out.Kind != OutcomeApproved || r.out.Joined {
			t.Errorf("Hold() = %v (joined %v), want approved (joined false)", r.out.Kind, r.out.Joined)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("Hold() returned after %v, want 10s (when the approval came)", got)
		}

		want := pendingWant(base, start, 24*time.Hour)
		want.State = StateApproved
		want.Decisions = []Decision{{Approve: true, Approver: "alice", Via: "cli", Reason: "looks fine", At: start.Add(10 * time.Second)}}
		if diff := cmp.Diff(want, r.out.Record); diff != "" {
			t.Errorf("Hold() record (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, decided); diff != "" {
			t.Errorf("Decide() record (-want +got):\n%s", diff)
		}

		wantEvents := []audit.Event{
			{
				Type: "approval", ApprovalID: rec.ID, RequestID: rec.RequestID, Detail: "requested",
				Reasons: base.Messages, RuleIDs: base.RuleIDs,
				Fields: map[string]any{"required": 1, "expires": start.Add(24 * time.Hour).UTC().Format(time.RFC3339)},
			},
			{
				Type: "approval", ApprovalID: rec.ID, RequestID: rec.RequestID, Approver: "alice", Via: "cli",
				Decision: "approved", Detail: "approved by alice via cli (1 of 1 approvals)", Reasons: []string{"looks fine"},
			},
		}
		if diff := cmp.Diff(wantEvents, aud.forApproval(rec.ID)); diff != "" {
			t.Errorf("audit events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"requested " + rec.ID, "decided " + rec.ID}, notes.events()); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
		if g, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeGrant() = %+v, %v; want ErrNotFound: an approval used while held grants nothing more", g, err)
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters left = %d, want 0", got)
		}
	})
}

func TestHoldDeniedWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, notes := newTestBroker(t, Options{})
		rec := newRecord("s1", "fp1")
		held := startHold(t.Context(), b, rec, time.Minute)
		synctest.Wait()

		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: false, Approver: "bob", Via: "slack", Reason: "not in prod"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		r := <-held
		if r.err != nil || r.out.Kind != OutcomeDenied {
			t.Fatalf("Hold() = %v, %v; want denied", r.out.Kind, r.err)
		}
		if r.out.Record.State != StateDenied {
			t.Errorf("record state = %v, want denied", r.out.Record.State)
		}
		who, why := r.out.Record.DenyReason()
		if who != "bob" || why != "not in prod" {
			t.Errorf("DenyReason() = %q, %q; want %q, %q", who, why, "bob", "not in prod")
		}
		if diff := cmp.Diff([]string{"requested", "denied by bob via slack"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"requested " + rec.ID, "decided " + rec.ID}, notes.events()); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); !errors.Is(err, ErrDecided) {
			t.Errorf("Decide() after a deny: error = %v, want ErrDecided", err)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeGrant() after a deny: error = %v, want ErrNotFound", err)
		}
	})
}

func TestDecideNeedsApprover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{})
		rec := newRecord("s1", "fp1")
		if out, err := b.Hold(t.Context(), rec, 0); err != nil || out.Kind != OutcomePending {
			t.Fatalf("Hold() = %v, %v; want pending", out.Kind, err)
		}
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Via: "cli"}); err == nil {
			t.Error("Decide() without an approver succeeded, want an error")
		}
		if got, _ := b.Get(t.Context(), rec.ID); got.State != StatePending {
			t.Errorf("state after a decision without approver = %v, want pending", got.State)
		}
		if _, err := b.Decide(t.Context(), "ap-nothere", Decision{Approve: true, Approver: "alice"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Decide(unknown id) error = %v, want ErrNotFound", err)
		}
	})
}

// lateApproval holds rec until the hold runs out, then approves it; it
// returns when the approval was decided.
func lateApproval(t *testing.T, b *Broker, rec *Record, hold time.Duration) time.Time {
	t.Helper()
	out, err := b.Hold(t.Context(), rec, hold)
	if err != nil || out.Kind != OutcomePending {
		t.Fatalf("Hold() = %v, %v; want pending", out.Kind, err)
	}
	time.Sleep(time.Minute)
	if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	return time.Now()
}

func TestHoldTimesOutThenGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grantTTL = 10 * time.Minute
		b, aud, notes := newTestBroker(t, Options{GrantTTL: grantTTL})
		start := time.Now()
		rec := newRecord("s1", "fp1")

		out, err := b.Hold(t.Context(), rec, 50*time.Second)
		if err != nil {
			t.Fatalf("Hold() error = %v", err)
		}
		if out.Kind != OutcomePending || out.Joined || out.Record.ID != rec.ID || out.Record.State != StatePending {
			t.Fatalf("Hold() = %v joined=%v %s %v; want pending, not joined, %s, pending", out.Kind, out.Joined, out.Record.ID, out.Record.State, rec.ID)
		}
		if got := time.Since(start); got != 50*time.Second {
			t.Errorf("Hold() returned after %v, want the 50s hold", got)
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters after the hold ran out = %d, want 0", got)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ConsumeGrant() before any approval: error = %v, want ErrNotFound", err)
		}

		time.Sleep(time.Minute)
		decidedAt := time.Now()
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		if diff := cmp.Diff([]string{"requested", "approved by alice via cli", "grant issued"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"requested " + rec.ID, "decided " + rec.ID}, notes.events()); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}

		steps := []struct {
			name        string
			session, fp string
			wantErr     error
		}{
			{name: "another session", session: "s2", fp: "fp1", wantErr: ErrNotFound},
			{name: "another fingerprint", session: "s1", fp: "fp2", wantErr: ErrNotFound},
			{name: "same session and fingerprint", session: "s1", fp: "fp1"},
			{name: "second time", session: "s1", fp: "fp1", wantErr: ErrNotFound},
		}
		for _, st := range steps {
			g, err := b.ConsumeGrant(t.Context(), st.session, st.fp)
			if !errors.Is(err, st.wantErr) {
				t.Errorf("%s: ConsumeGrant(%q, %q) error = %v, want %v", st.name, st.session, st.fp, err, st.wantErr)
				continue
			}
			if err != nil {
				continue
			}
			want := Grant{ApprovalID: rec.ID, SessionID: "s1", Fingerprint: "fp1", Expires: decidedAt.Add(grantTTL)}
			if diff := cmp.Diff(want, g); diff != "" {
				t.Errorf("%s: grant (-want +got):\n%s", st.name, diff)
			}
		}
	})
}

func TestGrantExpires(t *testing.T) {
	const grantTTL = 10 * time.Minute
	tests := []struct {
		name    string
		after   time.Duration
		wantErr error
	}{
		{name: "just before the TTL", after: grantTTL - time.Nanosecond},
		{name: "at the TTL", after: grantTTL, wantErr: ErrNotFound},
		{name: "long after", after: 3 * grantTTL, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, _, _ := newTestBroker(t, Options{GrantTTL: grantTTL})
				lateApproval(t, b, newRecord("s1", "fp1"), time.Second)
				time.Sleep(tt.after)
				if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, tt.wantErr) {
					t.Errorf("ConsumeGrant() %v after the approval: error = %v, want %v", tt.after, err, tt.wantErr)
				}
			})
		})
	}
}

func TestHoldClientDisconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, _ := newTestBroker(t, Options{})
		rec := newRecord("s1", "fp1")
		ctx, cancel := context.WithCancel(t.Context())
		held := startHold(ctx, b, rec, time.Minute)
		synctest.Wait()
		cancel()
		r := <-held
		if r.err != nil || r.out.Kind != OutcomeAbandoned || r.out.Record.ID != rec.ID {
			t.Fatalf("Hold() = %v %v, %v; want abandoned %s", r.out.Kind, r.out.Record, r.err, rec.ID)
		}
		if diff := cmp.Diff([]string{"requested", "abandoned"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters after the client left = %d, want 0", got)
		}
		if got, _ := b.Get(t.Context(), rec.ID); got.State != StatePending {
			t.Errorf("state after the client left = %v, want pending", got.State)
		}

		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); err != nil {
			t.Errorf("ConsumeGrant() after approving an abandoned hold: error = %v, want a grant", err)
		}
	})
}

// A decision that lands in the same instant the client leaves is reported,
// not the disconnect: the approval must not be lost between the two.
func TestHoldDecidedAsClientLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, _ := newTestBroker(t, Options{})
		rec := newRecord("s1", "fp1")
		ctx, cancel := context.WithCancel(t.Context())
		held := startHold(ctx, b, rec, time.Minute)
		synctest.Wait()
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		cancel()
		r := <-held
		if r.err != nil || r.out.Kind != OutcomeApproved {
			t.Fatalf("Hold() = %v, %v; want approved", r.out.Kind, r.err)
		}
		if diff := cmp.Diff([]string{"requested", "approved by alice via cli"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

func TestHoldJoinsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, notes := newTestBroker(t, Options{})
		first := newRecord("s1", "fp1")
		heldFirst := startHold(t.Context(), b, first, time.Minute)
		synctest.Wait()
		retry := newRecord("s1", "fp1")
		heldRetry := startHold(t.Context(), b, retry, time.Minute)
		synctest.Wait()
		otherSession := newRecord("s2", "fp1")
		heldOther := startHold(t.Context(), b, otherSession, time.Minute)
		otherFP := newRecord("s1", "fp2")
		heldOtherFP := startHold(t.Context(), b, otherFP, time.Minute)
		synctest.Wait()

		if got := waiterCount(b, first.ID); got != 2 {
			t.Errorf("waiters on the first approval = %d, want 2", got)
		}
		wantNotes := []string{"requested " + first.ID, "requested " + otherSession.ID, "requested " + otherFP.ID}
		if diff := cmp.Diff(sortedCopy(wantNotes), sortedCopy(notes.events())); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
		events := aud.forApproval(first.ID)
		if len(events) != 2 || events[1].Detail != "joined by a retry" || events[1].RequestID != retry.RequestID {
			t.Errorf("audit of the first approval = %+v, want requested then joined by a retry for %s", events, retry.RequestID)
		}
		pending, err := b.List(t.Context(), true)
		if err != nil {
			t.Fatalf("List() error = %v", err)
		}
		if diff := cmp.Diff(sortedCopy([]string{first.ID, otherSession.ID, otherFP.ID}), sortedCopy(ids(pending))); diff != "" {
			t.Errorf("pending approvals (-want +got):\n%s", diff)
		}

		type result struct {
			Kind   OutcomeKind
			ID     string
			Joined bool
		}
		got := map[string]result{}
		for name, ch := range map[string]<-chan holdResult{"first": heldFirst, "retry": heldRetry, "other session": heldOther, "other fingerprint": heldOtherFP} {
			r := <-ch
			if r.err != nil {
				t.Fatalf("%s: Hold() error = %v", name, r.err)
			}
			got[name] = result{r.out.Kind, r.out.Record.ID, r.out.Joined}
		}
		want := map[string]result{
			"first":             {OutcomePending, first.ID, false},
			"retry":             {OutcomePending, first.ID, true},
			"other session":     {OutcomePending, otherSession.ID, false},
			"other fingerprint": {OutcomePending, otherFP.ID, false},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}

		// A retry after every hold ran out still joins the pending approval.
		again := newRecord("s1", "fp1")
		out, err := b.Hold(t.Context(), again, time.Second)
		if err != nil || out.Kind != OutcomePending || !out.Joined || out.Record.ID != first.ID {
			t.Errorf("late retry: Hold() = %v joined=%v %v, %v; want pending, joined, %s", out.Kind, out.Joined, out.Record, err, first.ID)
		}
		if got := len(notes.events()); got != 3 {
			t.Errorf("notifications after the late retry = %d, want still 3", got)
		}
	})
}

func TestTwoPersonRule(t *testing.T) {
	type step struct {
		approver  string
		approve   bool
		wantErr   error
		wantState State
	}
	tests := []struct {
		name     string
		steps    []step
		wantKind OutcomeKind
	}{
		{
			name: "two distinct approvers",
			steps: []step{
				{"alice", true, nil, StatePending},
				{"alice", true, ErrDuplicateApprover, StatePending},
				{"bob", true, nil, StateApproved},
			},
			wantKind: OutcomeApproved,
		},
		{
			name:     "deny first",
			steps:    []step{{"bob", false, nil, StateDenied}, {"alice", true, ErrDecided, StateDenied}},
			wantKind: OutcomeDenied,
		},
		{
			name:     "deny after one approval",
			steps:    []step{{"alice", true, nil, StatePending}, {"bob", false, nil, StateDenied}},
			wantKind: OutcomeDenied,
		},
		{
			name:     "the first approver denies after all",
			steps:    []step{{"alice", true, nil, StatePending}, {"alice", false, nil, StateDenied}},
			wantKind: OutcomeDenied,
		},
		{
			name: "a deny after the approval is too late",
			steps: []step{
				{"alice", true, nil, StatePending},
				{"bob", true, nil, StateApproved},
				{"carol", false, ErrDecided, StateApproved},
			},
			wantKind: OutcomeApproved,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, _, notes := newTestBroker(t, Options{})
				rec := newRecord("s1", "fp1")
				rec.Required = 2
				held := startHold(t.Context(), b, rec, time.Hour)
				synctest.Wait()

				var outcome *holdResult
				for i, st := range tt.steps {
					_, err := b.Decide(t.Context(), rec.ID, Decision{Approve: st.approve, Approver: st.approver, Via: "cli"})
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: Decide(%s, approve=%v) error = %v, want %v", i, st.approver, st.approve, err, st.wantErr)
					}
					got, err := b.Get(t.Context(), rec.ID)
					if err != nil {
						t.Fatalf("Get() error = %v", err)
					}
					if got.State != st.wantState {
						t.Errorf("step %d: state = %v, want %v", i, got.State, st.wantState)
					}
					synctest.Wait()
					if outcome == nil {
						if r, ok := ready(held); ok {
							outcome = &r
						}
					}
					if released := outcome != nil; released != (st.wantState != StatePending) {
						t.Errorf("step %d: hold released = %v with the approval %v", i, released, st.wantState)
					}
				}
				if outcome == nil {
					t.Fatal("the hold was never released")
				}
				if outcome.err != nil || outcome.out.Kind != tt.wantKind {
					t.Errorf("Hold() = %v, %v; want %v", outcome.out.Kind, outcome.err, tt.wantKind)
				}
				if got := len(notes.events()); got != 2 {
					t.Errorf("notifications = %v, want requested and one decided", notes.events())
				}
			})
		})
	}
}

func TestDecideRaceApproveDeny(t *testing.T) {
	for i := range 20 {
		synctest.Test(t, func(t *testing.T) {
			b, _, _ := newTestBroker(t, Options{})
			rec := newRecord("s1", "fp1")
			held := startHold(t.Context(), b, rec, time.Hour)
			synctest.Wait()

			start := make(chan struct{})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for j, approve := range []bool{true, false} {
				wg.Go(func() {
					<-start
					_, errs[j] = b.Decide(t.Context(), rec.ID, Decision{Approve: approve, Approver: []string{"alice", "bob"}[j], Via: "cli"})
				})
			}
			close(start)
			wg.Wait()

			var wantKind OutcomeKind
			switch {
			case errs[0] == nil && errors.Is(errs[1], ErrDecided):
				wantKind = OutcomeApproved
			case errs[1] == nil && errors.Is(errs[0], ErrDecided):
				wantKind = OutcomeDenied
			default:
				t.Fatalf("iteration %d: Decide errors = %v, want exactly one nil and one ErrDecided", i, errs)
			}
			r := <-held
			if r.err != nil || r.out.Kind != wantKind {
				t.Errorf("iteration %d: Hold() = %v, %v; want %v (the decision that won)", i, r.out.Kind, r.err, wantKind)
			}
		})
	}
}

func TestConsumeGrantRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{})
		lateApproval(t, b, newRecord("s1", "fp1"), time.Second)

		const n = 50
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted, refused := 0, 0
		for range n {
			wg.Go(func() {
				<-start
				_, err := b.ConsumeGrant(t.Context(), "s1", "fp1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					granted++
				case errors.Is(err, ErrNotFound):
					refused++
				default:
					t.Errorf("ConsumeGrant() error = %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if granted != 1 || refused != n-1 {
			t.Errorf("%d concurrent ConsumeGrant calls: %d granted, %d refused; want 1 and %d", n, granted, refused, n-1)
		}
	})
}

func TestTwoWaitersOneApproval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{})
		first := newRecord("s1", "fp1")
		heldFirst := startHold(t.Context(), b, first, time.Hour)
		synctest.Wait()
		heldRetry := startHold(t.Context(), b, newRecord("s1", "fp1"), time.Hour)
		synctest.Wait()

		if _, err := b.Decide(t.Context(), first.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		r1, r2 := <-heldFirst, <-heldRetry
		got := []OutcomeKind{r1.out.Kind, r2.out.Kind}
		if diff := cmp.Diff([]OutcomeKind{OutcomeApproved, OutcomeSuperseded}, got); diff != "" {
			t.Errorf("outcomes of two held copies (-want +got):\n%s", diff)
		}
		if r2.out.Record.ID != first.ID || !r2.out.Joined {
			t.Errorf("superseded outcome: id %s joined %v; want %s joined", r2.out.Record.ID, r2.out.Joined, first.ID)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeGrant() error = %v, want ErrNotFound: the held copy used the approval", err)
		}
	})
}

func TestExpireNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const expire = 10 * time.Minute
		b, aud, _ := newTestBroker(t, Options{Expire: expire})
		rec := newRecord("s1", "fp1")
		held := startHold(t.Context(), b, rec, time.Hour)
		decided := newRecord("s2", "fp1")
		if _, err := b.Hold(t.Context(), decided, 0); err != nil {
			t.Fatalf("Hold() error = %v", err)
		}
		if _, err := b.Decide(t.Context(), decided.ID, Decision{Approver: "bob", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		synctest.Wait()

		time.Sleep(expire - time.Nanosecond)
		b.ExpireNow(t.Context())
		synctest.Wait()
		if _, ok := ready(held); ok {
			t.Fatal("ExpireNow() answered a hold before its approval expired")
		}

		time.Sleep(time.Nanosecond)
		b.ExpireNow(t.Context())
		r := <-held
		if r.err != nil || r.out.Kind != OutcomeExpired || r.out.Record.State != StateExpired {
			t.Fatalf("Hold() = %v %v, %v; want expired", r.out.Kind, r.out.Record, r.err)
		}
		events := aud.forApproval(rec.ID)
		if last := events[len(events)-1]; last.Decision != "expired" || !strings.HasPrefix(last.Detail, "expired") {
			t.Errorf("last audit event = %+v, want an expiry", last)
		}
		if diff := cmp.Diff([]string{"requested", "expired"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		if got, _ := b.Get(t.Context(), decided.ID); got.State != StateDenied {
			t.Errorf("a decided approval after ExpireNow: state %v, want still denied", got.State)
		}
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); !errors.Is(err, ErrExpired) {
			t.Errorf("Decide() on an expired approval: error = %v, want ErrExpired", err)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeGrant() after expiry: error = %v, want ErrNotFound", err)
		}

		// The expired approval can no longer be joined.
		out, err := b.Hold(t.Context(), newRecord("s1", "fp1"), 0)
		if err != nil || out.Joined || out.Record.ID == rec.ID {
			t.Errorf("Hold() after expiry = joined %v id %v, %v; want a new approval", out.Joined, out.Record, err)
		}
	})
}

// A decision that comes after the expiry, before the expiry loop ran, is
// refused with ErrExpired, and the expiry is audited and answered then.
func TestDecideAfterExpiryBeforeSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const expire = time.Hour
		clock := newFakeClock()
		b, aud, notes := newTestBroker(t, Options{Expire: expire, Now: clock.Now})
		rec := newRecord("s1", "fp1")
		held := startHold(t.Context(), b, rec, 2*time.Hour)
		synctest.Wait()

		clock.Advance(expire)
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); !errors.Is(err, ErrExpired) {
			t.Fatalf("Decide() at the expiry: error = %v, want ErrExpired", err)
		}
		r := <-held
		if r.err != nil || r.out.Kind != OutcomeExpired {
			t.Errorf("Hold() = %v, %v; want expired", r.out.Kind, r.err)
		}
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "bob", Via: "cli"}); !errors.Is(err, ErrExpired) {
			t.Errorf("second Decide(): error = %v, want ErrExpired", err)
		}
		b.ExpireNow(t.Context())
		if diff := cmp.Diff([]string{"requested", "expired"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		if got, _ := b.Get(t.Context(), rec.ID); got.State != StateExpired || len(got.Decisions) != 0 {
			t.Errorf("record = %v with %d decisions, want expired with none", got.State, len(got.Decisions))
		}
		// Expiry is announced like a decision, so Slack messages lose their
		// buttons.
		if diff := cmp.Diff([]string{"requested " + rec.ID, "decided " + rec.ID}, notes.events()); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
	})
}

func TestExpiryLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const expire = 10 * time.Minute
		b, aud, _ := newTestBroker(t, Options{Expire: expire})
		b.Start()
		start := time.Now()
		rec := newRecord("s1", "fp1")
		r := <-startHold(t.Context(), b, rec, time.Hour)
		if r.err != nil || r.out.Kind != OutcomeExpired {
			t.Fatalf("Hold() = %v, %v; want expired by the background loop", r.out.Kind, r.err)
		}
		if got := time.Since(start); got < expire || got > expire+time.Minute {
			t.Errorf("expired after %v, want within a minute of %v", got, expire)
		}
		if diff := cmp.Diff([]string{"requested", "expired"}, aud.details(rec.ID)); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		b.Close()
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{})
		var held []<-chan holdResult
		for _, rec := range []*Record{newRecord("s1", "fp1"), newRecord("s1", "fp1"), newRecord("s2", "fp1")} {
			held = append(held, startHold(t.Context(), b, rec, time.Hour))
			synctest.Wait()
		}
		b.Close()
		for i, ch := range held {
			r := <-ch
			if r.err != nil || r.out.Kind != OutcomeShutdown {
				t.Errorf("hold %d: Hold() = %v, %v; want shutdown", i, r.out.Kind, r.err)
			}
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters after Close = %d, want 0", got)
		}

		before, _ := b.List(t.Context(), false)
		out, err := b.Hold(t.Context(), newRecord("s3", "fp1"), time.Hour)
		if err != nil || out.Kind != OutcomeShutdown {
			t.Errorf("Hold() after Close = %v, %v; want shutdown", out.Kind, err)
		}
		after, _ := b.List(t.Context(), false)
		if len(after) != len(before) {
			t.Errorf("Hold() after Close created an approval: %d records, want %d", len(after), len(before))
		}
		b.Close() // a second Close is harmless
	})
}

func TestStartCloseNoLeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	tests := []struct {
		name string
		run  func(b *Broker)
	}{
		{name: "start then close", run: func(b *Broker) { b.Start(); b.Close() }},
		{name: "start twice", run: func(b *Broker) { b.Start(); b.Start(); b.Close() }},
		{name: "close without start", run: func(b *Broker) { b.Close() }},
		{name: "start after close", run: func(b *Broker) { b.Close(); b.Start(); b.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroker(Options{Store: NewMemoryStore(), Auditor: &fakeAuditor{}}, nil)
			if err != nil {
				t.Fatalf("NewBroker() error = %v", err)
			}
			tt.run(b)
			goleak.VerifyNone(t, opt)
		})
	}
}

// One session cannot take every slot: at its own limit the others still
// open approvals.
func TestMaxPendingPerSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{MaxPending: 4, MaxPendingPerSession: 2})
		for i := range 2 {
			if out, err := b.Hold(t.Context(), newRecord("greedy", "fp"+string(rune('a'+i))), 0); err != nil || out.Kind != OutcomePending {
				t.Fatalf("Hold() %d = %v, %v; want pending", i, out.Kind, err)
			}
		}
		if _, err := b.Hold(t.Context(), newRecord("greedy", "fp-over"), 0); !errors.Is(err, ErrTooManyPending) {
			t.Errorf("the session's third approval: %v, want ErrTooManyPending", err)
		}
		if out, err := b.Hold(t.Context(), newRecord("other", "fp-a"), 0); err != nil || out.Kind != OutcomePending {
			t.Errorf("another session's approval = %v, %v; want pending", out.Kind, err)
		}
		// The greedy session's retry still joins its pending approval.
		if out, err := b.Hold(t.Context(), newRecord("greedy", "fpa"), 0); err != nil || !out.Joined {
			t.Errorf("retry at the session's limit: joined=%v, %v", out.Joined, err)
		}
	})
}

// Two sessions at their own cap fill the global one; a third session can
// still open its floor's worth (found by review: it got only 503s).
func TestMinPendingPerSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{MaxPending: 4, MaxPendingPerSession: 2, MinPendingPerSession: 1})
		for _, s := range []string{"greedy-1", "greedy-2"} {
			for i := range 2 {
				if out, err := b.Hold(t.Context(), newRecord(s, "fp"+string(rune('a'+i))), 0); err != nil || out.Kind != OutcomePending {
					t.Fatalf("%s's approval %d = %v, %v; want pending", s, i, out.Kind, err)
				}
			}
		}
		if out, err := b.Hold(t.Context(), newRecord("innocent", "fp-a"), 0); err != nil || out.Kind != OutcomePending {
			t.Errorf("a third session's first approval = %v, %v; want pending (its floor)", out.Kind, err)
		}
		if _, err := b.Hold(t.Context(), newRecord("innocent", "fp-b"), 0); !errors.Is(err, ErrTooManyPending) {
			t.Errorf("the third session's second approval, past its floor with the proxy full: %v, want ErrTooManyPending", err)
		}
	})
}

func TestMaxPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		b, aud, notes := newTestBroker(t, Options{MaxPending: limit})
		var recs []*Record
		for i := range limit {
			rec := newRecord("s1", "fp"+string(rune('a'+i)))
			if out, err := b.Hold(t.Context(), rec, 0); err != nil || out.Kind != OutcomePending {
				t.Fatalf("Hold() %d = %v, %v; want pending", i, out.Kind, err)
			}
			recs = append(recs, rec)
		}

		over := newRecord("s1", "fp-over")
		if _, err := b.Hold(t.Context(), over, 0); !errors.Is(err, ErrTooManyPending) {
			t.Fatalf("Hold() number %d: error = %v, want ErrTooManyPending", limit+1, err)
		}
		if _, err := b.Get(t.Context(), over.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused approval was stored: Get() error = %v, want ErrNotFound", err)
		}
		if got := aud.forApproval(over.ID); len(got) != 0 {
			t.Errorf("refused approval was audited as requested: %+v", got)
		}
		if got := len(notes.events()); got != limit {
			t.Errorf("notifications = %d, want %d", got, limit)
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters = %d, want 0", got)
		}

		// A retry joins: it adds no pending approval.
		if out, err := b.Hold(t.Context(), newRecord("s1", recs[0].Fingerprint), 0); err != nil || !out.Joined {
			t.Errorf("retry at the limit: Hold() joined=%v, %v; want joined", out.Joined, err)
		}
		// A decided approval makes room.
		if _, err := b.Decide(t.Context(), recs[0].ID, Decision{Approver: "bob", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		if out, err := b.Hold(t.Context(), over, 0); err != nil || out.Kind != OutcomePending {
			t.Errorf("Hold() after a decision made room = %v, %v; want pending", out.Kind, err)
		}
	})
}

var errAuditDown = errors.New("audit log unavailable")

func TestHoldAuditFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		notes := &fakeNotifier{}
		b, _, _ := newTestBroker(t, Options{Auditor: failingAuditor{errAuditDown}, Notifiers: []Notifier{notes}})
		rec := newRecord("s1", "fp1")
		out, err := b.Hold(t.Context(), rec, time.Hour)
		if !errors.Is(err, errAuditDown) || !errors.Is(err, ErrAudit) {
			t.Fatalf("Hold() = %v, %v; want the audit error, as ErrAudit", out.Kind, err)
		}
		if out.Kind == OutcomeApproved {
			t.Error("Hold() with a failed audit said approved")
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters after a failed Hold = %d, want 0", got)
		}
		if recs, _ := b.List(t.Context(), false); len(recs) != 0 {
			t.Errorf("a failed Hold left %d approvals that a human could approve unaudited", len(recs))
		}
		if got := notes.events(); len(got) != 0 {
			t.Errorf("a failed Hold notified: %v", got)
		}
	})
}

func TestJoinAuditFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, aud, notes := newTestBroker(t, Options{})
		first := newRecord("s1", "fp1")
		heldFirst := startHold(t.Context(), b, first, time.Hour)
		synctest.Wait()

		aud.setFail(func(ev *audit.Event) error {
			if ev.Detail == "joined by a retry" {
				return errAuditDown
			}
			return nil
		})
		if _, err := b.Hold(t.Context(), newRecord("s1", "fp1"), time.Hour); !errors.Is(err, errAuditDown) {
			t.Fatalf("retry Hold() error = %v, want the audit error", err)
		}
		if got := waiterCount(b, first.ID); got != 1 {
			t.Errorf("waiters after a failed retry = %d, want only the first", got)
		}
		if _, err := b.Decide(t.Context(), first.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() error = %v", err)
		}
		if r := <-heldFirst; r.err != nil || r.out.Kind != OutcomeApproved {
			t.Errorf("first Hold() = %v, %v; want approved", r.out.Kind, r.err)
		}
		if got := len(notes.events()); got != 2 {
			t.Errorf("notifications = %v, want requested and decided", notes.events())
		}
	})
}

// A decision that cannot be audited is not recorded (SPEC 10.1): the store
// does not move, the held request stays held, and the approver gets an
// error; once the log works again the same decision goes through.
func TestDecideAuditFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aud := &fakeAuditor{}
		b, err := NewBroker(Options{Store: NewMemoryStore(), Auditor: aud}, nil)
		if err != nil {
			t.Fatalf("NewBroker() error = %v", err)
		}
		defer b.Close()
		rec := newRecord("s1", "fp1")
		held := startHold(t.Context(), b, rec, time.Hour)
		synctest.Wait()
		aud.setFail(func(*audit.Event) error { return errAuditDown })
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); !errors.Is(err, errAuditDown) {
			t.Fatalf("Decide() error = %v, want the audit failure", err)
		}
		if got, _ := b.Get(t.Context(), rec.ID); got.State != StatePending || len(got.Decisions) != 0 {
			t.Fatalf("record after a failed audit = %v with %d decisions, want pending with none", got.State, len(got.Decisions))
		}
		select {
		case r := <-held:
			t.Fatalf("held request released without an audited decision: %v", r.out.Kind)
		default:
		}
		aud.setFail(nil)
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
			t.Fatalf("Decide() after the log recovered: %v", err)
		}
		if r := <-held; r.err != nil || r.out.Kind != OutcomeApproved {
			t.Errorf("Hold() = %v, %v; want approved", r.out.Kind, r.err)
		}
	})
}

// failingStore fails the operations named in fail.
type failingStore struct {
	*MemoryStore
	fail map[string]bool
}

var errStoreDown = errors.New("store unavailable")

func (s failingStore) FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error) {
	if s.fail["FindPending"] {
		return nil, errStoreDown
	}
	return s.MemoryStore.FindPending(ctx, sessionID, fingerprint, now)
}

func (s failingStore) CountPending(ctx context.Context) (int, error) {
	if s.fail["CountPending"] {
		return 0, errStoreDown
	}
	return s.MemoryStore.CountPending(ctx)
}

func (s failingStore) CountPendingFor(ctx context.Context, sessionID string) (int, error) {
	if s.fail["CountPendingFor"] {
		return 0, errStoreDown
	}
	return s.MemoryStore.CountPendingFor(ctx, sessionID)
}

func (s failingStore) Create(ctx context.Context, r *Record, tokens ...Token) error {
	if s.fail["Create"] {
		return errStoreDown
	}
	return s.MemoryStore.Create(ctx, r, tokens...)
}

func (s failingStore) AddGrant(ctx context.Context, g Grant) error {
	if s.fail["AddGrant"] {
		return errStoreDown
	}
	return s.MemoryStore.AddGrant(ctx, g)
}

func TestHoldStoreFailure(t *testing.T) {
	for _, op := range []string{"FindPending", "CountPendingFor", "CountPending", "Create"} {
		t.Run(op, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := NewMemoryStore()
				// At its floor, so that the count of all is asked too.
				if err := mem.Create(t.Context(), &Record{ID: "ap-earlier", SessionID: "s1", Fingerprint: "fp0", State: StatePending, Created: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				b, _, notes := newTestBroker(t, Options{MinPendingPerSession: 1, Store: failingStore{mem, map[string]bool{op: true}}})
				if out, err := b.Hold(t.Context(), newRecord("s1", "fp1"), time.Hour); !errors.Is(err, errStoreDown) {
					t.Fatalf("Hold() = %v, %v; want the store error", out.Kind, err)
				}
				if got := totalWaiters(b); got != 0 {
					t.Errorf("waiters = %d, want 0", got)
				}
				if got := notes.events(); len(got) != 0 {
					t.Errorf("notifications = %v, want none", got)
				}
			})
		})
	}
}

func TestGrantStoreFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{Store: failingStore{NewMemoryStore(), map[string]bool{"AddGrant": true}}})
		rec := newRecord("s1", "fp1")
		if _, err := b.Hold(t.Context(), rec, 0); err != nil {
			t.Fatalf("Hold() error = %v", err)
		}
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); !errors.Is(err, errStoreDown) {
			t.Errorf("Decide() error = %v, want the store error so the approver hears the grant was lost", err)
		}
		if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeGrant() error = %v, want ErrNotFound", err)
		}
	})
}

// fakeClient is the client of an Open, Start and Wait caller.
type fakeClient struct {
	woke, left, sent chan struct{}
	once             sync.Once
	wakes            atomic.Int32
}

func newFakeClient() *fakeClient {
	return &fakeClient{woke: make(chan struct{}), left: make(chan struct{}), sent: make(chan struct{})}
}

func (c *fakeClient) watch() bool {
	select {
	case <-c.woke:
		return false
	case <-c.left:
		return true
	case <-c.sent:
		return false
	}
}

func (c *fakeClient) wake() {
	c.wakes.Add(1)
	c.once.Do(func() { close(c.woke) })
}

func TestOpenStartWait(t *testing.T) {
	tests := []struct {
		name string
		// act runs while the request is held; with beforeWatch, after Open
		// and before Start and Wait (the proxy waits on another goroutine).
		act         func(t *testing.T, b *Broker, rec *Record, c *fakeClient)
		beforeWatch bool
		want        OutcomeKind
		wantWake    bool
		// wantTook, when set, is how long the hold must last.
		wantTook time.Duration
	}{
		{
			name: "decided",
			act: func(t *testing.T, b *Broker, rec *Record, _ *fakeClient) {
				synctest.Wait()
				if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
					t.Fatal(err)
				}
			},
			want: OutcomeApproved, wantWake: true,
		},
		{
			name: "decided before the watch begins",
			act: func(t *testing.T, b *Broker, rec *Record, _ *fakeClient) {
				if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: false, Approver: "alice", Via: "cli"}); err != nil {
					t.Fatal(err)
				}
			},
			beforeWatch: true,
			want:        OutcomeDenied, wantWake: true,
		},
		{
			name: "shut down before the watch begins",
			act: func(_ *testing.T, b *Broker, _ *Record, _ *fakeClient) {
				b.Close()
			},
			beforeWatch: true,
			want:        OutcomeShutdown, wantWake: true,
		},
		{
			name: "client leaves",
			act: func(_ *testing.T, _ *Broker, _ *Record, c *fakeClient) {
				synctest.Wait()
				close(c.left)
			},
			want: OutcomeAbandoned,
		},
		{
			name: "hold runs out",
			act:  func(*testing.T, *Broker, *Record, *fakeClient) {},
			want: OutcomePending, wantWake: true, wantTook: time.Minute,
		},
		{
			// The watch ends without a wake; the hold goes on unwatched
			// and still ends when its time is up, not later.
			name: "client sends bytes",
			act: func(_ *testing.T, _ *Broker, _ *Record, c *fakeClient) {
				time.Sleep(10 * time.Second)
				close(c.sent)
			},
			want: OutcomePending, wantTook: time.Minute,
		},
		{
			name: "shutdown",
			act: func(_ *testing.T, b *Broker, _ *Record, _ *fakeClient) {
				synctest.Wait()
				b.Close()
			},
			want: OutcomeShutdown, wantWake: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, aud, _ := newTestBroker(t, Options{})
				rec, c := newRecord("s1", "fp1"), newFakeClient()
				began := time.Now()
				hd, err := b.Open(t.Context(), rec, c.wake)
				if err != nil {
					t.Fatalf("Open() error = %v", err)
				}
				if tt.beforeWatch {
					tt.act(t, b, rec, c)
				}
				held := make(chan Outcome, 1)
				go func() {
					hd.Start(t.Context(), time.Minute)
					held <- hd.Wait(t.Context(), c.watch)
				}()
				if !tt.beforeWatch {
					tt.act(t, b, rec, c)
				}
				if out := <-held; out.Kind != tt.want {
					t.Fatalf("Wait() = %v, want %v", out.Kind, tt.want)
				}
				if tt.wantWake && c.wakes.Load() == 0 {
					t.Error("the watch was not woken")
				}
				if took := time.Since(began); tt.wantTook != 0 && took != tt.wantTook {
					t.Errorf("the hold lasted %s, want %s", took, tt.wantTook)
				}
				if got := totalWaiters(b); got != 0 {
					t.Errorf("waiters after the hold = %d, want 0", got)
				}
				if tt.want == OutcomeAbandoned {
					if diff := cmp.Diff([]string{"requested", "abandoned"}, aud.details(rec.ID)); diff != "" {
						t.Errorf("audit (-want +got):\n%s", diff)
					}
				}
			})
		})
	}
}

// Between Start and Wait nothing need wait: a hold that runs out meanwhile
// calls wake, and Wait then answers at once without watching the client.
func TestWaitAfterTheHoldRanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _ := newTestBroker(t, Options{})
		rec := newRecord("s1", "fp1")
		woke := make(chan struct{}, 1)
		hd, err := b.Open(t.Context(), rec, func() {
			select {
			case woke <- struct{}{}:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		hd.Start(t.Context(), time.Minute)
		<-woke
		out := hd.Wait(t.Context(), func() bool {
			t.Error("Wait watched the client after the hold ran out")
			return false
		})
		if out.Kind != OutcomePending {
			t.Errorf("Wait() = %v, want %v", out.Kind, OutcomePending)
		}
		if got := totalWaiters(b); got != 0 {
			t.Errorf("waiters after the hold = %d, want 0", got)
		}
	})
}

// A grant admits a retry only if its approval gave as much as the policy
// asks now: a one-approver grant does not admit a retry the policy now sends
// to two people, or one another rule now holds; such a grant is used up.
func TestGrantCoversWhatThePolicyNowAsks(t *testing.T) {
	tests := []struct {
		name string
		asks Asks
		ok   bool
	}{
		{"as much", Asks{Required: 1, RuleIDs: []string{"R1"}}, true},
		{"no rule ids", Asks{Required: 1}, true},
		{"more approvers", Asks{Required: 2, RuleIDs: []string{"R1"}}, false},
		{"another rule", Asks{Required: 1, RuleIDs: []string{"R1", "R2"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, aud, _ := newTestBroker(t, Options{})
				rec := newRecord("s1", "fp1")
				rec.RuleIDs = []string{"R1"}
				if out, err := b.Hold(t.Context(), rec, time.Second); err != nil || out.Kind != OutcomePending {
					t.Fatalf("Hold() = %v, %v", out.Kind, err)
				}
				if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
					t.Fatal(err)
				}
				_, err := b.ConsumeGrant(t.Context(), "s1", "fp1", tt.asks)
				if ok := err == nil; ok != tt.ok {
					t.Errorf("ConsumeGrant(%+v) error = %v, want admitted %v", tt.asks, err, tt.ok)
				}
				if !tt.ok && !errors.Is(err, ErrNotFound) {
					t.Errorf("error = %v, want ErrNotFound", err)
				}
				if _, err := b.ConsumeGrant(t.Context(), "s1", "fp1"); !errors.Is(err, ErrNotFound) {
					t.Errorf("the grant was not used up: %v", err)
				}
				// A discarded grant is on record (found by review).
				var discarded bool
				for _, ev := range aud.forApproval(rec.ID) {
					discarded = discarded || strings.HasPrefix(ev.Detail, "grant discarded: ")
				}
				if discarded == tt.ok {
					t.Errorf("audit says the grant was discarded: %v, want %v", discarded, !tt.ok)
				}
			})
		})
	}
}

func TestRetryThatAsksMoreSupersedesThePendingApproval(t *testing.T) {
	tests := []struct {
		name       string
		required   int
		ruleIDs    []string
		supersedes bool
	}{
		{"as much", 1, []string{"R1"}, false},
		{"less", 1, nil, false},
		{"more approvers", 2, []string{"R1"}, true},
		{"another rule", 1, []string{"R1", "R2"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, aud, _ := newTestBroker(t, Options{})
				first := newRecord("s1", "fp1")
				first.RuleIDs = []string{"R1"}
				heldFirst := startHold(t.Context(), b, first, time.Minute)
				synctest.Wait()

				retry := newRecord("s1", "fp1")
				retry.Required, retry.RuleIDs = tt.required, tt.ruleIDs
				heldRetry := startHold(t.Context(), b, retry, time.Minute)
				synctest.Wait()

				if !tt.supersedes {
					if got := waiterCount(b, first.ID); got != 2 {
						t.Errorf("waiters on the first approval = %d, want 2 (the retry joined)", got)
					}
					return
				}
				r := <-heldFirst
				if r.err != nil || r.out.Kind != OutcomeDenied {
					t.Fatalf("first request: Hold() = %v, %v; want denied (superseded)", r.out.Kind, r.err)
				}
				if who, why := r.out.Record.DenyReason(); who != "countersign" || !strings.Contains(why, "superseded") {
					t.Errorf("first approval denied by %q: %q; want countersign, superseded", who, why)
				}
				pending, err := b.List(t.Context(), true)
				if err != nil {
					t.Fatal(err)
				}
				if len(pending) != 1 || pending[0].ID == first.ID || pending[0].Required != max(tt.required, 1) {
					t.Fatalf("pending approvals = %+v, want one new approval requiring %d", pending, tt.required)
				}
				if got := aud.forApproval(first.ID); len(got) != 2 || got[1].Decision != "denied" || got[1].Approver != "countersign" {
					t.Errorf("audit of the first approval = %+v, want requested then denied by countersign", got)
				}
				// One approver no longer admits the retry when two are asked.
				if _, err := b.Decide(t.Context(), pending[0].ID, Decision{Approve: true, Approver: "alice", Via: "cli"}); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				select {
				case r := <-heldRetry:
					if tt.required > 1 || r.out.Kind != OutcomeApproved {
						t.Errorf("retry after one approval: %v, %v", r.out.Kind, r.err)
					}
				default:
					if tt.required < 2 {
						t.Errorf("retry still held after the approval it needs")
					}
				}
			})
		})
	}
}

// Under the two-person rule a scoped grant admits later requests that would
// each have needed two people: it is made only when every approver asked
// for one, for the shortest time asked (found by review: the last
// approver's scope was made for both).
func TestScopedGrantNeedsEveryApprover(t *testing.T) {
	tests := []struct {
		name      string
		required  int
		scopes    []time.Duration // of each approver, in turn
		wantScope time.Duration
	}{
		{"one approver", 1, []time.Duration{30 * time.Minute}, 30 * time.Minute},
		{"only the last asks", 2, []time.Duration{0, 8 * time.Hour}, 0},
		{"only the first asks", 2, []time.Duration{8 * time.Hour, 0}, 0},
		{"both ask, the shorter counts", 2, []time.Duration{time.Hour, 8 * time.Hour}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, aud, _ := newTestBroker(t, Options{})
				rec := newRecord("s1", "fp1")
				rec.Required = tt.required
				rec.Operation, rec.Resources = "aws:s3:DeleteBucket", []string{"prod-logs"}
				startHold(t.Context(), b, rec, time.Hour)
				synctest.Wait()
				start := time.Now()
				for i, scope := range tt.scopes {
					if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "approver-" + strconv.Itoa(i), Via: "page", ScopeFor: scope}); err != nil {
						t.Fatalf("approval %d: %v", i, err)
					}
				}
				scopes, err := b.Scopes(t.Context(), true)
				if err != nil {
					t.Fatal(err)
				}
				if tt.wantScope == 0 {
					if len(scopes) != 0 {
						t.Fatalf("scoped grants = %+v, want none", scopes)
					}
					var said bool
					for _, ev := range aud.forApproval(rec.ID) {
						said = said || ev.Detail == "no scoped grant: not every approver asked for one"
					}
					if !said {
						t.Errorf("no audit record says why there is no scoped grant: %+v", aud.forApproval(rec.ID))
					}
					return
				}
				if len(scopes) != 1 || !scopes[0].Expires.Equal(start.Add(tt.wantScope)) {
					t.Fatalf("scoped grants = %+v, want one until %s", scopes, start.Add(tt.wantScope))
				}
			})
		})
	}
}

// racingStore applies another replica's decision just before the first
// Decide it is asked for, as a shared store can between a broker's dry run
// and its own step.
type racingStore struct {
	Store
	other Decision
	raced bool
}

func (s *racingStore) Decide(ctx context.Context, id string, d Decision, now time.Time) (*Record, error) {
	if !s.raced {
		s.raced = true
		if _, err := s.Store.Decide(ctx, id, s.other, now); err != nil {
			return nil, err
		}
	}
	return s.Store.Decide(ctx, id, d, now)
}

// When another replica's approval lands between the dry run that the audit
// record is written from and the store's step, a correction says what the
// decision really did (found by review: "1 of 2" for the approval that
// completed it).
func TestDecisionRecordCorrectedAfterARace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &racingStore{Store: NewMemoryStore(), other: Decision{Approve: true, Approver: "slack:U1", Via: "slack", At: time.Now()}}
		b, aud, _ := newTestBroker(t, Options{Store: store})
		rec := newRecord("s1", "fp1")
		rec.Required = 2
		held := startHold(t.Context(), b, rec, time.Hour)
		synctest.Wait()
		if _, err := b.Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		var details []string
		for _, ev := range aud.forApproval(rec.ID) {
			details = append(details, ev.Detail)
		}
		want := "correction: with a decision another replica made meanwhile, the decision by cli:bob made it 2 of 2 approvals, approved"
		if !slices.Contains(details, want) {
			t.Errorf("approval records = %q, want one saying %q", details, want)
		}
		if out := outcomeOf(t, held); out.Kind != OutcomeApproved {
			t.Errorf("outcome %v, want approved", out.Kind)
		}
	})
}
