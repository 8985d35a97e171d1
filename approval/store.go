package approval

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Store keeps approval records and grants. Implementations must make Decide
// and ConsumeGrant atomic: a record leaves pending exactly once, and a grant
// is consumed exactly once even under concurrent retries.
type Store interface {
	// Create adds a new pending record and its page tokens, if any, at
	// once (an approval is opened on the held request's path: one commit,
	// not one per row). It fails if the id exists.
	Create(ctx context.Context, r *Record, tokens ...Token) error
	// Get returns a copy of the record, or ErrNotFound.
	Get(ctx context.Context, id string) (*Record, error)
	// List returns copies of the records, newest first; pendingOnly limits
	// the list to pending records.
	List(ctx context.Context, pendingOnly bool) ([]*Record, error)
	// CountPending returns how many records are pending.
	CountPending(ctx context.Context) (int, error)
	// CountPendingFor returns how many records of one session are pending.
	CountPendingFor(ctx context.Context, sessionID string) (int, error)
	// FindPending returns the pending record for this session and
	// fingerprint, or ErrNotFound.
	FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error)
	// Decide applies one decision atomically and returns the updated record;
	// if the decision approves the record and sets GrantUntil, the grant is
	// stored in the same step.
	// It returns ErrDecided if the record is no longer pending, ErrExpired if
	// it expired, ErrDuplicateApprover for a second approval by one person.
	Decide(ctx context.Context, id string, d Decision, now time.Time) (*Record, error)
	// ExpirePending moves pending records whose expiry has passed to expired
	// and returns them.
	ExpirePending(ctx context.Context, now time.Time) ([]*Record, error)
	// AddGrant stores a one-time grant.
	AddGrant(ctx context.Context, g Grant) error
	// ConsumeGrant removes and returns an unexpired grant for this session and
	// fingerprint, or ErrNotFound.
	ConsumeGrant(ctx context.Context, sessionID, fingerprint string, now time.Time) (Grant, error)

	// AddToken stores a page token's hash.
	AddToken(ctx context.Context, t Token) error
	// CheckToken returns the token with this hash for approval id, or
	// ErrBadToken.
	CheckToken(ctx context.Context, id, hash string) (Token, error)
	// DecideWithToken is Decide, made with a page token: the token must
	// belong to the approval and be unused (ErrBadToken, ErrTokenUsed), and it
	// is consumed in the same atomic step as the decision.
	DecideWithToken(ctx context.Context, id, hash string, d Decision, now time.Time) (*Record, error)

	// AddScope stores a scoped grant.
	AddScope(ctx context.Context, s Scope) error
	// Scopes lists scoped grants, newest first; activeOnly leaves out expired
	// and revoked ones.
	Scopes(ctx context.Context, activeOnly bool, now time.Time) ([]Scope, error)
	// UseScope finds an active scope covering the request, counts the use and
	// returns it, or ErrNotFound.
	UseScope(ctx context.Context, q ScopeQuery, now time.Time) (Scope, error)
	// RevokeScope revokes one scoped grant, or returns ErrNotFound.
	RevokeScope(ctx context.Context, id, by string) (Scope, error)

	// AddNotice remembers where an approval was announced.
	AddNotice(ctx context.Context, n Notice) error
	// Notices returns where an approval was announced.
	Notices(ctx context.Context, id string) ([]Notice, error)
	// FirstSeen records key (a replay-protection key such as a Slack
	// callback's signature) until expires and reports whether it was new.
	FirstSeen(ctx context.Context, key string, expires, now time.Time) (bool, error)
}

// Shared is implemented by a Store that several brokers (serve replicas)
// use at once. A broker announces every approval it decides or expires, and
// listens for the others' announcements to answer the requests it holds.
type Shared interface {
	// Announce tells every broker on the store that approval id changed.
	Announce(ctx context.Context, id string) error
	// Listen calls changed with the id of each announced approval until ctx
	// ends. changed("") means announcements may have been missed (at the
	// start, after a reconnect): check every held request. failed reports
	// each lost connection; Listen reconnects by itself.
	Listen(ctx context.Context, changed func(id string), failed func(error))
	// Settled returns the records among ids that are no longer pending.
	Settled(ctx context.Context, ids []string) ([]*Record, error)
}

