package approval

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/redact"
)

// OutcomeKind is how a hold ended. The zero value is invalid and callers deny
// on it.
type OutcomeKind int

// How a hold ends.
const (
	OutcomeUnknown OutcomeKind = iota
	// OutcomeApproved: a human approved while the request was held; the
	// caller forwards the held request now.
	OutcomeApproved
	// OutcomeDenied: a human denied; Record carries the reason.
	OutcomeDenied
	// OutcomePending: the hold ran out; the approval stays pending and a later
	// approval becomes a one-time grant for an identical retry.
	OutcomePending
	// OutcomeAbandoned: the client went away while held.
	OutcomeAbandoned
	// OutcomeExpired: the approval expired before anyone decided.
	OutcomeExpired
	// OutcomeSuperseded: another held copy of the same request took the
	// approval; this one must not be forwarded as well.
	OutcomeSuperseded
	// OutcomeShutdown: countersign is shutting down.
	OutcomeShutdown
)

func (k OutcomeKind) String() string {
	switch k {
	case OutcomeApproved:
		return "approved"
	case OutcomeDenied:
		return "denied"
	case OutcomePending:
		return "pending"
	case OutcomeAbandoned:
		return "abandoned"
	case OutcomeExpired:
		return "expired"
	case OutcomeSuperseded:
		return "superseded"
	case OutcomeShutdown:
		return "shutdown"
	default:
		return "unknown"
	}
}

// Outcome is the result of Hold.
type Outcome struct {
	Kind   OutcomeKind
	Record *Record
	// Joined is true when the request joined an approval that was already
	// pending (a retry) instead of opening a new one.
	Joined bool
}

// Auditor records approval steps in the audit log.
type Auditor interface {
	Record(ev *audit.Event) error
}

// Notifier tells humans about approvals: the `run` terminal, Slack. Notify
// must return promptly; slow deliveries belong in the notifier's own
// goroutines with their own deadlines.
type Notifier interface {
	Notify(ctx context.Context, n Notification)
}

// Target is implemented by notifiers that can say where they announce an
// approval ("slack #prod-approvals", "terminal of session s-…"), for the
// audit record of the notification.
type Target interface {
	Target(r *Record) string
}

// Notification is one event worth telling approvers about.
type Notification struct {
	// Event is "requested" or "decided".
	Event  string
	Record *Record
	// Link is the approval page URL with a fresh single-use token, on
	// "requested" when the broker has a page; empty otherwise.
	Link string
}

// Options configures a Broker.
type Options struct {
	Store     Store
	Auditor   Auditor
	Notifiers []Notifier
	// Expire is how long a pending approval can still be decided (default 24h).
	Expire time.Duration
	// GrantTTL is how long a late approval admits one identical retry
	// (default 30m).
	GrantTTL time.Duration
	// MaxPending caps pending approvals (default 10000).
	MaxPending int
	// MaxPendingPerSession caps one session's pending approvals (default
	// MaxPending), so that on a shared proxy one agent cannot take every
	// slot and leave the other sessions nothing but 503s.
	MaxPendingPerSession int
	// MinPendingPerSession is how many pending approvals a session may
	// always open, whatever the others hold (default 100, at most
	// MaxPendingPerSession): with the caps alone, two sessions at their
	// own cap would leave every other session nothing but 503s for as
	// long as their approvals stay pending.
	MinPendingPerSession int
	// NotificationLinkIsOperators says that the link each new approval is
	// announced with reaches the operator, who also holds the admin token
	// (run prints it to its own terminal): a decision made through it is
	// the operator's, as one made with the CLI, and the two do not count as
	// two approvers.
	NotificationLinkIsOperators bool
	// Operator is the Slack user ID of whoever holds the admin token
	// (approval.operator). Their decisions through it then count as that
	// Slack user's under the two-person rule; without it they are
	// CLIIdentity's, which cannot make a pair with a Slack user's.
	Operator string
	// PageURL, when set, builds the approval page link for an approval id
	// and token; every new approval then gets a single-use page token.
	PageURL func(id, token string) string
	// MaxScope caps how long a scoped grant may last (default 8h).
	MaxScope time.Duration
	Now      func() time.Time
}

// operatorIdentity is the two-person-rule identity of a decision made with
// the admin token, or a link it minted.
func (o Options) operatorIdentity() string {
	if o.Operator != "" {
		return "slack:" + o.Operator
	}
	return CLIIdentity
}

// Broker holds requests while humans decide.
type Broker struct {
	opts   Options
	logger *zap.Logger

	mu      sync.Mutex
	waiters map[string][]*waiter
	closed  bool
	started bool

	// shared is the store when other replicas use it too.
	shared Shared
	// bg is the context of the broker's background work (expiry, the
	// other replicas' announcements); Close cancels it first, so that
	// none of it keeps b.mu waiting on a stuck store.
	bg       context.Context
	cancelBG context.CancelFunc

	stop chan struct{}
	done chan struct{}
}

