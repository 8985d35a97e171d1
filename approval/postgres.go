package approval

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore is the shared Store: several countersign serve replicas
// behind one approval URL keep their approvals in one PostgreSQL database.
// Every step that must happen once (a decision, consuming a grant or a page
// token, counting a scoped grant's use, a replay key) is one transaction
// that locks the rows it changes, so it happens once whichever replica
// takes it. At most one approval is pending per session and fingerprint
// (a unique index), so two replicas cannot open twins.
//
// Replicas tell each other about decided approvals with LISTEN/NOTIFY
// (Announce, Listen): a request held on one replica is answered when a
// human decides on another.
type PostgresStore struct {
	pool *pgxpool.Pool
	dsn  string
	// ping is how long the announcement listener waits in silence before
	// it checks that its connection still works, and pingTimeout how long
	// that check may take (listenPing, listenPingTimeout; tests shorten
	// them).
	ping, pingTimeout time.Duration
}

const (
	listenPing        = 30 * time.Second
	listenPingTimeout = 10 * time.Second
)

// pgChannel is the NOTIFY channel of decided approvals.
const pgChannel = "countersign_approvals"

// pgSchemaLock is the advisory lock that serialises schema creation when
// several replicas start at once (CREATE TABLE IF NOT EXISTS races).
const pgSchemaLock = 0x636f756e7465 // "counte"

const postgresSchema = `
CREATE TABLE IF NOT EXISTS approvals (
	id          TEXT PRIMARY KEY,
	session_id  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	state       INTEGER NOT NULL,
	created     BIGINT NOT NULL,
	expires     BIGINT NOT NULL,
	record      TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS approvals_one_pending ON approvals(session_id, fingerprint) WHERE state = 1;
CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals(state, expires);
CREATE TABLE IF NOT EXISTS grants (
	id          BIGSERIAL PRIMARY KEY,
	approval_id TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	expires     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS grants_by_request ON grants(session_id, fingerprint);
CREATE TABLE IF NOT EXISTS tokens (
	hash        TEXT PRIMARY KEY,
	approval_id TEXT NOT NULL REFERENCES approvals(id),
	label       TEXT NOT NULL,
	created     BIGINT NOT NULL,
	used        BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS scopes (
	id         TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	operation  TEXT NOT NULL,
	created    BIGINT NOT NULL,
	scope      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scopes_by_request ON scopes(session_id, operation);
CREATE TABLE IF NOT EXISTS notices (
	approval_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	channel     TEXT NOT NULL,
	ref         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_approval ON notices(approval_id);
CREATE INDEX IF NOT EXISTS tokens_by_approval ON tokens(approval_id);
CREATE INDEX IF NOT EXISTS grants_by_approval ON grants(approval_id);
CREATE TABLE IF NOT EXISTS seen (
	key     TEXT PRIMARY KEY,
	expires BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);
`

// OpenPostgres connects to the database at dsn (a postgres:// URL) and
// creates the schema if it is missing.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	where := redactDSN(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", where, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", where, err)
	}
	s := &PostgresStore{pool: pool, dsn: dsn, ping: listenPing, pingTimeout: listenPingTimeout}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSchemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, postgresSchema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("state %s: create schema (is the server reachable and the user allowed to create tables?): %w", where, err)
	}
	return s, nil
}

// redactDSN is dsn without its passwords (user info, and the password and
// sslpassword parameters libpq also reads), for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable postgres URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// PostgresAddrs returns the host:port of every server dsn names (libpq
// allows several), leaving out Unix sockets: the proxy refuses to forward
// to them, so that an agent cannot reach the approvals' database through it.
func PostgresAddrs(dsn string) []string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil
	}
	var out []string
	add := func(host string, port uint16) {
		if host != "" && !strings.HasPrefix(host, "/") {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(int(port))))
		}
	}
	add(cfg.Host, cfg.Port)
	for _, f := range cfg.Fallbacks {
		add(f.Host, f.Port)
	}
	return slices.Compact(out)
}

// PostgresVerified reports whether dsn asks for the database server's
// certificate and name to be verified (sslmode=verify-full), or reaches it
// only on this machine, where there is nothing between to verify.
func PostgresVerified(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	mode := u.Query().Get("sslmode")
	if mode == "" {
		mode = os.Getenv("PGSSLMODE")
	}
	if mode == "verify-full" {
		return true
	}
	for _, a := range PostgresAddrs(dsn) {
		host, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			return false
		}
	}
	return true
}

// Close closes the connection pool.
func (s *PostgresStore) Close() error {
	s.pool.Close()
	return nil
}

func (s *PostgresStore) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

