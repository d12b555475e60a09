#!/usr/bin/env bash
# The container's main process: fetch and merge the prices, start the four MCP
# services, wait until they answer, run the agent, and on every way out (normal
# end, an error, `docker stop`) stop the services and report what happened.
#
# Usage: entrypoint.sh [CONFIG [OPT]]  the run (default: configs/default_config.json); OPTs
#                                        go to `ai-trader run` (--model NAME, --shard I/N)
#        AI_TRADER_SERVICES=external     the run without services of its own: they run in
#                                        their own containers (compose.split.yml), reached
#                                        at MATH_HTTP_HOST, SEARCH_HTTP_HOST, ...
#        AI_TRADER_FETCH=no              no fetch or merge: the price data was prepared
#                                        before (a sweep's workers share one data folder)
#        entrypoint.sh prepare [CONFIG]  fetch and merge only (CONFIG's market; the US by
#                                        default), then exit: the data folder that a
#                                        sweep's workers share, made ready once
#        entrypoint.sh exec CMD [ARG]  CMD as the run's user (the dashboard, healthchecks)
# Started as root (compose does), it first picks the run's user: AI_TRADER_UID and
# AI_TRADER_GID when set, else the owner of the data folder, else (root owns it) 1000.
# It hands that user what root owns in the data and logs folders, then runs again as
# that user through setpriv, so no process of the run keeps root or any capability.
# Exit status: the agent's own (0 done, 1 run failed, 2 bad input, a bad user or a
# data folder the run cannot write); 3 no price data; 4 services failed to start or
# died; 128+N after signal N.
set -Eeuo pipefail

DATA_DIR=${DATA_DIR:-/app/data}
LOG_DIR=${LOG_DIR:-/app/logs}
IMAGE_UID=1000  # the image's own user: the run's user when root owns the data folder

# --- the start as root ------------------------------------------------------------
# Kept short, and it writes nothing but ownership: its messages go to stderr only (stdout
# with AI_TRADER_LOG_FORMAT=json), so no file in the mounted folders is ever created by root.

