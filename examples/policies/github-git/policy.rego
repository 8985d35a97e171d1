# GitHub and git guard
#
# Protects branches and repositories, through git smart HTTP (pushes)
# and the GitHub REST and GraphQL APIs alike. Denied: pushes and
# force-pushes to protected branches (main), deleting branches other than
# the agent's own, deleting, transferring or archiving a repository,
# moving or deleting tags, changing branch protection or rulesets, and
# making an existing repository public. Held for a human: pushes and merges into
# release branches, pull request merges (the merge call does not name its
# base branch), and creating public repositories or gists. SSH pushes
# never reach an HTTP proxy: give agents HTTPS remotes only.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign

import data.countersign.lib.git
import data.countersign.lib.globs

default gh_protected := []

gh_protected := data.countersign.github.protected_branches

default gh_release := []

gh_release := data.countersign.github.release_branches

default gh_deletable := []

gh_deletable := data.countersign.github.deletable_branches

gh_repo := sprintf("%s/%s", [input.action.owner, input.action.repo]) if {
	input.action.provider == "github"
	is_string(input.action.owner)
	is_string(input.action.repo)
} else := input.action.repo if {
	is_string(input.action.repo)
} else := sprintf("repository %s", [input.action.repository_id]) if {
	# /repositories/{id}/…: GitHub names the repository by id there.
	is_string(input.action.repository_id)
} else := "a repository"

git_verbs := {"create": "creating", "update": "pushing to", "delete": "deleting"}

# The branch a GitHub REST ref operation names ("heads/main" → "main").
gh_ref_branch := substring(input.action.ref, count("heads/"), -1) if {
	input.action.provider == "github"
	startswith(input.action.ref, "heads/")
}

# A branch as GitHub reads a name in a body: with or without refs/heads/
# (or heads/).
gh_branch_name(name) := trim_prefix(trim_prefix(name, "refs/heads/"), "heads/")

# The branch a contents-API commit or an upstream sync goes to; the
# default branch when the body names none (or names ""). While the body is
# still to come (a client waiting for "100 Continue"), nobody knows yet:
# the request is decided again with it.
gh_contents_branch := gh_branch_name(input.request.body.branch) if {
	is_string(input.request.body.branch)
	input.request.body.branch != ""
} else := git.default_branch if {
	not input.request.body_pending
}

gh_is_protected(branch) if globs.path_any(gh_protected, branch)

gh_is_protected(branch) if branch == git.default_branch

# METADATA
# title: GIT-001
# description: No agent pushes to, force-pushes over or deletes a protected branch.
deny contains {
	"id": "GIT-001",
	"msg": sprintf("%s %s of %s is not allowed; push another branch and open a pull request", [object.get(git_verbs, u.kind, "changing"), u.branch, gh_repo]),
} if {
	input.action.provider == "git"
	some u in git.branch_updates
	gh_is_protected(u.branch)
}

# METADATA
# title: GIT-002
# description: No agent deletes a branch other than its own scratch branches.
deny contains {
	"id": "GIT-002",
	"msg": sprintf("deleting the branch %s of %s is not allowed; only %s may be deleted by an agent", [u.branch, gh_repo, concat(", ", gh_deletable)]),
} if {
	input.action.provider == "git"
	some u in git.branch_updates
	u.kind == "delete"
	not gh_is_protected(u.branch)
	not globs.path_any(gh_deletable, u.branch)
}

# METADATA
# title: GIT-003
# description: Pushes into release branches wait for a human.
approve contains {
	"id": "GIT-003",
	"msg": sprintf("%s the release branch %s of %s", [object.get(git_verbs, u.kind, "changing"), u.branch, gh_repo]),
} if {
	input.action.provider == "git"
	some u in git.branch_updates
	u.kind != "delete"
	globs.path_any(gh_release, u.branch)
}

# METADATA
# title: GIT-004
# description: |
#   A push whose ref updates could not all be read (more than the inspected
#   part of the body holds) is denied: an unread update could be main.
deny contains {
	"id": "GIT-004",
	"msg": sprintf("the push's ref updates could not all be read (%s); push fewer refs at once", [input.action.parse_error]),
} if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	input.action.parse_error
}

