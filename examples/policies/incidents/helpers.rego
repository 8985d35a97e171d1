# METADATA
# title: Helpers shared by the incident policies
# description: |
#   SQL seen over HTTP (MCP tools, the Supabase management API, Neon's SQL
#   endpoint), repository names, branch names and the data of this example.
#   The SQL helpers read statements with regular expressions, not a parser:
#   they look at each statement's first keyword after comments are removed,
#   which is enough to tell reads from writes and DDL, and errs towards
#   "write" for anything unusual.
package countersign.incidents

import data.countersign.lib.git
import data.countersign.lib.globs

# METADATA
# description: MCP tools that run SQL, with the argument holding it.
sql_tools := {
	"execute_sql": "query", # Supabase
	"apply_migration": "query", # Supabase (DDL)
	"query": "sql", # @modelcontextprotocol/server-postgres
	"run_sql": "sql",
	"run_query": "query",
}

# METADATA
# description: Every SQL text the request carries.
sql_texts contains text if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	argument := sql_tools[input.action.tool]
	text := input.action.arguments[argument]
	is_string(text)
}

# Any tool's argument under a name SQL is passed in, a string or a list
# of strings, that reads as SQL: tools on other servers (Neon's
# run_sql_transaction {"sqlStatements": […]}, prepare_database_migration
# {"migrationSql": …}, MCP Toolbox's execute_sql {"sql": …}) and names a
# gateway prefixes (supabase__execute_sql). Found by review.
sql_texts contains text if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	some name, value in input.action.arguments
	lower(name) in sql_argument_names
	some text in sql_argument_strings(value)
	sql_argument(lower(name), text)
}

# Under a name that only SQL is passed in, any text is SQL; under one a
# search tool also uses ("query"), text that reads as SQL (found by
# review: the gate missed UPDATE ONLY, DELETE t FROM t, DROP FOREIGN TABLE
# under sqlStatements).
sql_argument(name, _) if not name in {"query", "queries", "statement", "statements"}

sql_argument(name, text) if {
	name in {"query", "queries", "statement", "statements"}
	sql_verb(text)
}

sql_argument_names := {"sql", "query", "statement", "statements", "sqlstatements", "sql_statements", "migrationsql", "migration_sql", "queries", "sql_query", "sqlquery"}

sql_argument_strings(value) := {value} if is_string(value)

sql_argument_strings(value) := {s |
	some s in value
	is_string(s)
} if is_array(value)

# A text whose first statement reads as SQL, as either dialect reads it:
# a verb with what SQL puts after it ("delete from", "update … set"), so
# that a search tool's query ("update node version") is not taken for SQL.
sql_verb(text) if {
	some statement in statements(text)
	regex.match(sql_start, statement)
}

sql_objects := `(table|index|view|schema|database|function|procedure|trigger|type|sequence|extension|role|user|policy|materialized|rule|domain|publication|subscription|owned|column|constraint|event|server|collation|aggregate|operator|tablespace|foreign|definer)`

sql_start := concat("", [
	`^(select|with\s+(recursive\s+)?\S+(\s*\([^)]*\))?\s+as\b|values|explain|show|describe|vacuum|analyze|reindex|checkpoint|begin|commit|rollback|discard all|reset all|pragma|`,
	`insert\b|replace\s+into|upsert\s+into|update\b\s*((low_priority|ignore|only)\s+)*("[^"]*"|`, "`[^`]*`", `|[^\s"]+)(\s+(as\s+)?\w+)?\s*set\b|delete\b\s*((low_priority|quick|ignore)\s+)*([^\s,]+(\s*,\s*[^\s,]+)*\s+)?from\b|merge\s+into|truncate|copy\s|call\s|do\s|exec(ute)?\s|prepare\s|lock\s+table|rename\s+table|`,
	`refresh\s+materialized|grant\s|revoke\s|comment\s+on|load\s+data|attach\s|detach\s|`,
	`(create|alter|drop)\s+(or\s+replace\s+|temp(orary)?\s+|unique\s+|global\s+|local\s+|unlogged\s+|if\s+(not\s+)?exists\s+|algorithm\s*=\s*\S+\s+)*`, sql_objects,
	`)\b`,
])

