package approval

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/testinfra"
)

// Two replicas (two stores, two connection pools) on one database: what
// must happen once happens once.
func TestPostgresStoreAcrossReplicas(t *testing.T) {
	a, dsn := openPostgres(t)
	b, err := OpenPostgres(t.Context(), dsn) // the schema exists: opening again is fine
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	replicas := []*PostgresStore{a, b}

	// race runs f on both replicas at once, n times each, and returns the
	// errors.
	race := func(n int, f func(s *PostgresStore, i int) error) []error {
		var wg sync.WaitGroup
		errs := make([]error, 2*n)
		start := make(chan struct{})
		for i := range 2 * n {
			wg.Go(func() {
				<-start
				errs[i] = f(replicas[i%2], i)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	count := func(errs []error, target error) (ok, matched int) {
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, target):
				matched++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		return ok, matched
	}

	t.Run("one pending approval per request", func(t *testing.T) {
		errs := race(4, func(s *PostgresStore, i int) error {
			return s.Create(ctx, pendingRecord(fmt.Sprintf("ap-c%d", i), "s-c", "fp-c", 1))
		})
		if ok, dup := count(errs, ErrPendingExists); ok != 1 || dup != 7 {
			t.Errorf("8 concurrent creates of one request: %d opened, %d refused as pending; want 1 and 7", ok, dup)
		}
		// Once it is decided, the same request may open a new approval.
		rec, err := a.FindPending(ctx, "s-c", "fp-c", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Decide(ctx, rec.ID, Decision{Approve: false, Approver: "u:bob", Via: "cli", At: t0}, t0); err != nil {
			t.Fatal(err)
		}
		if err := a.Create(ctx, pendingRecord("ap-c-next", "s-c", "fp-c", 1)); err != nil {
			t.Errorf("a new approval after the first was decided: %v", err)
		}
	})

	t.Run("one decision", func(t *testing.T) {
		if err := a.Create(ctx, pendingRecord("ap-d", "s-d", "fp-d", 1)); err != nil {
			t.Fatal(err)
		}
		errs := race(4, func(s *PostgresStore, i int) error {
			_, err := s.Decide(ctx, "ap-d", Decision{Approve: i%3 != 0, Approver: fmt.Sprintf("u:%d", i), Via: "cli", At: t0}, t0)
			return err
		})
		if ok, decided := count(errs, ErrDecided); ok != 1 || decided != 7 {
			t.Errorf("8 concurrent decisions: %d took, %d refused as decided; want 1 and 7", ok, decided)
		}
	})

	t.Run("one use of a page token", func(t *testing.T) {
		rec := pendingRecord("ap-t", "s-t", "fp-t", 2)
		if err := a.Create(ctx, rec, Token{Hash: "h-t", ApprovalID: "ap-t", Created: t0}); err != nil {
			t.Fatal(err)
		}
		errs := race(3, func(s *PostgresStore, i int) error {
			_, err := s.DecideWithToken(ctx, "ap-t", "h-t", Decision{Approve: true, Approver: fmt.Sprintf("u:%d", i), Via: "page", At: t0}, t0)
			return err
		})
		if ok, used := count(errs, ErrTokenUsed); ok != 1 || used != 5 {
			t.Errorf("6 concurrent decisions with one token: %d took, %d refused as used; want 1 and 5", ok, used)
		}
	})

	t.Run("one consumer of a grant", func(t *testing.T) {
		for i := range 3 {
			if err := a.AddGrant(ctx, Grant{ApprovalID: fmt.Sprintf("ap-g%d", i), SessionID: "s-g", Fingerprint: "fp-g", Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		errs := race(5, func(s *PostgresStore, _ int) error {
			_, err := s.ConsumeGrant(ctx, "s-g", "fp-g", t0)
			return err
		})
		if ok, none := count(errs, ErrNotFound); ok != 3 || none != 7 {
			t.Errorf("10 concurrent retries for 3 grants: %d admitted, %d not; want 3 and 7", ok, none)
		}
	})

	t.Run("one sighting of a replay key", func(t *testing.T) {
		var mu sync.Mutex
		firsts := 0
		race(4, func(s *PostgresStore, _ int) error {
			first, err := s.FirstSeen(ctx, "sig-1", t0.Add(5*time.Minute), t0)
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
			return err
		})
		if firsts != 1 {
			t.Errorf("8 concurrent sightings of one key: %d first, want 1", firsts)
		}
		// Once expired, the key is new again.
		if first, err := b.FirstSeen(ctx, "sig-1", t0.Add(20*time.Minute), t0.Add(10*time.Minute)); err != nil || !first {
			t.Errorf("an expired key seen again = %v, %v; want new", first, err)
		}
	})

	t.Run("one expiry", func(t *testing.T) {
		for i := range 6 {
			r := pendingRecord(fmt.Sprintf("ap-e%d", i), "s-e", fmt.Sprintf("fp-e%d", i), 1)
			r.Expires = t0.Add(time.Minute)
			if err := a.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		race(3, func(s *PostgresStore, _ int) error {
			recs, err := s.ExpirePending(ctx, t0.Add(2*time.Minute))
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				if strings.HasPrefix(r.ID, "ap-e") {
					seen[r.ID]++
				}
			}
			return err
		})
		if len(seen) != 6 {
			t.Errorf("expired %d of 6 records", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s expired %d times", id, n)
			}
		}
	})
}

// A closed listener's connection and a bad URL fail with a message that
// names the server but not its password.
func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := OpenPostgres(ctx, "postgres://countersign:s3cret-pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("OpenPostgres on a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error = %q; want the server named and the password left out", err)
	}
}

// cluster is n started brokers (replicas) sharing one PostgreSQL
// database, the auditor of each, and the database's URL.
type cluster struct {
	brokers []*Broker
	auds    []*fakeAuditor
	dsn     string
}

// replicaSetup adjusts replica i's store and options before it starts.
type replicaSetup func(i int, s *PostgresStore, opts *Options)

func newCluster(t *testing.T, n int, setup replicaSetup) cluster {
	t.Helper()
	var c cluster
	_, c.dsn = openPostgres(t)
	for i := range n {
		s, err := OpenPostgres(t.Context(), c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		opts := Options{Store: s}
		if setup != nil {
			setup(i, s, &opts)
		}
		b, aud, _ := newTestBroker(t, opts)
		b.Start()
		c.brokers, c.auds = append(c.brokers, b), append(c.auds, aud)
	}
	return c
}

// replicas returns n started brokers sharing one PostgreSQL database, and
// the auditor of each.
func replicas(t *testing.T, n int) ([]*Broker, []*fakeAuditor) {
	t.Helper()
	c := newCluster(t, n, nil)
	return c.brokers, c.auds
}

// waitHeld waits, bounded, until b holds n requests.
func waitHeld(t *testing.T, b *Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for totalWaiters(b) != n {
		if time.Now().After(deadline) {
			t.Fatalf("broker holds %d requests after 10s, want %d", totalWaiters(b), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv waits, bounded, for a hold's result.
func recv(t *testing.T, ch <-chan holdResult) holdResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("hold: %v", r.err)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("a request held on one replica was not answered 20s after another replica decided it")
		return holdResult{}
	}
}

// Requests held on one replica are answered when a human decides on
// another; an approval still admits exactly one request.
func TestBrokersSharePostgres(t *testing.T) {
	t.Run("approved elsewhere", func(t *testing.T) {
		bs, auds := replicas(t, 2)
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		if _, err := bs[1].Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, ch); r.out.Kind != OutcomeApproved {
			t.Errorf("held request: %v, want approved", r.out.Kind)
		}
		// It took the one admission: no retry is admitted as well.
		if _, err := bs[1].ConsumeGrant(t.Context(), "s-1", "fp-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after the held request was approved, a retry found a grant: %v", err)
		}
		if d := auds[0].details(rec.ID); !containsPrefix(d, "grant of "+rec.ID+" used by the held request "+rec.RequestID) {
			t.Errorf("holding replica's audit = %q", d)
		}
	})

	t.Run("approved elsewhere, audit log down here", func(t *testing.T) {
		// Nothing is forwarded without its record: the held request is
		// told to retry and the grant is kept for that retry.
		bs, auds := replicas(t, 2)
		auds[0].setFail(func(ev *audit.Event) error {
			if strings.HasPrefix(ev.Detail, "grant of") {
				return errAuditDown
			}
			return nil
		})
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		if _, err := bs[1].Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, ch); r.out.Kind != OutcomePending {
			t.Errorf("held request with its grant's record refused: %v, want pending", r.out.Kind)
		}
		if _, err := bs[1].ConsumeGrant(t.Context(), "s-1", "fp-1"); err != nil {
			t.Errorf("the grant was not given back for the retry: %v", err)
		}
	})

	t.Run("denied elsewhere", func(t *testing.T) {
		bs, _ := replicas(t, 2)
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		if _, err := bs[1].Decide(t.Context(), rec.ID, Decision{Approve: false, Approver: "u:bob", Via: "page", Reason: "no"}); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, ch); r.out.Kind != OutcomeDenied || r.out.Record.Decisions[0].Reason != "no" {
			t.Errorf("held request: %v %+v, want denied with the reason", r.out.Kind, r.out.Record)
		}
	})

	t.Run("expired elsewhere", func(t *testing.T) {
		clock := newFakeClock()
		bs := newCluster(t, 2, func(_ int, _ *PostgresStore, o *Options) { o.Now, o.Expire = clock.Now, time.Hour }).brokers
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		clock.Advance(2 * time.Hour)
		bs[1].ExpireNow(t.Context())
		if r := recv(t, ch); r.out.Kind != OutcomeExpired {
			t.Errorf("held request: %v, want expired", r.out.Kind)
		}
	})

	t.Run("held on two replicas, approved on a third", func(t *testing.T) {
		bs, _ := replicas(t, 3)
		first := newRecord("s-1", "fp-1")
		ch0 := startHold(t.Context(), bs[0], first, time.Minute)
		waitHeld(t, bs[0], 1)
		ch1 := startHold(t.Context(), bs[1], newRecord("s-1", "fp-1"), time.Minute)
		waitHeld(t, bs[1], 1)
		if _, err := bs[2].Decide(t.Context(), first.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err != nil {
			t.Fatal(err)
		}
		kinds := map[OutcomeKind]int{}
		r0, r1 := recv(t, ch0), recv(t, ch1)
		kinds[r0.out.Kind]++
		kinds[r1.out.Kind]++
		if kinds[OutcomeApproved] != 1 || kinds[OutcomeSuperseded] != 1 {
			t.Errorf("outcomes %v and %v; want one approved and one superseded", r0.out.Kind, r1.out.Kind)
		}
		if !r1.out.Joined || r1.out.Record.ID != first.ID {
			t.Errorf("the second replica's request did not join the first's approval: joined=%v id=%s", r1.out.Joined, r1.out.Record.ID)
		}
	})

	t.Run("opened on two replicas at once", func(t *testing.T) {
		// Replica b looks for a pending twin a moment before replica a
		// opens one: b's own approval is refused by the database, and b
		// joins a's.
		var late *blindOnce
		c := newCluster(t, 2, func(i int, ps *PostgresStore, o *Options) {
			if i == 1 {
				late = &blindOnce{PostgresStore: ps}
				o.Store = late
			}
		})
		bs, auds := c.brokers, c.auds
		first := newRecord("s-1", "fp-1")
		ch0 := startHold(t.Context(), bs[0], first, time.Minute)
		waitHeld(t, bs[0], 1)
		late.blind.Store(true)
		second := newRecord("s-1", "fp-1")
		ch1 := startHold(t.Context(), bs[1], second, time.Minute)
		waitHeld(t, bs[1], 1)
		if n := waiterCount(bs[1], first.ID); n != 1 {
			t.Fatalf("replica b holds %d requests on a's approval %s, want 1", n, first.ID)
		}
		if d := auds[1].details(second.ID); !containsPrefix(d, "not opened") {
			t.Errorf("replica b's audit of the approval it could not open: %q", d)
		}
		if pending, err := bs[0].List(t.Context(), true); err != nil || len(pending) != 1 {
			t.Fatalf("pending approvals = %d (%v), want 1", len(pending), err)
		}
		if _, err := bs[0].Decide(t.Context(), first.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err != nil {
			t.Fatal(err)
		}
		kinds := map[OutcomeKind]int{}
		kinds[recv(t, ch0).out.Kind]++
		kinds[recv(t, ch1).out.Kind]++
		if kinds[OutcomeApproved] != 1 || kinds[OutcomeSuperseded] != 1 {
			t.Errorf("outcomes %v; want one approved and one superseded", kinds)
		}
	})

	t.Run("decided while the announcements were lost", func(t *testing.T) {
		// A decision whose announcement never arrived (the listener was
		// reconnecting) is found by the resync after the reconnect.
		bs, _ := replicas(t, 1)
		store := bs[0].opts.Store.(*PostgresStore)
		approved, denied, pending := newRecord("s-1", "fp-1"), newRecord("s-2", "fp-2"), newRecord("s-3", "fp-3")
		var chs []<-chan holdResult
		for i, rec := range []*Record{approved, denied, pending} {
			chs = append(chs, startHold(t.Context(), bs[0], rec, time.Minute))
			waitHeld(t, bs[0], i+1)
		}
		now := time.Now()
		if _, err := store.Decide(t.Context(), approved.ID, Decision{Approve: true, Approver: "u:bob", Via: "page", At: now, GrantUntil: now.Add(time.Hour)}, now); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Decide(t.Context(), denied.ID, Decision{Approve: false, Approver: "u:bob", Via: "page", At: now}, now); err != nil {
			t.Fatal(err)
		}
		settled, err := store.Settled(t.Context(), []string{approved.ID, denied.ID, pending.ID, "ap-unknown"})
		if err != nil || len(settled) != 2 {
			t.Fatalf("Settled = %d records, %v; want the approved and the denied one", len(settled), err)
		}
		bs[0].changedElsewhere(t.Context(), "")
		if r := recv(t, chs[0]); r.out.Kind != OutcomeApproved {
			t.Errorf("approved while unannounced: %v", r.out.Kind)
		}
		if r := recv(t, chs[1]); r.out.Kind != OutcomeDenied {
			t.Errorf("denied while unannounced: %v", r.out.Kind)
		}
		if _, ok := ready(chs[2]); ok || totalWaiters(bs[0]) != 1 {
			t.Errorf("the pending request was answered by the resync (held: %d)", totalWaiters(bs[0]))
		}
	})

	t.Run("the listener's connection is cut", func(t *testing.T) {
		// The server ends the listener's session (a failover, an admin):
		// the broker reconnects and still answers its held request.
		c := newCluster(t, 2, nil)
		bs := c.brokers
		admin, err := pgx.Connect(t.Context(), c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		listeners := func() []int32 {
			rows, err := admin.Query(t.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
			if err != nil {
				t.Fatal(err)
			}
			pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				t.Fatal(err)
			}
			return pids
		}
		waitListeners := func(n int, not []int32) []int32 {
			deadline := time.Now().Add(20 * time.Second)
			for {
				pids := slices.DeleteFunc(listeners(), func(p int32) bool { return slices.Contains(not, p) })
				if len(pids) == n {
					return pids
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d new listener sessions after 20s, want %d", len(pids), n)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		old := waitListeners(2, nil)
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		for _, pid := range old {
			if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := bs[1].Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, ch); r.out.Kind != OutcomeApproved {
			t.Errorf("held request after its replica's listener was cut: %v", r.out.Kind)
		}
		waitListeners(2, old) // both brokers listen again, on new sessions
	})

	t.Run("a store failure before a decision", func(t *testing.T) {
		// Not knowing the record, the broker cannot audit the decision
		// first, so it makes none.
		bs, auds := replicas(t, 1)
		rec := newRecord("s-1", "fp-1")
		ch := startHold(t.Context(), bs[0], rec, time.Minute)
		waitHeld(t, bs[0], 1)
		bs[0].opts.Store.(*PostgresStore).pool.Close()
		if _, err := bs[0].Decide(t.Context(), rec.ID, Decision{Approve: true, Approver: "u:bob", Via: "page"}); err == nil {
			t.Fatal("a decision with the store down succeeded")
		}
		for _, d := range auds[0].details(rec.ID) {
			if strings.Contains(d, "approved by") {
				t.Errorf("an approval that was not made is in the audit log: %q", d)
			}
		}
		if _, ok := ready(ch); ok {
			t.Error("the held request was answered by a decision that was not made")
		}
	})
}

// blindOnce is a replica's store whose next FindPending misses the pending
// twin, as if another replica opened it just after the look.
type blindOnce struct {
	*PostgresStore
	blind atomic.Bool
}

func (s *blindOnce) FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error) {
	if s.blind.CompareAndSwap(true, false) {
		return nil, ErrNotFound
	}
	return s.PostgresStore.FindPending(ctx, sessionID, fingerprint, now)
}

func containsPrefix(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestPostgresDSNHelpers(t *testing.T) {
	for _, tt := range []struct {
		dsn      string
		addrs    []string
		verified bool
		redacted string
	}{
		{
			dsn:   "postgres://cs:pw1@db.internal:5433/countersign?sslmode=verify-full",
			addrs: []string{"db.internal:5433"}, verified: true,
			redacted: "postgres://cs:xxxxx@db.internal:5433/countersign?sslmode=verify-full",
		},
		{
			dsn:   "postgres://cs@db.internal/countersign?sslmode=require&password=pw2",
			addrs: []string{"db.internal:5432"}, verified: false,
			redacted: "postgres://cs@db.internal/countersign?password=xxxxx&sslmode=require",
		},
		{
			dsn:   "postgresql://cs:pw3@127.0.0.1:5432/countersign",
			addrs: []string{"127.0.0.1:5432"}, verified: true,
			redacted: "postgresql://cs:xxxxx@127.0.0.1:5432/countersign",
		},
		{
			dsn:   "postgres://cs:pw4@db1.internal:5432,db2.internal:5433/countersign?sslmode=disable",
			addrs: []string{"db1.internal:5432", "db2.internal:5433"}, verified: false,
		},
	} {
		if got := PostgresAddrs(tt.dsn); !slices.Equal(got, tt.addrs) {
			t.Errorf("PostgresAddrs(%s) = %q, want %q", tt.dsn, got, tt.addrs)
		}
		if got := PostgresVerified(tt.dsn); got != tt.verified {
			t.Errorf("PostgresVerified(%s) = %v, want %v", tt.dsn, got, tt.verified)
		}
		if tt.redacted != "" {
			if got := redactDSN(tt.dsn); got != tt.redacted {
				t.Errorf("redactDSN(%s) = %s, want %s", tt.dsn, got, tt.redacted)
			}
		}
	}
}

// The announcement listener checks a quiet connection (listenPing): a
// connection that answers is kept, and one that went silent is replaced,
// after which the listener resyncs and hears announcements again.
func TestPostgresListenerReplacesASilentConnection(t *testing.T) {
	a, dsn := openPostgres(t)
	b, err := OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := testinfra.StartRelay(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	u.Host = fwd.Addr()
	a.dsn = u.String() // only the listener goes through the relay
	a.ping, a.pingTimeout = 100*time.Millisecond, 500*time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan string, 16)
	failed := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Listen(ctx, func(id string) { changed <- id }, func(err error) { failed <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	want := func(id string) {
		t.Helper()
		select {
		case got := <-changed:
			if got != id {
				t.Fatalf("listener reported %q, want %q", got, id)
			}
		case err := <-failed:
			t.Fatalf("listener failed waiting for %q: %v", id, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("listener did not report %q", id)
		}
	}
	// waitPing waits until the listener has sent something more (a ping:
	// nothing else goes over its connection once it listens).
	waitPing := func() {
		t.Helper()
		sent := fwd.Sent()
		for deadline := time.Now().Add(15 * time.Second); fwd.Sent() == sent; {
			if time.Now().After(deadline) {
				t.Fatal("the listener sent no ping on its quiet connection")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	want("") // connected: resync
	waitPing()
	waitPing()
	if err := b.Announce(t.Context(), "ap-after-quiet"); err != nil {
		t.Fatal(err)
	}
	want("ap-after-quiet") // the pinged connection was kept and still hears

	fwd.Stall()
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "ping") {
			t.Errorf("listener failure %v, want a failed ping", err)
		}
		if pw, ok := u.User.Password(); ok && strings.Contains(err.Error(), pw) {
			t.Errorf("listener failure names the password: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("listener did not notice its connection went silent")
	}
	want("") // reconnected: resync, since announcements may have been missed
	if err := b.Announce(t.Context(), "ap-after-reconnect"); err != nil {
		t.Fatal(err)
	}
	want("ap-after-reconnect")
}
