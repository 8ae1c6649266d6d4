#!/usr/bin/env bash
# Checks every published package as npm would get it: the tarball of `pnpm pack`, every entry and subpath.
#   - check-manifest.mjs: the exports layout the packages share, no unused build output, no workspace: range;
#   - attw (@arethetypeswrong/cli): types resolve, and in the right module format, under node10, node16 from
#     CommonJS, node16 from ESM and bundler resolution;
#   - publint --strict: warnings fail (its suggestions are printed but do not).
# Usage: scripts/ci/check-packages.sh [DIR]   DIR holds tarballs from scripts/ci/pack.sh; without it, packs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/ci/lib.sh
packed_tarballs "${1:-}"

node scripts/ci/check-manifest.mjs "${tarballs[@]}" || failed+=(manifest)
for tarball in "${tarballs[@]}"; do
  name=$(basename "$tarball" .tgz)
  printf '\n--- %s\n' "$name"
  pnpm exec attw "$tarball" --format table-flipped --no-color || failed+=("attw:$name")
  report=$(pnpm exec publint run "$tarball" --strict 2>&1) || failed+=("publint:$name")
  grep -v '^Running publint\|^Unpacking tarball\|^Linting' <<<"$report" || true
done
report_checks "package checks passed: ${#tarballs[@]} tarballs (attw, publint, manifest)"
