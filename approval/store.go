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
	// Create adds a new pending record. It fails if the id exists.
	Create(ctx context.Context, r *Record) error
	// Get returns a copy of the record, or ErrNotFound.
	Get(ctx context.Context, id string) (*Record, error)
	// List returns copies of the records, newest first; pendingOnly limits
	// the list to pending records.
	List(ctx context.Context, pendingOnly bool) ([]*Record, error)
	// FindPending returns the pending record for this session and
	// fingerprint, or ErrNotFound.
	FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error)
	// Decide applies one decision atomically and returns the updated record.
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
}

// MemoryStore is a Store held in memory: approvals are lost on restart.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]*Record
	grants  []Grant
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: map[string]*Record{}}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[r.ID]; ok {
		return fmt.Errorf("approval %s exists", r.ID)
	}
	m.records[r.ID] = r.Clone()
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
	return out, nil
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
