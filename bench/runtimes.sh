#!/bin/sh
# Runtime figures for docs/benchmarks.md: kernel start unsandboxed vs in a sandbox
# (median of N, measured from POST /api/kernels to the kernel answering), "connect"
# served from the pool of pre-started runtimes (median of N, each once the pool has
# refilled), and the hub's memory with 0 and with M idle runtimes. Prints JSON. Needs
# root for the sandbox; not a test: it never fails on a figure.
#   usage: bench/runtimes.sh [N=7] [M=50]
set -eu
cd "$(dirname "$0")/.."
N=${1:-7}
M=${2:-50}
PY=/usr/bin/python3
LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
WORK=$(mktemp -d /var/tmp/lb-rt.XXXXXX)
PORT=${PORT:-18811}
HUB=
cleanup() {
    [ -n "$HUB" ] && kill -TERM "$HUB" 2>/dev/null || true
    sleep 1
    pkill -TERM -f "$WORK/" 2>/dev/null || true
    sleep 1
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start_hub() { # sandbox(0|1) pool(N)
    printf '[runtimes]\nsandbox = %s\npool = %s\norphan_timeout_s = 0\n[profile.cpu]\nmax_per_user = 1000\nidle_timeout_s = 0\n' "$1" "${2:-0}" >"$WORK/lb.ini"
    "$LABBOOK" serve --config "$WORK/lb.ini" --data "$WORK/d" --port "$PORT" >>"$WORK/hub.log" 2>&1 &
    HUB=$!
    for _ in $(seq 1 100); do
        curl -fsS -H "Authorization: token $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "hub did not start" >&2
    exit 1
}
stop_hub() {
    kill -TERM "$HUB"
    wait "$HUB" 2>/dev/null || true
    HUB=
}

"$LABBOOK" user add bench --data "$WORK/d" 2>/dev/null
TOKEN=$("$LABBOOK" user token bench --data "$WORK/d")

cat >"$WORK/driver.py" <<'PYEOF'
import json, sys, time, urllib.request, statistics, subprocess
port, token, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = 'http://127.0.0.1:%s' % port
H = {'Authorization': 'token ' + token, 'Content-Type': 'application/json'}
def call(method, path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers=H)
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
        return json.loads(raw) if raw else None
def rss(pid):
    for line in open('/proc/%s/status' % pid):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
if mode == 'connect':   # from the pool: each start once the pool has a ready runtime again
    log = sys.argv[5]
    def ready():
        return open(log).read().count('pool: runtime ')
    times = []
    for i in range(n):
        deadline = time.time() + 60
        while ready() <= i and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.perf_counter()
        k = call('POST', '/api/kernels', {'name': 'python3'})
        times.append(time.perf_counter() - t0)
        call('DELETE', '/api/kernels/' + k['id'])
    print(json.dumps({'median_s': round(statistics.median(times), 4), 'all_s': [round(t, 4) for t in times]}))
elif mode == 'start':
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        k = call('POST', '/api/kernels', {'name': 'python3'})   # answers once the kernel answers kernel_info
        times.append(time.perf_counter() - t0)
        call('DELETE', '/api/kernels/' + k['id'])
    print(json.dumps({'median_s': round(statistics.median(times), 3), 'all_s': [round(t, 3) for t in times]}))
else:
    hub = sys.argv[5]
    before = rss(hub)
    ids = [call('POST', '/api/kernels', {'name': 'python3'})['id'] for _ in range(n)]
    time.sleep(2)
    after = rss(hub)
    for i in ids:
        call('DELETE', '/api/kernels/' + i)
    print(json.dumps({'runtimes': n, 'hub_rss_before_MB': round(before / 1e6, 1),
                      'hub_rss_with_runtimes_MB': round(after / 1e6, 1),
                      'per_runtime_KB': round((after - before) / n / 1e3, 1)}))
PYEOF

start_hub 0
PLAIN=$($PY "$WORK/driver.py" "$PORT" "$TOKEN" start "$N")
stop_hub
start_hub 1
if ! grep -q "runtimes run in sandboxes" "$WORK/hub.log"; then
    echo '{"error": "no sandbox here (not root?): sandboxed figures not measured"}'
    SANDBOXED='{}'
else
    SANDBOXED=$($PY "$WORK/driver.py" "$PORT" "$TOKEN" start "$N")
fi
MEM=$($PY "$WORK/driver.py" "$PORT" "$TOKEN" mem "$M" "$HUB")
stop_hub
CONNECT='{}'
if grep -q "runtimes run in sandboxes" "$WORK/hub.log"; then
    : >"$WORK/hub.log"
    start_hub 1 1
    CONNECT=$($PY "$WORK/driver.py" "$PORT" "$TOKEN" connect "$N" "$WORK/hub.log")
    stop_hub
fi
$PY - "$PLAIN" "$SANDBOXED" "$MEM" "$CONNECT" <<'PYEOF'
import json, sys
plain, sb, mem, connect = (json.loads(a) for a in sys.argv[1:5])
out = {'kernel_start_unsandboxed': plain, 'kernel_start_sandboxed': sb, 'idle_runtimes': mem,
       'connect_from_pool': connect}
if sb.get('median_s'):
    out['sandboxed_over_unsandboxed'] = round(sb['median_s'] / plain['median_s'], 2)
print(json.dumps(out, indent=1))
PYEOF