// MemoryStore is a Store held in memory: approvals are lost on restart.
// Records decided or expired more than MemoryRetention ago are forgotten,
// with their tokens and notices, so that a long session's memory does not
// grow with every approval it ever had.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]*Record
	grants  []Grant
	tokens  map[string]*Token // by hash
	scopes  []*Scope
	notices []Notice
	seen    map[string]time.Time
}

// MemoryRetention is how long a MemoryStore keeps a record after it was
// decided or expired: long enough to read its outcome on the approval page
// and in `countersign approvals`.
const MemoryRetention = time.Hour

// SettledRetention is how long the SQLite and PostgreSQL stores keep an
// approval after its expiry deadline once it is decided or expired (and no
// grant of it is left), with its page tokens and notices. Without a limit,
// an agent could grow the store without end by asking for approvals no one
// gives, and every list would read them all. The audit log keeps the
// history for good.
const SettledRetention = 7 * 24 * time.Hour

// Purger is a Store that drops settled approvals (see SettledRetention).
type Purger interface {
	// PurgeSettled drops at most limit approvals that are no longer
	// pending, whose deadline is before before and of which no grant is
	// left, with their page tokens and notices. It returns how many.
	PurgeSettled(ctx context.Context, before time.Time, limit int) (int, error)
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: map[string]*Record{}, tokens: map[string]*Token{}, seen: map[string]time.Time{}}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, r *Record, tokens ...Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[r.ID]; ok {
		return fmt.Errorf("approval %s exists", r.ID)
	}
	for _, t := range tokens {
		if t.ApprovalID != r.ID {
			return fmt.Errorf("token for %s given with approval %s", t.ApprovalID, r.ID)
		}
	}
	m.records[r.ID] = r.Clone()
	for _, t := range tokens {
		m.tokens[t.Hash] = &t
	}
	return nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	return r.Clone(), nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context, pendingOnly bool) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Record, 0, len(m.records))
	for _, r := range m.records {
		if pendingOnly && r.State != StatePending {
			continue
		}
		out = append(out, r.Clone())
	}
	slices.SortFunc(out, func(a, b *Record) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// CountPending implements Store.
func (m *MemoryStore) CountPending(_ context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.records {
		if r.State == StatePending {
			n++
		}
	}
	return n, nil
}

// CountPendingFor implements Store.
func (m *MemoryStore) CountPendingFor(_ context.Context, sessionID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.records {
		if r.State == StatePending && r.SessionID == sessionID {
			n++
		}
	}
	return n, nil
}

// FindPending implements Store.
func (m *MemoryStore) FindPending(_ context.Context, sessionID, fingerprint string, now time.Time) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.records {
		if r.State == StatePending && r.SessionID == sessionID && r.Fingerprint == fingerprint && now.Before(r.Expires) {
			return r.Clone(), nil
		}
	}
	return nil, ErrNotFound
}

// Decide implements Store.
func (m *MemoryStore) Decide(_ context.Context, id string, d Decision, now time.Time) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err := r.apply(d, now); err != nil {
		return r.Clone(), err
	}
	if g, ok := d.grant(r); ok {
		m.grants = append(m.grants, g)
	}
	return r.Clone(), nil
}

// ExpirePending implements Store.
func (m *MemoryStore) ExpirePending(_ context.Context, now time.Time) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Record
	for _, r := range m.records {
		if r.State == StatePending && !now.Before(r.Expires) {
			r.State = StateExpired
			out = append(out, r.Clone())
		}
	}
	m.grants = slices.DeleteFunc(m.grants, func(g Grant) bool { return !now.Before(g.Expires) })
	m.forgetLocked(now.Add(-MemoryRetention))
	return out, nil
}