# Supabase's management API: POST /v1/projects/{ref}/database/query and
# …/database/migrations, body {"query": …}.
sql_texts contains text if {
	supabase_sql
	text := input.request.body.query
	is_string(text)
}

# Neon's SQL-over-HTTP endpoint: POST https://<endpoint>/sql with the
# target in the Neon-Connection-String header, body {"query": …} or a
# transaction {"queries": [{"query": …}, …]}.
sql_texts contains text if {
	neon_sql
	text := input.request.body.query
	is_string(text)
}

sql_texts contains text if {
	neon_sql
	some q in input.request.body.queries
	text := q.query
	is_string(text)
}

# AWS's SQL APIs (found by review): the RDS and Redshift Data APIs, and
# PartiQL on DynamoDB and Athena, each with the member holding the SQL.
aws_sql_members := {
	"rds-data:ExecuteStatement": "sql",
	"rds-data:BatchExecuteStatement": "sql",
	"rds-data:ExecuteSql": "sqlStatements",
	"redshift-data:ExecuteStatement": "Sql",
	"redshift-data:BatchExecuteStatement": "Sqls",
	"dynamodb:ExecuteStatement": "Statement",
	"dynamodb:BatchExecuteStatement": "Statements",
	"dynamodb:ExecuteTransaction": "TransactStatements",
	"athena:StartQueryExecution": "QueryString",
}

sql_texts contains text if {
	member := aws_sql_members[aws_operation]
	value := input.request.body[member]
	some text in aws_sql_strings(value)
}

# A member's SQL: a string, a list of strings, or a list of objects with
# a Statement (DynamoDB's batches and transactions).
aws_sql_strings(value) := {value} if is_string(value)

aws_sql_strings(value) := {s |
	some item in value
	s := aws_sql_item(item)
} if is_array(value)

aws_sql_item(item) := item if is_string(item)

aws_sql_item(item) := item.Statement if is_string(item.Statement)

# METADATA
# description: The request is a Supabase management API SQL call.
supabase_sql if {
	input.request.host == "api.supabase.com"
	input.request.method == "POST"
	globs.path_any(["/v1/projects/*/database/**", "/platform/pg-meta/*/query"], input.request.path)
}

# METADATA
# description: The request is a Neon SQL-over-HTTP call.
neon_sql if {
	input.request.method == "POST"
	input.request.path == "/sql"
	input.request.headers["neon-connection-string"]
}

# METADATA
# description: The request applies a schema migration (always DDL).
migration if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	input.action.tool == "apply_migration"
}

migration if {
	supabase_sql
	endswith(input.request.path, "/database/migrations")
}

# METADATA
# description: |
#   The statements of a SQL text, lower case, trimmed, read as PostgreSQL
#   and as MySQL read it: comments removed and string literals emptied by
#   a lexer that knows quotes, so that neither a comment marker inside a
#   literal nor a quote inside a comment hides a statement (found by
#   review: "SELECT '--'; DROP TABLE t" and "-- /*\nDROP TABLE t; -- */"
#   read as one harmless statement). The two dialects differ (backslash
#   escapes, "#" and "-- " comments, MySQL's executable /*! comments), and
#   a statement either would run is kept.
statements(text) := [s |
	some cleaned in [sql_cleaned(text, pg_tokens), sql_cleaned(text, mysql_tokens), sql_cleaned(text, sqlite_tokens)]
	some part in split(cleaned, ";")
	s := trim_space(lower(part))
	s != ""
]

# PostgreSQL's (and SQLite's) tokens, tried in order at each position: an
# E'' string with backslash escapes, a string, a quoted name, a
# dollar-quoted string, a line comment, a block comment, a word, anything
# else. An unterminated string or comment runs to the end (the server
# refuses such a text, so it runs nothing).
pg_tokens := `(?s)[eE]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?|"(?:[^"]|"")*"?|\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$.*?\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$|--[^\r\n]*|/\*.*?(?:\*/|$)|[A-Za-z0-9_\x{80}-\x{10FFFF}]+|.`

