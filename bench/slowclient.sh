#!/bin/sh
# Slow-client figures for docs/benchmarks.md: what the hub and the runtime's agent hold
# while a cell prints SIZE_MB (in 1 MiB writes of 1 KiB lines) to a client that reads
# at full speed and, beside it, (a) one that stops reading and keeps its connection
# open, or (b) one that reads at SLOW_MBS MB/s (for at most SLOW_S s, then it leaves).
# Prints, for each case, the peak VmRSS of the hub and of the agent (sampled every
# 50 ms, over their VmRSS before the cell), what each client got and when the hub cut
# the stalled one off, with the caps configured. Loopback only; every client and the
# hub stop by themselves (each case is bounded by CASE_S). Not a test: it never fails
# on a figure.
#   usage: bench/slowclient.sh [SIZE_MB=300]
#   env: QUEUE_MB=64 (ws_queue_mb) STALL_S=10 (ws_stall_s) SLOW_MBS=2 SLOW_S=30
#        CASE_S=120 PORT=18851 SANDBOX=1 LABBOOK_BIN
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
SIZE_MB=${1:-300}
QUEUE_MB=${QUEUE_MB:-64}
STALL_S=${STALL_S:-10}
SLOW_MBS=${SLOW_MBS:-2}
SLOW_S=${SLOW_S:-30}
CASE_S=${CASE_S:-120}
PORT=${PORT:-18851}
SANDBOX=${SANDBOX:-1}
bench_begin slowclient

printf '[server]\nws_queue_mb = %s\nws_stall_s = %s\n[runtimes]\nsandbox = %s\npool = 0\norphan_timeout_s = 0\n' \
    "$QUEUE_MB" "$STALL_S" "$SANDBOX" >"$WORK/lb.ini"
"$LABBOOK" user add bench --data "$WORK/lb" >/dev/null 2>&1
LB_TOKEN=$("$LABBOOK" user token bench --data "$WORK/lb")
"$LABBOOK" serve --config "$WORK/lb.ini" --data "$WORK/lb" --port "$PORT" >>"$WORK/lb.log" 2>&1 &
LB_PID=$!
wait_up "http://127.0.0.1:$PORT" "$LB_TOKEN"

cat >"$WORK/driver.py" <<'PYEOF'
import base64, json, os, socket, sys, threading, time, urllib.request, uuid
port, token, hub, size_mb, slow_mbs, slow_s, case_s = sys.argv[1:8]
port, hub, size_mb, case_s = int(port), int(hub), int(size_mb), float(case_s)
slow_mbs, slow_s = float(slow_mbs), float(slow_s)
base = 'http://127.0.0.1:%d' % port
H = {'Authorization': 'token ' + token, 'Content-Type': 'application/json'}
MB = 1e6

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, headers=H,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else None

def rss(pid):
    try:
        for line in open('/proc/%d/status' % pid):
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0

def agent_of(kid):
    # the runtime's agent: "labbook agent DATA/runtimes/ID/agent.json"
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            argv = open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')
        except OSError:
            continue
        if len(argv) >= 3 and argv[1] == b'agent' and ('/%s/' % kid).encode() in argv[2]:
            return int(p)
    return None

def connect(kid):
    s = socket.create_connection(('127.0.0.1', port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(('GET /api/kernels/%s/channels?session_id=%s&token=%s HTTP/1.1\r\n'
               'Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
               % (kid, uuid.uuid4().hex, token, port, key)).encode())
    head = b''
    while b'\r\n\r\n' not in head:
        head += s.recv(1)  # byte by byte: nothing past the headers is taken here
    assert head.startswith(b'HTTP/1.1 101'), head[:100]
    return s

def send_text(s, text):
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, 'big'))
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

def execute(s, code):
    msg = {'header': {'msg_id': uuid.uuid4().hex, 'username': 'bench', 'session': uuid.uuid4().hex,
                      'msg_type': 'execute_request', 'version': '5.3'},
           'parent_header': {}, 'metadata': {}, 'channel': 'shell',
           'content': {'code': code, 'silent': False, 'store_history': False,
                       'user_expressions': {}, 'allow_stdin': False}}
    send_text(s, json.dumps(msg))

