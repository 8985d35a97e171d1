# Incident #3: Replit Agent wipes SaaStr's production database during a freeze (Jul 2025)
#
# During an explicit code and action freeze the agent ran destructive
# database commands. They went over the Postgres wire protocol, which an
# HTTP proxy never sees: route agents' SQL through an HTTP gateway (Neon's
# /sql endpoint, Supabase's API, an MCP SQL tool) and this policy applies.
# While data.countersign.freeze is true, DDL and DELETEs without WHERE
# (and TRUNCATE, and migrations) are denied everywhere; otherwise they
# wait for a human when they target production. The freeze lives in the
# proxy's data, not in the agent's prompt.
package countersign

import data.countersign.incidents
import data.countersign.lib.prod

default inc03_frozen := false

inc03_frozen := data.countersign.freeze == true

# METADATA
# title: INC-03-1
# description: During a freeze, DDL and unqualified DELETEs are denied.
deny contains {
	"id": "INC-03-1",
	"msg": sprintf("a change freeze is in force: schema changes and DELETEs without WHERE are not allowed (%s)", [concat("; ", incidents.sql_texts)]),
} if {
	inc03_frozen
	incidents.sql_destroys
}

# METADATA
# title: INC-03-2
# description: Outside a freeze, DDL and unqualified DELETEs on production wait for a human.
approve contains {
	"id": "INC-03-2",
	"msg": sprintf("schema change or DELETE without WHERE on production (%s): %s", [prod.summary, concat("; ", incidents.sql_texts)]),
} if {
	not inc03_frozen
	incidents.sql_destroys
	prod.is_prod
}
