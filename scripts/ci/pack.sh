#!/usr/bin/env bash
# Packs every published package (packages/* that is not private) with `pnpm pack` into DIR: what npm
# would get, with workspace: ranges replaced by versions and only the `files`. Builds them first (turbo;
# a cache hit after `pnpm build`). Usage: scripts/ci/pack.sh DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mkdir -p "${1:?usage: pack.sh DIR}" && cd "$1" && pwd)
rm -f "$dir"/*.tgz

pnpm exec turbo run build --filter='./packages/*' --output-logs=errors-only >/dev/null
for pkg in $(node scripts/ci/published.mjs); do
  (cd "$pkg" && pnpm pack --pack-destination "$dir" >/dev/null)
done
ls "$dir"
