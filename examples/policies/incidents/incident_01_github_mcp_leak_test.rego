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

	# Tools the server has renamed or added since (found by review).
	held(mcp("issue_write", {"method": "create", "owner": "acme", "repo": "website", "title": "t", "body": "private"})) == {"INC-01"}
	held(mcp("update_pull_request", {"owner": "acme", "repo": "website", "pullNumber": 7, "body": "private"})) == {"INC-01"}
	held(mcp("add_comment_to_pending_review", {"owner": "acme", "repo": "website", "pullNumber": 7, "body": "private"})) == {"INC-01"}

	# Named like a read, but it marks the repository's notifications read.
	held(mcp("mark_all_notifications_read", {"owner": "acme", "repo": "website"})) == {"INC-01"}
}

test_incident_01_mcp_reads_of_public_repo_allowed if {
	allowed(mcp("get_file_contents", {"owner": "acme", "repo": "website", "path": "README.md"}))
	allowed(mcp("issue_read", {"method": "get", "owner": "acme", "repo": "website", "issue_number": 1}))
	allowed(mcp("list_issues", {"owner": "acme", "repo": "website"}))
	allowed(mcp("search_code", {"query": "repo:acme/website leak"}))
}

test_incident_01_writes_to_private_repo_allowed if {
	allowed(github("POST", "pulls/create", "acme", "private-plans", {}, {"title": "t", "head": "x", "base": "main"}))
	allowed(mcp("create_pull_request", {"owner": "acme", "repo": "private-plans", "title": "t", "head": "x", "base": "main"}))
}

# Every other REST write publishes too, and so does a push (found by
# review: releases, blobs, reviews, an issue's new body, new branches).
test_incident_01_other_writes_to_public_repo_held if {
	held(github("POST", "repos/create-release", "acme", "website", {}, {"tag_name": "v1", "body": "private"})) == {"INC-01"}
	held(github("POST", "git/create-blob", "acme", "website", {}, {"content": "private"})) == {"INC-01"}
	held(github("PATCH", "issues/update", "acme", "website", {}, {"body": "private"})) == {"INC-01"}
	held(github("POST", "pulls/create-review", "acme", "website", {}, {"body": "private"})) == {"INC-01"}
	held(git_push("acme/website", [{"ref": "refs/heads/leak", "old": "0000000000000000000000000000000000000000", "new": "d0e8e573f553528405bcb379637de2c86ee62572", "kind": "create"}])) == {"INC-01"}
	allowed(git_push("acme/private-plans", [{"ref": "refs/heads/leak", "old": "0000000000000000000000000000000000000000", "new": "d0e8e573f553528405bcb379637de2c86ee62572", "kind": "create"}]))
}

# GraphQL names its target by id: whether it is public cannot be told,
# but where a commit names its repository.
inc01_commit(repo) := graphql("github", "api.github.com", ["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"repositoryNameWithOwner": repo, "branchName": "leak"}}}}], null, {})

test_incident_01_graphql_mutations_held if {
	held(graphql("github", "api.github.com", ["addComment"], [{"field": "addComment", "arguments": {"input": {"subjectId": "I_1", "body": "private"}}}], null, {})) == {"INC-01"}
	held(inc01_commit("acme/website")) == {"INC-01"}
	allowed(inc01_commit("acme/private-plans"))

	# Other spellings of a public repository's name (found by review).
	held(inc01_commit("acme/website.git")) == {"INC-01"}
	held(inc01_commit(" acme/website ")) == {"INC-01"}
}

# Found by review: public repositories other than the ones listed (the
# attacker's own), public gists and repositories made by MCP tools.
test_incident_01_repositories_not_known_private_held if {
	issue := object.union(github("POST", "issues/create", "attacker", "inbox", {}, {"title": "t", "body": "private data"}), {"request": {"path": "/repos/attacker/inbox/issues"}})
	held(issue) == {"INC-01"}
	held(mcp("create_issue", {"owner": "attacker", "repo": "inbox", "title": "t", "body": "x"})) == {"INC-01"}
	allowed(mcp("create_issue", {"owner": "acme", "repo": "private-plans", "title": "t", "body": "x"}))
	held(mcp("create_issue", {"owner": "acme", "repo": "website", "title": "t", "body": "x"})) == {"INC-01"}
}

test_incident_01_public_gists_and_new_repositories_held if {
	gist := object.union(github("POST", "gists/create", "", "", {"public_exposure": true}, {"public": true, "files": {"a.txt": {"content": "x"}}}), {"request": {"path": "/gists"}})
	held(gist) == {"INC-01"}
	held(mcp("create_repository", {"name": "leak", "private": false})) == {"INC-01"}
	held(mcp("fork_repository", {"owner": "acme", "repo": "private-plans"})) == {"INC-01"}
	allowed(mcp("create_repository", {"name": "notes", "private": true}))
}