# MySQL's (and MariaDB's): strings with backslash escapes in either quote,
# a quoted name, "#" comments, "--" comments only before a space or a
# control character, executable comments (/*! … */, /*M! … */), whose
# contents run, and block comments.
mysql_tokens := concat("", [`(?s)'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?|`, "`(?:[^`]|``)*`?", `|#[^\n]*|--(?:[\x00-\x20][^\n]*)?$|--[\x00-\x20][^\n]*|/\*M?![0-9]*|/\*.*?(?:\*/|$)|[A-Za-z0-9_\x{80}-\x{10FFFF}]+|.`])

# SQLite's: strings without backslash escapes, names in double quotes,
# backticks or brackets ([a'b] is a name; found by review), and comments.
sqlite_tokens := concat("", [`(?s)'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`, "`(?:[^`]|``)*`?", `|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|$)|[A-Za-z0-9_\x{80}-\x{10FFFF}]+|.`])

# METADATA
# description: |
#   SQL that no lexing here reads as PostgreSQL does: a block comment
#   inside another (PostgreSQL nests them) and dollar quotes with more than
#   one tag (one ends only at its own tag). Found by review: both hid a
#   DROP that PostgreSQL ran.
sql_unlexable(text) if regex.match(`(?s)/\*(?:[^*]|\*[^/])*/\*`, text)

sql_unlexable(text) if count({t | some t in regex.find_n(`\$[A-Za-z0-9_]*\$`, regex.replace(text, `'(?:[^']|'')*'`, "''"), -1)}) > 1

# Settings that change how later statements of the same text are lexed,
# set in it: MySQL's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES, or ANSI,
# which holds it), PostgreSQL's standard_conforming_strings and
# backslash_quote. Dollar tags are counted outside '' strings (a password
# hash's $argon2id$ is no tag).
sql_unlexable(text) if {
	some cleaned in [sql_cleaned(text, pg_tokens), sql_cleaned(text, mysql_tokens)]
	regex.match(`(?is)\bset\b[^;]*\b(sql_mode|no_backslash_escapes|ansi_quotes|standard_conforming_strings|backslash_quote)\b`, cleaned)
}

# sql_cleaned is text with its literals emptied ('') and its comments
# blanked, read with the given tokens.
sql_cleaned(text, tokens) := concat("", [sql_piece(t) | some t in regex.find_n(tokens, text, -1)])

sql_piece(t) := "''" if {
	regex.match(`(?s)^([eE]?'|\$[A-Za-z0-9_]*\$.)`, t)
} else := " " if {
	regex.match(`^(--|#|/\*)`, t)
} else := t

first_word(statement) := word if {
	words := regex.find_n(`^[a-z]+`, statement, 1)
	count(words) == 1
	word := words[0]
} else := ""

read_words := {"select", "show", "explain", "describe", "values", "table"}

ddl_words := {"create", "alter", "drop", "truncate", "rename", "grant", "revoke", "comment", "reindex", "cluster", "vacuum"}

# METADATA
# description: A statement changes data or schema; anything not known to read counts as a write.
write_statement(statement) if not first_word(statement) in read_words

# A data-modifying WITH (… DELETE …) or SELECT … INTO.
write_statement(statement) if regex.match(`\b(insert|update|delete|merge)\b|\binto\b`, statement)

# METADATA
# description: A statement changes the schema or permissions.
ddl_statement(statement) if first_word(statement) in ddl_words

# METADATA
# description: |
#   A statement that removes every row or an object, or may: DROP or
#   TRUNCATE anywhere in it (a data-modifying WITH, EXPLAIN ANALYZE, a
#   rule), and a DELETE or UPDATE, on its own or in parentheses, whose WHERE
#   does not compare a column with a literal or a parameter (none, WHERE
#   1=1, WHERE true, WHERE id > 0, WHERE id IN (SELECT …), WHERE EXISTS …).
#   Found by reviews: a list of tautologies is never complete.
mass_change(statement) if regex.match(`\b(drop|truncate)\b`, statement)

mass_change(statement) if {
	s := top_level(literal_lists(without_row_locks(statement)))
	regex.match(`\b(delete|update)\b`, s)
	not targeted(s)
}

