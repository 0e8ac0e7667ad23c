#!/usr/bin/env bash
# The main job: a local allot cluster on this machine. Bootstraps the toolchain first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh
# The coordinator serves the dashboard from apps/dashboard/dist: build it (turbo skips it when nothing changed).
pnpm exec turbo run build --filter=@allot/dashboard --output-logs=errors-only >&2
exec node apps/cli/src/main.ts cluster "$@"