# METADATA
# title: GH-001
# description: No agent moves, force-updates, renames or deletes a protected branch through the API.
deny contains {
	"id": "GH-001",
	"msg": sprintf("%s on %s of %s is not allowed; push a branch and open a pull request", [input.action.operation, gh_ref_branch, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation in {"git/update-ref", "git/delete-ref"}
	gh_is_protected(gh_ref_branch)
}

deny contains {
	"id": "GH-001",
	"msg": sprintf("%s on %s of %s is not allowed", [input.action.operation, input.action.branch, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation in {"repos/rename-branch", "repos/delete-branch-protection", "repos/delete-admin-branch-protection"}
	gh_is_protected(input.action.branch)
}

# A commit through the contents API lands on a branch without a push.
deny contains {
	"id": "GH-001",
	"msg": sprintf("committing %s to %s of %s through the contents API is not allowed; name another branch and open a pull request", [input.action.path, gh_contents_branch, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation in {"repos/create-or-update-file-contents", "repos/delete-file"}
	gh_is_protected(gh_contents_branch)
}

# A branch named in the URL beside (or instead of) the body: GitHub may
# read either.
deny contains {
	"id": "GH-001",
	"msg": sprintf("%s with a branch in the URL is not allowed; name the branch in the body only", [input.action.operation]),
} if {
	input.action.provider == "github"
	input.action.operation in {"repos/create-or-update-file-contents", "repos/delete-file", "repos/merge-upstream"}
	input.request.query.branch
}

# Syncing a fork's branch with its upstream moves the branch.
deny contains {
	"id": "GH-001",
	"msg": sprintf("syncing %s of %s with its upstream is not allowed; sync another branch and open a pull request", [gh_contents_branch, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/merge-upstream"
	gh_is_protected(gh_contents_branch)
}

# A direct merge (POST /repos/{o}/{r}/merges) into a protected branch.
deny contains {
	"id": "GH-001",
	"msg": sprintf("merging into %s of %s without a pull request is not allowed", [input.request.body.base, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/merge"
	is_string(input.request.body.base)
	gh_is_protected(gh_branch_name(input.request.body.base))
}

# A merge whose base the body does not name (it may come in the URL, which
# GitHub also reads) cannot be judged.
deny contains {
	"id": "GH-001",
	"msg": sprintf("merging into %s without naming the base branch in the body is not allowed", [gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/merge"
	not input.request.body_pending
	not gh_names_base
}

gh_names_base if {
	is_string(input.request.body.base)
	input.request.body.base != ""
	not input.request.query.base
}

# Branch protection and rulesets are what guards a branch from pushes that
# never pass through countersign (a workflow on another branch, with a
# token that can write): no agent changes them.
gh_protection_op(op) if regex.match(`^repos/.*(protection|ruleset|status-check|access-restrictions)`, op)

deny contains {
	"id": "GH-001",
	"msg": sprintf("%s on %s is not allowed: branch protection and rulesets are for humans to change", [input.action.operation, gh_repo]),
} if {
	input.action.provider == "github"
	not input.action.read_only
	gh_protection_op(input.action.operation)
}

# What else rulesets and protection rest on: the default branch and the
# repository's name and custom properties (what rulesets target), the
# environments' deployment rules, and whether workflows may approve pull
# requests.
deny contains {
	"id": "GH-001",
	"msg": sprintf("%s on %s is not allowed: rulesets and branch protection rest on it; ask a human", [input.action.operation, gh_repo]),
} if {
	input.action.provider == "github"
	not input.action.read_only
	gh_protection_adjacent(input.action.operation)
}

deny contains {
	"id": "GH-001",
	"msg": sprintf("changing the %s of %s is not allowed: rulesets that target it would no longer apply; ask a human", [key, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/update"
	some key in {"default_branch", "name"}
	object.get(input.request.body, key, null) != null
}

gh_protection_adjacent(op) if op in {
	"repos/custom-properties-for-repos-create-or-update-repository-values",
	"actions/set-github-actions-default-workflow-permissions-repository",
	"actions/set-github-actions-default-workflow-permissions-organization",
	"repos/create-or-update-environment",
	"repos/delete-an-environment",
}

gh_protection_adjacent(op) if contains(op, "deployment-branch-polic")

deny contains {
	"id": "GH-001",
	"msg": sprintf("%s is not allowed: branch protection and rulesets are for humans to change", [field]),
} if {
	input.action.provider == "github"
	some field in input.action.fields
	regex.match(`(BranchProtectionRule|RepositoryRuleset)$`, field)
}

# GraphQL: a commit on a protected branch, or a forced ref update.
# GitHub takes a branch name with or without refs/heads/.
gh_graphql_branch(name) := trim_prefix(name, "refs/heads/")

deny contains {
	"id": "GH-001",
	"msg": sprintf("createCommitOnBranch to %s is not allowed; commit to another branch and open a pull request", [branch]),
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "createCommitOnBranch"
	walk(selection.arguments, [path, branch])
	path[count(path) - 1] == "branchName"
	is_string(branch)
	gh_is_protected(gh_graphql_branch(branch))
}

# A branch named by its node id (branch: {id: …}) could be main, even
# beside a branchName: which of the two GitHub takes is not documented.
deny contains {
	"id": "GH-001",
	"msg": "createCommitOnBranch naming its branch by id is not allowed: the id does not say which branch it is; name it with repositoryNameWithOwner and branchName",
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "createCommitOnBranch"
	gh_branch_by_id(selection.arguments)
}

deny contains {
	"id": "GH-001",
	"msg": "createCommitOnBranch without a branchName is not allowed; name the branch with repositoryNameWithOwner and branchName",
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "createCommitOnBranch"
	not gh_names_branch(selection.arguments)
}

gh_branch_by_id(arguments) if {
	walk(arguments, [path, _])
	count(path) >= 2
	path[count(path) - 1] == "id"
	path[count(path) - 2] == "branch"
}

gh_names_branch(arguments) if {
	walk(arguments, [path, branch])
	path[count(path) - 1] == "branchName"
	is_string(branch)
}

deny contains {
	"id": "GH-001",
	"msg": "a forced ref update through GraphQL is not allowed",
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field in {"updateRef", "updateRefs"}
	walk(selection.arguments, [path, true])
	path[count(path) - 1] == "force"
}

# updateRef names its ref by node id, which could be main: the REST call
# names the branch and is decided on it.
deny contains {
	"id": "GH-001",
	"msg": "updateRef through GraphQL is not allowed: the ref id does not say which branch it is; use PATCH /repos/OWNER/REPO/git/refs/heads/BRANCH",
} if {
	input.action.provider == "github"
	"updateRef" in input.action.fields
}

deny contains {
	"id": "GH-001",
	"msg": sprintf("updateRefs on %s is not allowed; push another branch and open a pull request", [name]),
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "updateRefs"
	walk(selection.arguments, [path, name])
	path[count(path) - 1] == "name"
	is_string(name)
	gh_is_protected(gh_graphql_branch(name))
}

# METADATA
# title: GH-002
# description: No agent deletes a branch through the API, or deletes or transfers a repository.
deny contains {
	"id": "GH-002",
	"msg": sprintf("deleting the branch %s of %s is not allowed; only %s may be deleted by an agent", [gh_ref_branch, gh_repo, concat(", ", gh_deletable)]),
} if {
	input.action.operation == "git/delete-ref"
	not gh_is_protected(gh_ref_branch)
	not globs.path_any(gh_deletable, gh_ref_branch)
}

deny contains {
	"id": "GH-002",
	"msg": "deleting refs through GraphQL is not allowed; the ref id does not say which branch it is",
} if {
	input.action.provider == "github"
	"deleteRef" in input.action.fields
}

# updateRefs deletes a ref given an all-zero afterOid.
deny contains {
	"id": "GH-002",
	"msg": "deleting refs through GraphQL (updateRefs to an all-zero oid) is not allowed",
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "updateRefs"
	walk(selection.arguments, [path, oid])
	path[count(path) - 1] == "afterOid"
	oid == "0000000000000000000000000000000000000000"
}

deny contains {
	"id": "GH-002",
	"msg": sprintf("%s of %s is not allowed: the repository would leave your control; ask a human", [input.action.operation, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation in {"repos/delete", "repos/transfer", "orgs/delete"}
}

deny contains {
	"id": "GH-002",
	"msg": sprintf("archiving %s is not allowed; ask a human", [gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/update"
	input.action.archived == true
}

# Tags mark releases: moving or deleting one rewrites what was released,
# by a push as through the API (found by review).
deny contains {
	"id": "GH-002",
	"msg": sprintf("%s the tag %s of %s is not allowed; push a new tag instead", [object.get(git_verbs, u.kind, "changing"), u.ref, gh_repo]),
} if {
	input.action.provider == "git"
	some u in input.action.updates
	startswith(u.ref, "refs/tags/")
	u.kind != "create"
}

deny contains {
	"id": "GH-002",
	"msg": sprintf("updateRefs on the tag %s is not allowed; push a new tag instead", [name]),
} if {
	input.action.provider == "github"
	some selection in input.action.selections
	selection.field == "updateRefs"
	walk(selection.arguments, [path, name])
	path[count(path) - 1] == "name"
	is_string(name)
	startswith(name, "refs/tags/")
}

deny contains {
	"id": "GH-002",
	"msg": sprintf("%s on the tag %s of %s is not allowed; ask a human", [input.action.operation, input.action.ref, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation in {"git/update-ref", "git/delete-ref"}
	startswith(input.action.ref, "tags/")
}

deny contains {
	"id": "GH-002",
	"msg": sprintf("%s is not allowed: the repository would leave your control; ask a human", [field]),
} if {
	input.action.provider == "github"
	some field in input.action.fields
	field in {"deleteRepository", "transferRepository", "archiveRepository"}
}

# METADATA
# title: GH-003
# description: No agent makes an existing repository public.
deny contains {
	"id": "GH-003",
	"msg": sprintf("making %s public is not allowed; ask a human", [gh_repo]),
} if {
	input.action.provider == "github"
	input.action.public_exposure == true
	not gh_creates_something
}

gh_creates_something if input.action.operation in {
	"repos/create-for-authenticated-user", "repos/create-in-org",
	"repos/create-using-template", "gists/create",
}

gh_creates_something if {
	input.action.operation_type == "mutation"
	input.action.fields == ["createRepository"]
}

# METADATA
# title: GH-004
# description: Creating a public repository or gist waits for a human.
approve contains {
	"id": "GH-004",
	"msg": sprintf("%s creates something public", [input.action.operation]),
} if {
	input.action.provider == "github"
	input.action.public_exposure == true
	gh_creates_something
}

# METADATA
# title: GH-005
# description: Pull request merges wait for a human; direct merges into release branches too.
approve contains {
	"id": "GH-005",
	"msg": sprintf("merging pull request #%s of %s; the merge call does not name its base branch, so every merge is approved by a human", [input.action.pull_number, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "pulls/merge"
}

approve contains {
	"id": "GH-005",
	"msg": "merging a pull request through GraphQL; the call names the pull request by id only",
} if {
	input.action.provider == "github"
	some field in input.action.fields
	field in {"mergePullRequest", "enablePullRequestAutoMerge", "enqueuePullRequest", "mergeBranch"}
}

approve contains {
	"id": "GH-005",
	"msg": sprintf("merging %s into the release branch %s of %s", [input.request.body.head, input.request.body.base, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/merge"
	is_string(input.request.body.base)
	globs.path_any(gh_release, gh_branch_name(input.request.body.base))
}

# A commit status is what a required check reads: one set by an agent
# could pass a check CI never ran.
approve contains {
	"id": "GH-005",
	"msg": sprintf("setting a commit status (%s) on %s of %s; a required check could pass without CI", [object.get(input.request.body, "context", "default"), input.action.sha, gh_repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/create-commit-status"
}

# METADATA
# title: GH-006
# description: |
#   A GitHub API write that countersign does not recognise (a route newer
#   than its table) waits for a human: no rule here could judge it.
approve contains {
	"id": "GH-006",
	"msg": sprintf("%s %s is a GitHub write countersign does not recognise; check what it does", [input.request.method, input.request.path]),
} if {
	input.action.provider == "github"
	not input.action.read_only
	not input.action.operation_type
	gh_no_operation
}

# No operation named (absent or empty), read by its own path so that the
# decision cache keys on it alone.
gh_no_operation if not input.action.operation

gh_no_operation if input.action.operation == ""
