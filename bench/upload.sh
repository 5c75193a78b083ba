#!/bin/sh
# Chunked contents upload, labbook against jupyter_server, in one run, alternating
# the two servers round by round (bench/upload.py), and the client's own floor (the
# same requests refused by labbook once read). Prints the three and the ratios.
#   usage: bench/upload.sh [MB=64] [ROUNDS=3]
set -eu
cd "$(dirname "$0")/.."
MB=${1:-64}
ROUNDS=${2:-3}
LB_PORT=18821
JS_PORT=18822
. bench/lib.sh
bench_begin up

start_labbook "$LB_PORT"
start_jupyter_server "$JS_PORT"
LB=""
JS=""
FL=""
for _ in $(seq 1 "$ROUNDS"); do
    LB="$LB $($PY bench/upload.py "http://127.0.0.1:$LB_PORT" "$LB_TOKEN" "$MB" 1)"
    JS="$JS $($PY bench/upload.py "http://127.0.0.1:$JS_PORT" "$JS_TOKEN" "$MB" 1)"
    FL="$FL $($PY bench/upload.py "http://127.0.0.1:$LB_PORT" "$LB_TOKEN" "$MB" 1 --floor)"
done
$PY - "$LB" "$JS" "$FL" <<'PYEOF'
import json, sys, statistics
def rates(s):
    dec, out, i = json.JSONDecoder(), [], 0
    s = s.strip()
    while i < len(s):
        o, i = dec.raw_decode(s, i)
        out.append(o['upload_MBps_median'])
        while i < len(s) and s[i] == ' ':
            i += 1
    return out
lb, js, fl = rates(sys.argv[1]), rates(sys.argv[2]), rates(sys.argv[3])
m = statistics.median
# floor: the client sending the same requests to a route refused after the body is read
print(json.dumps({'labbook_MBps': lb, 'jupyter_server_MBps': js, 'client_floor_MBps': fl,
                  'labbook_median': m(lb), 'jupyter_server_median': m(js), 'client_floor_median': m(fl),
                  'ratio': round(m(lb) / m(js), 2), 'floor_vs_jupyter_server': round(m(fl) / m(js), 2),
                  'labbook_vs_floor': round(m(lb) / m(fl), 2)}))
PYEOF
