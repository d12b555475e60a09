#!/usr/bin/env bash
# Make sure a Docker engine answers. As root on Debian or Ubuntu, installs Debian's
# engine when there is none (a fresh CI machine has only the client) and starts it;
# does nothing when one is up. The nox sessions that need Docker run this by themselves.
set -euo pipefail

log() { printf 'start-docker-engine: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
    log "engine already running"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    log "no engine answers and this is not root: run 'sudo bash $0'," \
        "or start Docker yourself (sudo systemctl start docker)"
    exit 1
fi

# debootstrap too: without registry access, `nox -s build` makes its base with it.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    if ! command -v apt-get >/dev/null 2>&1; then
        if ! command -v dockerd >/dev/null 2>&1; then
            log "no dockerd and no apt-get here: install Docker Engine" \
                "(https://docs.docker.com/engine/install/) and start it"
            exit 1
        fi
        log "warning: no apt-get to install ${missing[*]}"
    else
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

# On a host that runs systemd, the package's own service is the engine (installing it
# may have started it already); elsewhere (containers, CI machines) dockerd is started
# in the background.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    log "starting docker.service"
    systemctl start docker || true
fi
logfile=${DOCKERD_LOG:-/var/log/dockerd.log}
if ! docker info >/dev/null 2>&1 && ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: $logfile)"
    nohup dockerd >"$logfile" 2>&1 &
fi

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
