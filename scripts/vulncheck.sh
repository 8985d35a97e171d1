#!/bin/sh
# Runs govulncheck on the module. This machine (and CI) reach the Go module
# proxy but not vuln.go.dev, so by default the vulnerability database is
# built offline from the golang.org/x/vulndb module (its data/osv files,
# indexed by its own cmd/indexdb) at a pinned snapshot, once per snapshot,
# into the Go build cache. Bump VULNDB_VERSION to refresh the data:
#   go list -m -versions golang.org/x/vulndb   (or the newest pseudo-version)
# With VULNDB=https://vuln.go.dev (or any URL govulncheck accepts) the live
# database is used instead.
#
# Exit status: govulncheck's (3 when the code calls a known vulnerability).
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}

db=${VULNDB:-}
if [ -z "$db" ]; then
	dir="$($GO env GOCACHE)/countersign-vulndb/$VULNDB_VERSION"
	if [ ! -f "$dir/index/db.json" ]; then
		echo "vulncheck: building the offline vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION (once; about a minute)"
		src=$($GO mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
			echo "vulncheck: could not download golang.org/x/vulndb@$VULNDB_VERSION from the module proxy" >&2
			exit 2
		fi
		tmp="$dir.tmp.$$"
		rm -rf "$tmp"
		# indexdb needs its own module's dependencies, not this module's.
		(cd "$src" && GOFLAGS=-mod=mod $GO run ./cmd/indexdb -vulns "$src/data/osv" -out "$tmp")
		rm -rf "$dir"
		mv "$tmp" "$dir"
	fi
	db="file://$dir"
	echo "vulncheck: offline database from golang.org/x/vulndb@$VULNDB_VERSION (a snapshot: bump VULNDB_VERSION in scripts/vulncheck.sh for newer data)"
fi
exec $GO run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "$db" ./...