type waiter struct {
	ch        chan Outcome // buffered 1; written once under Broker.mu
	settled   bool
	requestID string // the held request's own id (a joined retry has its own)
	// wake, when set, is called (under Broker.mu) once an outcome is in ch:
	// it interrupts a HoldWatching caller's watch.
	wake func()
}

// NewBroker returns a Broker. Call Start to expire old approvals in the
// background and Close to answer every held request and stop.
func NewBroker(opts Options, logger *zap.Logger) (*Broker, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Store == nil {
		return nil, errors.New("approval broker needs a store")
	}
	if opts.Auditor == nil {
		return nil, errors.New("approval broker needs an auditor")
	}
	if opts.Expire <= 0 {
		opts.Expire = 24 * time.Hour
	}
	if opts.GrantTTL <= 0 {
		opts.GrantTTL = 30 * time.Minute
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10000
	}
	if opts.MaxPendingPerSession <= 0 || opts.MaxPendingPerSession > opts.MaxPending {
		opts.MaxPendingPerSession = opts.MaxPending
	}
	if opts.MinPendingPerSession <= 0 {
		opts.MinPendingPerSession = 100
	}
	opts.MinPendingPerSession = min(opts.MinPendingPerSession, opts.MaxPendingPerSession)
	if opts.MaxScope <= 0 {
		opts.MaxScope = 8 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Broker{
		opts:    opts,
		logger:  logger.Named("approval"),
		waiters: map[string][]*waiter{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	b.shared, _ = opts.Store.(Shared)
	b.bg, b.cancelBG = context.WithCancel(context.Background())
	return b, nil
}

// AddNotifier adds a notifier. Call it before the broker is used: notifiers
// that need the broker themselves (Slack callbacks) are built after it.
func (b *Broker) AddNotifier(n Notifier) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts.Notifiers = append(b.opts.Notifiers, n)
}

// GrantTTL is how long a late approval admits a retry.
func (b *Broker) GrantTTL() time.Duration { return b.opts.GrantTTL }

// Expire is how long an approval stays open (approval.expire): no request
// needs holding longer, as nobody can decide it after that.
func (b *Broker) Expire() time.Duration { return b.opts.Expire }

// Start runs the expiry loop until Close.
func (b *Broker) Start() {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return
	}
	b.started = true
	b.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(b.bg, 30*time.Second)
				b.ExpireNow(ctx)
				b.purge(ctx)
				cancel()
			}
		}
	})
	if b.shared != nil {
		wg.Go(func() {
			b.shared.Listen(b.bg, func(id string) { b.changedElsewhere(b.bg, id) },
				func(err error) { b.logger.Warn("lost the shared store's announcements; reconnecting", zap.Error(err)) })
		})
	}
	go func() {
		wg.Wait()
		close(b.done)
	}()
}

// Close answers every held request with OutcomeShutdown and stops the expiry
// loop. It is safe to call once.
func (b *Broker) Close() {
	b.cancelBG()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	for id, ws := range b.waiters {
		for _, w := range ws {
			b.settle(w, Outcome{Kind: OutcomeShutdown})
		}
		delete(b.waiters, id)
	}
	started := b.started
	b.mu.Unlock()
	close(b.stop)
	if started {
		<-b.done
	}
}

// settle delivers an outcome to a waiter once. Caller holds b.mu.
func (b *Broker) settle(w *waiter, o Outcome) {
	if w.settled {
		return
	}
	w.settled = true
	w.ch <- o
	if w.wake != nil {
		w.wake()
	}
}

// ConsumeGrant admits a request whose identical twin was approved after its
// hold ran out. It returns the grant, or ErrNotFound. With asks, the
// approval the grant came from must have given as much as the policy asks
// now (see Asks); a grant that does not is used up, and ErrNotFound
// returned.
func (b *Broker) ConsumeGrant(ctx context.Context, sessionID, fingerprint string, asks ...Asks) (Grant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.opts.Store.ConsumeGrant(ctx, sessionID, fingerprint, b.opts.Now())
	if err != nil || len(asks) == 0 {
		return g, err
	}
	rec, err := b.opts.Store.Get(ctx, g.ApprovalID)
	if err != nil {
		return Grant{}, fmt.Errorf("the approval behind grant %s: %w", g.ApprovalID, err)
	}
	if !asks[0].coveredBy(rec.Required, rec.RuleIDs) {
		// The policy now asks more of this request than the approval
		// gave (more approvers, another rule): the grant is used up,
		// and the request needs an approval of its own.
		b.logger.Info("grant does not cover what the policy now asks; a new approval is needed",
			zap.String("approval", rec.ID), zap.Int("required", asks[0].Required), zap.Int("approved_by", rec.Required))
		// The log said "grant issued"; it says what became of it too
		// (found by review).
		_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: rec.ID, RequestID: rec.RequestID,
			Detail: fmt.Sprintf("grant discarded: the policy now asks more of this request (%d approvals, rules %s) than this approval gave (%d, rules %s); it needs a new approval",
				asks[0].Required, strings.Join(asks[0].RuleIDs, ", "), rec.Required, strings.Join(rec.RuleIDs, ", "))})
		return Grant{}, fmt.Errorf("grant %s: %w", rec.ID, ErrNotFound)
	}
	return g, nil
}

