#!/usr/bin/env bash
# The container's main process: fetch and merge the prices, start the four MCP
# services, wait until they answer, run the agent, and on every way out (normal
# end, an error, `docker stop`) stop the services and report what happened.
#
# Usage: entrypoint.sh [CONFIG]   (default: configs/default_config.json)
# Exit status: the agent's own (0 done, 1 run failed, 2 bad input); 3 no price
# data; 4 services failed to start or died; 128+N after signal N.
set -Eeuo pipefail

CONFIG=${1:-configs/default_config.json}
DATA_DIR=${DATA_DIR:-/app/data}
LOG_DIR=${LOG_DIR:-/app/logs}
READY_TIMEOUT=${READY_TIMEOUT:-30}
SERVICES_PID=""
AGENT_PID=""
STEP_PID=""  # fetch, merge or wait-ready while it runs

log() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) entrypoint: $*"
    printf '%s\n' "$line" >&2
    # A run record on the logs mount, when it is writable.
    printf '%s\n' "$line" >>"$LOG_DIR/entrypoint.log" 2>/dev/null || true
}

# shellcheck disable=SC2329  # called from the traps below
stop_pid() {
    local pid=$1 name=$2
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        log "cleanup: stopping the $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

# shellcheck disable=SC2329  # called from the traps below
cleanup() {
    local status=$?
    # Run once, and let no second Ctrl-C or SIGTERM cut the cleanup short.
    trap - EXIT
    trap '' INT TERM
    stop_pid "$STEP_PID" "current step"
    stop_pid "$AGENT_PID" agent
    stop_pid "$SERVICES_PID" services
    log "cleanup: done; exit status $status"
    exit "$status"
}

# shellcheck disable=SC2329  # called from the traps below
on_signal() {
    log "received SIG$1; shutting down"
    exit $((128 + $2))
}

# Set before anything starts, so every later exit path runs the cleanup.
trap cleanup EXIT
trap 'on_signal TERM 15' TERM
trap 'on_signal INT 2' INT

# Called directly, never through a shell function: `fn &` forks a subshell, so $!
# would name the subshell and a SIGTERM sent to it would never reach Python.
AI_TRADER=(python -m ai_trader)

# Wait for a background child while watching the services; returns the child's status.
# Waiting on background jobs (not a foreground command) lets the traps run at once.
await_child() {
    local pid=$1 finished="" status=0
    wait -n -p finished "$pid" ${SERVICES_PID:+"$SERVICES_PID"} || status=$?
    if [[ -n $SERVICES_PID && $finished == "$SERVICES_PID" ]]; then
        SERVICES_PID=""
        log "error: the services exited unexpectedly (status $status)"
        exit 4
    fi
    return "$status"
}

has_price_data() {
    compgen -G "$DATA_DIR/daily_prices_*.json" >/dev/null || [[ -s $DATA_DIR/merged.jsonl ]]
}

log "ai-trader $(python -c 'import ai_trader; print(ai_trader.__version__)') starting; config $CONFIG"
if [[ ! -f $CONFIG ]]; then
    log "error: config file $CONFIG not found (mount it, e.g. under /app/configs)"
    exit 2
fi
if ! mkdir -p "$DATA_DIR/agent_data" 2>/dev/null || [[ ! -w $DATA_DIR || ! -w $DATA_DIR/agent_data ]]; then
    log "error: $DATA_DIR is not writable by uid $(id -u); on the host run" \
        "'sudo chown -R $(id -u):$(id -g) ./data' or set AI_TRADER_UID/AI_TRADER_GID"
    exit 2
fi

# The services first: their start-up (mostly importing the MCP SDK) then overlaps the
# fetch and merge. They read merged.jsonl on each call and reload it when it changes.
log "step 1/4: starting the MCP services"
"${AI_TRADER[@]}" serve &
SERVICES_PID=$!

log "step 2/4: fetching prices"
"${AI_TRADER[@]}" fetch &
STEP_PID=$!
if ! await_child "$STEP_PID"; then
    if has_price_data; then
        log "warning: the fetch failed; continuing with the price data already present"
    else
        log "error: the fetch failed and there is no price data in $DATA_DIR"
        exit 3
    fi
fi
"${AI_TRADER[@]}" merge &
STEP_PID=$!
if ! await_child "$STEP_PID"; then
    # 2: a merged.jsonl from an earlier run is still usable when no price file is.
    if [[ -s $DATA_DIR/merged.jsonl ]]; then
        log "warning: merging failed; continuing with the existing merged.jsonl"
    else
        log "error: merging the price files failed"
        exit 3
    fi
fi

log "step 3/4: waiting until the services answer (at most ${READY_TIMEOUT}s)"
"${AI_TRADER[@]}" wait-ready --timeout "$READY_TIMEOUT" &
STEP_PID=$!
await_child "$STEP_PID" || { log "error: the services did not become ready"; exit 4; }
STEP_PID=""

log "step 4/4: running the agent"
"${AI_TRADER[@]}" run "$CONFIG" &
AGENT_PID=$!
status=0
await_child "$AGENT_PID" || status=$?
AGENT_PID=""
if [[ $status -eq 0 ]]; then
    log "the agent finished"
else
    log "error: the agent failed (status $status)"
fi
exit "$status"
