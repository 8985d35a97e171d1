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

test_incident_03_qualified_delete_during_freeze_held_not_denied if {
	ids(data.countersign.deny) == set() with input as neon("delete from companies where id = 7") with data.countersign.freeze as true
	ids(data.countersign.approve) == {"INC-02-2"} with input as neon("delete from companies where id = 7") with data.countersign.freeze as true
}

test_incident_03_ddl_on_production_outside_freeze_held if {
	denied(neon("DROP TABLE executives")) == set()
	held(neon("DROP TABLE executives")) == {"INC-02-2", "INC-03-2"}
}

test_incident_03_reads_allowed if allowed(neon("select * from executives where id = 1"))
