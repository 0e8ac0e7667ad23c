#!/usr/bin/env bash
# The full test suite: bootstrap the toolchain, then lint, typecheck and every vitest project (unit, integration, ...).
# Ends with one line `N passed, N failed` (lint and typecheck count as one check each). Extra args go to vitest.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh || { echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1; }

mkdir -p .allot
checks_passed=0; checks_failed=0
run_check() {
  local name="$1"; shift
  echo "=== $name"
  if "$@"; then checks_passed=$((checks_passed + 1)); else checks_failed=$((checks_failed + 1)); echo "!!! $name failed"; fi
}
run_check lint pnpm exec turbo run lint --output-logs=errors-only
run_check typecheck pnpm exec turbo run typecheck --output-logs=errors-only
run_check build pnpm exec turbo run build --output-logs=errors-only
bash scripts/chromium.sh || echo "!!! chromium missing: the dashboard's browser tests will fail"

echo "=== vitest"
./scripts/docker.sh || echo "!!! no Docker engine: the chaos project will fail (see docs/chaos.md)"
rm -f .allot/vitest.json
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.allot/vitest.json "$@"
vitest_rc=$?

node scripts/test-summary.ts .allot/vitest.json "$checks_passed" "$checks_failed" "$vitest_rc"
