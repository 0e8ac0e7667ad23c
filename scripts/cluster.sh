#!/usr/bin/env bash
# The main job: a local allot cluster on this machine. Bootstraps the toolchain first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh
exec node apps/cli/src/main.ts cluster "$@"
