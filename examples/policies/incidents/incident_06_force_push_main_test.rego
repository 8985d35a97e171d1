package countersign.incidents_test

# git push --force over main (the pkt-line "<old> <new> refs/heads/main"),
# the retry after --force-with-lease failed, and the REST equivalents.

zero := "0000000000000000000000000000000000000000"

ref_update(ref, kind) := {
	"ref": ref, "kind": kind,
	"old": "c82e8ae0000000000000000000000000000000000",
	"new": "81875a50000000000000000000000000000000000",
}

test_incident_06_force_push_over_main_denied if {
	inp := git_push("acme/shop", [ref_update("refs/heads/main", "update")])
	denied(inp) == {"INC-06-1"}
	some r in data.countersign.deny with input as inp
	r.msg == "update of the protected branch main of acme/shop is not allowed; push another branch and open a pull request"
}

test_incident_06_deleting_main_denied if denied(git_push("acme/shop", [ref_update("refs/heads/main", "delete")])) == {"INC-06-1"}

test_incident_06_rest_forced_update_denied if denied(github("PATCH", "git/update-ref", "acme", "shop", {"ref": "heads/main", "force": true, "destructive": true}, {"sha": "81875a5", "force": true})) == {"INC-06-1"}

test_incident_06_rest_delete_main_denied if denied(github("DELETE", "git/delete-ref", "acme", "shop", {"ref": "heads/main"}, null)) == {"INC-06-1"}

test_incident_06_feature_branch_allowed if {
	allowed(git_push("acme/shop", [ref_update("refs/heads/agent/fix", "create")]))
	allowed(git_push("acme/shop", [ref_update("refs/heads/agent/fix", "update")]))
}

test_incident_06_deleting_shared_branch_held if held(git_push("acme/shop", [ref_update("refs/heads/release/1.0", "delete")])) == {"INC-06-2"}

test_incident_06_rest_forced_update_of_shared_branch_held if held(github("PATCH", "git/update-ref", "acme", "shop", {"ref": "heads/develop", "force": true, "destructive": true}, {"sha": "81875a5", "force": true})) == {"INC-06-2"}

test_incident_06_push_with_unread_updates_denied if {
	inp := object.union(git_push("acme/shop", [ref_update("refs/heads/agent/1", "create")]), {"action": {"parse_error": "the push's ref updates do not fit in the inspected part of the body (inspect.body_limit); only the first 6 are listed"}})
	denied(inp) == {"INC-06-3"}
}

# Pushes that a review server merges into main: Gerrit's submit option and
# GitLab's merge request push options (lib.git).
test_incident_06_gerrit_submit_to_main_denied if {
	denied(git_push("acme/shop", [ref_update("refs/for/main%submit", "update")])) == {"INC-06-1"}
	inp := object.union(git_push("acme/shop", [ref_update("refs/for/main", "update")]), {"action": {"push_options": ["submit"]}})
	denied(inp) == {"INC-06-1"}
	allowed(git_push("acme/shop", [ref_update("refs/for/main", "update")]))
}

test_incident_06_gitlab_auto_merge_into_main_denied if {
	push := git_push("acme/shop", [ref_update("refs/heads/agent/fix", "create")])
	targeted := ["mr.create", "mr.target=main", "mr.merge_when_pipeline_succeeds"]
	denied(object.union(push, {"action": {"push_options": targeted}})) == {"INC-06-1"}
	untargeted := ["merge_request.create", "merge_request.auto_merge"]
	denied(object.union(push, {"action": {"push_options": untargeted}})) == {"INC-06-1"}
	allowed(object.union(push, {"action": {"push_options": ["merge_request.create", "merge_request.target=main"]}}))
}

# The same through GitHub's GraphQL API (found by review: all allowed).
update_refs(name, after, force) := graphql("github", "api.github.com", ["updateRefs"], [{"field": "updateRefs", "arguments": {"input": {"repositoryId": "R_1", "refUpdates": [{"name": name, "afterOid": after, "force": force}]}}}], {}, {})

commit_on(branch) := graphql("github", "api.github.com", ["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": branch, "message": {"headline": "x"}, "expectedHeadOid": "70ff"}}}], {}, {})

test_incident_06_graphql_update_refs_on_main_denied if {
	denied(update_refs("refs/heads/main", "70ff", true)) == {"INC-06-1"}
	denied(update_refs("refs/heads/main", zero, false)) == {"INC-06-1"}
	denied(update_refs("main", "70ff", false)) == {"INC-06-1"}

	# Not denied; held by INC-01, since updateRefs names its repository
	# by id, which does not say whether it is public.
	denied(update_refs("refs/heads/agent/fix", "70ff", false)) == set()
}