// Hold opens an approval for rec (or joins the pending one with the same
// session and fingerprint) and waits up to hold for a decision, until ctx is
// done (the client went away), or until Close.
func (b *Broker) Hold(ctx context.Context, rec *Record, hold time.Duration) (Outcome, error) {
	h, early, err := b.register(ctx, rec, nil)
	if err != nil || early != nil {
		return derefOutcome(early), err
	}
	return b.wait(ctx, h, hold), nil
}

// Open is the first step of a hold for a caller that watches its client
// itself, which saves the goroutine a held request would otherwise need for
// that: with thousands held, each costs a stack. Open opens the approval for
// rec (or joins the pending one) and returns the hold; Start then starts its
// time and Wait waits for its outcome. The steps may run on different
// goroutines, and between Start and Wait no goroutine need wait at all: the
// caller waits on its own terms (see proxy's held-connection sweeper) until
// wake or the client calls it back.
//
// The broker calls wake, from another goroutine, when the request is
// decided, its hold runs out or ctx is done, possibly before Wait begins or
// after it returns; wake must then do no harm.
func (b *Broker) Open(ctx context.Context, rec *Record, wake func()) (*Hold, error) {
	h, early, err := b.register(ctx, rec, wake)
	if err != nil {
		return nil, err
	}
	return &Hold{b: b, h: h, early: early, wake: wake}, nil
}

// Hold is a request held by Open.
type Hold struct {
	b     *Broker
	h     *held
	early *Outcome // the outcome known at Open (the broker was closed)
	wake  func()

	deadline time.Time
	expired  atomic.Bool
	timer    *time.Timer
	stop     func() bool // stops the ctx watch
}

// Start starts the hold's time: after hold, or when ctx is done, wake is
// called. Call it once, before Wait.
func (hd *Hold) Start(ctx context.Context, hold time.Duration) {
	if hd.early != nil {
		// The outcome is known (the broker was closed): a caller waiting
		// for wake, not in Wait, must hear it now.
		hd.wake()
		return
	}
	hd.deadline = hd.b.opts.Now().Add(hold)
	hd.timer = time.AfterFunc(hold, func() {
		hd.expired.Store(true)
		hd.wake()
	})
	hd.stop = context.AfterFunc(ctx, hd.wake)
}

// Wait returns the outcome: at once if the request was decided, its hold
// ran out or ctx is done; otherwise once watch returns. watch blocks until
// the client goes away (it returns true) or wake is called (false). A client
// that sends bytes while held is not gone: watch returns false and the hold
// goes on without watching until its time is up.
func (hd *Hold) Wait(ctx context.Context, watch func() bool) Outcome {
	if hd.early != nil {
		return *hd.early
	}
	b, h := hd.b, hd.h
	if hd.timer == nil {
		panic("approval: Hold.Wait before Start")
	}
	gone := false
	select {
	case o := <-h.w.ch:
		hd.timer.Stop()
		hd.stop()
		o.Joined = h.joined
		return o
	default:
		if !hd.expired.Load() && ctx.Err() == nil {
			gone = watch()
		}
	}
	hd.timer.Stop()
	hd.stop()
	select {
	case o := <-h.w.ch:
		o.Joined = h.joined
		return o
	default:
	}
	switch {
	case gone || ctx.Err() != nil:
		return b.abandon(h)
	case hd.expired.Load():
		return b.expire(h)
	}
	// The client sent more bytes: wait without watching.
	return b.wait(ctx, h, max(hd.deadline.Sub(b.opts.Now()), 0))
}

// held is a registered hold.
type held struct {
	w         *waiter
	rec       *Record
	joined    bool
	requestID string
}

func derefOutcome(o *Outcome) Outcome {
	if o == nil {
		return Outcome{}
	}
	return *o
}

// wait waits for the outcome of a registered hold.
func (b *Broker) wait(ctx context.Context, h *held, hold time.Duration) Outcome {
	timer := time.NewTimer(hold)
	defer timer.Stop()
	select {
	case o := <-h.w.ch:
		o.Joined = h.joined
		return o
	case <-timer.C:
		return b.expire(h)
	case <-ctx.Done():
		return b.abandon(h)
	}
}

// expire ends a hold whose time ran out.
func (b *Broker) expire(h *held) Outcome {
	if o, ok := b.release(h.rec.ID, h.w); ok {
		o.Joined = h.joined
		return o
	}
	return Outcome{Kind: OutcomePending, Record: h.rec, Joined: h.joined}
}

// abandon ends a hold whose client went away.
func (b *Broker) abandon(h *held) Outcome {
	if o, ok := b.release(h.rec.ID, h.w); ok {
		// Decided in the same instant the client left; report what
		// happened to the approval, not the disconnect.
		o.Joined = h.joined
		return o
	}
	_ = b.opts.Auditor.Record(&audit.Event{
		Type: "approval", ApprovalID: h.rec.ID, RequestID: h.requestID,
		Detail: "abandoned: the client disconnected while held; an approval still grants one retry",
	})
	return Outcome{Kind: OutcomeAbandoned, Record: h.rec, Joined: h.joined}
}

