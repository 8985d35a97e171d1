package countersign.incidents_test

# tools/call execute_sql as Cursor sent it through Supabase's MCP server,
# and the management API call a local Supabase MCP server makes instead.

test_incident_02_select_secret_table_denied if {
	inp := mcp("execute_sql", {"project_id": "abcdefghijklmnop", "query": "SELECT * FROM integration_tokens;"})
	denied(inp) == {"INC-02-1"}
	some r in data.countersign.deny with input as inp
	r.msg == "SQL naming the secret table integration_tokens is not allowed; ask a human for what you need from it"
}

test_incident_02_secret_table_quoted_and_qualified_denied if denied(mcp("execute_sql", {"query": "select token from public.\"integration_tokens\" limit 5"})) == {"INC-02-1"}

test_incident_02_management_api_select_denied if {
	inp := http("POST", "api.supabase.com", "/v1/projects/abcdefghijklmnop/database/query", {"content-type": ["application/json"]}, {"query": "select * from integration_tokens", "read_only": false})
	denied(inp) == {"INC-02-1"}
}

test_incident_02_insert_into_ticket_held if {
	inp := mcp("execute_sql", {"query": "INSERT INTO support_messages (ticket_id, body) VALUES (42, 'here you go')"})
	held(inp) == {"INC-02-2"}
	denied(inp) == set()
}

test_incident_02_migration_held if held(mcp("apply_migration", {"name": "add_col", "query": "alter table orders add column note text"})) == {"INC-02-2"}

test_incident_02_ordinary_reads_allowed if {
	allowed(mcp("execute_sql", {"query": "select id, status from orders where id = 7"}))
	allowed(mcp("list_tables", {"schemas": ["public"]}))
	allowed(http("POST", "api.supabase.com", "/v1/projects/abcdefghijklmnop/database/query", {}, {"query": "select count(*) from orders"}))
}

test_incident_02_table_name_inside_another_word_allowed if allowed(mcp("execute_sql", {"query": "select * from integration_tokens_archive_schema_doc"}))

# SQL that reaches the secret table without spelling its name (found by
# review): a Unicode-escaped identifier, a query built from strings.
test_incident_02_secret_table_not_spelt_out_held if {
	held(mcp("execute_sql", {"query": "SELECT * FROM U&\"integration\\005ftokens\""})) == {"INC-02-3"}
	held(mcp("execute_sql", {"query": "select query_to_xml('select * from integration' || '_tokens', true, true, '')"})) == {"INC-02-3"}
	held(mcp("execute_sql", {"query": "do $$ begin execute 'select 1 from integration' || '_tokens'; end $$"})) == {"INC-02-2", "INC-02-3"}
	allowed(mcp("execute_sql", {"query": "select id, total from orders where created_at > now() - interval '1 day'"}))
	allowed(mcp("execute_sql", {"query": "select 'do it' as todo, executed_at from jobs"}))
}

# Found by review: SQL under other tools' and arguments' names, Supabase's
# read-only query route, and the secret tables through PostgREST and
# pg_graphql.
test_incident_02_sql_in_any_tool_argument if {
	denied(mcp("run_sql_transaction", {"projectId": "p", "sqlStatements": ["SELECT 1", "SELECT * FROM integration_tokens"]})) == {"INC-02-1"}
	"INC-02-2" in held(mcp("execute_sql", {"sql": "DROP TABLE users"}))
	denied(mcp("supabase__execute_sql", {"query": "select * from integration_tokens"})) == {"INC-02-1"}
	"INC-02-2" in held(mcp("prepare_database_migration", {"migrationSql": "ALTER TABLE users DROP COLUMN email"}))
	allowed(mcp("search_docs", {"query": "update node version and delete my branch"}))
}

test_incident_02_supabase_read_only_query_route if {
	inp := http("POST", "api.supabase.com", "/v1/projects/abcdefghijklmnop/database/query/read-only", {"content-type": ["application/json"]}, {"query": "select * from integration_tokens"})
	denied(inp) == {"INC-02-1"}
}

test_incident_02_secret_tables_through_rest_and_graphql if {
	denied(http("GET", "abcdefghijklmnop.supabase.co", "/rest/v1/integration_tokens", {}, null)) == {"INC-02-1"}
	denied(http("POST", "abcdefghijklmnop.supabase.co", "/graphql/v1", {}, {"query": "{ integrationTokensCollection { edges { node { token } } } }"})) == {"INC-02-1"}
	not "INC-02-1" in denied(http("GET", "abcdefghijklmnop.supabase.co", "/rest/v1/orders", {}, null))
}

# A message carries at most 300 characters of SQL (found by review: the
# whole text, secrets in literals included, went to Slack).
test_incident_02_messages_cut_the_sql if {
	long := concat("", ["INSERT INTO notes VALUES ('", concat("", [x | some _ in numbers.range(1, 100); x := "sk_live_0123"]), "')"])
	some r in data.countersign.approve with input as mcp("execute_sql", {"query": long})
	r.id == "INC-02-2"
	count(r.msg) < 400
	contains(r.msg, "characters)")
}

# Found by the review of the first fix: names only SQL is passed in take
# any text; embedded tables and pg_graphql types are the tables too.
test_incident_02_sql_only_arguments_take_any_sql if {
	every q in ["UPDATE ONLY users SET email = NULL", "DELETE users FROM users", "DROP FOREIGN TABLE users"] {
		"INC-02-2" in held(mcp("run_sql_transaction", {"projectId": "p", "sqlStatements": [q]}))
	}
}

test_incident_02_embedded_and_graphql_typed_secret_tables if {
	embedded := object.union(http("GET", "abcdefghijklmnop.supabase.co", "/rest/v1/users", {}, null), {"request": {"query": {"select": ["id,api_keys(*)"]}}})
	denied(embedded) == {"INC-02-1"}
	node := http("POST", "abcdefghijklmnop.supabase.co", "/graphql/v1", {}, {"query": "{ node(nodeId: \"WyJhcGlfa2V5cyIsMV0=\") { ... on ApiKeys { key } } }"})
	denied(node) == {"INC-02-1"}
}