# literal_lists writes a list of literals (IN (1, 2, '')) as an equality
# and a function of literals or parameters (lower(''), ANY($1)) as a
# literal, which top_level would take for subqueries; and quoted names
# ("where") as a plain one.
literal_lists(s) := regex.replace(
	regex.replace(
		regex.replace(s, "\"[^\"]*\"|`[^`]*`", "quoted_name"),
		`\bin\s*\(\s*(''|-?[0-9.]+|\$[0-9]+|\?|:[a-z_]+|%s)(\s*,\s*(''|-?[0-9.]+|\$[0-9]+|\?|:[a-z_]+|%s))*\s*\)`, "= 0",
	),
	`\b(?:[b-z_][a-z0-9_]*|a[a-km-z0-9_][a-z0-9_]*|al[a-km-z0-9_][a-z0-9_]*|all[a-z0-9_]+|a|al)\s*\(\s*(''|-?[0-9.]+|\$[0-9]+|\?|:[a-z_]+|%s)?(\s*,\s*(''|-?[0-9.]+|\$[0-9]+|\?|:[a-z_]+|%s))*\s*\)`, "0",
)

mass_change(statement) if {
	some group in regex.find_n(`\(\s*(delete|update)\b[^()]*\)`, without_row_locks(statement), -1)
	not targeted(group)
}

# targeted: a top-level WHERE made only of equalities of a column with a
# literal (emptied to '' by the lexing), a number, a parameter (?, $1,
# :name, @name, %s) or true/false, joined by AND (an IN list of such, or a
# function of them, counts as one: literal_lists); and no other table
# joined in (DELETE … USING, UPDATE … FROM, UPDATE a, b, UPDATE … JOIN).
# Anything else (OR, XOR, NOT, ||, IS, CASE, LIKE, arithmetic, a range,
# a subquery) is not: on production a human looks. Found by reviews:
# every list of what makes a WHERE broad was incomplete.
targeted(s) if {
	not joined(s)
	parts := regex.split(`\bwhere\b`, s)
	count(parts) == 2
	condition := trim_space(regex.replace(parts[1], `\b(returning|order\s+by|limit)\b.*$`, ""))
	condition != ""
	every term in regex.split(`\band\b`, condition) {
		regex.match(`^\s*[a-z_][a-z0-9_.]*\s*=\s*(''|-?[0-9.]+|\$[0-9]+|\?|:[a-z_]+|@[a-z_]+|%s|true|false)\s*$`, term)
		not regex.match(`^\s*(true|false|null|_sub_|quoted_name|current_\w+|session_user|system_user|user|localtime\w*|now)\b`, term)
	}
}

# joined: another table in the statement (DELETE … USING, UPDATE … FROM,
# UPDATE a, b, UPDATE … JOIN, UPDATE (a, b)), judged on the statement
# before top_level empties its parentheses, wherever its UPDATE starts
# (after WITH or EXPLAIN; found by review).
joined(s) if regex.match(`\b(using|from)\b[^;]*\bwhere\b`, regex.replace(s, `\bdelete\s+from\b`, "delete "))

joined(s) if regex.match(`\bupdate\b[^;]*?(,|\bjoin\b|\bstraight_join\b|\(|\b_sub_\b)[^;]*?\bset\b`, s)

# Clauses that say UPDATE without updating (found by review): a
# SELECT's row locks, MySQL's and PostgreSQL's upserts.
without_row_locks(statement) := regex.replace(statement, `\bfor\s+(no\s+key\s+)?update\b|\bfor\s+(key\s+)?share\b|\bon\s+duplicate\s+key\s+update\b|\bdo\s+update\b`, " ")

# The statement with what is in parentheses (subqueries, whose WHERE says
# nothing of the outer statement's) taken out, four levels deep.
top_level(statement) := regex.replace(regex.replace(regex.replace(regex.replace(statement, `\([^()]*\)`, " _sub_ "), `\([^()]*\)`, " _sub_ "), `\([^()]*\)`, " _sub_ "), `\([^()]*\)`, " _sub_ ")

# METADATA
# description: |
#   The SQL texts for a message, cut at 300 characters: a message goes to
#   Slack and the audit log, and SQL can carry literal secrets (found by
#   review).
sql_shown := text if {
	all := concat("; ", sql_texts)
	count(all) <= 300
	text := all
} else := sprintf("%s… (%d characters)", [substring(concat("; ", sql_texts), 0, 300), count(concat("; ", sql_texts))])

