package countersign.github_git_test

import data.countersign

# Actions as countersign's git, GitHub and GraphQL classifiers make them of
# git's and gh's requests (action/git, action/github, action/graphql
# testdata).

zero := "0000000000000000000000000000000000000000"

push(updates) := {
	"request": {"method": "POST", "scheme": "https", "host": "github.com", "port": 443, "path": "/acme/shop.git/git-receive-pack", "query": {}, "headers": {}, "tunnel": false},
	"action": {
		"provider": "git", "service": "receive-pack", "operation": "push", "host": "github.com", "repo": "acme/shop",
		"updates": updates, "resources": [u.ref | some u in updates],
		"read_only": false, "destructive": count([u | some u in updates; u.kind == "delete"]) > 0,
	},
}

update(ref) := {"ref": ref, "old": "8ea3cd278e1907f7283f9a7b687dfb6babe5a527", "new": "70ffec3993087bcb368f6edd134b5f8971fd417a", "kind": "update"}

create(ref) := {"ref": ref, "old": zero, "new": "d0e8e573f553528405bcb379637de2c86ee62572", "kind": "create"}

delete(ref) := {"ref": ref, "old": "d0e8e573f553528405bcb379637de2c86ee62572", "new": zero, "kind": "delete"}

rest(method, operation, fields, body) := {
	"request": {"method": method, "scheme": "https", "host": "api.github.com", "port": 443, "path": "/repos/acme/shop", "query": {}, "headers": {}, "body": body, "tunnel": false},
	"action": object.union(
		{"provider": "github", "operation": operation, "owner": "acme", "repo": "shop", "host": "api.github.com", "ghes": false, "read_only": method == "GET", "destructive": method == "DELETE"},
		fields,
	),
}

graphql(fields, selections, extra) := {
	"request": {"method": "POST", "scheme": "https", "host": "api.github.com", "port": 443, "path": "/graphql", "query": {}, "headers": {}, "tunnel": false},
	"action": object.union(
		{"provider": "github", "operation_type": "mutation", "operation": concat(",", fields), "fields": fields, "selections": selections, "read_only": false, "destructive": false},
		extra,
	),
}

ids(reasons) := {r.id | some r in reasons}

denied(inp) := reasons if {
	reasons := ids(countersign.deny) with input as inp
}

held(inp) := reasons if {
	reasons := ids(countersign.approve) with input as inp
}

allowed(inp) if {
	denied(inp) == set()
	held(inp) == set()
}

messages(inp) := {r.msg | some r in countersign.deny with input as inp}

# git push origin main
test_push_to_main_denied if {
	denied(push([update("refs/heads/main")])) == {"GIT-001"}
	messages(push([update("refs/heads/main")])) == {"pushing to main of acme/shop is not allowed; push another branch and open a pull request"}
}

# git push --force origin feature:main: on the wire a force push is an
# update like any other (old and new are not compared), so it is denied the
# same way.
test_force_push_to_main_denied if denied(push([update("refs/heads/main")])) == {"GIT-001"}

# git push origin :main
test_delete_main_denied if {
	denied(push([delete("refs/heads/main")])) == {"GIT-001"}
	messages(push([delete("refs/heads/main")])) == {"deleting main of acme/shop is not allowed; push another branch and open a pull request"}
}

# git push origin main main:refs/heads/other: one protected ref denies the push.
test_push_with_main_among_other_refs_denied if denied(push([update("refs/heads/main"), create("refs/heads/other")])) == {"GIT-001"}

test_push_to_master_denied if denied(push([update("refs/heads/master")])) == {"GIT-001"}

test_push_feature_branch_allowed if {
	allowed(push([create("refs/heads/feature")]))
	allowed(push([update("refs/heads/feature/login")]))
}

test_push_tag_allowed if allowed(push([create("refs/tags/v1.0.0")]))

test_delete_branch_denied if denied(push([delete("refs/heads/feature")])) == {"GIT-002"}

test_delete_own_scratch_branch_allowed if allowed(push([delete("refs/heads/agent/try-1")]))

test_push_to_release_branch_held if {
	held(push([update("refs/heads/release/1.2")])) == {"GIT-003"}
	denied(push([update("refs/heads/release/1.2")])) == set()
}