// register opens the approval of rec, or joins a pending one, audits and
// notifies, and registers a waiter for its outcome. early is set when there
// is nothing to wait for.
func (b *Broker) register(ctx context.Context, rec *Record, wake func()) (*held, *Outcome, error) {
	now := b.opts.Now()
	// A retry that joins carries its own request id; the audit records of
	// this hold name it, not the first request's.
	requestID := rec.RequestID
	w := &waiter{ch: make(chan Outcome, 1), wake: wake, requestID: requestID}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, &Outcome{Kind: OutcomeShutdown}, nil
	}
	// A shared store refuses a second pending approval for the same
	// request, which another replica may have opened since FindPending
	// looked: then join that one. Bounded: each retry first expires what
	// is past its time, the only other thing that can block the way.
	var joined bool
	var link string
	var err error
	for attempt := 1; ; attempt++ {
		var opened *Record
		opened, joined, link, err = b.openLocked(ctx, rec, requestID, now)
		if errors.Is(err, ErrPendingExists) && attempt < 3 {
			b.expireLocked(ctx, now)
			continue
		}
		if err != nil {
			b.mu.Unlock()
			return nil, nil, err
		}
		rec = opened
		break
	}
	b.waiters[rec.ID] = append(b.waiters[rec.ID], w)
	b.mu.Unlock()

	if !joined {
		var where []string
		for _, n := range b.opts.Notifiers {
			n.Notify(ctx, Notification{Event: "requested", Record: rec.Clone(), Link: link})
			if t, ok := n.(Target); ok {
				if s := t.Target(rec); s != "" {
					where = append(where, s)
				}
			}
		}
		if len(where) > 0 {
			_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: rec.ID, RequestID: requestID,
				Detail: "notified: " + strings.Join(where, "; ")})
		}
	}
	return &held{w: w, rec: rec, joined: joined, requestID: requestID}, nil, nil
}

// roomFor reports whether session may open another approval: always below
// MinPendingPerSession of its own, else within MaxPending in all and
// MaxPendingPerSession of its own. The floor is on top of MaxPending, so
// what the store can hold is bounded by MaxPending plus the floor for each
// session.
func (b *Broker) roomFor(ctx context.Context, session string) error {
	mine, err := b.opts.Store.CountPendingFor(ctx, session)
	if err != nil {
		return fmt.Errorf("count the session's pending approvals: %w", err)
	}
	if mine < b.opts.MinPendingPerSession {
		return nil
	}
	if mine >= b.opts.MaxPendingPerSession {
		return fmt.Errorf("%w: %d of this session's", ErrTooManyPending, mine)
	}
	pending, err := b.opts.Store.CountPending(ctx)
	if err != nil {
		return fmt.Errorf("count pending approvals: %w", err)
	}
	if pending >= b.opts.MaxPending {
		return ErrTooManyPending
	}
	return nil
}

// openLocked finds the pending approval of rec to join, or opens rec,
// audited. Caller holds b.mu.
func (b *Broker) openLocked(ctx context.Context, rec *Record, requestID string, now time.Time) (_ *Record, joined bool, link string, _ error) {
	existing, err := b.opts.Store.FindPending(ctx, rec.SessionID, rec.Fingerprint, now)
	if err == nil && !(Asks{Required: rec.Required, RuleIDs: rec.RuleIDs}).coveredBy(existing.Required, existing.RuleIDs) {
		// The policy now asks more of this request than the pending
		// approval does (more approvers, or a rule it was not opened
		// for): joining would let fewer humans admit it. Close the old
		// one and open a new one that asks as much.
		if err := b.supersedeLocked(ctx, existing, rec); err != nil {
			return nil, false, "", err
		}
		err = ErrNotFound
	}
	switch {
	case err == nil:
		rec, joined = existing, true
	case errors.Is(err, ErrNotFound):
		if err := b.roomFor(ctx, rec.SessionID); err != nil {
			return nil, false, "", err
		}
		rec.Created = now
		rec.Expires = now.Add(b.opts.Expire)
		rec.State = StatePending
		if rec.Required < 1 {
			rec.Required = 1
		}
	default:
		return nil, false, "", fmt.Errorf("find pending approval: %w", err)
	}

	// The request is audited before the record exists or the waiter is
	// registered, and under b.mu: if the audit log fails, nothing is left
	// behind that a human could approve without an audit trail, and no
	// decision can be delivered to a waiter that is about to fail.
	detail := "requested"
	if joined {
		detail = "joined by a retry"
	}
	if err := b.opts.Auditor.Record(&audit.Event{
		Type: "approval", ApprovalID: rec.ID, RequestID: requestID, Detail: detail,
		Reasons: rec.Messages, RuleIDs: rec.RuleIDs,
		Fields: map[string]any{"required": rec.Required, "expires": rec.Expires.UTC().Format(time.RFC3339)},
	}); err != nil {
		return nil, false, "", fmt.Errorf("audit approval request: %w: %w", ErrAudit, err)
	}
	if joined {
		return rec, true, "", nil
	}
	// The record and its link's token in one commit.
	var tokens []Token
	var token string
	if b.opts.PageURL != nil {
		var hash string
		token, hash = NewToken()
		tokens = append(tokens, Token{Hash: hash, ApprovalID: rec.ID, Label: "notification", Created: now})
	}
	if err := b.opts.Store.Create(ctx, rec, tokens...); err != nil {
		if errors.Is(err, ErrPendingExists) {
			// The "requested" record above names an approval that was
			// not opened: say so in the log.
			_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: rec.ID, RequestID: requestID,
				Detail: "not opened: another replica opened an approval for the same request at the same moment; this request tries to join it"})
			return nil, false, "", err
		}
		return nil, false, "", fmt.Errorf("create approval: %w", err)
	}
	if b.opts.PageURL != nil {
		link = b.opts.PageURL(rec.ID, token)
	}
	return rec, false, link, nil
}

