package countersign.lib.git_test

import data.countersign.lib.git

push(updates, options) := {"action": {
	"provider": "git", "service": "receive-pack", "operation": "push",
	"updates": updates, "push_options": options,
}}

update(ref) := {"ref": ref, "old": "8ea3cd278e1907f7283f9a7b687dfb6babe5a527", "new": "70ffec3993087bcb368f6edd134b5f8971fd417a", "kind": "update"}

branches(inp) := names if {
	updates := git.branch_updates with input as inp
	names := {u.branch | some u in updates}
}

test_heads_are_branches if {
	branches(push([update("refs/heads/main"), update("refs/tags/v1")], [])) == {"main"}
	updates := git.branch_updates with input as push([object.union(update("refs/heads/agent/x"), {"kind": "delete"})], [])
	updates == {object.union(update("refs/heads/agent/x"), {"kind": "delete", "branch": "agent/x"})}
}

test_gerrit_review_is_not_a_branch_update if {
	branches(push([update("refs/for/main")], [])) == set()
	branches(push([update("refs/for/main%topic=x")], [])) == set()
	branches(push([update("refs/for/main%submit=false")], [])) == set()
	branches(push([update("refs/publish/main")], [])) == set()
	branches(push([update("refs/changes/1234")], [])) == set()
}

test_gerrit_submit_updates_the_target if {
	branches(push([update("refs/for/main%submit")], [])) == {"main"}
	branches(push([update("refs/for/main%topic=x,submit")], [])) == {"main"}
	branches(push([update("refs/for/refs/heads/main%submit")], [])) == {"main"}
	branches(push([update("refs/for/main%--submit")], [])) == {"main"}
	branches(push([update("refs/for/main%submit=true")], [])) == {"main"}
	branches(push([update("refs/publish/main%submit")], [])) == {"main"}
	branches(push([update("refs/drafts/main")], ["submit"])) == {"main"}
	branches(push([update("refs/changes/1234%submit")], [])) == {git.default_branch}
	branches(push([update("refs/changes/1234")], ["submit"])) == {git.default_branch}
	branches(push([update("refs/for/main")], ["submit"])) == {"main"}
	branches(push([update("refs/for/main")], [" submit = yes "])) == {"main"}
}

test_gitlab_auto_merge_updates_its_targets if {
	auto := ["merge_request.create", "merge_request.merge_when_pipeline_succeeds"]
	branches(push([update("refs/heads/agent/x")], auto)) == {"agent/x", git.default_branch}
	targeted := array.concat(auto, ["merge_request.target=refs/heads/main"])
	branches(push([update("refs/heads/agent/x")], targeted)) == {"agent/x", "main"}
	aliased := ["mr.target=dev", "merge_request.target = main", "mr.auto_merge=on"]
	branches(push([update("refs/heads/agent/x")], aliased)) == {"agent/x", "dev", "main"}
}

# GitLab trims the namespace, the key and the value apart (found by
# review: spaces around the '.' hid the option).
test_gitlab_options_are_read_as_gitlab_reads_them if {
	for_main := ["merge_request .merge_when_pipeline_succeeds", "mr . target = main"]
	branches(push([update("refs/heads/agent/x")], for_main)) == {"agent/x", "main"}
	aliased := ["mr .merge_when_pipeline_succeeds"]
	branches(push([update("refs/heads/agent/x")], aliased)) == {"agent/x", git.default_branch}
	spaced_key := ["merge_request. auto_merge = yes"]
	branches(push([update("refs/heads/agent/x")], spaced_key)) == {"agent/x", git.default_branch}
	enabled := ["mr.merge_when_pipeline_succeeds=enabled", "mr.target=main"]
	branches(push([update("refs/heads/agent/x")], enabled)) == {"agent/x", "main"}
	off := ["mr.merge_when_pipeline_succeeds = false", "mr.target=main"]
	branches(push([update("refs/heads/agent/x")], off)) == {"agent/x"}
}

test_gitlab_without_auto_merge_updates_only_the_push if {
	opts := ["merge_request.create", "merge_request.target=main", "merge_request.merge_when_pipeline_succeeds=false"]
	branches(push([update("refs/heads/agent/x")], opts)) == {"agent/x"}
}

test_other_providers_have_none if {
	count(git.branch_updates) == 0 with input as {"action": {"provider": "github", "updates": [update("refs/heads/main")]}}
	git.push_options == [] with input as {"action": {"provider": "git", "push_options": "submit"}}
}
