#!/usr/bin/env bash
# Make sure a Docker engine answers. Installs and starts Debian's engine when
# none does (a fresh CI machine has only the client); does nothing when one is up.
set -euo pipefail

log() { printf 'start-docker-engine: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
    log "engine already running"
    exit 0
fi

# debootstrap too: without registry access, `nox -s build` makes its base with it.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "no engine and not root: install and start Docker yourself"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

logfile=${DOCKERD_LOG:-/var/log/dockerd.log}
log "starting dockerd (log: $logfile)"
nohup dockerd >"$logfile" 2>&1 &

for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        log "engine ready: $(docker version --format '{{.Server.Version}}')"
        exit 0
    fi
    sleep 1
done
log "engine did not answer within 60 s; last lines of $logfile:"
tail -n 20 "$logfile" >&2 || true
exit 1
