#!/usr/bin/python3
"""JupyterLab-style chunked upload through the Contents API, measured as
../shared/bench/jbench.py measures it (1 MiB of random bytes, base64 in a JSON PUT
per chunk, chunk numbers 1..n with -1 last), without jbench's kernel part, so that
a server whose kernel part hangs can still be compared.
usage: upload.py BASE_URL TOKEN [MB] [ROUNDS] [--floor]   prints one JSON object.
--floor sends the same requests to a path the server refuses at once after reading
the body (404): the client's and the loopback's own cost, which bounds any server."""
import base64, json, os, statistics, sys, time, urllib.error, urllib.request

base, token = sys.argv[1].rstrip('/'), sys.argv[2]
size_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 64
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
floor = '--floor' in sys.argv[5:]
H = {'Authorization': 'token ' + token, 'Content-Type': 'application/json'}


def put(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method='PUT', headers=H)
    try:
        with urllib.request.urlopen(req) as r:
            r.read()
    except urllib.error.HTTPError as e:
        if not floor:
            raise
        e.read()


put('/api/contents/bench_upload', {'type': 'directory'})
b64 = base64.b64encode(os.urandom(1 << 20)).decode()
rates = []
for i in range(rounds):
    t0 = time.perf_counter()
    for c in range(1, size_mb + 1):
        put(('/api/no-such-route/big%d.bin' if floor else '/api/contents/bench_upload/big%d.bin') % i,
            {'type': 'file', 'format': 'base64', 'content': b64, 'chunk': -1 if c == size_mb else c})
    rates.append(size_mb / (time.perf_counter() - t0))
print(json.dumps({'upload_MB': size_mb, 'rounds': rounds, 'upload_MBps_median': round(statistics.median(rates), 1),
                  'upload_MBps_all': [round(r, 1) for r in rates]}))
