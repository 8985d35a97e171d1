package countersign.incidents_test

# SQL sent to a production Neon endpoint over HTTP (the Replit agent used
# the wire protocol, which the proxy cannot see; this is the HTTP route
# the incident asks agents to be given instead).

neon(query) := http(
	"POST", "ep-prod-123456.us-east-2.aws.neon.tech", "/sql",
	{"content-type": ["application/json"], "neon-connection-string": ["postgresql://app:[redacted]@ep-prod-123456.us-east-2.aws.neon.tech/neondb"]},
	{"query": query, "params": []},
)

test_incident_03_drop_during_freeze_denied if {
	ids(data.countersign.deny) == {"INC-03-1"} with input as neon("DROP TABLE executives") with data.countersign.freeze as true
}

test_incident_03_unqualified_delete_during_freeze_denied if {
	ids(data.countersign.deny) == {"INC-03-1"} with input as neon("delete from companies") with data.countersign.freeze as true
}

test_incident_03_comment_does_not_hide_ddl if {
	ids(data.countersign.deny) == {"INC-03-1"} with input as neon("/* routine cleanup */ -- safe\n TRUNCATE executives") with data.countersign.freeze as true
}

test_incident_03_transaction_batch_during_freeze_denied if {
	inp := object.union(neon("select 1"), {"request": {"body": {"queries": [{"query": "select 1"}, {"query": "drop table companies"}]}}})
	ids(data.countersign.deny) == {"INC-03-1"} with input as inp with data.countersign.freeze as true
}

# A freeze stops every change, not only the ones that destroy (found by
# review).
test_incident_03_any_change_during_freeze_denied if {
	every q in [
		"delete from companies where id = 7",
		"WITH d AS (DELETE FROM executives RETURNING 1) SELECT count(*) FROM d",
		"EXPLAIN ANALYZE DELETE FROM executives",
		"DO $$ BEGIN EXECUTE 'DROP TABLE executives'; END $$",
		"UPDATE executives SET email=NULL",
	] {
		ids(data.countersign.deny) == {"INC-03-1"} with input as neon(q) with data.countersign.freeze as true
	}
	ids(data.countersign.deny) == set() with input as neon("select * from companies") with data.countersign.freeze as true
}

# Comment markers inside literals, and quotes inside comments, hide no
# statement, as PostgreSQL or MySQL would read them (found by review).
test_incident_03_literals_and_comments_hide_nothing if {
	every q in [
		"-- /*\nDROP TABLE executives; -- */",
		"SELECT '--'; DROP TABLE executives",
		"SELECT $$--$$; DROP TABLE executives",
		"SELECT $tag$ ' $tag$; DROP TABLE executives",
		"SELECT '/*'; DROP TABLE executives; SELECT '*/'",
		"SELECT 1 --1; DROP TABLE executives",
		"SELECT name'a\\'; DROP TABLE executives; --'",
		"/*!50000 DROP TABLE executives */",
		"SELECT 1 # '\nDROP TABLE executives",
	] {
		ids(data.countersign.deny) == {"INC-03-1"} with input as neon(q) with data.countersign.freeze as true
	}
}

# Outside a freeze, changes to every row and DDL on production wait; a
# change to some rows does not, past the SQL write hold.
test_incident_03_mass_changes_on_production_held if {
	every q in ["DELETE FROM executives WHERE 1=1", "UPDATE executives SET email = NULL", "WITH d AS (DELETE FROM executives) SELECT 1"] {
		"INC-03-2" in held(neon(q))
	}
	not "INC-03-2" in held(neon("UPDATE executives SET email = NULL WHERE id = 7"))
	not "INC-03-2" in held(neon("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 1"))
}

test_incident_03_ddl_on_production_outside_freeze_held if {
	denied(neon("DROP TABLE executives")) == set()
	held(neon("DROP TABLE executives")) == {"INC-02-2", "INC-03-2"}
}

test_incident_03_reads_allowed if allowed(neon("select * from executives where id = 1"))