// supersedeLocked denies pending approval old, in countersign's name,
// because a retry of its request now asks for more than old does. If a
// human decided old in the meantime, that decision stands. Caller holds
// b.mu.
func (b *Broker) supersedeLocked(ctx context.Context, old, retry *Record) error {
	asks := fmt.Sprintf("%d approval(s)", max(retry.Required, 1))
	if len(retry.RuleIDs) > 0 {
		asks += " for " + strings.Join(retry.RuleIDs, ", ")
	}
	d := Decision{
		Approver: "countersign", Identity: "countersign", Via: "policy", At: b.opts.Now(),
		Reason: "superseded: the current policy asks " + asks + " of this request, more than this approval was opened for; its retry opened a new approval",
	}
	_, err := b.decideLocked(ctx, old.ID, "", d)
	if err != nil && !errors.Is(err, ErrDecided) && !errors.Is(err, ErrExpired) {
		return fmt.Errorf("close approval %s, which asks less than the policy now does: %w", old.ID, err)
	}
	return nil
}

// release removes w from the waiters of id. If an outcome was delivered in
// the meantime it is returned.
func (b *Broker) release(id string, w *waiter) (Outcome, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.settled {
		return <-w.ch, true
	}
	w.settled = true
	ws := b.waiters[id]
	for i, x := range ws {
		if x == w {
			b.waiters[id] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(b.waiters[id]) == 0 {
		delete(b.waiters, id)
	}
	return Outcome{}, false
}

// Decide applies one approver's decision. When the approval is complete, the
// held request (if any) is released to be forwarded; if none is held any
// more, a one-time grant admits an identical retry within GrantTTL. An
// approval with d.ScopeFor also creates a scoped grant.
func (b *Broker) Decide(ctx context.Context, id string, d Decision) (*Record, error) {
	return b.decide(ctx, id, "", d)
}

// DecideWithToken is Decide made from the approval page: token must be an
// unused page token of this approval, and is consumed by the decision.
func (b *Broker) DecideWithToken(ctx context.Context, id, token string, d Decision) (*Record, error) {
	if token == "" {
		return nil, ErrBadToken
	}
	return b.decide(ctx, id, HashToken(token), d)
}

// CheckToken returns the approval a page token belongs to and whether the
// token was used. It changes nothing.
func (b *Broker) CheckToken(ctx context.Context, id, token string) (*Record, Token, error) {
	if token == "" {
		return nil, Token{}, ErrBadToken
	}
	t, err := b.opts.Store.CheckToken(ctx, id, HashToken(token))
	if err != nil {
		return nil, Token{}, err
	}
	rec, err := b.opts.Store.Get(ctx, id)
	if err != nil {
		return nil, Token{}, err
	}
	return rec, t, nil
}

// NewLink mints another single-use page link for an approval (for a second
// approver under the two-person rule). It needs Options.PageURL.
func (b *Broker) NewLink(ctx context.Context, id, label string) (string, error) {
	if b.opts.PageURL == nil {
		return "", errors.New("no approval page is configured")
	}
	rec, err := b.opts.Store.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if rec.State != StatePending {
		return "", fmt.Errorf("%s is %s: %w", id, rec.State, ErrDecided)
	}
	token, hash := NewToken()
	if err := b.opts.Store.AddToken(ctx, Token{Hash: hash, ApprovalID: id, Label: label, Created: b.opts.Now()}); err != nil {
		return "", err
	}
	return b.opts.PageURL(id, token), nil
}

func (b *Broker) decide(ctx context.Context, id, tokenHash string, d Decision) (*Record, error) {
	if d.Approver == "" {
		return nil, errors.New("a decision needs the approver's identity")
	}
	if d.ScopeFor < 0 || d.ScopeFor > b.opts.MaxScope {
		return nil, fmt.Errorf("%w: a scoped grant may last at most %s", ErrScopeTooLong, b.opts.MaxScope)
	}
	d.At = b.opts.Now()

	b.mu.Lock()
	defer b.mu.Unlock()
	return b.decideLocked(ctx, id, tokenHash, d)
}

// decideLocked records decision d (its time set) on approval id, audited,
// and answers the requests held for it. Caller holds b.mu.
func (b *Broker) decideLocked(ctx context.Context, id, tokenHash string, d Decision) (*Record, error) {
	// The decision is audited before the store records it (SPEC 10.1: an
	// audit failure denies). Decisions are serialised by b.mu, so a dry run
	// on the current record predicts what the store will do; if the dry run
	// refuses, the store is asked anyway for its authoritative error.
	audited := false
	var predicted *Record
	cur, gerr := b.opts.Store.Get(ctx, id)
	if gerr != nil && !errors.Is(gerr, ErrNotFound) {
		// Not knowing the record, the decision could not be audited
		// first: make none.
		return nil, fmt.Errorf("read approval %s: %w", id, gerr)
	}
	if gerr == nil {
		dry := cur.Clone()
		tokenOK := true
		if tokenHash != "" {
			t, terr := b.opts.Store.CheckToken(ctx, id, tokenHash)
			if terr != nil && !errors.Is(terr, ErrBadToken) {
				return nil, fmt.Errorf("check the approval link of %s: %w", id, terr)
			}
			tokenOK = terr == nil && !t.Used
		}
		if tokenOK && dry.apply(d, d.At) == nil {
			verb := "approved"
			if !d.Approve {
				verb = "denied"
			}
			ev := &audit.Event{
				Type: "approval", ApprovalID: id, RequestID: dry.RequestID, Approver: d.Approver, Via: d.Via,
				Decision: verb, Detail: fmt.Sprintf("%s by %s via %s (%d of %d approvals)", verb, d.Approver, d.Via, len(dry.Approvers()), dry.Required),
			}
			if d.Reason != "" {
				ev.Reasons = []string{d.Reason}
			}
			if err := b.opts.Auditor.Record(ev); err != nil {
				return nil, fmt.Errorf("the audit log cannot be written, so the decision was not recorded: %w", err)
			}
			audited, predicted = true, dry
		}
	}

	if b.shared != nil {
		// Replicas share the approval: its one admission is a grant stored
		// with the decision, taken by whichever request, held here or on
		// another replica, or retried later, gets to it first.
		d.GrantUntil = d.At.Add(b.opts.GrantTTL)
	}
	var rec *Record
	var err error
	if tokenHash != "" {
		rec, err = b.opts.Store.DecideWithToken(ctx, id, tokenHash, d, d.At)
	} else {
		rec, err = b.opts.Store.Decide(ctx, id, d, d.At)
	}
	if err != nil && audited {
		// The dry run predicted a decision the store then refused (another
		// replica decided first, or the store failed): the log must not
		// keep a decision that did not happen without saying so.
		_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: id, Approver: d.Approver, Via: d.Via,
			Detail: fmt.Sprintf("decision by %s not recorded: %v", d.Approver, err)})
	}
	if errors.Is(err, ErrExpired) {
		// Past its expiry but not yet swept: expire it now, audited, and
		// answer its held requests rather than leave them waiting.
		b.expireLocked(ctx, d.At)
	}
	if err != nil {
		return rec, err
	}
	if audited && (rec.State != predicted.State || len(rec.Approvers()) != len(predicted.Approvers())) {
		// Another replica decided between the dry run and the store's
		// step: the record above counted without it (found by review).
		_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: id, RequestID: rec.RequestID, Approver: d.Approver, Via: d.Via,
			Detail: fmt.Sprintf("correction: with a decision another replica made meanwhile, the decision by %s made it %d of %d approvals, %s", d.Approver, len(rec.Approvers()), max(rec.Required, 1), rec.State)})
	}
	// The decision is made: what follows (waking held requests, telling
	// the other replicas) must not end with the approver's connection.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()

	switch rec.State {
	case StateApproved:
		if scope := rec.AgreedScope(); d.Approve && scope > 0 {
			b.addScopeLocked(ctx, rec, d, scope)
		} else if d.Approve && slices.ContainsFunc(rec.Decisions, func(x Decision) bool { return x.Approve && x.ScopeFor > 0 }) {
			_ = b.opts.Auditor.Record(&audit.Event{
				Type: "approval", ApprovalID: id, RequestID: rec.RequestID, Approver: d.Approver, Via: d.Via,
				Detail: "no scoped grant: not every approver asked for one",
			})
		}
		ws := b.waiters[id]
		delete(b.waiters, id)
		if b.shared != nil {
			_ = b.opts.Auditor.Record(&audit.Event{
				Type: "approval", ApprovalID: id, RequestID: rec.RequestID,
				Detail: fmt.Sprintf("grant issued: one identical request from session %s is admitted until %s", rec.SessionID, d.GrantUntil.UTC().Format(time.RFC3339)),
			})
			b.admitLocked(ctx, rec, ws)
			break
		}
		if len(ws) == 0 {
			g := Grant{ApprovalID: id, SessionID: rec.SessionID, Fingerprint: rec.Fingerprint, Expires: d.At.Add(b.opts.GrantTTL)}
			if err := b.opts.Store.AddGrant(ctx, g); err != nil {
				return rec, fmt.Errorf("store grant for %s: %w", id, err)
			}
			_ = b.opts.Auditor.Record(&audit.Event{
				Type: "approval", ApprovalID: id, RequestID: rec.RequestID,
				Detail: fmt.Sprintf("grant issued: one identical retry from session %s is admitted until %s", rec.SessionID, g.Expires.UTC().Format(time.RFC3339)),
			})
		}
		for i, w := range ws {
			kind := OutcomeApproved
			if i > 0 {
				kind = OutcomeSuperseded
			}
			b.settle(w, Outcome{Kind: kind, Record: rec.Clone()})
		}
	case StateDenied:
		for _, w := range b.waiters[id] {
			b.settle(w, Outcome{Kind: OutcomeDenied, Record: rec.Clone()})
		}
		delete(b.waiters, id)
	}
	if rec.State != StatePending {
		for _, n := range b.opts.Notifiers {
			n.Notify(ctx, Notification{Event: "decided", Record: rec.Clone()})
		}
		// After the grant, if any: a replica holding the request takes it.
		b.announceLocked(ctx, id)
	}
	return rec, nil
}

