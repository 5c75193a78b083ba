#!/bin/sh
# Checks GPU runtimes end to end on a machine with NVIDIA GPUs: starts a hub with a "gpu"
# profile, opens a GPU runtime through the Jupyter API, runs `!nvidia-smi -L` and
# torch.cuda.device_count() inside it, prints both, and shuts it down. Fails clearly (exit 2)
# on a machine without a GPU, and exit 1 when the runtime does not see its GPU.
#   usage: bench/gpu_check.sh            (needs a built ./build/labbook)
#   env:   LABBOOK_BIN, GPU_KERNEL (kernelspec name, default python3-gpu), GPU_PORT,
#          GPU_CHECK_TIMEOUT_S (default 300: a GPU runtime may wait in the queue)
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
KERNEL=${GPU_KERNEL:-python3-gpu}
PORT=${GPU_PORT:-18831}
TIMEOUT=${GPU_CHECK_TIMEOUT_S:-300}
BASE="http://127.0.0.1:$PORT"

fail() { echo "gpu_check: FAIL: $1" >&2; exit "${2:-1}"; }

# 1. the host: a GPU, its driver, and our binary
command -v nvidia-smi >/dev/null 2>&1 || fail "no nvidia-smi: this machine has no NVIDIA driver" 2
HOST_GPUS=$(nvidia-smi -L 2>&1 || true)
echo "# host: nvidia-smi -L"
echo "$HOST_GPUS"
echo "$HOST_GPUS" | grep -q '^GPU [0-9]' || fail "nvidia-smi -L lists no GPU on this machine" 2
[ -x "$LABBOOK" ] || fail "no $LABBOOK: build it first (cmake -S . -B build && cmake --build build)" 2
$PY -c 'import websockets' 2>/dev/null || fail "$PY lacks websockets (apt install python3-websockets)" 2

WORK=$(mktemp -d /tmp/labbook-gpu.XXXXXX)
cleanup() {
    [ -n "${HUB_PID:-}" ] && kill -TERM "$HUB_PID" 2>/dev/null && sleep 1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# 2. a hub with one GPU profile (docs/runtimes.md)
cat >"$WORK/labbook.ini" <<INI
[runtimes]
gpus = nvml

[profile.gpu]
display_name = GPU
gpus = 1
memory_mb = 16384
cpu_shares = 1024
disk_mb = 10240
idle_timeout_s = 1800
max_lifetime_s = 43200
max_per_user = 1
INI
if ! out=$("$LABBOOK" user add gpucheck --data "$WORK/data" --config "$WORK/labbook.ini" 2>&1); then
    echo "$out" >&2
    fail "labbook refused the config above (does this build know [runtimes] and [profile.*]?)"
fi
TOKEN=$("$LABBOOK" user token gpucheck --data "$WORK/data" --config "$WORK/labbook.ini")
"$LABBOOK" serve --data "$WORK/data" --port "$PORT" --bind 127.0.0.1 \
    --config "$WORK/labbook.ini" >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
up=0
for _ in $(seq 1 100); do
    if curl -fsS -H "Authorization: token $TOKEN" "$BASE/api/status" >/dev/null 2>&1; then
        up=1
        break
    fi
    kill -0 "$HUB_PID" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "# hub log" >&2
    cat "$WORK/hub.log" >&2
    fail "the hub did not come up (see its log above)"
fi

# 3. the GPU runtime through the Jupyter API, then the checks inside it
$PY - "$BASE" "$TOKEN" "$KERNEL" "$TIMEOUT" <<'PYEOF' || { echo "# hub log" >&2; tail -n 40 "$WORK/hub.log" >&2; exit 1; }
import asyncio, json, sys, time, urllib.error, urllib.request, uuid
import websockets

base, token, kernel, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
auth = {"Authorization": "token " + token}

def fail(msg):
    print("gpu_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers=dict(auth, **{"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")

status, specs = api("GET", "/api/kernelspecs")
if status != 200:
    fail("GET /api/kernelspecs: %s %s" % (status, specs))
names = sorted(specs.get("kernelspecs", {}))
if kernel not in names:
    # the GPU variant's name is the hub's choice: take the one kernelspec that says GPU
    gpu = [n for n in names if "gpu" in (n + " " + str(
        specs["kernelspecs"][n]["spec"].get("display_name", ""))).lower()]
    if len(gpu) != 1:
        fail("no kernelspec %r and no single GPU one; the hub offers %s "
             "(is the gpu profile wired in? set GPU_KERNEL)" % (kernel, names))
    kernel = gpu[0]
print("# kernelspec %s: %s" % (kernel, specs["kernelspecs"][kernel]["spec"].get("display_name")))

t0 = time.time()
status, model = api("POST", "/api/kernels", {"name": kernel})
if status not in (200, 201):
    fail("POST /api/kernels: %s %s" % (status, model))
kid = model["id"]
print("# runtime %s: %s" % (kid, model.get("execution_state")))

async def run(code):
    """Executes code; returns its text output (streams, results, errors)."""
    url = base.replace("http", "ws", 1) + "/api/kernels/%s/channels" % kid
    session = uuid.uuid4().hex
    out = []
    async with websockets.connect(url, extra_headers=auth, max_size=None) as ws:
        msg_id = uuid.uuid4().hex
        await ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "gpucheck", "session": session,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        while True:
            m = json.loads(await ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t, c = m["header"]["msg_type"], m.get("content", {})
            if t == "stream":
                out.append(c.get("text", ""))
            elif t in ("execute_result", "display_data"):
                out.append(c.get("data", {}).get("text/plain", "") + "\n")
            elif t == "error":
                out.append("%s: %s\n" % (c.get("ename"), c.get("evalue")))
            elif t == "status" and c.get("execution_state") == "idle":
                return "".join(out)

async def main():
    env = await asyncio.wait_for(run(
        "import os\nfor k in ('CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES'):\n"
        "    print(k + '=' + os.environ.get(k, '(unset)'))\n"
        "import glob; print('devices:', ' '.join(sorted(glob.glob('/dev/nvidia*'))))"), timeout)
    print("# runtime ready after %.1f s" % (time.time() - t0))
    print(env, end="")
    smi = await asyncio.wait_for(run("!nvidia-smi -L"), timeout)
    print("# inside the runtime: nvidia-smi -L")
    print(smi, end="")
    torch = await asyncio.wait_for(run(
        '!python3 -c "import torch; print(torch.cuda.device_count())"'), timeout)
    print("# inside the runtime: torch.cuda.device_count()")
    print(torch, end="")
    return smi, torch

try:
    smi, torch = asyncio.run(main())
except asyncio.TimeoutError:
    fail("the runtime did not answer within %d s (still queued or starting?)" % timeout)
finally:
    status, _ = api("DELETE", "/api/kernels/" + kid)
    print("# runtime shut down: HTTP %s" % status)

ok = True
if not any(line.startswith("GPU ") for line in smi.splitlines()):
    print("gpu_check: FAIL: nvidia-smi inside the runtime lists no GPU", file=sys.stderr)
    ok = False
last = torch.strip().splitlines()[-1] if torch.strip() else ""
if "No module named" in torch:
    print("gpu_check: note: torch is not installed for python3 in the runtime; skipped")
elif not last.isdigit() or int(last) < 1:
    print("gpu_check: FAIL: torch sees no CUDA device (%r)" % last, file=sys.stderr)
    ok = False
print("gpu_check: %s" % ("OK" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PYEOF