# $1 as a JSON string, quoted, into $QUOTED: backslash, quote and every control character
# escaped. (Into a variable: a command substitution would fork for every line.)
json_string() {
    local text=$1 out="" char code i
    text=${text//\\/\\\\}
    text=${text//\"/\\\"}
    text=${text//$'\n'/\\n}
    text=${text//$'\r'/\\r}
    text=${text//$'\t'/\\t}
    if [[ $text == *[[:cntrl:]]* ]]; then
        for ((i = 0; i < ${#text}; i++)); do
            char=${text:i:1}
            if [[ $char == [[:cntrl:]] ]]; then
                printf -v code '\\u%04x' "'$char"
                out+=$code
            else
                out+=$char
            fi
        done
        text=$out
    fi
    QUOTED="\"$text\""
}

# One line of the entrypoint's own (LEVEL MESSAGE: info, warning or error) into $LINE:
# "TIME entrypoint: [error: |warning: ]MESSAGE" as ever, or with AI_TRADER_LOG_FORMAT=json
# the JSON object every process of the run writes (the package's ai_trader/logformat.py),
# in bash alone: no process started for a line.
format_line() {
    local level=$1 message=$2 now digits prefix=""
    if [[ $LOG_FORMAT != json ]]; then
        [[ $level == info ]] || prefix="$level: "
        LINE="$(date -u +%Y-%m-%dT%H:%M:%SZ) entrypoint: $prefix$message"
        return 0  # explicit: a bare return in a trap gives the status before the trap
    fi
    json_string "$message"
    now=$EPOCHREALTIME
    digits=${now//[!0-9]/}  # seconds and microseconds, whatever the decimal point
    # shellcheck disable=SC2183  # %(...)T takes the seconds; %s the milliseconds
    TZ=UTC printf -v LINE '{"time": "%(%Y-%m-%dT%H:%M:%S)T.%sZ", "level": "%s", "service": "entrypoint", "logger": "entrypoint", "event": %s, "signature": null, "day": null, "tool": null}' \
        "${digits:0:${#digits}-6}" "${digits: -6:3}" "$level" "$QUOTED"
}

# A line of the entrypoint's: on stderr in text, on stdout in JSON (as every JSON line).
say() {
    format_line "$1" "$2"
    if [[ $LOG_FORMAT == json ]]; then printf '%s\n' "$LINE"; else printf '%s\n' "$LINE" >&2; fi
}

die() {
    say error "$*"
    exit 2
}

LOG_FORMAT=${AI_TRADER_LOG_FORMAT:-text}
if [[ $LOG_FORMAT != text && $LOG_FORMAT != json ]]; then
    LOG_FORMAT=text
    die "AI_TRADER_LOG_FORMAT=$AI_TRADER_LOG_FORMAT: give text (the default) or json"
fi

# A user or group as a number: digits, or a name the image knows. Fails when unknown.
id_number() {
    local database=$1 value=$2 entry
    if [[ $value =~ ^[0-9]{1,10}$ ]] && ((10#$value < 4294967295)); then
        printf '%d' "$((10#$value))"
        return 0
    fi
    entry=$(getent "$database" "$value") || return 1
    entry=${entry#*:*:}
    printf '%s' "${entry%%:*}"
}

# Give the run a folder that root owns (Docker creates a missing bind-mount source as
# root), with whatever root left inside it. Another user's files are never touched.
# Fails, having changed nothing, when the folder itself cannot be handed over.
hand_over() {
    local dir=$1 owner=$2 reason
    [[ -d $dir && $(stat -c %u "$dir") == 0 ]] || return 0
    reason=$(chown "$owner" "$dir" 2>&1) || { printf '%s' "${reason##*: }"; return 1; }
    find "$dir" -xdev -mindepth 1 -user 0 -exec chown -h "$owner" {} + 2>/dev/null \
        || say warning "some files in $dir still belong to root"
}

drop_root() {
    local mode=$1 uid gid folder_uid folder_gid reason
    shift
    read -r folder_uid folder_gid < <(stat -c '%u %g' "$DATA_DIR" 2>/dev/null) \
        || die "$DATA_DIR is missing"
    if [[ -n ${AI_TRADER_UID:-} ]]; then
        uid=$(id_number passwd "$AI_TRADER_UID") \
            || die "AI_TRADER_UID=$AI_TRADER_UID is not a known user: give a number (id -u on the host)"
    elif ((folder_uid != 0)); then
        uid=$folder_uid
    else
        uid=$IMAGE_UID
    fi
    if [[ -n ${AI_TRADER_GID:-} ]]; then
        gid=$(id_number group "$AI_TRADER_GID") \
            || die "AI_TRADER_GID=$AI_TRADER_GID is not a known group: give a number (id -g on the host)"
    elif ((folder_uid == uid && folder_gid != 0)); then
        gid=$folder_gid
    else
        gid=$uid
    fi
    # Only the settings can name root: a folder root owns gives 1000.
    ((uid != 0)) || die "AI_TRADER_UID=$AI_TRADER_UID: the run never runs as root;" \
        "leave it unset to run as the owner of the data folder"
    ((gid != 0)) || die "AI_TRADER_GID=$AI_TRADER_GID: the run never runs in root's group;" \
        "leave it unset"
    command -v setpriv >/dev/null || die "setpriv (util-linux) is missing from the image"
    if [[ $mode == run ]]; then
        reason=$(hand_over "$DATA_DIR" "$uid:$gid") \
            || die "cannot hand $DATA_DIR, which root owns, to uid $uid ($reason);" \
                "give it to that user on the host (sudo chown $uid:$gid DATA_FOLDER)"
        # A run that will stop at the writability check below changes nothing else.
        if setpriv --reuid="$uid" --regid="$gid" --clear-groups -- test -w "$DATA_DIR"; then
            reason=$(hand_over "$LOG_DIR" "$uid:$gid") \
                || say warning "cannot hand $LOG_DIR to uid $uid ($reason)"
        fi
    fi
    # HOME stays root's otherwise; nothing should write there, and /tmp is writable.
    export HOME=/tmp AI_TRADER_STARTED_AS_ROOT=1
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --no-new-privs \
        -- "$0" "$@"
}

if [[ ${1-} == exec ]]; then
    shift
    (($#)) || die "usage: entrypoint.sh exec COMMAND [ARGS]"
    if (($(id -u) == 0)); then drop_root exec exec "$@"; fi
    exec "$@"
fi
if (($(id -u) == 0)); then drop_root run "$@"; fi

# --- the run, as its own user ----------------------------------------------------------

PREPARE_ONLY=""
PREPARE_CONFIG=""
if [[ ${1-} == prepare ]]; then
    PREPARE_ONLY=1
    shift
    (($# <= 1)) || die "usage: entrypoint.sh prepare [CONFIG] (the prices of CONFIG's market)"
    PREPARE_CONFIG=${1-}
fi
CONFIG=${1:-configs/default_config.json}
RUN_OPTIONS=("${@:2}")
READY_TIMEOUT=${READY_TIMEOUT:-30}
SERVICES=${AI_TRADER_SERVICES:-local}
FETCH=${AI_TRADER_FETCH:-yes}
SERVICES_PID=""
AGENT_PID=""
STEP_PID=""  # fetch, merge or wait-ready while it runs

# A message that starts "error: " or "warning: " is a line of that level.
log() {
    local level=info message="$*"  # quoted: bash doubles a \x01 in an unquoted $* here
    case $message in
        "error: "* | "warning: "*)
            level=${message%%: *}
            message=${message#*: }
            ;;
    esac
    say "$level" "$message"
    # A run record on the logs mount, when it is writable.
    # (A read-only or missing folder: the redirection's own complaint is silenced too.)
    { printf '%s\n' "$LINE" >>"$LOG_DIR/entrypoint.log"; } 2>/dev/null || true
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
    compgen -G "$DATA_DIR/$PRICE_GLOB" >/dev/null || [[ -s $DATA_DIR/$MERGED_NAME ]]
}

# The package's one answer before the run: its version, the market the config names (the
# US when it names none, or is one the run will refuse: the run then says why), what is
# wrong with the data folder for that market (empty: nothing) and the folder's file names
# (ai_trader/layout.py): one process for all of them.
ANSWERS=()
mapfile -t ANSWERS < <(
    python -m ai_trader.market.folder "$CONFIG" "$DATA_DIR" PRICE_GLOB MERGED_NAME AGENT_DATA)
VERSION=${ANSWERS[0]-} MARKET=${ANSWERS[1]-us} MARKET_PROBLEM=${ANSWERS[2]-} \
    PRICE_GLOB=${ANSWERS[3]-} MERGED_NAME=${ANSWERS[4]-} AGENT_DATA=${ANSWERS[5]-}
log "ai-trader $VERSION starting; config $CONFIG${RUN_OPTIONS[*]:+ (run options: ${RUN_OPTIONS[*]})}"
if [[ $SERVICES != local && $SERVICES != external ]]; then
    log "error: AI_TRADER_SERVICES=$SERVICES: give local (start them here, the default) or external"
    exit 2
fi
if [[ $FETCH != yes && $FETCH != no ]]; then
    log "error: AI_TRADER_FETCH=$FETCH: give yes (fetch and merge first, the default) or no"
    exit 2
fi
if [[ -z $PRICE_GLOB || -z $MERGED_NAME || -z $AGENT_DATA ]]; then
    log "error: the package cannot name the data folder's files"
    exit 2
fi
if [[ (-z $PREPARE_ONLY || -n $PREPARE_CONFIG) && ! -f $CONFIG ]]; then
    log "error: config file $CONFIG not found (mount it, e.g. under /app/configs)"
    exit 2
fi
# One data folder per market: another market's prices are refused before anything is written.
if [[ -n $MARKET_PROBLEM ]]; then
    log "error: $MARKET_PROBLEM"
    exit 2
fi
if ! mkdir -p "$DATA_DIR/$AGENT_DATA" 2>/dev/null || [[ ! -w $DATA_DIR || ! -w $DATA_DIR/$AGENT_DATA ]]; then
    owner=$(stat -c %u:%g "$DATA_DIR")
    if [[ -n ${AI_TRADER_UID:-}${AI_TRADER_GID:-} ]]; then
        hint="leave AI_TRADER_UID/AI_TRADER_GID unset to run as the folder's owner"
    elif [[ -n ${AI_TRADER_STARTED_AS_ROOT:-} ]]; then
        hint="its owner cannot write it: on the host run 'chmod u+w' on the data folder"
    else
        hint="run the container as the folder's owner (--user $owner), or as root to let it pick the owner"
    fi
    log "error: $DATA_DIR (owner $owner) is not writable by uid $(id -u); $hint"
    exit 2
fi

# The services first: their start-up (mostly importing the MCP SDK) then overlaps the
# fetch and merge. They read merged.jsonl on each call and reload it when it changes.
if [[ -n $PREPARE_ONLY ]]; then
    FETCH=yes
    log "step 1/4: no services: fetch and merge only (entrypoint.sh prepare)"
elif [[ $SERVICES == local ]]; then
    log "step 1/4: starting the MCP services"
    "${AI_TRADER[@]}" serve --market "$MARKET" &
    SERVICES_PID=$!
else
    # Their containers are watched by the engine; a service that dies fails the run's
    # next call to it, loudly.
    log "step 1/4: the MCP services run in their own containers (AI_TRADER_SERVICES=external)"
fi

if [[ $FETCH == no ]]; then
    log "step 2/4: using the price data already in $DATA_DIR (AI_TRADER_FETCH=no)"
    if [[ ! -s $DATA_DIR/$MERGED_NAME ]]; then
        log "error: AI_TRADER_FETCH=no, but there is no $MERGED_NAME in $DATA_DIR: prepare it first"
        exit 3
    fi
else
    log "step 2/4: fetching prices"
    "${AI_TRADER[@]}" fetch --market "$MARKET" &
    STEP_PID=$!
    if ! await_child "$STEP_PID"; then
        if has_price_data; then
            log "warning: the fetch failed; continuing with the price data already present"
        else
            log "error: the fetch failed and there is no price data in $DATA_DIR"
            exit 3
        fi
    fi
    "${AI_TRADER[@]}" merge --market "$MARKET" &
    STEP_PID=$!
    if ! await_child "$STEP_PID"; then
        # 2: a merged.jsonl from an earlier run is still usable when no price file is.
        if [[ -s $DATA_DIR/$MERGED_NAME ]]; then
            log "warning: merging failed; continuing with the existing $MERGED_NAME"
        else
            log "error: merging the price files failed"
            exit 3
        fi
    fi
fi

if [[ -n $PREPARE_ONLY ]]; then
    log "the price data in $DATA_DIR is ready"
    exit 0
fi

log "step 3/4: waiting until the services answer (at most ${READY_TIMEOUT}s)"
"${AI_TRADER[@]}" wait-ready --timeout "$READY_TIMEOUT" &
STEP_PID=$!
await_child "$STEP_PID" || { log "error: the services did not become ready"; exit 4; }
STEP_PID=""

log "step 4/4: running the agent"
"${AI_TRADER[@]}" run "$CONFIG" "${RUN_OPTIONS[@]}" &
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