func pgRecord(row pgx.Row) (*Record, error) {
	var raw string
	if err := row.Scan(&raw); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return decodeRecord(raw)
}

func pgRecords(rows pgx.Rows) ([]*Record, error) {
	defer rows.Close()
	return collect(rows, func(scan func(...any) error) (*Record, error) { return pgRecord(scanFunc(scan)) })
}

func pgUpdate(ctx context.Context, tx pgx.Tx, r *Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE approvals SET state = $1, record = $2 WHERE id = $3`, int(r.State), string(raw), r.ID)
	return err
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation
// on the named index or key.
func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// Create implements Store. It returns ErrPendingExists when another
// approval for the same session and fingerprint is pending (opened by
// another replica in the meantime).
func (s *PostgresStore) Create(ctx context.Context, r *Record, tokens ...Token) error {
	for _, t := range tokens {
		if t.ApprovalID != r.ID {
			return fmt.Errorf("create approval %s: token for %s", r.ID, t.ApprovalID)
		}
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO approvals (id, session_id, fingerprint, state, created, expires, record) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.ID, r.SessionID, r.Fingerprint, int(r.State), unixNano(r.Created), unixNano(r.Expires), string(raw)); err != nil {
			return err
		}
		for _, t := range tokens {
			if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, approval_id, label, created) VALUES ($1, $2, $3, $4)`,
				t.Hash, t.ApprovalID, t.Label, unixNano(t.Created)); err != nil {
				return fmt.Errorf("token: %w", err)
			}
		}
		return nil
	})
	if isUniqueViolation(err, "approvals_one_pending") {
		return fmt.Errorf("create approval %s: %w", r.ID, ErrPendingExists)
	}
	if err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	return nil
}

// Get implements Store.
func (s *PostgresStore) Get(ctx context.Context, id string) (*Record, error) {
	r, err := pgRecord(s.pool.QueryRow(ctx, `SELECT record FROM approvals WHERE id = $1`, id))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	return r, err
}

// List implements Store.
func (s *PostgresStore) List(ctx context.Context, pendingOnly bool) ([]*Record, error) {
	var rows pgx.Rows
	var err error
	if pendingOnly {
		rows, err = s.pool.Query(ctx, `SELECT record FROM approvals WHERE state = $1 ORDER BY created DESC`, int(StatePending))
	} else {
		rows, err = s.pool.Query(ctx, `SELECT record FROM approvals ORDER BY created DESC`)
	}
	if err != nil {
		return nil, err
	}
	return pgRecords(rows)
}

// CountPending implements Store.
func (s *PostgresStore) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM approvals WHERE state = $1`, int(StatePending)).Scan(&n)
	return n, err
}

// CountPendingFor implements Store.
func (s *PostgresStore) CountPendingFor(ctx context.Context, sessionID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM approvals WHERE state = $1 AND session_id = $2`, int(StatePending), sessionID).Scan(&n)
	return n, err
}

// FindPending implements Store.
func (s *PostgresStore) FindPending(ctx context.Context, sessionID, fingerprint string, now time.Time) (*Record, error) {
	return pgRecord(s.pool.QueryRow(ctx,
		`SELECT record FROM approvals WHERE state = $1 AND session_id = $2 AND fingerprint = $3 AND expires > $4 ORDER BY created LIMIT 1`,
		int(StatePending), sessionID, fingerprint, unixNano(now)))
}

// Decide implements Store.
func (s *PostgresStore) Decide(ctx context.Context, id string, d Decision, now time.Time) (*Record, error) {
	return s.decide(ctx, id, "", d, now)
}

// DecideWithToken implements Store.
func (s *PostgresStore) DecideWithToken(ctx context.Context, id, hash string, d Decision, now time.Time) (*Record, error) {
	return s.decide(ctx, id, hash, d, now)
}

