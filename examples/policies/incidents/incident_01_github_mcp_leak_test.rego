package countersign.incidents_test

# The agent reads a private repository (allowed: reading is not the harm),
# then publishes through the public one: REST calls from a local MCP
# server, or tools/call to a remote one.

test_incident_01_private_read_allowed if allowed(github("GET", "repos/get-content", "acme", "private-plans", {"path": "README.md"}, null))

test_incident_01_rest_file_write_to_public_repo_held if {
	inp := github("PUT", "repos/create-or-update-file-contents", "acme", "website", {"path": "leak.md"}, {"message": "add about page", "content": "cHJpdmF0ZQ==", "branch": "leak"})
	held(inp) == {"INC-01"}
}

test_incident_01_rest_pull_request_to_public_repo_held if held(github("POST", "pulls/create", "acme", "website", {}, {"title": "About the author", "head": "leak", "base": "main"})) == {"INC-01"}

test_incident_01_mcp_tools_to_public_repo_held if {
	held(mcp("create_or_update_file", {"owner": "acme", "repo": "website", "path": "leak.md", "content": "private", "branch": "leak"})) == {"INC-01"}

	# GitHub ignores case (found by review).
	held(mcp("create_or_update_file", {"owner": "ACME", "repo": "Website", "path": "leak.md", "content": "private", "branch": "leak"})) == {"INC-01"}
	held(mcp("create_pull_request", {"owner": "acme", "repo": "oss-sdk", "title": "t", "head": "leak", "base": "main"})) == {"INC-01"}
}

test_incident_01_writes_to_private_repo_allowed if {
	allowed(github("POST", "pulls/create", "acme", "private-plans", {}, {"title": "t", "head": "x", "base": "main"}))
	allowed(mcp("create_pull_request", {"owner": "acme", "repo": "private-plans", "title": "t", "head": "x", "base": "main"}))
}
