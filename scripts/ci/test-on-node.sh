#!/usr/bin/env bash
# Runs the test suite of every published package (packages/*, one at a time, all of them even when one
# fails) on Node VERSION, installed by node.sh; pnpm and vitest run on that Node (first in PATH).
# Expects the build done (the suites import other packages' dist/ only where a test says so).
# Usage: scripts/ci/test-on-node.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$(scripts/ci/node.sh "${1:?usage: test-on-node.sh VERSION}"):$PATH"
export PATH

echo "node --version: $(node --version)   (in a package script: $(pnpm --filter @sluice/core exec node --version))"
# shellcheck disable=SC2046 # one --filter per package directory
pnpm --workspace-concurrency=1 --no-bail $(node scripts/ci/published.mjs | sed 's/^/--filter .\//') run test
