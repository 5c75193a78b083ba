#!/bin/sh
# Soak: N clients, each its own user with its own kernel, loop small cells over the
# kernel WebSocket and save their notebooks for M minutes against one hub on
# loopback (a fresh data folder, the default deployment: as root, sandboxed
# runtimes and the pool). bench/soak.py is the client; it prints each minute's
# executes, errors and latency percentiles, the RSS and fd counts of the hub, its
# launcher and every agent every 10 s, and a verdict on errors and growth. Stops
# everything it started on exit, Ctrl-C included. Exit status 1 when there were errors.
#   usage: bench/soak.sh [CLIENTS=30] [MINUTES=10]
#   env: SOAK_CLIENTS, SOAK_MINUTES (for the arguments), SOAK_PAUSE_MS (200: a client's
#   pause after each cell), SOAK_SAVE_EVERY (10: cells between saves), SOAK_TIMEOUT_S
#   (30: per cell and per request), SOAK_RECORD (0: bare kernels, no notebook sessions), PORT (18831), LABBOOK_BIN, SOAK_KEEP_LOG (a file
#   to copy the hub's log to)
set -eu
cd "$(dirname "$0")/.."
N=${1:-${SOAK_CLIENTS:-30}}
M=${2:-${SOAK_MINUTES:-10}}
case "$N$M" in *[!0-9]*) echo "usage: bench/soak.sh [CLIENTS] [MINUTES]" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 200 ] || [ "$M" -lt 1 ] || [ "$M" -gt 120 ]; then
    echo "soak: CLIENTS must be 1-200 and MINUTES 1-120" >&2
    exit 2
fi
PY=/usr/bin/python3
LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
PORT=${PORT:-18831}
WORK=$(mktemp -d /var/tmp/lb-soak.XXXXXX)
chmod 711 "$WORK" # the hub's own user (started as root, it drops to it) must reach its data
HUB=
CLIENT=

# shellcheck disable=SC2317 # (our_agents and cleanup run from the EXIT trap)
# pids of this run's agents, found by their command line (DATA/runtimes/ID/agent.json)
our_agents() {
    for d in /proc/[0-9]*; do
        if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q " agent $WORK/d/runtimes/"; then
            echo "${d#/proc/}"
        fi
    done
}

# shellcheck disable=SC2317
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$CLIENT" ]; then kill -TERM "$CLIENT" 2>/dev/null || true; fi
    if [ -n "$HUB" ] && kill -TERM "$HUB" 2>/dev/null; then
        for _ in $(seq 1 150); do
            kill -0 "$HUB" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HUB" 2>/dev/null || true
    fi
    left=$(our_agents)
    if [ -n "$left" ]; then
        echo "soak: agents still running after the hub stopped, killed: $left" >&2
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
        sleep 1
    fi
    if [ -n "${SOAK_KEEP_LOG:-}" ]; then cp "$WORK/hub.log" "$SOAK_KEEP_LOG" || true; fi
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
    echo "soak: something already answers on port $PORT" >&2
    exit 2
fi
# orphan_timeout_s = 0: runtimes end with the hub, so that nothing outlives the soak
printf '[server]\nbind = 127.0.0.1\n[runtimes]\norphan_timeout_s = 0\n' >"$WORK/lb.ini"
: >"$WORK/tokens"
i=1
while [ "$i" -le "$N" ]; do
    "$LABBOOK" user add "soak$i" --data "$WORK/d" >/dev/null 2>&1
    echo "soak$i $("$LABBOOK" user token "soak$i" --data "$WORK/d")" >>"$WORK/tokens"
    i=$((i + 1))
done
"$LABBOOK" serve --config "$WORK/lb.ini" --data "$WORK/d" --port "$PORT" >>"$WORK/hub.log" 2>&1 &
HUB=$!
TOKEN=$(head -n 1 "$WORK/tokens" | cut -d' ' -f2)
up=
for _ in $(seq 1 300); do
    if [ -z "$up" ] && curl -fsS -H "Authorization: token $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null 2>&1; then
        up=1
    fi
    if [ -n "$up" ] && grep -q 'pool: runtime .* ready' "$WORK/hub.log"; then break; fi
    sleep 0.1
done
if [ -z "$up" ]; then
    echo "soak: the hub did not come up:" >&2
    tail -n 20 "$WORK/hub.log" >&2
    exit 2
fi
echo "# labbook $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep -m1 -o 'runtimes run in sandboxes[^;]*' "$WORK/hub.log" || echo "(runtimes not sandboxed)"

# bounded: the clients stop at M minutes by themselves; this is the backstop
timeout -s TERM $((M * 60 + 300)) $PY bench/soak.py "http://127.0.0.1:$PORT" "$WORK/tokens" "$M" "$HUB" "$WORK/d" &
CLIENT=$!
rc=0
wait "$CLIENT" || rc=$?
CLIENT=
echo "# hub log: $(grep -c . "$WORK/hub.log") lines, $(grep -ciE 'warn|error' "$WORK/hub.log" || true) with warn or error"
# the same message once, with its count (the time stamp cut off)
grep -iE 'warn|error' "$WORK/hub.log" | cut -d' ' -f3- | sort | uniq -c | sort -rn | head -n 15 || true
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