# Neon's serverless driver posts to its regional API host and names the
# endpoint in Neon-Connection-String only; Supabase's API names the
# project in its path (found by review).
test_incident_03_production_named_by_the_connection_string_or_path if {
	drop := object.union(neon("DROP TABLE users"), {"request": {"host": "api.us-east-2.aws.neon.tech"}})
	"INC-03-2" in held(drop)
	other := object.union(drop, {"request": {"headers": {"neon-connection-string": ["postgresql://app:[redacted]@ep-dev-9.us-east-2.aws.neon.tech/neondb"]}}})
	not "INC-03-2" in held(other)
	supabase := http("POST", "api.supabase.com", "/v1/projects/abcdefghijklmnop/database/query", {"content-type": ["application/json"]}, {"query": "drop table users"})
	"INC-03-2" in held(supabase)
}

# Found by the review of the lexer: nested comments and dollar quotes with
# several tags (which PostgreSQL reads as no lexing here does), SQLite's
# bracketed names; and what says UPDATE without updating every row.
test_incident_03_what_no_lexing_reads_is_held if {
	every q in [
		"SELECT 1 /* /* */ ' */; DROP TABLE users; --'",
		"SELECT $a$ $b$ ' $a$; DROP TABLE users; --'",
		"SELECT 1 AS [a'b]; DROP TABLE users; --'",
	] {
		ids(data.countersign.deny) == {"INC-03-1"} with input as neon(q) with data.countersign.freeze as true
	}
}

test_incident_03_row_locks_and_upserts_are_not_mass_changes if {
	not "INC-03-2" in held(neon("SELECT * FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"))
	not "INC-03-2" in held(neon("INSERT INTO hits (k, n) VALUES ('a', 1) ON DUPLICATE KEY UPDATE n = n + 1"))
	every q in [
		"UPDATE users SET email = NULL WHERE 2=2",
		"DELETE FROM users WHERE 1",
		"UPDATE users SET email = NULL FROM (SELECT 1 WHERE 2 > 1) s",
	] {
		"INC-03-2" in held(neon(q))
	}
}

# Found by the third review: a carriage return ends a line comment in
# PostgreSQL, a digit-led dollar tag, settings that change the lexing,
# reads with tautologies, nested subqueries, and verbs written tightly.
test_incident_03_third_review if {
	every q in [
		"SELECT 1 -- x\r; DROP TABLE executives",
		"SELECT $$ $1$ $$, $$'$$ ; DROP TABLE executives ; SELECT $$'$$",
		"SET sql_mode='NO_BACKSLASH_ESCAPES'; SELECT 'a\\' --1 ; DROP TABLE t ; #'",
	] {
		ids(data.countersign.deny) == {"INC-03-1"} with input as neon(q) with data.countersign.freeze as true
		"INC-03-2" in held(neon(q))
	}
	every q in ["SELECT id FROM users WHERE deleted_at IS NOT NULL", "SELECT id FROM users WHERE 1"] {
		ids(data.countersign.deny) == set() with input as neon(q) with data.countersign.freeze as true
		allowed(neon(q))
	}
	"INC-03-2" in held(neon("UPDATE users SET email = (SELECT max(e) FROM s WHERE s.id = 1)"))
	every q in ["DELETE FROM\"users\"", "UPDATE\"users\"SET\"email\"=NULL", "DELETE LOW_PRIORITY IGNORE FROM users"] {
		"INC-02-2" in held(mcp("supabase__execute_sql", {"query": q}))
	}
}

