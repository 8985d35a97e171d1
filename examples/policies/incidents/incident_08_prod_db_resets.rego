# Incident #8: Claude Code resets production databases (Dec 2025 – Jun 2026)
#
# Prisma pushes and resets and DROP TABLE went over the Postgres wire
# protocol, invisible to an HTTP proxy (incident #3's policy covers SQL
# sent over HTTP). What the proxy does see: the rewrite of the production
# DATABASE_URL on Railway (a GraphQL variableUpsert mutation to
# backboard.railway.com) and deletions through the app's own API (a plain
# DELETE, PostgREST's DELETE /rest/v1/{table} on Supabase). Rewriting
# variables of a production environment, or credential and connection
# string variables anywhere, is denied or held; deletes on production hosts
# wait for a human.
package countersign

import data.countersign.incidents
import data.countersign.lib.globs
import data.countersign.lib.prod

# Railway's variable writes, and the environment patches its CLI and MCP
# server stage and commit (found by review), which carry variables too.
inc08_variable_mutations := {
	"variableUpsert", "variableCollectionUpsert", "variableDelete",
	"environmentPatchCommit", "environmentStageChanges", "environmentPatchCommitStaged",
}

default inc08_secret_variables := []

inc08_secret_variables := data.countersign.sql.secret_variables

# The names of the variables a mutation writes: input.name for
# variableUpsert and variableDelete, the keys of input.variables for
# variableCollectionUpsert; in inline arguments or in GraphQL variables.
inc08_variable_names contains name if {
	some selection in input.action.selections
	selection.field in inc08_variable_mutations
	name := inc08_names(selection.arguments)[_]
}

inc08_variable_names contains name if {
	some field in incidents.mutation_fields
	field in inc08_variable_mutations
	name := inc08_names(input.action.variables)[_]
}

inc08_names(arguments) := names if {
	names := {n |
		walk(arguments, [path, value])
		count(path) > 0
		some n in inc08_name_of(path, value)
	}
}

inc08_name_of(path, value) := {value} if {
	path[count(path) - 1] == "name"
	is_string(value)
} else := object.keys(value) if {
	path[count(path) - 1] == "variables"
	is_object(value)
} else := set()

inc08_writes_variables if {
	some field in incidents.mutation_fields
	field in inc08_variable_mutations
}

# METADATA
# title: INC-08-1
# description: No agent rewrites the variables of a production environment.
deny contains {
	"id": "INC-08-1",
	"msg": sprintf("rewriting variables (%s) of a production environment (%s) is not allowed; ask a human", [concat(", ", inc08_variable_names), prod.summary]),
} if {
	inc08_writes_variables
	prod.is_prod
}

# METADATA
# title: INC-08-2
# description: Rewriting credential or connection-string variables elsewhere waits for a human.
approve contains {
	"id": "INC-08-2",
	"msg": sprintf("rewriting the credential or connection-string variable %s: a wrong value points the app at another database, or hands it to someone else", [name]),
} if {
	inc08_writes_variables
	not prod.is_prod
	some name in inc08_variable_names
	globs.match_any(inc08_secret_variables, name)
}

# METADATA
# title: INC-08-3
# description: Deletes through a production host's own API wait for a human.
approve contains {
	"id": "INC-08-3",
	"msg": sprintf("%s %s%s deletes on production (%s); countersign holds it for a human, as there may be no undo", [input.request.method, input.request.host, input.request.path, prod.summary]),
} if {
	inc08_deletes
	prod.host(input.request.host)
}

# Whatever provider claimed it (found by review: an Mcp-Session-Id header
# made a DELETE an MCP session's end), and deletes by other means
# (pg_graphql's deleteFrom…Collection).
inc08_deletes if input.request.method == "DELETE"

inc08_deletes if input.action.destructive == true