func (s *PostgresStore) decide(ctx context.Context, id, tokenHash string, d Decision, now time.Time) (*Record, error) {
	var out *Record
	var applyErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The record's row lock orders concurrent decisions on it, from
		// this replica or another; the token's is taken after it, in the
		// same order everywhere.
		r, err := pgRecord(tx.QueryRow(ctx, `SELECT record FROM approvals WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, ErrNotFound) {
			if tokenHash != "" {
				return ErrBadToken
			}
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if tokenHash != "" {
			var owner string
			var used bool
			err := tx.QueryRow(ctx, `SELECT approval_id, used FROM tokens WHERE hash = $1 FOR UPDATE`, tokenHash).Scan(&owner, &used)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != id) {
				return ErrBadToken
			}
			if err != nil {
				return err
			}
			if used {
				out, applyErr = r, ErrTokenUsed
				return nil
			}
		}
		if err := r.apply(d, now); err != nil {
			out, applyErr = r, err
			return nil
		}
		if err := pgUpdate(ctx, tx, r); err != nil {
			return err
		}
		if tokenHash != "" {
			if _, err := tx.Exec(ctx, `UPDATE tokens SET used = true WHERE hash = $1`, tokenHash); err != nil {
				return err
			}
		}
		if g, ok := d.grant(r); ok {
			if _, err := tx.Exec(ctx, `INSERT INTO grants (approval_id, session_id, fingerprint, expires) VALUES ($1, $2, $3, $4)`,
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

// ExpirePending implements Store. Each expired record is returned to
// exactly one caller, whichever replica asks.
func (s *PostgresStore) ExpirePending(ctx context.Context, now time.Time) ([]*Record, error) {
	var out []*Record
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT record FROM approvals WHERE state = $1 AND expires <= $2 FOR UPDATE SKIP LOCKED`, int(StatePending), unixNano(now))
		if err != nil {
			return err
		}
		recs, err := pgRecords(rows)
		if err != nil {
			return err
		}
		for _, r := range recs {
			r.State = StateExpired
			if err := pgUpdate(ctx, tx, r); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM grants WHERE expires <= $1`, unixNano(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM seen WHERE expires <= $1`, unixNano(now)); err != nil {
			return err
		}
		out = recs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PurgeSettled implements Purger. Rows another replica is deciding or
// purging are skipped, not waited for.
func (s *PostgresStore) PurgeSettled(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH old AS (
			SELECT id FROM approvals a
			WHERE state <> $1 AND expires <= $2
			AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.approval_id = a.id)
			LIMIT $3
			FOR UPDATE SKIP LOCKED),
		t AS (DELETE FROM tokens WHERE approval_id IN (SELECT id FROM old)),
		n AS (DELETE FROM notices WHERE approval_id IN (SELECT id FROM old))
		DELETE FROM approvals WHERE id IN (SELECT id FROM old)`,
		int(StatePending), unixNano(before), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// AddGrant implements Store.
func (s *PostgresStore) AddGrant(ctx context.Context, g Grant) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO grants (approval_id, session_id, fingerprint, expires) VALUES ($1, $2, $3, $4)`,
		g.ApprovalID, g.SessionID, g.Fingerprint, unixNano(g.Expires))
	return err
}

// ConsumeGrant implements Store. Concurrent retries on any replicas: one
// of them gets the grant.
func (s *PostgresStore) ConsumeGrant(ctx context.Context, sessionID, fingerprint string, now time.Time) (Grant, error) {
	var g Grant
	var exp int64
	err := s.pool.QueryRow(ctx,
		`DELETE FROM grants WHERE id = (
			SELECT id FROM grants WHERE session_id = $1 AND fingerprint = $2 AND expires > $3
			ORDER BY expires LIMIT 1 FOR UPDATE SKIP LOCKED)
		 RETURNING approval_id, session_id, fingerprint, expires`,
		sessionID, fingerprint, unixNano(now)).Scan(&g.ApprovalID, &g.SessionID, &g.Fingerprint, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return Grant{}, ErrNotFound
	}
	if err != nil {
		return Grant{}, err
	}
	g.Expires = time.Unix(0, exp)
	return g, nil
}

// AddToken implements Store.
func (s *PostgresStore) AddToken(ctx context.Context, t Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (hash, approval_id, label, created) VALUES ($1, $2, $3, $4)`,
		t.Hash, t.ApprovalID, t.Label, unixNano(t.Created))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%s: %w", t.ApprovalID, ErrNotFound)
	}
	return err
}

func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// CheckToken implements Store.
func (s *PostgresStore) CheckToken(ctx context.Context, id, hash string) (Token, error) {
	var t Token
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT hash, approval_id, label, created, used FROM tokens WHERE hash = $1 AND approval_id = $2`, hash, id).
		Scan(&t.Hash, &t.ApprovalID, &t.Label, &created, &t.Used)
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, ErrBadToken
	}
	if err != nil {
		return Token{}, err
	}
	t.Created = time.Unix(0, created)
	return t, nil
}