// announceLocked tells the other replicas on a shared store that approval
// id is decided or expired. A failure is logged: their held requests then
// learn it when their hold runs out and the agent retries.
func (b *Broker) announceLocked(ctx context.Context, id string) {
	if b.shared == nil {
		return
	}
	if err := b.shared.Announce(ctx, id); err != nil {
		b.logger.Error("tell the other replicas of a decided approval", zap.String("approval", id), zap.Error(err))
	}
}

// admitLocked answers the requests held for approved rec when its store
// is shared: a request is admitted if it takes a grant for its session and
// fingerprint (the approval's own, issued with the decision); the others
// were beaten to it. Caller holds b.mu.
func (b *Broker) admitLocked(ctx context.Context, rec *Record, ws []*waiter) {
	for _, w := range ws {
		kind := OutcomeSuperseded
		g, err := b.opts.Store.ConsumeGrant(ctx, rec.SessionID, rec.Fingerprint, b.opts.Now())
		switch {
		case err == nil:
			kind = OutcomeApproved
			if aerr := b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: rec.ID, RequestID: w.requestID,
				Detail: fmt.Sprintf("grant of %s used by the held request %s", g.ApprovalID, w.requestID)}); aerr != nil {
				// Nothing is forwarded without its record (SPEC 10.1):
				// give the grant back for a retry.
				b.logger.Error("audit a held request's grant; it is not forwarded", zap.String("approval", rec.ID), zap.Error(aerr))
				if gerr := b.opts.Store.AddGrant(ctx, g); gerr != nil {
					b.logger.Error("give a grant back", zap.String("approval", rec.ID), zap.Error(gerr))
				}
				kind = OutcomePending
			}
		case !errors.Is(err, ErrNotFound):
			// The grant stays for a retry: tell the agent to retry.
			b.logger.Error("take the grant of an approved request", zap.String("approval", rec.ID), zap.Error(err))
			kind = OutcomePending
		}
		b.settle(w, Outcome{Kind: kind, Record: rec.Clone()})
	}
}