test_fetch_allowed if {
	inp := {
		"request": {"method": "POST", "host": "github.com", "path": "/acme/shop.git/git-upload-pack"},
		"action": {"provider": "git", "service": "upload-pack", "operation": "fetch", "repo": "acme/shop", "read_only": true, "destructive": false},
	}
	allowed(inp)
}

# gh api -X PATCH repos/acme/shop/git/refs/heads/main -F sha=… -F force=true
test_rest_force_update_main_denied if denied(rest("PATCH", "git/update-ref", {"ref": "heads/main", "force": true, "destructive": true}, {"sha": "70ff", "force": true})) == {"GH-001"}

test_rest_update_feature_ref_allowed if allowed(rest("PATCH", "git/update-ref", {"ref": "heads/feature", "force": false}, {"sha": "70ff"}))

# gh api -X DELETE repos/acme/shop/git/refs/heads/feature/login
test_rest_delete_branch_denied if denied(rest("DELETE", "git/delete-ref", {"ref": "heads/feature/login"}, null)) == {"GH-002"}

test_rest_delete_main_denied if denied(rest("DELETE", "git/delete-ref", {"ref": "heads/main"}, null)) == {"GH-001"}

# Tags mark releases: moving or deleting one rewrites what was released.
test_rest_delete_or_move_tag_denied if {
	denied(rest("DELETE", "git/delete-ref", {"ref": "tags/v0.1"}, null)) == {"GH-002"}
	denied(rest("PATCH", "git/update-ref", {"ref": "tags/v0.1", "force": true}, {"sha": "70ff", "force": true})) == {"GH-002"}
}

# GitHub takes a branch in a body with or without refs/heads/, and "" as
# the default branch (found by review).
test_rest_branch_spellings_denied if {
	denied(rest("PUT", "repos/create-or-update-file-contents", {"path": "a.txt"}, {"message": "m", "content": "", "branch": "refs/heads/main"})) == {"GH-001"}
	denied(rest("PUT", "repos/create-or-update-file-contents", {"path": "a.txt"}, {"message": "m", "content": "", "branch": ""})) == {"GH-001"}
	denied(rest("POST", "repos/merge", {}, {"base": "refs/heads/main", "head": "feature"})) == {"GH-001"}
}

# A merge that does not name its base in the body (?base=main in the URL).
test_rest_merge_without_base_denied if {
	denied(rest("POST", "repos/merge", {}, {"head": "feature"})) == {"GH-001"}
	denied(object.union(rest("POST", "repos/merge", {}, {"base": "feature-b", "head": "feature"}), {"request": {"query": {"base": ["main"]}}})) == {"GH-001"}
	allowed(rest("POST", "repos/merge", {}, {"base": "feature-b", "head": "feature"}))
}

test_rest_merge_upstream_into_main_denied if {
	denied(rest("POST", "repos/merge-upstream", {}, {"branch": "main"})) == {"GH-001"}
	allowed(rest("POST", "repos/merge-upstream", {}, {"branch": "agent/sync"}))
}

# Branch protection guards main from pushes that never pass countersign.
test_branch_protection_changes_denied if {
	denied(rest("PUT", "repos/update-branch-protection", {"branch": "main"}, {"allow_force_pushes": true, "allow_deletions": true, "required_status_checks": null, "enforce_admins": null, "required_pull_request_reviews": null, "restrictions": null})) == {"GH-001"}
	denied(rest("DELETE", "repos/delete-pull-request-review-protection", {"branch": "main"}, null)) == {"GH-001"}
	denied(rest("DELETE", "repos/delete-repo-ruleset", {}, null)) == {"GH-001"}
	denied(graphql(["deleteBranchProtectionRule"], [{"field": "deleteBranchProtectionRule", "arguments": {"input": {"branchProtectionRuleId": "BPR_1"}}}], {})) == {"GH-001"}
	allowed(rest("GET", "repos/get-branch-protection", {"branch": "main"}, null))
}

test_merge_queue_held if held(graphql(["enqueuePullRequest"], [{"field": "enqueuePullRequest", "arguments": {"input": {"pullRequestId": "PR_1"}}}], {})) == {"GH-005"}