# METADATA
# description: The SQL statements the request carries, across every text.
sql_statements contains statement if {
	some text in sql_texts
	some statement in statements(text)
}

# METADATA
# description: The SQL writes or changes the schema.
sql_writes if {
	some statement in sql_statements
	write_statement(statement)
}

sql_writes if migration

# METADATA
# description: The SQL changes the schema, deletes or overwrites every row of a table, or builds what it runs.
sql_destroys if {
	some statement in sql_statements
	ddl_statement(statement)
}

sql_destroys if {
	some statement in sql_statements
	mass_change(statement)
}

# SQL that builds what it runs: what it destroys cannot be read.
sql_destroys if sql_dynamic

sql_destroys if migration

default secret_tables := []

secret_tables := data.countersign.sql.secret_tables

# METADATA
# description: The secret tables the SQL names, read or written.
sql_secret_tables contains table if {
	some statement in sql_statements
	some table in secret_tables
	regex.match(sprintf(`(^|[^a-z0-9_])%s($|[^a-z0-9_])`, [lower(table)]), statement)
}

# METADATA
# description: |
#   The secret tables a request names through Supabase's REST API
#   (PostgREST: /rest/v1/TABLE) or GraphQL API (pg_graphql: a
#   TABLECollection field, or its insertInto/update/deleteFrom mutations).
api_secret_tables contains table if {
	parts := split(lower(input.request.path), "/")
	parts[1] == "rest"
	parts[2] == "v1"
	some table in secret_tables
	parts[3] == lower(table)
}

# A table embedded in another's select (PostgREST resource embedding:
# ?select=id,api_keys(*), api_keys!fk(*), alias:api_keys(*)); found by
# review.
api_secret_tables contains table if {
	startswith(lower(input.request.path), "/rest/v1/")
	some param in ["select", "columns", "on_conflict"]
	some value in object.get(input.request.query, param, [])
	some table in secret_tables
	regex.match(sprintf(`(^|[^a-z0-9_])%s\s*[(!]`, [lower(table)]), lower(value))
}

# pg_graphql names a table by its collection, its type (ApiKeys, reached
# through node(nodeId:) or a relation) or a relation field: the table's
# name, underscores aside, anywhere in the document.
api_secret_tables contains table if {
	startswith(input.request.path, "/graphql/v1")
	some table in secret_tables
	text := lower(concat(" ", [sprintf("%v", [input.request.body]), object.get(input.request.query, "query", [""])[0]]))
	contains(replace(text, "_", ""), replace(lower(table), "_", ""))
}

# METADATA
# description: |
#   SQL that can reach a table its text does not name: Unicode-escaped
#   identifiers (U&"integration\005ftokens"), and SQL run from a string
#   it builds (EXECUTE, DO blocks, query_to_xml and its kin, dblink), so
#   sql_secret_tables cannot see it (found by review).
sql_dynamic if {
	some statement in sql_statements
	regex.match(`\bu&['"]|\bexecute\b|\b(query|cursor|table|schema|database)_to_xml|\bdblink|\bto_regclass\b`, statement)
}

sql_dynamic if {
	some statement in sql_statements
	first_word(statement) == "do"
}

sql_dynamic if {
	some text in sql_texts
	sql_unlexable(text)
}

default public_repos := []

public_repos := data.countersign.github.public_repos

default protected_branches := []

protected_branches := data.countersign.github.protected_branches

default shared_branches := []

shared_branches := data.countersign.github.shared_branches

# METADATA
# description: |
#   The repository a GitHub request, a git push or a GitHub MCP tool call
#   acts on, as "owner/repo".
repository := sprintf("%s/%s", [input.action.owner, input.action.repo]) if {
	input.action.provider == "github"
	is_string(input.action.owner)
	is_string(input.action.repo)
} else := input.action.repo if {
	input.action.provider == "git"
	is_string(input.action.repo)
} else := sprintf("%s/%s", [input.action.arguments.owner, input.action.arguments.repo]) if {
	input.action.provider == "mcp"
	is_string(input.action.arguments.owner)
	is_string(input.action.arguments.repo)
}

