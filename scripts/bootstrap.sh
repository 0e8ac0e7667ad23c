#!/usr/bin/env bash
# Installs everything allot needs on a fresh machine, idempotently, into .tools/ (never over system files):
#   - Node 24 from the npm registry's `node` package when the node on PATH is older than 22.12
#   - pnpm at the version pinned in package.json's packageManager (corepack fails its signature check here)
#   - nats-server from the OS packages when missing
#   - the workspace's dependencies (pnpm install --frozen-lockfile)
# Source it (`. scripts/bootstrap.sh`) to get PATH set for the current shell; every step is skipped when done.
set -euo pipefail

ALLOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ALLOT_ROOT/.tools"
NODE_VERSION="$(tr -d ' \nv' < "$ALLOT_ROOT/.node-version")"
PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$ALLOT_ROOT/package.json")"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

node_is_recent() {
  # true when the node on PATH is >= 22.12 (the engines floor)
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'
}

ensure_node() {
  if [ -x "$TOOLS/node/node_modules/.bin/node" ]; then
    export PATH="$TOOLS/node/node_modules/.bin:$PATH"
  fi
  if node_is_recent; then return; fi
  log "node $(node --version 2>/dev/null || echo none) is older than 22.12: installing node@$NODE_VERSION into .tools/node"
  mkdir -p "$TOOLS/node"
  npm install --prefix "$TOOLS/node" --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >&2
  export PATH="$TOOLS/node/node_modules/.bin:$PATH"
  node_is_recent || { log "node install failed"; return 1; }
}

ensure_pnpm() {
  if [ -x "$TOOLS/pnpm/node_modules/.bin/pnpm" ] && \
     [ "$("$TOOLS/pnpm/node_modules/.bin/pnpm" --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
    export PATH="$TOOLS/pnpm/node_modules/.bin:$PATH"
    return
  fi
  log "installing pnpm@$PNPM_VERSION into .tools/pnpm"
  mkdir -p "$TOOLS/pnpm"
  npm install --prefix "$TOOLS/pnpm" --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >&2
  export PATH="$TOOLS/pnpm/node_modules/.bin:$PATH"
}

ensure_nats_server() {
  if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then return; fi
  if command -v apt-get >/dev/null 2>&1; then
    log "installing nats-server from the OS packages (apt: nats-server)"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >&2
  else
    log "nats-server is missing: install the 'nats-server' package of your OS (or a release binary) and put it on PATH"
    return 1
  fi
}

ensure_deps() {
  local stamp="$ALLOT_ROOT/node_modules/.allot-install-stamp"
  local want
  want="$(cat "$ALLOT_ROOT/pnpm-lock.yaml" "$ALLOT_ROOT/package.json" | sha1sum | cut -c1-40)-$(node --version)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "installing workspace dependencies (pnpm install)"
  (cd "$ALLOT_ROOT" && pnpm install --frozen-lockfile --reporter=silent >&2)
  echo "$want" > "$stamp"
}

export PATH="/usr/sbin:$PATH"
ensure_node
ensure_pnpm
ensure_nats_server
ensure_deps
export ALLOT_ROOT
