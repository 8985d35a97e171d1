package countersign.lib.globs_test

import data.countersign.lib.globs

test_match_crosses_dots_and_slashes if {
	globs.match("iam:Attach*Policy", "iam:AttachRolePolicy")
	globs.match("mcp.example.com/*", "mcp.example.com/v1/mcp")
	globs.match("drop_*", "drop_table")
}

test_match_is_anchored if {
	not globs.match("drop_*", "undrop_table")
	not globs.match("iam:Attach*Policy", "iam:AttachRolePolicyVersion")
}

test_match_alternatives_and_classes if {
	globs.match("{drop,delete}_*", "delete_user")
	globs.match("v[0-9]", "v2")
	not globs.match("v[0-9]", "vx")
}

test_match_any if {
	globs.match_any(["list_*", "drop_*"], "drop_table")
	not globs.match_any(["list_*", "get_*"], "drop_table")
}

test_match_any_accepts_sets if globs.match_any({"drop_*"}, "drop_table")

test_match_any_of_nothing_is_false if not globs.match_any([], "drop_table")

test_host_star_is_one_label if {
	globs.host("*.example.com", "api.example.com")
	not globs.host("*.example.com", "example.com")
	not globs.host("*.example.com", "a.b.example.com")
}

test_host_double_star_is_any_depth if {
	globs.host("**.example.com", "a.b.example.com")
	globs.host("**.example.com", "api.example.com")
}

test_host_does_not_match_a_lookalike if {
	not globs.host("*.example.com", "example.com.evil.test")
	not globs.host("example.com", "evilexample.com")
}

test_host_pattern_is_lower_cased if globs.host("API.Example.COM", "api.example.com")

test_host_any if {
	globs.host_any(["registry.npmjs.org", "*.pythonhosted.org"], "files.pythonhosted.org")
	not globs.host_any(["registry.npmjs.org"], "registry.npmjs.org.evil.test")
}

test_path_star_is_one_segment if {
	globs.path("refs/heads/release/*", "refs/heads/release/1.2")
	not globs.path("refs/heads/release/*", "refs/heads/release/1.2/hotfix")
	not globs.path("refs/heads/release/*", "refs/heads/main")
}

test_path_double_star_crosses_segments if globs.path("refs/heads/**", "refs/heads/feature/login")

test_path_any if {
	globs.path_any(["acme/*", "other/shop"], "acme/shop")
	not globs.path_any(["acme/*"], "acme-evil/shop")
}
