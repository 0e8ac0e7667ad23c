#!/usr/bin/env bash
# Installs everything allot needs on a fresh machine, idempotently, into .tools/ (never over system files):
#   - Node 24 from the npm registry's `node` package when the node on PATH is older than 22.18 (the first Node that runs
#     TypeScript files without flags)
#   - pnpm at the version pinned in package.json's packageManager (corepack fails its signature check here)
#   - nats-server $NATS_SERVER_VERSION (Debian unstable's package, unpacked into .tools/nats; the system's is never touched)
#   - the workspace's dependencies (pnpm install --frozen-lockfile)
# Source it (`. scripts/bootstrap.sh`) to get PATH set for the current shell; every step is skipped when done.
set -euo pipefail

ALLOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ALLOT_ROOT/.tools"
NODE_VERSION="$(tr -d ' \nv' < "$ALLOT_ROOT/.node-version")"
PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$ALLOT_ROOT/package.json")"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

node_is_recent() {
  # true when the node on PATH is >= 22.18 (the engines floor: type stripping without flags)
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)'
}

ensure_node() {
  if [ -x "$TOOLS/node/node_modules/.bin/node" ]; then
    export PATH="$TOOLS/node/node_modules/.bin:$PATH"
  fi
  if node_is_recent; then return; fi
  log "node $(node --version 2>/dev/null || echo none) is older than 22.18: installing node@$NODE_VERSION into .tools/node"
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

# The NATS server allot needs: 2.12 or later (atomic batch publish, per-message TTL); Debian bookworm's 2.9.10 is out of
# upstream support. Debian unstable's package is a static Go binary that runs on bookworm (libc >= 2.34); it is fetched
# with apt-get download against a sources list and state directory of its own, so the system's apt state is untouched.
NATS_SERVER_VERSION="2.15.1"
NATS_SERVER_DEB_VERSION="2.15.1-1"

nats_server_is_current() {
  [ -x "$TOOLS/nats/nats-server" ] && "$TOOLS/nats/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION\$"
}

ensure_nats_server() {
  export NATS_SERVER_BIN="$TOOLS/nats/nats-server"
  export PATH="$TOOLS/nats:$PATH"
  if nats_server_is_current; then return; fi
  command -v apt-get >/dev/null 2>&1 || { log "nats-server $NATS_SERVER_VERSION is missing: put a nats-server >= 2.12 at $TOOLS/nats/nats-server"; return 1; }
  log "installing nats-server $NATS_SERVER_VERSION (Debian unstable's package) into .tools/nats"
  local apt="$TOOLS/apt-unstable"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb" "$TOOLS/nats"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main" > "$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update -qq >&2
  (cd "$apt/deb" && rm -f nats-server_*.deb && apt-get "${opts[@]}" download "nats-server=$NATS_SERVER_DEB_VERSION" >&2)
  rm -rf "$apt/x" && dpkg-deb -x "$apt/deb/nats-server_${NATS_SERVER_DEB_VERSION}_$(dpkg --print-architecture).deb" "$apt/x"
  install -m 0755 "$apt/x/usr/sbin/nats-server" "$TOOLS/nats/nats-server"
  rm -rf "$apt/x"
  nats_server_is_current || { log "nats-server install failed"; return 1; }
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

ensure_node
ensure_pnpm
ensure_nats_server
ensure_deps
export ALLOT_ROOT