# Found by the fourth review: every-row changes a list of tautologies
# missed, and reads the unreadable-SQL rules held.
test_incident_03_fourth_review if {
	every q in [
		"WITH d AS (DELETE FROM users WHERE true RETURNING 1) SELECT count(*) FROM d",
		"DELETE FROM users WHERE (true)",
		"DELETE FROM users WHERE EXISTS (SELECT 1)",
		"DELETE FROM users WHERE id IN (SELECT id FROM users)",
		"UPDATE users SET email = NULL WHERE id IS NOT NULL",
		"DELETE FROM users WHERE id > 0",
		"DELETE FROM users WHERE id = id",
	] {
		"INC-03-2" in held(neon(q))
	}
	every q in [
		"DELETE FROM sessions WHERE id = 7",
		"UPDATE users SET email = 'x' WHERE id = $1",
		"DELETE FROM t WHERE k IN (1, 2, 3)",
	] {
		not "INC-03-2" in held(neon(q))
	}
	every q in [
		"SELECT id FROM users WHERE password_hash = '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA'",
		"SHOW standard_conforming_strings",
	] {
		allowed(neon(q))
		ids(data.countersign.deny) == set() with input as neon(q) with data.countersign.freeze as true
	}
	"INC-03-2" in held(neon("SET sql_mode='ANSI'; SELECT 1"))
}

# Found by the fifth review: ORs, NOTs, inequalities and joined tables do
# not narrow a change; equalities with parameters, functions, booleans
# and patterns do.
test_incident_03_fifth_review if {
	every q in [
		"DELETE FROM users WHERE id <> 0",
		"DELETE FROM users WHERE email != ''",
		"DELETE FROM users WHERE id = 1 OR true",
		"DELETE FROM users WHERE NOT id = 1",
		"DELETE FROM users WHERE id NOT IN (1)",
		"DELETE FROM users USING sessions WHERE sessions.id = 1",
		"UPDATE users SET role = 'admin' FROM orgs WHERE orgs.id = 1",
		"UPDATE users SET \"where\" = 1, x = 2",
	] {
		"INC-03-2" in held(neon(q))
	}
	every q in [
		"DELETE FROM users WHERE id = ANY($1)",
		"DELETE FROM users WHERE banned = true",
		"DELETE FROM users WHERE id IN (:ids)",
		"DELETE FROM users WHERE email = lower('X')",
		"DELETE FROM users WHERE id = %s",
	] {
		not "INC-03-2" in held(neon(q))
	}
}

# Found by the sixth review: anything but ANDed equalities with literals
# or parameters is not targeted (LIKE '%' matches every row).
test_incident_03_sixth_review if {
	every q in [
		"DELETE FROM users WHERE true = true",
		"DELETE FROM users WHERE id = 0 + id",
		"DELETE FROM users WHERE email LIKE '%'",
		"DELETE FROM users WHERE id = 1 IS FALSE",
		"DELETE FROM users WHERE (id = 1) = false",
		"DELETE FROM users WHERE CASE WHEN id = 1 THEN true ELSE true END",
		"DELETE FROM users WHERE id = coalesce(((((id)))))",
		"DELETE FROM users WHERE id = 1 || 1",
		"DELETE FROM users WHERE id = 1 XOR 1",
		"UPDATE users, orgs SET users.role = 'admin' WHERE orgs.id = 1",
		"UPDATE users JOIN orgs ON users.org = orgs.id SET users.role = 'admin' WHERE orgs.id = 1",
		"UPDATE users SET `where` = 1, x = 2",
		"DELETE FROM users WHERE id = 1 = 0",
	] {
		"INC-03-2" in held(neon(q))
	}
	not "INC-03-2" in held(neon("DELETE FROM users WHERE tenant = 'a' AND id = $2"))
}

# Found by the seventh review.
test_incident_03_seventh_review if {
	every q in [
		"DELETE FROM users WHERE id = ALL('{}')",
		"DELETE FROM users WHERE \"x\" = 'x'",
		"DELETE FROM users WHERE current_user = 'app'",
		"DELETE FROM users WHERE current_date = date('now')",
		"UPDATE (users, orgs) SET users.role = 'admin' WHERE orgs.id = 1",
		"WITH c AS (SELECT 1) UPDATE users, orgs SET users.role = 'admin' WHERE orgs.id = 1",
		"UPDATE users STRAIGHT_JOIN orgs ON users.o = orgs.id SET users.role = 'a' WHERE orgs.id = 1",
	] {
		"INC-03-2" in held(neon(q))
	}
	not "INC-03-2" in held(neon("UPDATE users SET email = 'x' WHERE id = $1"))
}
