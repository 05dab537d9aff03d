#!/usr/bin/env bash
# Makes sure a Docker engine answers, installing and starting Debian's when none does.
# Idempotent: returns at once when `docker info` already works. Also installs debootstrap,
# which local image builds need on machines that cannot pull official images, docker-compose
# (v1, which runs docker-compose.chaos.yml) and tmux (the CLI tests drive a terminal).
set -euo pipefail

log() { echo "[engine] $*" >&2; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install $*: no apt-get here; install it by hand"; exit 2
  fi
  if [ "$(id -u)" != 0 ]; then
    log "installing $* needs root: run as root or install it by hand"; exit 2
  fi
  log "installing $* (Debian packages)"
  apt-get update -qq >/dev/null
  NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
fi
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

if docker info >/dev/null 2>&1; then
  exit 0
fi

log "starting dockerd in the background (log: /var/log/chaos-dockerd.log)"
nohup dockerd >/var/log/chaos-dockerd.log 2>&1 &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    log "engine ready: $(docker info --format '{{.ServerVersion}}')"
    exit 0
  fi
  sleep 0.5
done
log "the Docker engine did not answer within 60 s; see /var/log/chaos-dockerd.log"
exit 2
