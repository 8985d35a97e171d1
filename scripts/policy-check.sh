#!/bin/sh
# Checks the Rego of rego/ and of every example policy directory with the
# real OPA CLI (the version go.mod pins with its tool directive, the one
# countersign embeds) and with `countersign policy test`, and fails unless:
#
#   - `opa fmt` finds nothing to reformat,
#   - `opa check --strict` passes,
#   - every test passes under both testers, and both report the same
#     result for every test, test by test.
#
# Examples import data.countersign.lib..., which countersign embeds; `opa`
# needs rego/lib on its command line, so both testers get it there (and
# then run the library's tests too). Each example is also run on its own
# by countersign, against the embedded library, as a user would run it.
#
# The testers differ in one way by design: countersign raises built-in
# errors (as the proxy does, where a failing built-in denies the request),
# `opa test` turns them into undefined values. A test that depends on the
# difference is reported here as a disagreement: write tests that hold
# under both.
#
# Usage: scripts/policy-check.sh [EXAMPLE_DIR...]   (default: examples/policies/*/)
set -eu
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

GO=${GO:-go}
opa() { $GO tool opa "$@"; }
$GO build -o "$tmp/countersign" ./cmd/countersign
countersign() { "$tmp/countersign" "$@"; }

if [ $# -gt 0 ]; then
	examples="$*"
else
	examples=$(ls -d examples/policies/*/)
fi

echo "policy: opa $(opa version | sed -n 's/^Version: //p'), fmt"
opa fmt --fail --list rego examples || {
	echo "policy: the files above need \`go tool opa fmt -w rego examples\`" >&2
	exit 1
}

echo "policy: opa check --strict"
opa check --strict rego
for d in $examples; do
	opa check --strict rego/lib "$d"
done
if [ $# -eq 0 ]; then
	# The sets compile together too (no package annotation or helper rule
	# collides), so users can combine them.
	opa check --strict rego/lib examples/policies
fi

# results FILE: the "package.test: STATUS" lines of a verbose test run,
# without durations, sorted.
results() {
	grep -E '^data\.[^ ]+: (PASS|FAIL|ERROR|SKIPPED)' "$1" | sed 's/ (.*$//' | sort
}

failed=0
total=0
# compare NAME ARGS...: runs both testers on ARGS and compares them.
compare() {
	name=$1
	shift
	opa_rc=0
	cs_rc=0
	opa test -v "$@" >"$tmp/opa.out" 2>&1 || opa_rc=$?
	countersign policy test -v "$@" >"$tmp/cs.out" 2>&1 || cs_rc=$?
	results "$tmp/opa.out" >"$tmp/opa.res"
	results "$tmp/cs.out" >"$tmp/cs.res"
	n=$(wc -l <"$tmp/opa.res" | tr -d ' ')
	if [ "$n" -eq 0 ]; then
		echo "policy: $name: no tests ran" >&2
		cat "$tmp/opa.out" "$tmp/cs.out" >&2
		failed=1
		return
	fi
	total=$((total + n))
	ok=1
	if ! diff -u "$tmp/opa.res" "$tmp/cs.res" >"$tmp/diff"; then
		echo "policy: $name: opa test and countersign policy test disagree (-opa +countersign):" >&2
		cat "$tmp/diff" >&2
		ok=0
	fi
	if [ "$opa_rc" -ne 0 ] || [ "$cs_rc" -ne 0 ]; then
		echo "policy: $name: tests failed (opa test exit $opa_rc, countersign policy test exit $cs_rc):" >&2
		for out in "$tmp/opa.out" "$tmp/cs.out"; do
			grep -vE ': PASS \(|^[^ ]+\.rego:[0-9]+:$|^$' "$out" >&2 || true
		done
		ok=0
	fi
	if [ "$ok" -eq 1 ]; then
		echo "policy: $name: $n tests pass, and opa test and countersign policy test agree on each"
	else
		failed=1
	fi
}

compare rego rego
for d in $examples; do
	compare "$d" rego/lib "$d"
	# As a user runs it: the example alone, the library from the binary.
	if ! countersign policy test "$d" >"$tmp/alone.out" 2>&1; then
		echo "policy: $d: countersign policy test with the embedded library failed:" >&2
		cat "$tmp/alone.out" >&2
		failed=1
	fi
done

if [ "$failed" -ne 0 ]; then
	echo "policy: FAILED" >&2
	exit 1
fi
echo "policy: ok, $total test results compared"
