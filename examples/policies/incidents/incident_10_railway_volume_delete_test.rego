package countersign.incidents_test

# Jer Crane's curl: POST backboard.railway.com/graphql/v2
# {"query":"mutation { volumeDelete(volumeId: \"3d2c42fb-…\") }"}
# (action/graphql/testdata/curl-railway-volume-delete.txt).

volume_delete(extra) := graphql(
	"graphql", "backboard.railway.com", ["volumeDelete"],
	[{"field": "volumeDelete", "arguments": {"volumeId": "3d2c42fb-0000-4c1e-9a7e-000000000000"}}],
	null, object.union({"destructive": true}, extra),
)

test_incident_10_volume_delete_denied if {
	denied(volume_delete({})) == {"INC-10"}
	some r in data.countersign.deny with input as volume_delete({})
	r.msg == "volumeDelete deletes data and its backups with no undo; an agent may not run it, ask a human"
}

test_incident_10_harmless_operation_name_does_not_hide_it if denied(volume_delete({"operation_name": "ListVolumes"})) == {"INC-10"}

test_incident_10_other_deletes_denied if {
	denied(graphql("graphql", "backboard.railway.com", ["serviceDelete"], [{"field": "serviceDelete", "arguments": {"id": "s-1"}}], null, {})) == {"INC-10"}
	denied(graphql("graphql", "backboard.railway.com", ["environmentDelete"], [{"field": "environmentDelete", "arguments": {"id": "e-staging"}}], null, {})) == {"INC-10"}
	denied(graphql("graphql", "backboard.railway.com", ["volumeInstanceBackupDelete"], [{"field": "volumeInstanceBackupDelete", "arguments": {"id": "b-1"}}], null, {})) == {"INC-10"}
}

test_incident_10_query_allowed if {
	inp := object.union(
		graphql("graphql", "backboard.railway.com", ["me"], [{"field": "me"}], null, {"read_only": true}),
		{"action": {"operation_type": "query"}},
	)
	allowed(inp)
}

# Destructive mutations not on the list, on Railway's API (found by review).
test_incident_10_other_destructive_mutations_on_railway_denied if {
	denied(graphql("graphql", "backboard.railway.com", ["pluginDelete"], [{"field": "pluginDelete", "arguments": {"id": "p-1"}}], null, {"destructive": true})) == {"INC-10"}
	not denied(graphql("graphql", "api.other.example", ["pluginDelete"], [{"field": "pluginDelete", "arguments": {"id": "p-1"}}], null, {"destructive": true}))["INC-10"]
}

# Found by review: volumes detached and backup schedules changed, and the
# database platforms' own deletes of production projects.
test_incident_10_volume_detach_and_backup_schedule_held if {
	held(graphql("graphql", "backboard.railway.com", ["volumeDetach"], [{"field": "volumeDetach", "arguments": {"volumeId": "v-1"}}], null, {})) == {"INC-10-2"}
	held(graphql("graphql", "backboard.railway.com", ["volumeInstanceBackupScheduleUpdate"], [{"field": "volumeInstanceBackupScheduleUpdate", "arguments": {"volumeInstanceId": "v-1", "kinds": []}}], null, {})) == {"INC-10-2"}
}

test_incident_10_production_deletes_on_platform_apis_held if {
	held(object.union(mcp("delete_project", {"projectId": "e-prod"}), {"action": {"destructive": true}})) == {"INC-10-3"}
	held(http("DELETE", "api.supabase.com", "/v1/projects/abcdefghijklmnop", {}, null)) == {"INC-10-3"}
	allowed(object.union(mcp("delete_project", {"projectId": "e-dev"}), {"action": {"destructive": true}}))
}
