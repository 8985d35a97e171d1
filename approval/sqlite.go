package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	// The pure-Go SQLite driver: no cgo, so the binary stays static.
	_ "modernc.org/sqlite"
)

// SQLiteStore is the embedded durable Store: one SQLite file in state_dir.
// Pending approvals, grants, page tokens and scoped grants survive a
// restart. All access goes through one connection, so every method is a
// serialised, atomic step: a record leaves pending exactly once and a grant
// is consumed exactly once, whatever the concurrency.
type SQLiteStore struct {
	db *sql.DB
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS approvals (
	id          TEXT PRIMARY KEY,
	session_id  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	state       INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	expires     INTEGER NOT NULL,
	record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_by_request ON approvals(state, session_id, fingerprint);
CREATE INDEX IF NOT EXISTS approvals_by_expiry ON approvals(state, expires);
CREATE TABLE IF NOT EXISTS grants (
	approval_id TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	expires     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
	hash        TEXT PRIMARY KEY,
	approval_id TEXT NOT NULL,
	label       TEXT NOT NULL,
	created     INTEGER NOT NULL,
	used        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS scopes (
	id         TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	operation  TEXT NOT NULL,
	created    INTEGER NOT NULL,
	scope      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
	approval_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	channel     TEXT NOT NULL,
	ref         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_approval ON tokens(approval_id);
CREATE INDEX IF NOT EXISTS notices_by_approval ON notices(approval_id);
CREATE TABLE IF NOT EXISTS seen (
	key     TEXT PRIMARY KEY,
	expires INTEGER NOT NULL
);
`

// OpenSQLite opens (creating it 0600 if needed) the store at path.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("approval store %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("approval store %s: %w", path, err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("approval store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("approval store %s: create schema: %w", path, err)
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

func unixNano(t time.Time) int64 { return t.UnixNano() }

// inTx runs f in a transaction.
func (s *SQLiteStore) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func scanRecord(row interface{ Scan(...any) error }) (*Record, error) {
	var raw string
	if err := row.Scan(&raw); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return decodeRecord(raw)
}

// scanRecordRow reads a row holding one record's JSON.
func scanRecordRow(scan func(dest ...any) error) (*Record, error) { return scanRecord(scanFunc(scan)) }

func putRecord(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, r *Record, insert bool) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if insert {
		_, err = q.ExecContext(ctx, `INSERT INTO approvals (id, session_id, fingerprint, state, created, expires, record) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.SessionID, r.Fingerprint, int(r.State), unixNano(r.Created), unixNano(r.Expires), string(raw))
		return err
	}
	_, err = q.ExecContext(ctx, `UPDATE approvals SET state = ?, record = ? WHERE id = ?`, int(r.State), string(raw), r.ID)
	return err
}

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, r *Record, tokens ...Token) error {
	for _, t := range tokens {
		if t.ApprovalID != r.ID {
			return fmt.Errorf("create approval %s: token for %s", r.ID, t.ApprovalID)
		}
	}
	if len(tokens) == 0 {
		if err := putRecord(ctx, s.db, r, true); err != nil {
			return fmt.Errorf("create approval %s: %w", r.ID, err)
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if err := putRecord(ctx, tx, r, true); err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	for _, t := range tokens {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, approval_id, label, created, used) VALUES (?, ?, ?, ?, 0)`,
			t.Hash, t.ApprovalID, t.Label, unixNano(t.Created)); err != nil {
			return fmt.Errorf("create approval %s: token: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	return nil
}

// Get implements Store.
func (s *SQLiteStore) Get(ctx context.Context, id string) (*Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT record FROM approvals WHERE id = ?`, id))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	return r, err
}

// List implements Store.
func (s *SQLiteStore) List(ctx context.Context, pendingOnly bool) ([]*Record, error) {
	q := `SELECT record FROM approvals ORDER BY created DESC`
	var args []any
	if pendingOnly {
		q = `SELECT record FROM approvals WHERE state = ? ORDER BY created DESC`
		args = append(args, int(StatePending))
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanRecordRow)
}

