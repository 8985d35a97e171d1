#!/bin/sh
# What `make bench` needs beyond Go: mitmdump (Debian's mitmproxy) for the
# "vs mitmdump" comparison, and perf (Debian's linux-perf) only for
# BENCHFLAGS=-profile=DIR. Neither is a test dependency, so scripts/deps.sh
# leaves them alone. As root with apt-get this installs mitmproxy; otherwise
# it says loudly that the mitmdump row will be skipped. It never fails the
# benchmark run.
set -u

if command -v mitmdump >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "bench: installing mitmproxy (mitmdump) for the comparison row"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends mitmproxy >/dev/null; then
		exit 0
	fi
	echo "bench: WARNING: could not install mitmproxy: the mitmdump row will be SKIPPED" >&2
else
	echo "bench: WARNING: mitmdump is missing: the mitmdump row will be SKIPPED (Debian/Ubuntu: apt-get install mitmproxy)" >&2
fi
exit 0
