#!/usr/bin/env bash
# Installs the packed tarballs with npm, as a user would, into a copy of test-consumers/; then each
# consumer project there (CommonJS with node16 resolution, CommonJS with the NestJS starter's node10, ESM
# with nodenext) typechecks an import of every entry and subpath, and load.cjs and load.mjs load every one
# at run time with require() and import().
# Usage: scripts/ci/check-consumers.sh [DIR]   DIR holds tarballs from scripts/ci/pack.sh; without it, packs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/ci/lib.sh
packed_tarballs "${1:-}"
tsc=$PWD/node_modules/.bin/tsc

work=$(mktemp -d)
cleanup+=("$work")
cp -R test-consumers/. "$work"
node scripts/ci/consumer-entries.mjs "$work" "${tarballs[@]}"
(cd "$work" && npm install --no-audit --no-fund --no-package-lock --prefer-offline --loglevel=error "${tarballs[@]}")

consumers=(cjs-node16 cjs-node10 esm-nodenext)
for consumer in "${consumers[@]}"; do
  echo "--- typecheck $consumer"
  (cd "$work/$consumer" && "$tsc" -p . && echo ok) || failed+=("$consumer:typecheck")
done
for loader in load.cjs load.mjs; do
  echo "--- run time: $loader"
  node "$work/$loader" || failed+=("$loader")
done
report_checks "consumer checks passed: ${#tarballs[@]} packages, typechecked by ${#consumers[@]} projects, loaded by require() and import()"