// CountPending implements Store.
func (s *SQLiteStore) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE state = ?`, int(StatePending)).Scan(&n)
	return n, err
}

// CountPendingFor implements Store.
func (s *SQLiteStore) CountPendingFor(ctx context.Context, sessionID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE state = ? AND session_id = ?`, int(StatePending), sessionID).Scan(&n)
	return n, err
}

// FindPending implements Store.
func (s *SQLiteStore) FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error) {
	return scanRecord(s.db.QueryRowContext(ctx,
		`SELECT record FROM approvals WHERE state = ? AND session_id = ? AND fingerprint = ? AND expires > ? ORDER BY created LIMIT 1`,
		int(StatePending), sessionID, fingerprint, unixNano(now)))
}

// Decide implements Store.
func (s *SQLiteStore) Decide(ctx context.Context, id string, d Decision, now time.Time) (*Record, error) {
	return s.decide(ctx, id, "", d, now)
}

// DecideWithToken implements Store.
func (s *SQLiteStore) DecideWithToken(ctx context.Context, id, hash string, d Decision, now time.Time) (*Record, error) {
	return s.decide(ctx, id, hash, d, now)
}

func (s *SQLiteStore) decide(ctx context.Context, id, tokenHash string, d Decision, now time.Time) (*Record, error) {
	var out *Record
	var applyErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if tokenHash != "" {
			var owner string
			var used int
			err := tx.QueryRowContext(ctx, `SELECT approval_id, used FROM tokens WHERE hash = ?`, tokenHash).Scan(&owner, &used)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != id) {
				return ErrBadToken
			}
			if err != nil {
				return err
			}
			if used != 0 {
				r, err := scanRecord(tx.QueryRowContext(ctx, `SELECT record FROM approvals WHERE id = ?`, id))
				if err != nil {
					return err
				}
				out, applyErr = r, ErrTokenUsed
				return nil
			}
		}
		r, err := scanRecord(tx.QueryRowContext(ctx, `SELECT record FROM approvals WHERE id = ?`, id))
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := r.apply(d, now); err != nil {
			out, applyErr = r, err
			return nil
		}
		if err := putRecord(ctx, tx, r, false); err != nil {
			return err
		}
		if tokenHash != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET used = 1 WHERE hash = ?`, tokenHash); err != nil {
				return err
			}
		}
		if g, ok := d.grant(r); ok {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (approval_id, session_id, fingerprint, expires) VALUES (?, ?, ?, ?)`,
				g.ApprovalID, g.SessionID, g.Fingerprint, unixNano(g.Expires)); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, applyErr
}

