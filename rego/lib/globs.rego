# METADATA
# title: Glob helpers
# description: |
#   Matching with glob patterns as OPA's glob.match reads them: "*" any run
#   of characters (within one segment where the helper names a delimiter),
#   "**" any run across segments, "?" one character, "[a-z]" a class,
#   "{a,b}" alternatives. Import with `import data.countersign.lib.globs`.
#
#   The package is called globs, not glob: an import named glob would hide
#   the glob.match built-in in the importing module.
#
#   A malformed pattern (an unclosed "[" or "{") is a built-in error: the
#   proxy evaluates with strict built-in errors, so the request is denied
#   (policy.on_error), never silently allowed.
package countersign.lib.globs

# METADATA
# description: |
#   s matches pattern, where "*" matches any run of characters, "." and "/"
#   included: operation names ("iam:Attach*Policy"), tool names ("drop_*"),
#   MCP servers ("mcp.example.com/*").
match(pattern, s) if glob.match(pattern, null, s)

# METADATA
# description: s matches at least one of patterns (see match).
match_any(patterns, s) if {
	some pattern in patterns
	glob.match(pattern, null, s)
}

# METADATA
# description: |
#   host matches pattern label by label: "*.example.com" matches
#   "api.example.com" but neither "example.com" nor "a.b.example.com";
#   "**.example.com" matches any depth below example.com. Host names in the
#   input are lower case; the pattern is lower-cased to match.
host(pattern, name) if glob.match(lower(pattern), ["."], name)

# METADATA
# description: name matches at least one of patterns (see host).
host_any(patterns, name) if {
	some pattern in patterns
	glob.match(lower(pattern), ["."], name)
}

# METADATA
# description: |
#   p matches pattern segment by segment, "/" being the delimiter: git refs
#   ("refs/heads/release/*"), repositories ("acme/*"), URL paths
#   ("/v1/projects/*/database/query"). "**" crosses segments.
path(pattern, p) if glob.match(pattern, ["/"], p)

# METADATA
# description: p matches at least one of patterns (see path).
path_any(patterns, p) if {
	some pattern in patterns
	glob.match(pattern, ["/"], p)
}