// forgetLocked drops what was settled before cutoff: records decided or
// expired then (with their tokens and notices), scopes that ended then,
// and replay keys past their expiry.
func (m *MemoryStore) forgetLocked(cutoff time.Time) {
	gone := map[string]bool{}
	for id, r := range m.records {
		if r.State == StatePending {
			continue
		}
		settled := r.Expires
		if n := len(r.Decisions); n > 0 && r.State != StateExpired {
			settled = r.Decisions[n-1].At
		}
		if settled.Before(cutoff) {
			gone[id] = true
			delete(m.records, id)
		}
	}
	if len(gone) > 0 {
		for h, t := range m.tokens {
			if gone[t.ApprovalID] {
				delete(m.tokens, h)
			}
		}
		m.notices = slices.DeleteFunc(m.notices, func(n Notice) bool { return gone[n.ApprovalID] })
	}
	m.scopes = slices.DeleteFunc(m.scopes, func(sc *Scope) bool { return sc.Expires.Before(cutoff) })
	for k, exp := range m.seen {
		if exp.Before(cutoff) {
			delete(m.seen, k)
		}
	}
}

// AddGrant implements Store.
func (m *MemoryStore) AddGrant(_ context.Context, g Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants = append(m.grants, g)
	return nil
}

// ConsumeGrant implements Store.
func (m *MemoryStore) ConsumeGrant(_ context.Context, sessionID, fingerprint string, now time.Time) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, g := range m.grants {
		if g.SessionID == sessionID && g.Fingerprint == fingerprint && now.Before(g.Expires) {
			m.grants = slices.Delete(m.grants, i, i+1)
			return g, nil
		}
	}
	return Grant{}, ErrNotFound
}

// AddToken implements Store.
func (m *MemoryStore) AddToken(_ context.Context, t Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[t.ApprovalID]; !ok {
		return fmt.Errorf("%s: %w", t.ApprovalID, ErrNotFound)
	}
	m.tokens[t.Hash] = &t
	return nil
}

// CheckToken implements Store.
func (m *MemoryStore) CheckToken(_ context.Context, id, hash string) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok || t.ApprovalID != id {
		return Token{}, ErrBadToken
	}
	return *t, nil
}

// DecideWithToken implements Store.
func (m *MemoryStore) DecideWithToken(_ context.Context, id, hash string, d Decision, now time.Time) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok || t.ApprovalID != id {
		return nil, ErrBadToken
	}
	r, ok := m.records[id]
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if t.Used {
		return r.Clone(), ErrTokenUsed
	}
	if err := r.apply(d, now); err != nil {
		return r.Clone(), err
	}
	t.Used = true
	if g, ok := d.grant(r); ok {
		m.grants = append(m.grants, g)
	}
	return r.Clone(), nil
}

// AddScope implements Store.
func (m *MemoryStore) AddScope(_ context.Context, s Scope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Resources = slices.Clone(s.Resources)
	m.scopes = append(m.scopes, &s)
	return nil
}

// Scopes implements Store.
func (m *MemoryStore) Scopes(_ context.Context, activeOnly bool, now time.Time) ([]Scope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Scope
	for i := len(m.scopes) - 1; i >= 0; i-- {
		s := *m.scopes[i]
		if activeOnly && !s.Active(now) {
			continue
		}
		s.Resources = slices.Clone(s.Resources)
		out = append(out, s)
	}
	return out, nil
}

// UseScope implements Store.
func (m *MemoryStore) UseScope(_ context.Context, q ScopeQuery, now time.Time) (Scope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.scopes {
		if s.Active(now) && s.Covers(q) {
			s.Uses++
			return *s, nil
		}
	}
	return Scope{}, ErrNotFound
}

// RevokeScope implements Store.
func (m *MemoryStore) RevokeScope(_ context.Context, id, by string) (Scope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.scopes {
		if s.ID == id {
			s.Revoked, s.RevokedBy = true, by
			return *s, nil
		}
	}
	return Scope{}, fmt.Errorf("grant %s: %w", id, ErrNotFound)
}

// AddNotice implements Store.
func (m *MemoryStore) AddNotice(_ context.Context, n Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notices = append(m.notices, n)
	return nil
}

// Notices implements Store.
func (m *MemoryStore) Notices(_ context.Context, id string) ([]Notice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Notice
	for _, n := range m.notices {
		if n.ApprovalID == id {
			out = append(out, n)
		}
	}
	return out, nil
}

// FirstSeen implements Store.
func (m *MemoryStore) FirstSeen(_ context.Context, key string, expires, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, exp := range m.seen {
		if !now.Before(exp) {
			delete(m.seen, k)
		}
	}
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	m.seen[key] = expires
	return true, nil
}