test_org_delete_and_archive_denied if {
	denied(rest("DELETE", "orgs/delete", {}, null)) == {"GH-002"}
	denied(rest("PATCH", "repos/update", {"public_exposure": false, "archived": true}, {"archived": "true"})) == {"GH-002"}
	allowed(rest("PATCH", "repos/update", {"public_exposure": false, "archived": false}, {"description": "x"}))
}

# A write to a route countersign's table does not know.
# The classifier leaves operation out when no route matches.
test_unrecognised_write_held if {
	held(json.remove(rest("POST", "", {}, {"name": "x"}), ["action/operation"])) == {"GH-006"}
	allowed(json.remove(rest("GET", "", {}, null), ["action/operation"]))
}

test_rest_commit_to_main_denied if {
	denied(rest("PUT", "repos/create-or-update-file-contents", {"path": "README.md"}, {"message": "m", "content": "", "branch": "main"})) == {"GH-001"}
	denied(rest("PUT", "repos/create-or-update-file-contents", {"path": "README.md"}, {"message": "m", "content": ""})) == {"GH-001"}
	allowed(rest("PUT", "repos/create-or-update-file-contents", {"path": "README.md"}, {"message": "m", "content": "", "branch": "agent/docs"}))
}

test_rest_branch_protection_removal_denied if denied(rest("DELETE", "repos/delete-branch-protection", {"branch": "main"}, null)) == {"GH-001"}

# gh repo delete acme/shop / gh api -X DELETE repos/acme/shop
test_delete_repository_denied if {
	denied(rest("DELETE", "repos/delete", {}, null)) == {"GH-002"}
	messages(rest("DELETE", "repos/delete", {}, null)) == {"repos/delete of acme/shop is not allowed: the repository would leave your control; ask a human"}
}

# The same through /repositories/{id}, where GitHub names it by id.
by_id(input_doc) := {
	"request": input_doc.request,
	"action": object.union(object.remove(input_doc.action, ["owner", "repo"]), {"repository_id": "1296269"}),
}

test_delete_repository_by_id_denied if {
	denied(by_id(rest("DELETE", "repos/delete", {}, null))) == {"GH-002"}
	messages(by_id(rest("DELETE", "repos/delete", {}, null))) == {"repos/delete of repository 1296269 is not allowed: the repository would leave your control; ask a human"}
}

test_transfer_repository_denied if denied(rest("POST", "repos/transfer", {}, {"new_owner": "evil"})) == {"GH-002"}

# gh repo edit acme/shop --visibility public
test_make_repository_public_denied if {
	denied(rest("PATCH", "repos/update", {"public_exposure": true}, {"visibility": "public"})) == {"GH-003"}
	denied(rest("PATCH", "repos/update", {"public_exposure": true}, {"private": false})) == {"GH-003"}
}

test_other_repository_update_allowed if allowed(rest("PATCH", "repos/update", {"public_exposure": false}, {"description": "shop front end"}))

# gh repo create leak-repo --public
test_create_public_repository_held if {
	inp := graphql(["createRepository"], [{"field": "createRepository", "arguments": {"input": {"name": "leak-repo", "visibility": "PUBLIC"}}}], {"public_exposure": true})
	held(inp) == {"GH-004"}
	denied(inp) == set()
}

test_create_private_repository_allowed if {
	inp := rest("POST", "repos/create-for-authenticated-user", {"public_exposure": false}, {"name": "x", "private": true})
	allowed(inp)
}

test_graphql_public_visibility_on_existing_repository_denied if {
	inp := graphql(["updateRepository"], [{"field": "updateRepository", "arguments": {"input": {"repositoryId": "R_1", "visibility": "PUBLIC"}}}], {"public_exposure": true})
	denied(inp) == {"GH-003"}
}

# gh api graphql -f query='mutation($id:ID!){deleteRef(input:{refId:$id}){clientMutationId}}'
test_graphql_delete_ref_denied if denied(graphql(["deleteRef"], [{"field": "deleteRef", "arguments": {"input": {"refId": "REF_kwDOAbc"}}}], {"destructive": true})) == {"GH-002"}

test_graphql_forced_ref_update_denied if denied(graphql(["updateRef"], [{"field": "updateRef", "arguments": {"input": {"refId": "REF_1", "oid": "70ff", "force": true}}}], {})) == {"GH-001"}

