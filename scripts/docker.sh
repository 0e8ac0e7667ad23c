#!/usr/bin/env bash
# Makes a Docker engine answer for the chaos suite (test/chaos), idempotently; every step is skipped when done:
#   1. an engine already answers (DOCKER_HOST, or /var/run/docker.sock): nothing to do (Podman's socket works too);
#   2. otherwise, when dockerd is missing, install Debian's docker.io (apt-get, as root or with sudo);
#   3. start `dockerd --iptables=false --storage-driver=vfs` in the background (log: .allot/dockerd.log) and wait
#      until it answers.
# Exits 0 when an engine answers, 1 with the reason on stderr otherwise (the chaos suite then fails saying so).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[docker] %s\n' "$*" >&2; }
export PATH="/usr/sbin:/sbin:$PATH"

engine_answers() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
    return
  fi
  local sock=/var/run/docker.sock
  [ -S "$sock" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
  elif command -v docker >/dev/null 2>&1; then
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
  else
    node -e 'require("http").get({socketPath:process.argv[1],path:"/_ping",timeout:3000},r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' "$sock"
  fi
}

if engine_answers; then exit 0; fi
if [ -n "${DOCKER_HOST:-}" ]; then
  log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine in its place"
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    log "no Docker engine answers on /var/run/docker.sock and this user cannot become root to start one"
    exit 1
  fi
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "dockerd is missing and there is no apt-get to install Debian's docker.io: install Docker or Podman yourself"
    exit 1
  fi
  log "installing Debian's docker.io (apt-get)"
  $sudo apt-get update -qq >&2 || true
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker.io >&2; then
    log "apt-get install docker.io failed"
    exit 1
  fi
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  mkdir -p "$ROOT/.allot"
  log "starting dockerd --iptables=false --storage-driver=vfs (log: .allot/dockerd.log)"
  # setsid: the engine outlives this script and the test run, as a system service would.
  $sudo setsid dockerd --iptables=false --storage-driver=vfs >>"$ROOT/.allot/dockerd.log" 2>&1 < /dev/null &
fi
for _ in $(seq 1 60); do
  if engine_answers; then log "engine answers"; exit 0; fi
  sleep 0.5
done
log "dockerd did not answer within 30 s: see .allot/dockerd.log"
tail -n 5 "$ROOT/.allot/dockerd.log" >&2 2>/dev/null || true
exit 1
