# Incident #3: Replit Agent wipes SaaStr's production database during a freeze (Jul 2025)
#
# During an explicit code and action freeze the agent ran destructive
# database commands. They went over the Postgres wire protocol, which an
# HTTP proxy never sees: route agents' SQL through an HTTP gateway (Neon's
# /sql endpoint, Supabase's API, an MCP SQL tool) and this policy applies.
# While data.countersign.freeze is true, SQL that writes (DML, DDL,
# migrations, SQL built at run time) is denied everywhere; otherwise DDL
# and changes to every row wait for a human when they target production. The freeze lives in the
# proxy's data, not in the agent's prompt.
package countersign

import data.countersign.incidents
import data.countersign.lib.prod

default inc03_frozen := false

inc03_frozen := data.countersign.freeze == true

# METADATA
# title: INC-03-1
# description: During a freeze, SQL that writes or changes the schema is denied.
deny contains {
	"id": "INC-03-1",
	"msg": sprintf("a change freeze is in force: SQL that changes data or schema is not allowed until it is lifted (%s)", [incidents.sql_shown]),
} if {
	inc03_frozen
	inc03_changes
}

# Found by review: the freeze denied only DDL and a DELETE without
# WHERE; a DELETE in a WITH, WHERE 1=1, an UPDATE of every row and a DO
# block went through.
inc03_changes if incidents.sql_writes

inc03_changes if incidents.sql_destroys

# METADATA
# title: INC-03-2
# description: Outside a freeze, DDL and unqualified DELETEs on production wait for a human.
approve contains {
	"id": "INC-03-2",
	"msg": sprintf("SQL that changes the schema or deletes or overwrites every row, on production (%s), waits for a human: %s", [prod.summary, incidents.sql_shown]),
} if {
	not inc03_frozen
	incidents.sql_destroys
	prod.is_prod
}
