# Incident #6: Claude Code force-pushes over main (Sep 2025, Jun 2026)
#
# Asked to add files to a repository, the agent force-pushed a fresh
# history over main; in another report --force-with-lease was refused and
# the agent retried with --force. On the wire a push is
# POST …/git-receive-pack with "<old> <new> refs/heads/main": whether it
# is a fast-forward needs the repository's history, which the proxy does
# not have, so every update and deletion of a protected branch is denied,
# forced or not, through git and through the REST API, and so is a push
# that a review server merges into one (Gerrit's refs/for/main%submit,
# GitLab's merge-when-pipeline-succeeds push options). Deleting or
# force-updating a shared branch waits for a human. SSH pushes bypass the
# proxy: give agents HTTPS remotes only.
package countersign

import data.countersign.incidents
import data.countersign.lib.git
import data.countersign.lib.globs

# METADATA
# title: INC-06-1
# description: No agent pushes to, force-pushes over or deletes a protected branch.
deny contains {
	"id": "INC-06-1",
	"msg": sprintf("%s of the protected branch %s of %s is not allowed; push another branch and open a pull request", [u.kind, u.branch, incidents.repository]),
} if {
	some u in incidents.branch_updates
	incidents.protected_branch(u.branch)
}

deny contains {
	"id": "INC-06-1",
	"msg": sprintf("%s of the protected branch %s of %s is not allowed; push another branch and open a pull request", [input.action.operation, incidents.rest_branch, incidents.repository]),
} if {
	input.action.operation in {"git/update-ref", "git/delete-ref"}
	incidents.protected_branch(incidents.rest_branch)
}

# GitHub's GraphQL API moves, deletes and commits to branches too.
deny contains {
	"id": "INC-06-1",
	"msg": sprintf("updateRefs on the protected branch %s is not allowed; push another branch and open a pull request", [branch]),
} if {
	some branch in incidents.graphql_ref_updates
	incidents.protected_branch(branch)
}

deny contains {
	"id": "INC-06-1",
	"msg": sprintf("createCommitOnBranch to the protected branch %s is not allowed; commit to another branch and open a pull request", [branch]),
} if {
	some branch in incidents.graphql_commit_branches
	incidents.protected_branch(branch)
}

deny contains {
	"id": "INC-06-1",
	"msg": sprintf("mergeBranch into the protected branch %s is not allowed; open a pull request", [base]),
} if {
	some base in incidents.graphql_merge_bases
	incidents.protected_branch(base)
}

# REST calls that commit to a branch without a push: the contents API (to
# the default branch when it names none), a direct merge, a sync from the
# upstream of a fork (found by review).
deny contains {
	"id": "INC-06-1",
	"msg": sprintf("committing %s to the protected branch %s of %s through the contents API is not allowed; name another branch and open a pull request", [input.action.path, incidents.contents_branch, incidents.repository]),
} if {
	input.action.provider == "github"
	input.action.operation in {"repos/create-or-update-file-contents", "repos/delete-file"}
	incidents.protected_branch(incidents.contents_branch)
}

deny contains {
	"id": "INC-06-1",
	"msg": sprintf("%s into the protected branch %s of %s is not allowed; open a pull request", [input.action.operation, branch, incidents.repository]),
} if {
	input.action.provider == "github"
	some op, field in {"repos/merge": "base", "repos/merge-upstream": "branch"}
	input.action.operation == op
	branch := trim_prefix(input.request.body[field], "refs/heads/")
	incidents.protected_branch(branch)
}

# The GitHub MCP server's tools that commit to a branch (push_files,
# create_or_update_file, delete_file), to the default branch when they
# name none, and its merges (found by review: the same commit through
# REST was denied), also under a gateway's prefix (github__push_files).
deny contains {
	"id": "INC-06-1",
	"msg": sprintf("%s to the protected branch %s of %s is not allowed; name another branch and open a pull request", [input.action.tool, branch, incidents.repository]),
} if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	regex.match(`(^|[_.:/-])(push_files|create_or_update_file|delete_file|merge_branch)$`, input.action.tool)
	branch := inc06_mcp_branch
	incidents.protected_branch(branch)
}

inc06_mcp_branch := trim_prefix(input.action.arguments.branch, "refs/heads/") if {
	is_string(input.action.arguments.branch)
	input.action.arguments.branch != ""
} else := trim_prefix(input.action.arguments.base, "refs/heads/") if {
	is_string(input.action.arguments.base)
} else := git.default_branch

# A ref or branch named by its node id could be a protected one.
deny contains {
	"id": "INC-06-1",
	"msg": sprintf("%s through GitHub's GraphQL API names its ref by id, which could be a protected branch; use the REST API, which names the branch", [field]),
} if {
	input.action.provider == "github"
	some field in input.action.fields
	field in {"updateRef", "deleteRef"}
}

deny contains {
	"id": "INC-06-1",
	"msg": "createCommitOnBranch naming its branch by id, or not naming it, could commit to a protected branch; name it with repositoryNameWithOwner and branchName",
} if "" in incidents.graphql_commit_branches

deny contains {
	"id": "INC-06-1",
	"msg": sprintf("renaming the protected branch %s of %s is not allowed", [input.action.branch, incidents.repository]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/rename-branch"
	incidents.protected_branch(input.action.branch)
}

# METADATA
# title: INC-06-3
# description: A push whose ref updates could not all be read is denied; an unread one could be main.
deny contains {
	"id": "INC-06-3",
	"msg": sprintf("the push's ref updates could not all be read (%s); push fewer refs at once", [input.action.parse_error]),
} if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	input.action.parse_error
}

# METADATA
# title: INC-06-2
# description: Deleting or force-updating a shared branch waits for a human.
approve contains {
	"id": "INC-06-2",
	"msg": sprintf("deleting the shared branch %s of %s: others build on it, and its commits may exist nowhere else", [u.branch, incidents.repository]),
} if {
	some u in incidents.branch_updates
	u.kind == "delete"
	globs.path_any(incidents.shared_branches, u.branch)
}

approve contains {
	"id": "INC-06-2",
	"msg": sprintf("%s (forced or deleting) on the shared branch %s of %s: others build on it, and the commits it drops may exist nowhere else", [input.action.operation, incidents.rest_branch, incidents.repository]),
} if {
	input.action.destructive == true
	input.action.operation in {"git/update-ref", "git/delete-ref"}
	globs.path_any(incidents.shared_branches, incidents.rest_branch)
}