// changedElsewhere answers the requests held here for approval id, which
// another replica decided or expired (id "" checks every held request).
// An approval admits one request: a held one here takes the grant the
// deciding replica issued, if no other request took it first.
func (b *Broker) changedElsewhere(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []*Record
	if id == "" {
		// Every held request at once, in one query: with thousands held,
		// one read each would keep b.mu for long.
		var err error
		recs, err = b.shared.Settled(ctx, slices.Collect(maps.Keys(b.waiters)))
		if err != nil {
			b.logger.Error("read the approvals held here after a reconnect", zap.Error(err))
			return
		}
	} else if len(b.waiters[id]) > 0 {
		rec, err := b.opts.Store.Get(ctx, id)
		if err != nil {
			b.logger.Error("read an approval another replica changed", zap.String("approval", id), zap.Error(err))
			return
		}
		recs = []*Record{rec}
	}
	for _, rec := range recs {
		ws := b.waiters[rec.ID]
		if len(ws) == 0 {
			continue
		}
		switch rec.State {
		case StateApproved:
			delete(b.waiters, rec.ID)
			b.admitLocked(ctx, rec, ws)
		case StateDenied:
			delete(b.waiters, rec.ID)
			for _, w := range ws {
				b.settle(w, Outcome{Kind: OutcomeDenied, Record: rec.Clone()})
			}
		case StateExpired:
			delete(b.waiters, rec.ID)
			for _, w := range ws {
				b.settle(w, Outcome{Kind: OutcomeExpired, Record: rec.Clone()})
			}
		}
	}
}

