package approval

import (
	"encoding/json"
	"fmt"
	"time"
)

// What the SQL stores share, whichever driver reads the rows: decoding the
// JSON they keep records and scoped grants in, and the choices made on the
// rows a transaction locked.

// rows is what database/sql's *sql.Rows and pgx's Rows have in common.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// collect reads every row of rs with scan. The caller closes rs.
func collect[T any](rs rows, scan func(scan func(dest ...any) error) (T, error)) ([]T, error) {
	var out []T
	for rs.Next() {
		v, err := scan(rs.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// scanFunc is a row's Scan as a value with a Scan method.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

func decodeRecord(raw string) (*Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("decode approval record: %w", err)
	}
	return &r, nil
}

// scanScope reads a row holding one scoped grant's JSON.
func scanScope(scan func(dest ...any) error) (Scope, error) {
	var raw string
	if err := scan(&raw); err != nil {
		return Scope{}, err
	}
	var sc Scope
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		return Scope{}, fmt.Errorf("decode scoped grant: %w", err)
	}
	return sc, nil
}

// scanNotice reads a notices row.
func scanNotice(scan func(dest ...any) error) (Notice, error) {
	var n Notice
	err := scan(&n.ApprovalID, &n.Kind, &n.Channel, &n.Ref)
	return n, err
}

func activeScopes(all []Scope, now time.Time) []Scope {
	var out []Scope
	for _, sc := range all {
		if sc.Active(now) {
			out = append(out, sc)
		}
	}
	return out
}

// useScope picks, among one session's scoped grants for an operation, the
// first that is active and covers q, counts the use and returns it with
// its new JSON; ErrNotFound if none does.
func useScope(cands []Scope, q ScopeQuery, now time.Time) (Scope, string, error) {
	for _, sc := range cands {
		if sc.Active(now) && sc.Covers(q) {
			sc.Uses++
			raw, err := json.Marshal(sc)
			return sc, string(raw), err
		}
	}
	return Scope{}, "", ErrNotFound
}

// revokeScope marks the scoped grant id, the one row of cands, revoked by
// by and returns it with its new JSON.
func revokeScope(cands []Scope, id, by string) (Scope, string, error) {
	if len(cands) == 0 {
		return Scope{}, "", fmt.Errorf("grant %s: %w", id, ErrNotFound)
	}
	sc := cands[0]
	sc.Revoked, sc.RevokedBy = true, by
	raw, err := json.Marshal(sc)
	return sc, string(raw), err
}