class Reader(threading.Thread):
    """Reads a client's socket (at rate bytes/s, or as fast as it can) until the hub
    ends the connection, `stop` is set, or `for_s` has passed."""
    def __init__(self, s, rate=None, for_s=None, leave=False):
        super().__init__(daemon=True)
        self.s, self.rate, self.for_s, self.leave = s, rate, for_s, leave
        self.got, self.ended_at, self.stop = 0, None, False
    def run(self):
        t0 = time.time()
        self.s.settimeout(0.5)
        while not self.stop and (self.for_s is None or time.time() - t0 < self.for_s):
            try:
                d = self.s.recv(65536 if self.rate else 1 << 20)
            except socket.timeout:
                continue
            except OSError:
                d = b''
            if not d:
                self.ended_at = time.time()
                return
            self.got += len(d)
            if self.rate:
                ahead = self.got / self.rate - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        if self.leave:
            self.s.close()

def one_case(name):
    kid = call('POST', '/api/kernels', {'name': 'python3'})['id']
    agent = agent_of(kid)
    fast = connect(kid)
    other = connect(kid)
    fr = Reader(fast)
    fr.start()
    execute(fast, 'import sys\nline = "o" * 1023 + "\\n"\nblock = line * 1024')
    time.sleep(2)
    hub0, agent0 = rss(hub), rss(agent) if agent else 0
    peak = {'hub': hub0, 'agent': agent0}
    t0 = time.time()
    if name == 'slow':
        orr = Reader(other, rate=slow_mbs * MB, for_s=slow_s, leave=True)
        orr.start()
    else:
        orr = Reader(other, for_s=0)  # takes nothing: the connection stays open, unread
    execute(fast, 'for i in range(%d):\n    sys.stdout.write(block)\n    sys.stdout.flush()\nprint("done")' % size_mb)
    time.sleep(1)
    finished, asked = False, 0
    while time.time() - t0 < case_s:
        peak['hub'] = max(peak['hub'], rss(hub))
        if agent:
            peak['agent'] = max(peak['agent'], rss(agent))
        if time.time() - asked > 0.5:
            asked = time.time()
            if call('GET', '/api/kernels/' + kid)['execution_state'] == 'idle':
                finished = True
                break
        time.sleep(0.05)
    took = time.time() - t0
    time.sleep(1)
    hub_after = rss(hub)
    if name == 'stalled':
        # the hub cut it off if reading now finds the connection ended
        orr = Reader(other, for_s=10)
        orr.run()
    fr.stop = True
    orr.stop = True
    fr.join()
    fast.close()
    if not orr.leave:
        other.close()
    call('DELETE', '/api/kernels/' + kid)
    return {'cell_finished': finished, 'took_s': round(took, 1),
            'hub_rss_before_MB': round(hub0 / MB, 1), 'hub_peak_over_before_MB': round((peak['hub'] - hub0) / MB, 1),
            'hub_rss_after_MB': round(hub_after / MB, 1),
            'agent_rss_before_MB': round(agent0 / MB, 1) if agent else None,
            'agent_peak_over_before_MB': round((peak['agent'] - agent0) / MB, 1) if agent else None,
            'fast_client_got_MB': round(fr.got / MB, 1),
            'other_client_got_MB': round(orr.got / MB, 1),
            'other_client_cut_off': orr.ended_at is not None if name == 'stalled' else None}

out = {'stalled': one_case('stalled'), 'slow': one_case('slow')}
print(json.dumps(out))
PYEOF

FIG=$($PY "$WORK/driver.py" "$PORT" "$LB_TOKEN" "$LB_PID" "$SIZE_MB" "$SLOW_MBS" "$SLOW_S" "$CASE_S")
CUTS=$(grep -c 'closing a client that stopped reading' "$WORK/lb.log" || true)
kill -TERM "$LB_PID"
wait "$LB_PID" 2>/dev/null || true
LB_PID=
$PY - "$FIG" "$SIZE_MB" "$QUEUE_MB" "$STALL_S" "$SLOW_MBS" "$SLOW_S" "$CUTS" <<'PYEOF'
import json, sys
fig = json.loads(sys.argv[1])
out = {'output_MB': int(sys.argv[2]),
       'caps': {'ws_queue_mb': int(sys.argv[3]), 'ws_stall_s': int(sys.argv[4]),
                'throttle_at_MB': int(sys.argv[3]) / 2, 'replay_mb': 64, 'keep_mb': 64},
       'slow_reader_MB_s': float(sys.argv[5]), 'slow_reader_for_s': float(sys.argv[6]),
       'hub_cut_off_log_lines': int(sys.argv[7]),
       'stalled_reader': fig['stalled'], 'slow_reader': fig['slow']}
print(json.dumps(out, indent=1))
PYEOF
