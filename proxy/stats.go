package proxy

import (
	"sync"
	"sync/atomic"
)

// Counts are one session's decisions, for the summary `run` prints on exit.
type Counts struct {
	Allowed  int64 `json:"allowed"`
	Denied   int64 `json:"denied"`
	Approved int64 `json:"approved"`
	// Pending counts requests whose hold ran out before anyone decided.
	Pending int64 `json:"pending"`
	// Shadowed counts requests forwarded in shadow mode that the policy
	// would have denied or held.
	Shadowed int64 `json:"shadowed"`
}

type counters struct {
	allowed, denied, approved, pending, shadowed atomic.Int64
}

type stats struct {
	mu       sync.Mutex
	sessions map[string]*counters
}

func (s *stats) of(sessionID string) *counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[string]*counters{}
	}
	c, ok := s.sessions[sessionID]
	if !ok {
		c = &counters{}
		s.sessions[sessionID] = c
	}
	return c
}

// Counts returns the decisions made for one session so far.
func (s *Server) Counts(sessionID string) Counts {
	c := s.stats.of(sessionID)
	return Counts{
		Allowed:  c.allowed.Load(),
		Denied:   c.denied.Load(),
		Approved: c.approved.Load(),
		Pending:  c.pending.Load(),
		Shadowed: c.shadowed.Load(),
	}
}
