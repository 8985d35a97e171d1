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