test_incident_06_graphql_refs_by_id_denied if {
	denied(graphql("github", "api.github.com", ["updateRef"], [{"field": "updateRef", "arguments": {"input": {"refId": "REF_1", "oid": "70ff", "force": true}}}], {}, {})) == {"INC-06-1"}
	denied(graphql("github", "api.github.com", ["deleteRef"], [{"field": "deleteRef", "arguments": {"input": {"refId": "REF_1"}}}], {}, {})) == {"INC-06-1"}
}

test_incident_06_graphql_commit_to_main_denied if {
	denied(commit_on({"repositoryNameWithOwner": "acme/shop", "branchName": "main"})) == {"INC-06-1"}
	denied(commit_on({"id": "BR_1"})) == {"INC-06-1"}
	allowed(commit_on({"repositoryNameWithOwner": "acme/shop", "branchName": "agent/fix"}))
}

test_incident_06_rename_main_denied if {
	denied(github("POST", "repos/rename-branch", "acme", "shop", {"branch": "main"}, {"new_name": "old-main"})) == {"INC-06-1"}
	allowed(github("POST", "repos/rename-branch", "acme", "shop", {"branch": "agent/fix"}, {"new_name": "agent/fix2"}))
}

# Commits to main without a push (found by review: all allowed).
test_incident_06_graphql_merge_branch_into_main_denied if {
	inp := graphql("github", "api.github.com", ["mergeBranch"], [{"field": "mergeBranch", "arguments": {"input": {"repositoryId": "R_1", "base": "main", "head": "feat"}}}], {}, {})
	denied(inp) == {"INC-06-1"}
}

test_incident_06_contents_api_on_main_denied if {
	denied(github("PUT", "repos/create-or-update-file-contents", "acme", "shop", {"path": "README.md"}, {"message": "x", "content": "eA==", "branch": "main"})) == {"INC-06-1"}
	denied(github("PUT", "repos/create-or-update-file-contents", "acme", "shop", {"path": "README.md"}, {"message": "x", "content": "eA=="})) == {"INC-06-1"}
	allowed(github("PUT", "repos/create-or-update-file-contents", "acme", "shop", {"path": "README.md"}, {"message": "x", "content": "eA==", "branch": "agent/fix"}))
}

test_incident_06_merges_into_main_denied if {
	denied(github("POST", "repos/merge", "acme", "shop", {}, {"base": "main", "head": "feat"})) == {"INC-06-1"}
	denied(github("POST", "repos/merge-upstream", "acme", "shop", {}, {"branch": "main"})) == {"INC-06-1"}
	allowed(github("POST", "repos/merge", "acme", "shop", {}, {"base": "agent/fix", "head": "feat"}))

	# With refs/heads/, and an empty branch for the default (found by review).
	denied(github("POST", "repos/merge", "acme", "shop", {}, {"base": "refs/heads/main", "head": "feat"})) == {"INC-06-1"}
	denied(github("POST", "repos/merge-upstream", "acme", "shop", {}, {"branch": "refs/heads/main"})) == {"INC-06-1"}
	denied(github("PUT", "repos/create-or-update-file-contents", "acme", "shop", {"path": "README.md"}, {"message": "x", "content": "eA==", "branch": "refs/heads/main"})) == {"INC-06-1"}
	denied(github("PUT", "repos/create-or-update-file-contents", "acme", "shop", {"path": "README.md"}, {"message": "x", "content": "eA==", "branch": ""})) == {"INC-06-1"}
}

# Found by review: the GitHub MCP server's commits to a branch.
test_incident_06_mcp_commits_to_main_denied if {
	denied(mcp("push_files", {"owner": "acme", "repo": "shop", "branch": "main", "files": [], "message": "m"})) == {"INC-06-1"}
	denied(mcp("delete_file", {"owner": "acme", "repo": "shop", "branch": "refs/heads/main", "path": "a", "message": "m"})) == {"INC-06-1"}
	denied(mcp("create_or_update_file", {"owner": "acme", "repo": "shop", "path": "a", "content": "x", "message": "m"})) == {"INC-06-1"}
	allowed(mcp("push_files", {"owner": "acme", "repo": "shop", "branch": "agent/fix", "files": [], "message": "m"}))
	denied(mcp("github__push_files", {"owner": "acme", "repo": "shop", "branch": "main", "files": [], "message": "m"})) == {"INC-06-1"}
}
