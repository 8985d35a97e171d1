package approval

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/testinfra"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testPG.Stop()
	if code == 0 {
		// goleak.VerifyTestMain, after the shared PostgreSQL server is gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testPG is the package's PostgreSQL server; each test gets a database of
// its own.
var testPG testinfra.LazyPostgres

// openPostgres opens a PostgresStore on a new database, closed when t ends.
func openPostgres(t testing.TB) (*PostgresStore, string) {
	t.Helper()
	dsn := testPG.Database(t)
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

// fakeAuditor records events. fail, when set, decides which events fail to
// be written; failed events are not recorded.
type fakeAuditor struct {
	mu     sync.Mutex
	events []audit.Event
	fail   func(ev *audit.Event) error
}

func (a *fakeAuditor) Record(ev *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		if err := a.fail(ev); err != nil {
			return err
		}
	}
	a.events = append(a.events, *ev)
	return nil
}

func (a *fakeAuditor) setFail(f func(ev *audit.Event) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = f
}

// forApproval returns the recorded events of one approval.
func (a *fakeAuditor) forApproval(id string) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, ev := range a.events {
		if ev.ApprovalID == id {
			out = append(out, ev)
		}
	}
	return out
}

// details returns the Detail of each recorded event of one approval, cut at
// the first ':' or '(' so that tests compare the stable head of the text.
func (a *fakeAuditor) details(id string) []string {
	var out []string
	for _, ev := range a.forApproval(id) {
		d := ev.Detail
		if i := strings.IndexAny(d, ":("); i >= 0 {
			d = strings.TrimSpace(d[:i])
		}
		out = append(out, d)
	}
	return out
}

// failingAuditor fails every write.
type failingAuditor struct{ err error }

func (a failingAuditor) Record(*audit.Event) error { return a.err }

// fakeNotifier records notifications.
type fakeNotifier struct {
	mu    sync.Mutex
	notes []Notification
}

func (n *fakeNotifier) Notify(_ context.Context, note Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, note)
}

// events returns "event id" for each notification, in order.
func (n *fakeNotifier) events() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, note := range n.notes {
		out = append(out, note.Event+" "+note.Record.ID)
	}
	return out
}

// fakeClock is an injected Now that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestBroker returns a Broker with a memory store, a recording auditor
// and notifier; opts fills in anything it does not set. The broker is closed
// when the test ends.
func newTestBroker(t *testing.T, opts Options) (*Broker, *fakeAuditor, *fakeNotifier) {
	t.Helper()
	aud := &fakeAuditor{}
	notes := &fakeNotifier{}
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.Auditor == nil {
		opts.Auditor = aud
	}
	if opts.Notifiers == nil {
		opts.Notifiers = []Notifier{notes}
	}
	b, err := NewBroker(opts, nil)
	if err != nil {
		t.Fatalf("NewBroker: %v", err)
	}
	t.Cleanup(b.Close)
	return b, aud, notes
}

var recordSeq struct {
	mu sync.Mutex
	n  int
}

// newRecord returns a record as the proxy builds it before Hold.
func newRecord(session, fingerprint string) *Record {
	recordSeq.mu.Lock()
	recordSeq.n++
	n := recordSeq.n
	recordSeq.mu.Unlock()
	return &Record{
		ID:          NewID(),
		SessionID:   session,
		SessionName: "agent-" + session,
		RequestID:   fmt.Sprintf("req-%d", n),
		Summary:     "aws s3 DeleteBucket prod-logs",
		Request:     Request{Method: "DELETE", URL: "https://s3.amazonaws.com/prod-logs", BodySHA256: "e3b0c442"},
		Fingerprint: fingerprint,
		Messages:    []string{"deleting a bucket needs approval"},
		RuleIDs:     []string{"aws.s3.delete_bucket"},
	}
}

type holdResult struct {
	out Outcome
	err error
}

// startHold runs Hold in a goroutine; the result arrives on the channel.
func startHold(ctx context.Context, b *Broker, rec *Record, hold time.Duration) <-chan holdResult {
	ch := make(chan holdResult, 1)
	go func() {
		out, err := b.Hold(ctx, rec, hold)
		ch <- holdResult{out, err}
	}()
	return ch
}

// ready reports whether a hold has returned, without waiting.
func ready(ch <-chan holdResult) (holdResult, bool) {
	select {
	case r := <-ch:
		return r, true
	default:
		return holdResult{}, false
	}
}

// waiterCount returns the number of requests held on approval id.
func waiterCount(b *Broker, id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters[id])
}

// totalWaiters returns the number of held requests on all approvals.
func totalWaiters(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, ws := range b.waiters {
		n += len(ws)
	}
	return n
}

// pendingWant is what base looks like once Hold stored it at created.
func pendingWant(base *Record, created time.Time, expire time.Duration) *Record {
	w := base.Clone()
	w.Created = created
	w.Expires = created.Add(expire)
	w.State = StatePending
	w.Required = max(w.Required, 1)
	return w
}

// ids returns the IDs of records, in order.
func ids(recs []*Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
