# Incident #1: GitHub MCP private-repository leak (Invariant Labs, May 2025)
#
# An agent asked to review issues on a public repository was steered by
# one of them into reading the owner's private repositories and
# publishing their content in a pull request on the public one. The proxy
# sees the writes: REST calls and pushes (a local MCP server) or
# tools/call of any tool but a read (get_…, list_…, search_…, …_read)
# that names the repository (a remote one). Every agent write to a
# repository that may be public (listed in github.public_repos, or not
# listed in github.private_repos) waits for a human, who can see what is
# being published, and so do public gists and repositories made by MCP
# tools, and every GitHub GraphQL mutation, which names its target by id.
#
# The incident's own policy is narrower: hold public writes only after
# the session read private content. countersign's policy input carries
# no session history, so this policy holds every public write.
package countersign

import data.countersign.incidents

# METADATA
# description: GitHub REST writes that publish content or discussion.
inc01_rest_publishing := {
	"repos/create-or-update-file-contents",
	"pulls/create",
	"issues/create",
	"issues/create-comment",
	"pulls/create-review-comment",
	"repos/create-commit-comment",
	"gists/create",
}

# METADATA
# description: |
#   GitHub MCP server tools that only read, by their names: get_…, list_…,
#   search_…, …_read (but mark_…_read, which writes). Every other tool
#   that names a repository may write to it: the server renames its tools
#   (create_issue became issue_write, found by review), so writes are not
#   listed one by one.
inc01_mcp_reads(tool) if regex.match(`^(get|list|search)_`, tool)

inc01_mcp_reads(tool) if {
	endswith(tool, "_read")
	not startswith(tool, "mark_")
}

inc01_publishing if {
	input.action.provider == "github"
	input.action.operation in inc01_rest_publishing
}

# Any other REST write publishes too (a release, a blob, a review, an
# issue's new body: found by review), and so does a push.
inc01_publishing if {
	input.action.provider == "github"
	not input.action.operation_type
	input.action.read_only == false
}

inc01_publishing if {
	input.action.provider == "git"
	input.action.service == "receive-pack"

	# The refs a push starts by reading publish nothing (and holding them
	# left git push waiting on a read).
	not input.action.read_only
}

# METADATA
# title: INC-01
# description: |
#   GitHub GraphQL mutations name what they change by node id, which does
#   not say whether its repository is public: every one that writes
#   content waits for a human.
approve contains {
	"id": "INC-01",
	"msg": sprintf("the GraphQL mutation %s may publish to a public repository (it names its target by id); check that nothing private is in it", [selection.field]),
} if {
	input.action.provider == "github"
	input.action.operation_type == "mutation"
	some selection in input.action.selections
	not inc01_graphql_target_private(selection)
}

# Mutations that say where they write: a commit names its repository by
# name, and a new repository is not yet public content (INC-05-3 holds a
# public one).
inc01_graphql_target_private(selection) if selection.field == "createRepository"

inc01_graphql_target_private(selection) if {
	selection.field == "createCommitOnBranch"
	names := {name |
		walk(selection.arguments, [path, name])
		path[count(path) - 1] == "repositoryNameWithOwner"
	}
	count(names) == 1
	some name in names
	is_string(name)

	# Only a plain OWNER/REPO (no ".git", spaces or other spellings a
	# server might still resolve to the public one: found by review),
	# and no branch named by id beside it.
	regex.match(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`, name)
	not endswith(lower(name), ".git")
	not inc01_branch_by_id(selection.arguments)
	not incidents.public_repository_name(name)
}

inc01_branch_by_id(arguments) if {
	walk(arguments, [path, _])
	count(path) >= 2
	path[count(path) - 1] == "id"
	path[count(path) - 2] == "branch"
}

inc01_publishing if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	is_string(input.action.tool)
	not inc01_mcp_reads(input.action.tool)
}

# Publishing that names no repository: a public gist, a public
# repository made or a fork by a remote MCP server's tools (found by
# review; INC-05-3 holds REST's).
approve contains {
	"id": "INC-01",
	"msg": sprintf("%s publishes outside any private repository; check that nothing private is in it", [inc01_what]),
} if {
	inc01_publishes_elsewhere
}

inc01_what := input.action.operation if input.action.provider == "github"

else := sprintf("the tool %s", [input.action.tool])

inc01_call := sprintf("the tool %s", [input.action.tool]) if {
	input.action.provider == "mcp"
	is_string(input.action.tool)
} else := input.action.operation if {
	is_string(input.action.operation)
} else := "this call"

inc01_publishes_elsewhere if {
	input.action.provider == "github"
	input.action.operation == "gists/create"
	input.action.public_exposure == true
}

inc01_publishes_elsewhere if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	regex.match(`(^|[_.:/-])(create_repository|fork_repository|create_gist|update_gist)$`, input.action.tool)
	not inc01_private_argument
}

inc01_private_argument if input.action.arguments.private == true

inc01_private_argument if input.action.arguments.public == false

# METADATA
# title: INC-01
# description: Agent writes to a repository that may be public (listed public, or not known to be private) wait for a human.
approve contains {
	"id": "INC-01",
	"msg": sprintf("%s publishes to %s, which is public or not known to be private (github.private_repos); check that nothing private is in it", [inc01_call, incidents.repository]),
} if {
	inc01_publishing
	incidents.public_repository
}