// AddScope implements Store.
func (s *PostgresStore) AddScope(ctx context.Context, sc Scope) error {
	raw, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO scopes (id, session_id, operation, created, scope) VALUES ($1, $2, $3, $4, $5)`,
		sc.ID, sc.SessionID, sc.Operation, unixNano(sc.Created), string(raw))
	return err
}

func pgScopes(rows pgx.Rows) ([]Scope, error) {
	defer rows.Close()
	return collect(rows, scanScope)
}

// Scopes implements Store.
func (s *PostgresStore) Scopes(ctx context.Context, activeOnly bool, now time.Time) ([]Scope, error) {
	rows, err := s.pool.Query(ctx, `SELECT scope FROM scopes ORDER BY created DESC`)
	if err != nil {
		return nil, err
	}
	all, err := pgScopes(rows)
	if err != nil || !activeOnly {
		return all, err
	}
	return activeScopes(all, now), nil
}

// UseScope implements Store.
func (s *PostgresStore) UseScope(ctx context.Context, q ScopeQuery, now time.Time) (Scope, error) {
	var found Scope
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT scope FROM scopes WHERE session_id = $1 AND operation = $2 ORDER BY created DESC FOR UPDATE`, q.SessionID, q.Operation)
		if err != nil {
			return err
		}
		cands, err := pgScopes(rows)
		if err != nil {
			return err
		}
		sc, raw, err := useScope(cands, q, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE scopes SET scope = $1 WHERE id = $2`, raw, sc.ID); err != nil {
			return err
		}
		found = sc
		return nil
	})
	return found, err
}

// RevokeScope implements Store.
func (s *PostgresStore) RevokeScope(ctx context.Context, id, by string) (Scope, error) {
	var found Scope
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT scope FROM scopes WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		cands, err := pgScopes(rows)
		if err != nil {
			return err
		}
		sc, raw, err := revokeScope(cands, id, by)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE scopes SET scope = $1 WHERE id = $2`, raw, id); err != nil {
			return err
		}
		found = sc
		return nil
	})
	return found, err
}

// AddNotice implements Store.
func (s *PostgresStore) AddNotice(ctx context.Context, n Notice) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO notices (approval_id, kind, channel, ref) VALUES ($1, $2, $3, $4)`, n.ApprovalID, n.Kind, n.Channel, n.Ref)
	return err
}

// Notices implements Store.
func (s *PostgresStore) Notices(ctx context.Context, id string) ([]Notice, error) {
	rows, err := s.pool.Query(ctx, `SELECT approval_id, kind, channel, ref FROM notices WHERE approval_id = $1`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanNotice)
}

// FirstSeen implements Store. A key is new if it is absent or its earlier
// sighting has expired; one statement, so two replicas given the same key
// at once see it new once.
func (s *PostgresStore) FirstSeen(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx,
		`INSERT INTO seen (key, expires) VALUES ($1, $2)
		 ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires WHERE seen.expires <= $3`,
		key, unixNano(expires), unixNano(now))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Secret returns the 32-byte secret called name that every replica
// shares, creating it at random on first use. The approval page keys its
// form tokens with one, so that a form shown by one replica can be posted
// to another.
func (s *PostgresStore) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	if _, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, fmt.Errorf("shared secret %s: %w", name, err)
	}
	var v []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("shared secret %s: %w", name, err)
	}
	if len(v) < 32 {
		return nil, fmt.Errorf("shared secret %s in the state database is %d bytes, want 32: delete its row and restart", name, len(v))
	}
	return v, nil
}

// Settled implements Shared, in one query.
func (s *PostgresStore) Settled(ctx context.Context, ids []string) ([]*Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT record FROM approvals WHERE id = ANY($1) AND state <> $2`, ids, int(StatePending))
	if err != nil {
		return nil, err
	}
	return pgRecords(rows)
}

// Announce implements Shared: it tells every replica listening on this
// database that approval id has changed.
func (s *PostgresStore) Announce(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, pgChannel, id)
	return err
}

// Listen implements Shared. It holds one connection of its own (LISTEN
// needs a session) and reconnects after a failure, waiting at most 5s
// between attempts; after each (re)connect it calls changed("") since
// announcements may have been missed meanwhile.
func (s *PostgresStore) Listen(ctx context.Context, changed func(id string), failed func(error)) {
	const retryMin, retryMax = 100 * time.Millisecond, 5 * time.Second
	wait := retryMin
	for {
		start := time.Now()
		err := s.listenOnce(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		failed(fmt.Errorf("listen for approval changes on %s: %w", redactDSN(s.dsn), err))
		if time.Since(start) > retryMax {
			wait = retryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

func (s *PostgresStore) listenOnce(ctx context.Context, changed func(id string)) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgChannel); err != nil {
		return err
	}
	changed("")
	for {
		// A connection can die without a word (a NAT's timeout, a
		// failover): after a quiet while, ask the server.
		wctx, cancel := context.WithTimeout(ctx, s.ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			pctx, cancel := context.WithTimeout(ctx, s.pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if n.Payload != "" {
			changed(n.Payload)
		}
	}
}