// addScopeLocked turns a completed approval into a scoped grant lasting
// scope, made by decision d. Caller holds b.mu. A failure is logged: the
// approval itself stands.
func (b *Broker) addScopeLocked(ctx context.Context, rec *Record, d Decision, scope time.Duration) {
	if rec.Operation == "" {
		b.logger.Warn("approval has no operation to scope a grant to", zap.String("approval", rec.ID))
		return
	}
	sc := Scope{
		ID: NewScopeID(), ApprovalID: rec.ID, SessionID: rec.SessionID,
		Operation: rec.Operation, Resources: slices.Clone(rec.Resources), GrantedBy: rec.Approvers(),
		Required: rec.Required, RuleIDs: slices.Clone(rec.RuleIDs),
		Created: d.At, Expires: d.At.Add(scope),
	}
	if err := b.opts.Store.AddScope(ctx, sc); err != nil {
		b.logger.Error("store scoped grant", zap.String("approval", rec.ID), zap.Error(err))
		return
	}
	_ = b.opts.Auditor.Record(&audit.Event{
		Type: "approval", ApprovalID: rec.ID, Approver: d.Approver, Via: d.Via,
		Detail: fmt.Sprintf("scoped grant %s issued: %s on %s for session %s until %s", sc.ID, sc.Operation,
			resourceList(sc.Resources), sc.SessionID, sc.Expires.UTC().Format(time.RFC3339)),
		Fields: map[string]any{"grant_id": sc.ID},
	})
}

func resourceList(rs []string) string {
	if len(rs) == 0 {
		return "(no specific resource)"
	}
	// Records made before resources were masked in the store.
	return strings.Join(redact.Strings(rs), ", ")
}

// UseScope admits a request covered by an active scoped grant, counting the
// use; it returns ErrNotFound when none covers it.
func (b *Broker) UseScope(ctx context.Context, q ScopeQuery) (Scope, error) {
	return b.opts.Store.UseScope(ctx, q, b.opts.Now())
}

// Scopes lists scoped grants, newest first.
func (b *Broker) Scopes(ctx context.Context, activeOnly bool) ([]Scope, error) {
	return b.opts.Store.Scopes(ctx, activeOnly, b.opts.Now())
}

// RevokeScope revokes a scoped grant, audited.
func (b *Broker) RevokeScope(ctx context.Context, id, by string) (Scope, error) {
	sc, err := b.opts.Store.RevokeScope(ctx, id, by)
	if err != nil {
		return sc, err
	}
	_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: sc.ApprovalID, Approver: by,
		Detail: fmt.Sprintf("scoped grant %s revoked by %s", id, by), Fields: map[string]any{"grant_id": id}})
	return sc, nil
}

// Store returns the broker's store, for components that keep their own
// approval state in it (Slack message references, replay keys).
func (b *Broker) Store() Store { return b.opts.Store }

// purgeBatch bounds one step of purge: a store that grew before it was
// purged is emptied over several steps, none of them long.
const purgeBatch = 500

// purge drops settled approvals past SettledRetention from a store that
// keeps them (see Purger), in batches, until none is left or ctx ends. It
// runs off the broker's lock: nothing it removes is pending or waited for.
func (b *Broker) purge(ctx context.Context) {
	p, ok := b.opts.Store.(Purger)
	if !ok {
		return
	}
	before := b.opts.Now().Add(-SettledRetention)
	for ctx.Err() == nil {
		n, err := p.PurgeSettled(ctx, before, purgeBatch)
		if err != nil {
			b.logger.Warn("drop settled approvals", zap.Error(err))
			return
		}
		if n < purgeBatch {
			return
		}
	}
}

// ExpireNow expires pending approvals whose time is up and answers their held
// requests.
func (b *Broker) ExpireNow(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(ctx, b.opts.Now())
}

// expireLocked is ExpireNow with b.mu held.
func (b *Broker) expireLocked(ctx context.Context, now time.Time) {
	expired, err := b.opts.Store.ExpirePending(ctx, now)
	if err != nil {
		b.logger.Error("expire approvals", zap.Error(err))
		return
	}
	for _, rec := range expired {
		_ = b.opts.Auditor.Record(&audit.Event{Type: "approval", ApprovalID: rec.ID, RequestID: rec.RequestID, Decision: "expired", Detail: "expired: nobody decided in time"})
		for _, w := range b.waiters[rec.ID] {
			b.settle(w, Outcome{Kind: OutcomeExpired, Record: rec})
		}
		delete(b.waiters, rec.ID)
		// Notifiers return promptly (Slack queues), so this is safe under
		// b.mu; it takes the buttons off expired Slack messages.
		for _, n := range b.opts.Notifiers {
			n.Notify(ctx, Notification{Event: "decided", Record: rec.Clone()})
		}
		b.announceLocked(ctx, rec.ID)
	}
}

// Audit writes an approval-related record (a notifier's delivery, for
// example) to the audit log.
func (b *Broker) Audit(ev *audit.Event) error {
	return b.opts.Auditor.Record(ev)
}

// Get returns one approval.
func (b *Broker) Get(ctx context.Context, id string) (*Record, error) {
	return b.opts.Store.Get(ctx, id)
}

// List returns approvals, newest first.
func (b *Broker) List(ctx context.Context, pendingOnly bool) ([]*Record, error) {
	return b.opts.Store.List(ctx, pendingOnly)
}
