#!/bin/sh
# Installs the tools the test suites need, or names what is missing.
#
# As root on Debian/Ubuntu it installs missing packages with apt-get; elsewhere
# it stops with a list of what to install. Go modules come from the module
# proxy (go mod download).
#
# bench-deps: `make bench` also compares against mitmdump (Debian's
# mitmproxy) and can profile with perf (linux-perf). They are not test
# dependencies and are not installed here: internal/bench/deps.sh installs
# mitmproxy when make bench runs as root, and otherwise the benchmark skips
# only that row, loudly.
set -eu

# tool:debian-package pairs the end-to-end suite drives for real.
NEEDED="curl:curl wget:wget git:git python3:python3 aws:awscli node:nodejs gh:gh kubectl:kubernetes-client chromium:chromium"

missing_tools=""
missing_pkgs=""
for pair in $NEEDED; do
	tool=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$tool" >/dev/null 2>&1; then
		missing_tools="$missing_tools $tool"
		missing_pkgs="$missing_pkgs $pkg"
	fi
done
# A PostgreSQL server for the shared-state tests (serve with state:
# postgres://...): its binaries are off $PATH on Debian.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	missing_tools="$missing_tools postgres"
	missing_pkgs="$missing_pkgs postgresql"
fi
# git's smart-HTTP server backend, used by the fake git host.
if command -v git >/dev/null 2>&1 && [ ! -x "$(git --exec-path)/git-http-backend" ]; then
	missing_tools="$missing_tools git-http-backend"
	missing_pkgs="$missing_pkgs git"
fi

if [ -n "$missing_pkgs" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deps: installing$missing_pkgs"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086 # word splitting is intended
		apt-get install -y -qq --no-install-recommends ca-certificates $missing_pkgs >/dev/null
	else
		echo "deps: missing tools:$missing_tools" >&2
		echo "deps: install the Debian/Ubuntu packages:$missing_pkgs (or run make deps as root)" >&2
		exit 1
	fi
fi

go mod download
echo "deps: ok (curl, wget, git, python3, aws, node, gh, kubectl, chromium, postgres, Go modules)"
