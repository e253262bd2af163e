#!/usr/bin/env bash
# Prints the path of a clean Debian root (debootstrap --variant=minbase, the suite of
# this machine, from the Debian archive URI this machine's apt already uses), made
# once and cached as $HQ_STATIC_CACHE/debootstrap-<suite>-minbase (default under
# /var/cache/hq-static). Tests install hq's .deb into a throw-away overlay of it,
# never into the cached root itself. Needs root and the debootstrap package
# (packaging/install-deps.sh).
set -euo pipefail
cache=${HQ_STATIC_CACHE:-/var/cache/hq-static}
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
  head -1)
if [ -z "$mirror" ] && [ -e /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
dir=$cache/debootstrap-$suite-minbase
if ! [ -e "$dir/.complete" ]; then
  rm -rf "$dir"
  mkdir -p "$cache"
  echo "debootstrap-root: making a $suite minbase root from $mirror in $dir" >&2
  debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 ||
    { tail -20 "$cache/debootstrap-$suite.log" >&2; exit 1; }
  touch "$dir/.complete"
fi
echo "$dir"