// ExpirePending implements Store.
func (s *SQLiteStore) ExpirePending(ctx context.Context, now time.Time) ([]*Record, error) {
	var out []*Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT record FROM approvals WHERE state = ? AND expires <= ?`, int(StatePending), unixNano(now))
		if err != nil {
			return err
		}
		recs, err := collect(rows, scanRecordRow)
		rows.Close()
		if err != nil {
			return err
		}
		for _, r := range recs {
			r.State = StateExpired
			if err := putRecord(ctx, tx, r, false); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE expires <= ?`, unixNano(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM seen WHERE expires <= ?`, unixNano(now)); err != nil {
			return err
		}
		out = recs
		return nil
	})
	return out, err
}

// PurgeSettled implements Purger.
func (s *SQLiteStore) PurgeSettled(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT id FROM approvals WHERE state <> ? AND expires <= ? AND id NOT IN (SELECT approval_id FROM grants) LIMIT ?`,
			int(StatePending), unixNano(before), limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")"
		for _, table := range []string{"tokens", "notices"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE approval_id IN `+in, ids...); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM approvals WHERE id IN `+in, ids...); err != nil {
			return err
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// AddGrant implements Store.
func (s *SQLiteStore) AddGrant(ctx context.Context, g Grant) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO grants (approval_id, session_id, fingerprint, expires) VALUES (?, ?, ?, ?)`,
		g.ApprovalID, g.SessionID, g.Fingerprint, unixNano(g.Expires))
	return err
}

// ConsumeGrant implements Store.
func (s *SQLiteStore) ConsumeGrant(ctx context.Context, sessionID, fingerprint string, now time.Time) (Grant, error) {
	var g Grant
	var exp int64
	err := s.db.QueryRowContext(ctx,
		`DELETE FROM grants WHERE rowid = (SELECT rowid FROM grants WHERE session_id = ? AND fingerprint = ? AND expires > ? ORDER BY expires LIMIT 1)
		 RETURNING approval_id, session_id, fingerprint, expires`,
		sessionID, fingerprint, unixNano(now)).Scan(&g.ApprovalID, &g.SessionID, &g.Fingerprint, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, ErrNotFound
	}
	if err != nil {
		return Grant{}, err
	}
	g.Expires = time.Unix(0, exp)
	return g, nil
}

// AddToken implements Store.
func (s *SQLiteStore) AddToken(ctx context.Context, t Token) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE id = ?`, t.ApprovalID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", t.ApprovalID, ErrNotFound)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (hash, approval_id, label, created, used) VALUES (?, ?, ?, ?, 0)`,
		t.Hash, t.ApprovalID, t.Label, unixNano(t.Created))
	return err
}

// CheckToken implements Store.
func (s *SQLiteStore) CheckToken(ctx context.Context, id, hash string) (Token, error) {
	var t Token
	var created int64
	var used int
	err := s.db.QueryRowContext(ctx, `SELECT hash, approval_id, label, created, used FROM tokens WHERE hash = ? AND approval_id = ?`, hash, id).
		Scan(&t.Hash, &t.ApprovalID, &t.Label, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrBadToken
	}
	if err != nil {
		return Token{}, err
	}
	t.Created, t.Used = time.Unix(0, created), used != 0
	return t, nil
}

// AddScope implements Store.
func (s *SQLiteStore) AddScope(ctx context.Context, sc Scope) error {
	raw, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO scopes (id, session_id, operation, created, scope) VALUES (?, ?, ?, ?, ?)`,
		sc.ID, sc.SessionID, sc.Operation, unixNano(sc.Created), string(raw))
	return err
}

func (s *SQLiteStore) scopes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]Scope, error) {
	rows, err := q.QueryContext(ctx, `SELECT scope FROM scopes `+where+` ORDER BY created DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanScope)
}

// Scopes implements Store.
func (s *SQLiteStore) Scopes(ctx context.Context, activeOnly bool, now time.Time) ([]Scope, error) {
	all, err := s.scopes(ctx, s.db, "")
	if err != nil || !activeOnly {
		return all, err
	}
	return activeScopes(all, now), nil
}

// UseScope implements Store.
func (s *SQLiteStore) UseScope(ctx context.Context, q ScopeQuery, now time.Time) (Scope, error) {
	var found Scope
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cands, err := s.scopes(ctx, tx, `WHERE session_id = ? AND operation = ?`, q.SessionID, q.Operation)
		if err != nil {
			return err
		}
		sc, raw, err := useScope(cands, q, now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scopes SET scope = ? WHERE id = ?`, raw, sc.ID); err != nil {
			return err
		}
		found = sc
		return nil
	})
	return found, err
}

// RevokeScope implements Store.
func (s *SQLiteStore) RevokeScope(ctx context.Context, id, by string) (Scope, error) {
	var found Scope
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cands, err := s.scopes(ctx, tx, `WHERE id = ?`, id)
		if err != nil {
			return err
		}
		sc, raw, err := revokeScope(cands, id, by)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scopes SET scope = ? WHERE id = ?`, raw, id); err != nil {
			return err
		}
		found = sc
		return nil
	})
	return found, err
}

// AddNotice implements Store.
func (s *SQLiteStore) AddNotice(ctx context.Context, n Notice) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notices (approval_id, kind, channel, ref) VALUES (?, ?, ?, ?)`, n.ApprovalID, n.Kind, n.Channel, n.Ref)
	return err
}

// Notices implements Store.
func (s *SQLiteStore) Notices(ctx context.Context, id string) ([]Notice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT approval_id, kind, channel, ref FROM notices WHERE approval_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanNotice)
}

// FirstSeen implements Store.
func (s *SQLiteStore) FirstSeen(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	var first bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM seen WHERE expires <= ?`, unixNano(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO seen (key, expires) VALUES (?, ?)`, key, unixNano(expires))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	return first, err
}
