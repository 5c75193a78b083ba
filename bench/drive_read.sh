#!/bin/sh
# Drive reads inside a runtime against the same reads on the host (docs/benchmarks.md):
# N files of S bytes are written into a user's drive, then the same Python loop (list
# the folder, open and read every file) runs R rounds on the host and, alternating,
# in a sandboxed runtime through /content/drive/MyDrive and through the links of
# drive.mount('/Drive'). Prints JSON: median and best seconds per place, files/s and
# the runtime/host ratios of the medians and of the bests. Warm page cache by default;
# COLD=1 drops the page cache before every pass (root; it slows everything else on the
# machine for a moment).
# Needs root for the sandbox (otherwise the runtime is unsandboxed, and says so).
# Not a test: it never fails on a figure.
#   usage: bench/drive_read.sh [N=10000] [S=4096] [R=15]
set -eu
cd "$(dirname "$0")/.."
N=${1:-10000}
S=${2:-4096}
R=${3:-15}
PY=/usr/bin/python3
LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
WORK=$(mktemp -d /var/tmp/lb-drive.XXXXXX)
PORT=${PORT:-18821}
HUB=
cleanup() {
    if [ -n "$HUB" ]; then
        kill -TERM "$HUB" 2>/dev/null || true
        wait "$HUB" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$LABBOOK" user add bench --data "$WORK/d" >/dev/null 2>&1
TOKEN=$("$LABBOOK" user token bench --data "$WORK/d")
# orphan_timeout_s = 0: the runtime ends with the hub.
printf '[runtimes]\norphan_timeout_s = 0\n[profile.cpu]\nidle_timeout_s = 0\n' >"$WORK/lb.ini"
"$LABBOOK" serve --config "$WORK/lb.ini" --data "$WORK/d" --port "$PORT" >>"$WORK/hub.log" 2>&1 &
HUB=$!
up=0
for _ in $(seq 1 100); do
    if curl -fsS -H "Authorization: token $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.1
done
[ $up = 1 ] || { echo "hub did not start: $(cat "$WORK/hub.log")" >&2; exit 1; }
SANDBOXED=false
grep -q "runtimes run in sandboxes" "$WORK/hub.log" && SANDBOXED=true

cat >"$WORK/driver.py" <<'PYEOF'
import asyncio, json, os, statistics, sys, time, urllib.request, uuid
import websockets

port, token, drive, n, size, rounds, sandboxed, cold = sys.argv[1:9]
n, size, rounds, cold = int(n), int(size), int(rounds), cold == '1'
base = 'http://127.0.0.1:%s' % port
H = {'Authorization': 'token ' + token, 'Content-Type': 'application/json'}

# The reader: the same code on the host and in the kernel.
READER = '''
def _lb_read(folder):
    import os, time
    t0 = time.perf_counter()
    total = 0
    with os.scandir(folder) as it:
        for e in it:
            with open(e.path, 'rb') as f:
                total += len(f.read())
    return time.perf_counter() - t0, total
'''

def call(method, path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers=H)
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
        return json.loads(raw) if raw else None

def drop_caches():
    if cold:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')

async def run_cell(ws, code):
    msg_id = uuid.uuid4().hex
    await ws.send(json.dumps({
        'header': {'msg_id': msg_id, 'msg_type': 'execute_request', 'username': 'bench',
                   'session': 'bench', 'date': '', 'version': '5.3'},
        'parent_header': {}, 'metadata': {}, 'channel': 'shell', 'buffers': [],
        'content': {'code': code, 'silent': False, 'store_history': False,
                    'user_expressions': {}, 'allow_stdin': False, 'stop_on_error': True}}))
    out, replied, idle, err = '', False, False, None
    while not (replied and idle):  # the reply and iopub's idle come in either order
        m = json.loads(await asyncio.wait_for(ws.recv(), 600))
        if m.get('parent_header', {}).get('msg_id') != msg_id:
            continue
        t = m['header']['msg_type']
        if t == 'stream':
            out += m['content']['text']
        elif t == 'error':
            err = '%s: %s' % (m['content']['ename'], m['content']['evalue'])
        elif t == 'execute_reply':
            replied = True
        elif t == 'status' and m['content']['execution_state'] == 'idle':
            idle = True
    if err:
        raise RuntimeError(err)
    return out

def fig(times):
    return {'median_s': round(statistics.median(times), 4), 'best_s': round(min(times), 4),
            'files_per_s': round(n / statistics.median(times))}

async def main():
    folder = os.path.join(drive, 'many')
    os.makedirs(folder)
    for i in range(n):
        with open(os.path.join(folder, 'f%05d.bin' % i), 'wb') as f:
            f.write(os.urandom(size))
    k = call('POST', '/api/kernels', {'name': 'python3'})
    ws_url = 'ws://127.0.0.1:%s/api/kernels/%s/channels?session_id=bench&token=%s' % (port, k['id'], token)
    places = {'host': folder}
    try:
        async with websockets.connect(ws_url, max_size=None) as ws:
            env = json.loads((await run_cell(ws, 'import os, json\nprint(json.dumps(os.environ["LABBOOK_DRIVE"]))')).strip())
            await run_cell(ws, READER + "\nfrom google.colab import drive\ndrive.mount('/Drive')\n")
            inside = {'runtime_drive': env + '/many', 'runtime_MyDrive': '/Drive/MyDrive/many',
                      'runtime_My_Drive': '/Drive/My Drive/many'}
            times = {p: [] for p in ['host'] + list(inside)}
            exec(READER, globals())
            if not cold:  # one untimed pass each, so that every round starts warm
                _lb_read(folder)
                for path in inside.values():
                    await run_cell(ws, '_lb_read(%r)' % path)
            for _ in range(rounds):
                drop_caches()
                t, total = _lb_read(folder)
                assert total == n * size, total
                times['host'].append(t)
                for name, path in inside.items():
                    drop_caches()
                    t, total = json.loads((await run_cell(ws, 'print(json.dumps(_lb_read(%r)))' % path)).strip())
                    assert total == n * size, total
                    times[name].append(t)
    finally:
        call('DELETE', '/api/kernels/' + k['id'])
    out = {'files': n, 'file_bytes': size, 'rounds': rounds, 'page_cache': 'cold' if cold else 'warm',
           'sandboxed': sandboxed == 'true', 'inside_paths': inside}
    for p, ts in times.items():
        out[p] = fig(ts)
    for p in inside:  # medians, and bests (the least disturbed rounds on a busy machine)
        out[p + '_over_host'] = {
            'median': round(statistics.median(times[p]) / statistics.median(times['host']), 3),
            'best': round(min(times[p]) / min(times['host']), 3)}
    print(json.dumps(out, indent=1))

asyncio.run(main())
PYEOF

$PY "$WORK/driver.py" "$PORT" "$TOKEN" "$WORK/d/drive/bench" "$N" "$S" "$R" "$SANDBOXED" "${COLD:-0}"
