package countersign.incidents_test

# The visible part of #8: Railway's variableUpsert on production (as
# action/graphql/testdata/curl-railway-variable-upsert.txt) and deletes
# through the app's own API (PostgREST on Supabase).

railway_upsert(environment, name) := graphql(
	"graphql", "backboard.railway.com", ["variableUpsert"], [{"field": "variableUpsert", "arguments": {"input": "$input"}}],
	{"input": {"environmentId": environment, "name": name, "projectId": "p-1", "serviceId": "s-1", "value": "postgresql://postgres:[redacted]@db.internal:5432/app"}},
	{"operation_name": "variableUpsert"},
)

test_incident_08_production_database_url_rewrite_denied if {
	inp := railway_upsert("e-prod", "DATABASE_URL")
	denied(inp) == {"INC-08-1"}
	some r in data.countersign.deny with input as inp
	r.msg == "rewriting variables (DATABASE_URL) of a production environment (production id e-prod) is not allowed; ask a human"
}

test_incident_08_inline_arguments_denied if {
	inp := graphql(
		"graphql", "backboard.railway.com", ["variableUpsert"],
		[{"field": "variableUpsert", "arguments": {"input": {"environmentId": "e-prod", "name": "DATABASE_URL", "value": "x"}}}],
		null, {},
	)
	denied(inp) == {"INC-08-1"}
}

test_incident_08_connection_string_elsewhere_held if held(railway_upsert("e-staging", "DATABASE_URL")) == {"INC-08-2"}

test_incident_08_collection_upsert_names_every_variable if {
	inp := graphql(
		"graphql", "backboard.railway.com", ["variableCollectionUpsert"],
		[{"field": "variableCollectionUpsert", "arguments": {"input": {"environmentId": "e-staging", "variables": {"LOG_LEVEL": "debug", "REDIS_URL": "redis://x"}}}}],
		null, {},
	)
	held(inp) == {"INC-08-2"}
	some r in data.countersign.approve with input as inp
	r.msg == "rewriting the credential or connection-string variable REDIS_URL: a wrong value points the app at another database, or hands it to someone else"
}

test_incident_08_ordinary_variable_elsewhere_allowed if allowed(railway_upsert("e-staging", "LOG_LEVEL"))

test_incident_08_postgrest_delete_on_production_held if held(http("DELETE", "abcdefghijklmnop.supabase.co", "/rest/v1/orders", {}, null)) == {"INC-08-3"}

test_incident_08_app_delete_on_production_held if held(http("DELETE", "api.prod.example.com", "/records/42", {}, null)) == {"INC-08-3"}

test_incident_08_delete_elsewhere_allowed if allowed(http("DELETE", "api.staging.example.com", "/records/42", {}, null))

# Found by review: environment patches carry variables too; a DELETE
# that carries an MCP session header, and deletes by other means, on a
# production host.
test_incident_08_environment_patches_are_variable_writes if {
	patch := graphql(
		"graphql", "backboard.railway.com", ["environmentPatchCommit"],
		[{"field": "environmentPatchCommit", "arguments": {"environmentId": "$environmentId", "patch": "$patch"}}],
		{"environmentId": "e-prod", "patch": {"services": {"svc-1": {"variables": {"DATABASE_URL": {"value": "postgresql://x@evil/db"}}}}}},
		{},
	)
	denied(patch) == {"INC-08-1"}
	staged := graphql("graphql", "backboard.railway.com", ["environmentPatchCommitStaged"], [{"field": "environmentPatchCommitStaged", "arguments": {"environmentId": "e-prod"}}], null, {})
	denied(staged) == {"INC-08-1"}
}

test_incident_08_deletes_on_production_whatever_the_provider if {
	mcp_end := object.union(http("DELETE", "api.prod.example.com", "/api/users/5", {"mcp-session-id": ["abc"]}, null), {"action": {"provider": "mcp", "method": "session/end", "destructive": false}})
	held(mcp_end) == {"INC-08-3"}
	gql := object.union(http("POST", "abcdefghijklmnop.supabase.co", "/graphql/v1", {}, {"query": "mutation { deleteFromExecutivesCollection(filter: {}, atMost: 10000) { affectedCount } }"}), {"action": {"provider": "graphql", "destructive": true}})
	held(gql) == {"INC-08-3"}
}