# METADATA
# description: |
#   The repository may be public: it is listed in
#   data.countersign.github.public_repos, or it is not known to be private
#   (data.countersign.github.private_repos). Found by review: with public
#   repositories listed one by one, an agent published to any other public
#   repository (the attacker's own) unheld. GitHub ignores case in owner
#   and repository names, and so does this.
public_repository if public_repository_name(repository)

# METADATA
# description: A repository named "owner/repo" may be public (see public_repository).
public_repository_name(name) if globs.path_any([lower(p) | some p in public_repos], lower(name))

public_repository_name(name) if {
	is_string(name)
	not globs.path_any([lower(p) | some p in private_repos], lower(name))
}

default private_repos := []

private_repos := data.countersign.github.private_repos

# METADATA
# description: |
#   The branches a git push changes, with the branch name: direct updates,
#   and the targets a review server merges into (Gerrit's submit option,
#   GitLab's merge-when-the-pipeline-succeeds push options; see lib.git).
branch_updates := git.branch_updates

# METADATA
# description: |
#   branch is protected (data.countersign.github.protected_branches), or is
#   the default branch a GitLab merge request goes to when it names none.
protected_branch(branch) if globs.path_any(protected_branches, branch)

protected_branch(branch) if branch == git.default_branch

# METADATA
# description: |
#   The branches a GitHub GraphQL updateRefs mutation moves or deletes, by
#   the names it gives them (GitHub takes them with or without refs/heads/).
graphql_ref_updates contains trim_prefix(name, "refs/heads/") if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "updateRefs"
	walk(selection.arguments, [path, name])
	path[count(path) - 1] == "name"
	is_string(name)
}

# METADATA
# description: |
#   The branches a GitHub GraphQL createCommitOnBranch commits to, by name;
#   "" for one named by node id or not named, which could be any branch.
graphql_commit_branches contains trim_prefix(branch, "refs/heads/") if {
	some selection in graphql_commits
	walk(selection.arguments, [path, branch])
	path[count(path) - 1] == "branchName"
	is_string(branch)
}

graphql_commit_branches contains "" if {
	some selection in graphql_commits
	walk(selection.arguments, [path, _])
	count(path) >= 2
	path[count(path) - 1] == "id"
	path[count(path) - 2] == "branch"
}

graphql_commit_branches contains "" if {
	some selection in graphql_commits
	not graphql_names_branch(selection.arguments)
}

graphql_commits contains selection if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "createCommitOnBranch"
}

graphql_names_branch(arguments) if {
	walk(arguments, [path, branch])
	path[count(path) - 1] == "branchName"
	is_string(branch)
}

# METADATA
# description: |
#   The branch a GitHub contents API commit goes to: the one it names
#   (with or without refs/heads/), or the default branch when it names none
#   or an empty one (once its body is read).
contents_branch := trim_prefix(input.request.body.branch, "refs/heads/") if {
	is_string(input.request.body.branch)
	input.request.body.branch != ""
} else := git.default_branch if {
	not input.request.body_pending
}

# METADATA
# description: |
#   The base branches a GitHub GraphQL mergeBranch merges into, by name
#   (GitHub takes them with or without refs/heads/).
graphql_merge_bases contains trim_prefix(base, "refs/heads/") if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "mergeBranch"
	walk(selection.arguments, [path, base])
	path[count(path) - 1] == "base"
	is_string(base)
}

# METADATA
# description: The branch a GitHub REST ref call names ("heads/main" → "main").
rest_branch := substring(input.action.ref, count("heads/"), -1) if {
	input.action.provider == "github"
	startswith(input.action.ref, "heads/")
}

# METADATA
# description: The AWS operation as "service:Operation".
aws_operation := sprintf("%s:%s", [input.action.service, input.action.operation]) if input.action.provider == "aws"

# METADATA
# description: The AWS resources, for messages.
aws_resources := concat(", ", input.action.resources) if {
	count(input.action.resources) > 0
} else := "(no resource named)"

# METADATA
# description: A GraphQL mutation field the request runs.
mutation_fields contains field if {
	input.action.operation_type == "mutation"
	some field in input.action.fields
}
