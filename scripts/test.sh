#!/usr/bin/env bash
# The full test suite: bootstrap the toolchain, then lint, typecheck and every vitest project (unit, integration, ...).
# Ends with one line `N passed, N failed` (lint and typecheck count as one check each). Extra args go to vitest.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh || { echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1; }
# The bootstrap runs with `set -e`; sourced, that would end this script at the first failing check, before the chaos
# run and the summary line. Every check below records its own failure instead.
set +e

mkdir -p .allot
checks_passed=0; checks_failed=0; failed_checks=""
run_check() {
  local name="$1"; shift
  echo "=== $name"
  if "$@"; then checks_passed=$((checks_passed + 1)); else checks_failed=$((checks_failed + 1)); failed_checks+=" $name"; echo "!!! $name failed"; fi
}
run_check lint pnpm exec turbo run lint --output-logs=errors-only
run_check typecheck pnpm typecheck
run_check build pnpm exec turbo run build --output-logs=errors-only
bash scripts/chromium.sh || echo "!!! chromium missing: the dashboard's browser tests will fail"

# Unit and integration tests first, then the chaos suite on its own: its ten containers would otherwise share the two
# cores with timing-sensitive integration tests (heartbeat TTLs) and make them flaky.
echo "=== vitest: unit and integration"
rm -f .allot/vitest-*.json
pnpm exec vitest run --project unit --project integration --reporter=default --reporter=json --outputFile.json=.allot/vitest-main.json --passWithNoTests "$@"
main_rc=$?

echo "=== vitest: chaos"
./scripts/docker.sh || echo "!!! no Docker engine: the chaos project will fail (see docs/chaos.md)"
# The package test (test/chaos/deb-install.test.ts) assembles a Debian image with debootstrap, Debian's own package:
# installed once, as docker.io is.
if ! command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap) >/dev/null 2>&1 ||
    echo "!!! debootstrap could not be installed: the package install test will fail"
fi
# The release test above built the packages of this tree; the package test installs those instead of building again.
if ls dist/release/allot-agent_*.deb dist/release/allot-coordinator_*.deb >/dev/null 2>&1; then export ALLOT_RELEASE_BUILT=1; fi
pnpm exec vitest run --project chaos --reporter=default --reporter=json --outputFile.json=.allot/vitest-chaos.json --passWithNoTests "$@"
chaos_rc=$?

# CI keeps only the tail of the output, so what failed is named again beside the closing line.
[ -n "$failed_checks" ] && echo "failed checks:$failed_checks"
node scripts/test-summary.ts "$checks_passed" "$checks_failed" ".allot/vitest-main.json:$main_rc" ".allot/vitest-chaos.json:$chaos_rc"