test_graphql_commit_to_main_denied if {
	inp := graphql(["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"repositoryNameWithOwner": "acme/shop", "branchName": "main"}}}}], {})
	denied(inp) == {"GH-001"}
}

# Found by review: GitHub takes refs/heads/main, and a branch id.
test_graphql_commit_to_main_by_full_ref_denied if {
	inp := graphql(["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"repositoryNameWithOwner": "acme/shop", "branchName": "refs/heads/main"}}}}], {})
	denied(inp) == {"GH-001"}
}

test_graphql_commit_to_branch_by_id_denied if {
	inp := graphql(["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"id": "REF_kwDOmain"}}}}], {})
	denied(inp) == {"GH-001"}
}

test_graphql_commit_naming_branch_both_ways_denied if {
	inp := graphql(["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"id": "REF_kwDOmain", "branchName": "feature"}}}}], {})
	denied(inp) == {"GH-001"}
}

test_graphql_update_ref_denied if denied(graphql(["updateRef"], [{"field": "updateRef", "arguments": {"input": {"refId": "REF_1", "oid": "70ff"}}}], {})) == {"GH-001"}

test_graphql_update_refs_on_main_denied if {
	inp := graphql(["updateRefs"], [{"field": "updateRefs", "arguments": {"input": {"repositoryId": "R_1", "refUpdates": [{"name": "refs/heads/main", "afterOid": "70ff"}]}}}], {})
	denied(inp) == {"GH-001"}
}

test_graphql_update_refs_delete_denied if {
	inp := graphql(["updateRefs"], [{"field": "updateRefs", "arguments": {"input": {"repositoryId": "R_1", "refUpdates": [{"name": "refs/heads/feature", "afterOid": "0000000000000000000000000000000000000000"}]}}}], {})
	denied(inp) == {"GH-002"}
}

test_graphql_update_refs_on_feature_allowed if {
	inp := graphql(["updateRefs"], [{"field": "updateRefs", "arguments": {"input": {"repositoryId": "R_1", "refUpdates": [{"name": "refs/heads/feature", "afterOid": "70ff"}]}}}], {})
	allowed(inp)
}

test_graphql_commit_to_feature_allowed if {
	inp := graphql(["createCommitOnBranch"], [{"field": "createCommitOnBranch", "arguments": {"input": {"branch": {"repositoryNameWithOwner": "acme/shop", "branchName": "feature"}}}}], {})
	allowed(inp)
}

# gh pr merge 42
test_pull_request_merge_held if {
	inp := rest("PUT", "pulls/merge", {"pull_number": "42"}, {"merge_method": "merge"})
	held(inp) == {"GH-005"}
	denied(inp) == set()
}

test_direct_merge_into_release_held if held(rest("POST", "repos/merge", {}, {"base": "release/1.2", "head": "feature"})) == {"GH-005"}

test_direct_merge_into_main_denied if denied(rest("POST", "repos/merge", {}, {"base": "main", "head": "feature"})) == {"GH-001"}

test_reads_allowed if {
	allowed(rest("GET", "repos/get", {}, null))
	allowed(graphql(["viewer"], [{"field": "viewer"}], {"operation_type": "query", "read_only": true}))
}

# A client waiting for "100 Continue" is asked about the head first; the
# missing body must not read as "no branch named".
test_rest_commit_head_before_the_body_allowed if {
	inp := rest("PUT", "repos/create-or-update-file-contents", {"path": "big.bin"}, null)
	allowed(object.union(inp, {"request": {"body_pending": true}}))
}

# More ref updates than the inspected part of the body holds
# (action/git/testdata/push-many-refs-truncated.txt).
test_push_with_unread_updates_denied if {
	inp := object.union(push([create("refs/heads/many/1")]), {"action": {"parse_error": "the push's ref updates do not fit in the inspected part of the body (inspect.body_limit); only the first 6 are listed"}})
	denied(inp) == {"GIT-004"}
}

# Found by review: pushes that the server merges into a protected branch.
test_gerrit_submit_to_protected_branch_denied if {
	"GIT-001" in denied(push([update("refs/for/main%submit")]))
	"GIT-001" in denied(push([update("refs/for/main%topic=x,submit")]))
	"GIT-001" in denied(json.patch(push([update("refs/for/main")]), [{"op": "add", "path": "/action/push_options", "value": ["submit"]}]))
	not "GIT-001" in denied(push([update("refs/for/main")]))

	# Other spellings Gerrit accepts (found by review).
	"GIT-001" in denied(push([update("refs/for/refs/heads/main%submit")]))
	"GIT-001" in denied(push([update("refs/for/main%submit=true")]))
	"GIT-001" in denied(push([update("refs/for/main%--submit")]))
	"GIT-001" in denied(json.patch(push([update("refs/for/main")]), [{"op": "add", "path": "/action/push_options", "value": ["submit=yes"]}]))
	not "GIT-001" in denied(push([update("refs/for/main%submit=false")]))
}

test_gitlab_auto_merge_into_protected_branch_denied if {
	opts := ["merge_request.create", "merge_request.target=main", "merge_request.merge_when_pipeline_succeeds"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": opts}]))
	untargeted := ["merge_request.create", "merge_request.merge_when_pipeline_succeeds"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": untargeted}]))
	not "GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": ["merge_request.create"]}]))

	# GitLab's alias and values (found by review).
	aliased := ["mr.create", "mr.target=main", "mr.merge_when_pipeline_succeeds=true"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": aliased}]))
	two_targets := ["mr.target=dev", "merge_request.target=main", "mr.merge_when_pipeline_succeeds"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": two_targets}]))
	spaced := [" merge_request.merge_when_pipeline_succeeds ", "merge_request.target = main"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": spaced}]))

	# Spaces around the '.', which GitLab trims (found by review).
	dotted := ["merge_request.create", "mr .merge_when_pipeline_succeeds"]
	"GIT-001" in denied(json.patch(push([create("refs/heads/agent/fix")]), [{"op": "add", "path": "/action/push_options", "value": dotted}]))
}

# A push or GraphQL moves or deletes tags as the REST API does (found by
# review); creating one is fine.
test_tag_moves_by_push_or_graphql_denied if {
	denied(push([update("refs/tags/v1")])) == {"GH-002"}
	denied(push([delete("refs/tags/v1")])) == {"GH-002"}
	allowed(push([create("refs/tags/v2")]))
	denied(graphql(["updateRefs"], [{"field": "updateRefs", "arguments": {"input": {"repositoryId": "R_1", "refUpdates": [{"name": "refs/tags/v1", "beforeOid": "8ea3", "afterOid": "70ff"}]}}}], {})) == {"GH-002"}
}

# A branch in the URL beside the body's.
test_branch_in_the_url_denied if {
	denied(object.union(rest("PUT", "repos/create-or-update-file-contents", {"path": "a.txt"}, {"message": "m", "content": "", "branch": "feature"}), {"request": {"query": {"branch": ["main"]}}})) == {"GH-001"}
	denied(rest("POST", "repos/merge", {}, {"base": "heads/main", "head": "feature"})) == {"GH-001"}
}

# What rulesets and protection rest on (found by review).
test_protection_adjacent_changes_denied if {
	denied(rest("PATCH", "repos/update", {"public_exposure": false, "archived": false}, {"default_branch": "agent/x"})) == {"GH-001"}
	denied(rest("PATCH", "repos/update", {"public_exposure": false, "archived": false}, {"name": "shop-old"})) == {"GH-001"}
	denied(rest("PATCH", "repos/custom-properties-for-repos-create-or-update-repository-values", {}, {"properties": [{"property_name": "tier", "value": "dev"}]})) == {"GH-001"}
	denied(rest("PUT", "actions/set-github-actions-default-workflow-permissions-repository", {}, {"can_approve_pull_request_reviews": true})) == {"GH-001"}
	denied(rest("DELETE", "repos/delete-deployment-branch-policy", {}, null)) == {"GH-001"}
	denied(rest("PUT", "repos/create-or-update-environment", {}, {"deployment_branch_policy": null})) == {"GH-001"}
}

test_commit_status_held if held(rest("POST", "repos/create-commit-status", {"sha": "70ff"}, {"state": "success", "context": "ci/test"})) == {"GH-005"}
