# Incident #10: Cursor agent deletes PocketOS's Railway volume and its backups (Apr 2026)
#
# During a staging task the agent deleted a Railway volume with a token it
# found in an unrelated file, by one GraphQL call:
# POST backboard.railway.com/graphql/v2, mutation { volumeDelete(volumeId: …) }.
# The volume was shared with production and held its backups. Whether an
# id is production cannot be told from the request (the incident asks to
# resolve it through Railway's API, which a policy cannot call), so the
# deleting mutations are denied whatever the environment. The GraphQL
# classifier reads the document itself: operation names, aliases and
# fragments do not hide a field.
package countersign

import data.countersign.incidents
import data.countersign.lib.globs
import data.countersign.lib.prod

inc10_denied_fields := {"volumeDelete", "serviceDelete", "environmentDelete", "projectDelete"}

# METADATA
# title: INC-10
# description: No agent deletes Railway volumes, services, environments, projects or backups.
deny contains {
	"id": "INC-10",
	"msg": sprintf("%s deletes data and its backups with no undo; an agent may not run it, ask a human", [field]),
} if {
	some field in incidents.mutation_fields
	inc10_deleting(field)
}

inc10_deleting(field) if field in inc10_denied_fields

# Any other mutation the classifier finds destructive, on Railway's API
# (pluginDelete, and those added after this list: found by review).
inc10_deleting(_) if {
	input.action.destructive == true
	input.request.host in inc10_railway_hosts
}

inc10_railway_hosts := {"backboard.railway.com", "backboard.railway.app"}

inc10_deleting(field) if globs.match_any(["*[Bb]ackup*Delete*", "*[Bb]ackup*Restore*"], field)

# METADATA
# title: INC-10-2
# description: |
#   Detaching a Railway volume, or changing its backup schedule, waits for
#   a human: the first leaves a service without its data, the second can
#   stop the backups (found by review).
approve contains {
	"id": "INC-10-2",
	"msg": sprintf("%s changes where a volume's data or backups are; countersign holds it for a human so that no backup is lost by mistake", [field]),
} if {
	some field in incidents.mutation_fields
	globs.match_any(["volumeDetach", "volumeInstanceBackupSchedule*", "volumeInstanceUpdate", "volumeInstanceBackupLock*"], field)
}

# METADATA
# title: INC-10-3
# description: |
#   Anything a classifier finds destructive, on a production host or id,
#   waits for a human: database platforms' own APIs delete projects and
#   branches in one call (Supabase's DELETE /v1/projects/REF, Neon's
#   delete_project and reset_from_parent tools; found by review).
approve contains {
	"id": "INC-10-3",
	"msg": sprintf("%s destroys something in production (%s); countersign holds it for a human, as there may be no undo", [inc10_what, prod.summary]),
} if {
	input.action.destructive == true
	prod.is_prod

	# AWS, Kubernetes and GitHub have rules of their own (#4, #9, #11, #6),
	# and so do production hosts' own APIs (#8).
	input.action.provider in {"http", "mcp", "graphql"}
	not prod.host(input.request.host)
}

inc10_what := sprintf("the tool %s", [input.action.tool]) if {
	input.action.provider == "mcp"
	is_string(input.action.tool)
} else := sprintf("%s %s%s", [input.request.method, input.request.host, input.request.path])
