# Incident #2: Supabase MCP secrets leak (General Analysis, Jul 2025)
#
# A support ticket told Cursor, connected to Supabase's MCP server with
# the service_role key, to copy the integration_tokens table into the
# ticket thread. The proxy sees tools/call execute_sql with the SQL in
# its arguments (or, from a local MCP server, Supabase's
# POST /v1/projects/{ref}/database/query). SQL naming a secret table, and
# the table's REST or GraphQL API, are denied; SQL that writes, migrations, and SQL that can reach a table
# without naming it (EXECUTE, query_to_xml, U&"…" names) wait for a human.
package countersign

import data.countersign.incidents

# METADATA
# title: INC-02-1
# description: SQL that names a secret table is denied.
deny contains {
	"id": "INC-02-1",
	"msg": sprintf("SQL naming the secret table %s is not allowed; ask a human for what you need from it", [table]),
} if {
	some table in incidents.sql_secret_tables
}

# The same tables through Supabase's REST and GraphQL APIs (PostgREST's
# /rest/v1/TABLE, pg_graphql's TABLECollection), which the service_role
# key reads without SQL (found by review).
deny contains {
	"id": "INC-02-1",
	"msg": sprintf("reading or writing the secret table %s through the REST or GraphQL API is not allowed; ask a human for what you need from it", [table]),
} if {
	some table in incidents.api_secret_tables
}

# METADATA
# title: INC-02-2
# description: SQL that changes data or schema waits for a human.
approve contains {
	"id": "INC-02-2",
	"msg": sprintf("SQL that changes data or schema: %s", [incidents.sql_shown]),
} if {
	incidents.sql_writes
}

# METADATA
# title: INC-02-3
# description: SQL that can reach tables its text does not name (built at run time, Unicode-escaped names) waits for a human.
approve contains {
	"id": "INC-02-3",
	"msg": sprintf("SQL that builds what it runs or escapes the names it reads, so countersign cannot tell which tables it reaches: %s", [incidents.sql_shown]),
} if {
	incidents.sql_dynamic
}
