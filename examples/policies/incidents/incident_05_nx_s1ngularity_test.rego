package countersign.incidents_test

# The malware's calls: a new repository under the victim's account, then
# (second wave) PATCH /repos/{o}/{r} flipping visibility.

test_incident_05_visibility_public_denied if {
	denied(github("PATCH", "repos/update", "acme", "shop", {"public_exposure": true}, {"visibility": "public"})) == {"INC-05-1"}
	denied(github("PATCH", "repos/update", "acme", "shop", {"public_exposure": true}, {"private": false})) == {"INC-05-1"}
}

test_incident_05_other_update_allowed if allowed(github("PATCH", "repos/update", "acme", "shop", {"public_exposure": false}, {"description": "shop"}))

test_incident_05_delete_repository_denied if denied(github("DELETE", "repos/delete", "acme", "shop", {}, null)) == {"INC-05-2"}

test_incident_05_create_repository_held if {
	inp := {
		"request": {"method": "POST", "host": "api.github.com", "path": "/user/repos", "body": {"name": "s1ngularity-repository", "private": false}},
		"action": {"provider": "github", "operation": "repos/create-for-authenticated-user", "host": "api.github.com", "public_exposure": true, "read_only": false, "destructive": false},
	}
	held(inp) == {"INC-05-3"}
	some r in data.countersign.approve with input as inp
	r.msg == "repos/create-for-authenticated-user creates a repository that is PUBLIC: new repositories are where the Nx malware published stolen secrets, so a human checks it"
}

test_incident_05_graphql_create_repository_held if {
	inp := graphql("github", "api.github.com", ["createRepository"], [{"field": "createRepository", "arguments": {"input": {"name": "leak-repo", "visibility": "PUBLIC"}}}], null, {"public_exposure": true})
	held(inp) == {"INC-05-3"}
}
