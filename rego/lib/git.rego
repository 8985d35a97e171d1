# METADATA
# title: Git pushes
# description: |
#   The branches a git push over smart HTTP changes, including those a
#   review server merges into because of how the push was made: Gerrit's
#   submit option and GitLab's merge request push options. Import with
#   `import data.countersign.lib.git`.
#
#   A policy that protects a branch should read branch_updates rather than
#   input.action.updates: a push to refs/for/main%submit names no branch
#   under refs/heads/, yet Gerrit merges it into main at once.
package countersign.lib.git

# METADATA
# description: |
#   The branch name branch_updates gives a GitLab merge request that names
#   no target (the repository's default branch) or a Gerrit change
#   submitted by its number: a branch the proxy cannot know. Treat it as
#   protected.
default_branch := "the default branch"

# METADATA
# description: |
#   Each branch a push changes, as its update ({"ref", "old", "new",
#   "kind"}) with "branch" added: the name under refs/heads/ for a direct
#   update ("create", "update" or "delete"); the target branch, as kind
#   "update", for a Gerrit change pushed with the submit option
#   (refs/for/main%submit, or `git push -o submit`; default_branch for a
#   change's refs/changes/N, whose branch the push does not name) and for a GitLab merge
#   request pushed to merge when its pipeline succeeds (default_branch
#   when it names no target).
branch_updates contains object.union(u, {"branch": substring(u.ref, count("refs/heads/"), -1)}) if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	some u in input.action.updates
	startswith(u.ref, "refs/heads/")
}

branch_updates contains object.union(u, {"branch": branch, "kind": "update"}) if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	some u in input.action.updates
	some m in regex.find_all_string_submatch_n(`^refs/(?:for|publish|drafts)/([\s\S]*)$`, u.ref, 1)
	parts := split(m[1], "%")

	# Gerrit takes refs/for/refs/heads/main for refs/for/main, and older
	# servers refs/publish/ and refs/drafts/ for refs/for/.
	branch := trim_prefix(parts[0], "refs/heads/")
	gerrit_submits(parts)
}

# A new patch set pushed straight to an existing change (refs/changes/N,
# older Gerrit) and submitted merges into that change's branch, which the
# push does not name.
branch_updates contains object.union(u, {"branch": default_branch, "kind": "update"}) if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	some u in input.action.updates
	startswith(u.ref, "refs/changes/")
	gerrit_submits(split(u.ref, "%"))
}

# GitLab: push options that open a merge request and merge it once the
# pipeline passes push to its target.
branch_updates contains {"ref": "merge request", "branch": target, "kind": "update"} if {
	input.action.provider == "git"
	input.action.service == "receive-pack"
	some o in gitlab_options
	o.key in {"merge_request.merge_when_pipeline_succeeds", "merge_request.auto_merge"}
	truthy(o.value)
	some target in merge_request_targets
}

# METADATA
# description: The push options (`git push -o`) of a push; empty when none.
default push_options := []

push_options := input.action.push_options if is_array(input.action.push_options)

gerrit_submits(parts) if {
	count(parts) > 1
	some o in split(parts[1], ",")
	option_set(trim_prefix(o, "--"), "submit")
}

gerrit_submits(_) if {
	some o in push_options
	option_set(trim_prefix(o, "--"), "submit")
}

# METADATA
# description: |
#   option is "key", or "key=value" with a value that does not read as
#   false ("false", "no", "off", "0", …; spaces around either ignored).
option_set(option, key) if trim_space(option) == key

option_set(option, key) if {
	[k, v] := split(trim_space(option), "=")
	trim_space(k) == key
	truthy(v)
}

# Any value but one that reads as false counts as true: servers differ on
# what they accept, and reading "enabled" as false would miss a merge.
truthy(v) if not lower(trim_space(v)) in {"false", "f", "no", "n", "off", "0"}

# GitLab's push options as GitLab reads them (Gitlab::PushOptions):
# "namespace.key=value" with namespace, key and value each trimmed and
# "mr" read as "merge_request" (found by review: "mr .auto_merge" is
# GitLab's auto-merge too).
gitlab_options contains {"key": concat(".", [namespace, trim_space(m[2])]), "value": trim_space(m[3])} if {
	some option in push_options
	some m in regex.find_all_string_submatch_n(`^([^.]+)\.([^=]+)=?([\s\S]*)$`, option, 1)
	namespace := object.get({"mr": "merge_request"}, trim_space(m[1]), trim_space(m[1]))
}

# Every target named (each is judged; two are not a conflict), or the
# default branch.
named_targets := {trim_prefix(o.value, "refs/heads/") |
	some o in gitlab_options
	o.key == "merge_request.target"
}

merge_request_targets := named_targets if count(named_targets) > 0

merge_request_targets := {default_branch} if count(named_targets) == 0
