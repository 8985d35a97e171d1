# Incident #1: GitHub MCP private-repository leak (Invariant Labs, May 2025)
#
# An agent asked to review issues on a public repository was steered by
# one of them into reading the owner's private repositories and
# publishing their content in a pull request on the public one. The proxy
# sees the writes: REST contents and pull request calls (a local MCP
# server) or tools/call of any tool but a read (get_…, list_…, search_…,
# …_read) that names the repository (a remote one). Every agent write to a public
# repository waits for a human, who can see what is being published.
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

inc01_publishing if {
	input.action.provider == "mcp"
	input.action.method == "tools/call"
	is_string(input.action.tool)
	not inc01_mcp_reads(input.action.tool)
}

# METADATA
# title: INC-01
# description: Agent writes to a public repository wait for a human.
approve contains {
	"id": "INC-01",
	"msg": sprintf("%s publishes to the public repository %s; check that nothing private is in it", [object.get(input.action, "operation", "this call"), incidents.repository]),
} if {
	inc01_publishing
	incidents.public_repository
}
