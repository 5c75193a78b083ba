#!/bin/sh
# Chunked contents upload, labbook against jupyter_server, in one run, alternating
# the two servers round by round (bench/upload.py). Prints both results and the ratio.
#   usage: bench/upload.sh [MB=64] [ROUNDS=3]
set -eu
cd "$(dirname "$0")/.."
MB=${1:-64}
ROUNDS=${2:-3}
PY=/usr/bin/python3
LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
WORK=$(mktemp -d /var/tmp/lb-up.XXXXXX)
LB_PORT=18821
JS_PORT=18822
. bench/lib.sh
cleanup() {
    stop_servers
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start_labbook "$LB_PORT"
start_jupyter_server "$JS_PORT"
LB=""
JS=""
for _ in $(seq 1 "$ROUNDS"); do
    LB="$LB $($PY bench/upload.py "http://127.0.0.1:$LB_PORT" "$LB_TOKEN" "$MB" 1)"
    JS="$JS $($PY bench/upload.py "http://127.0.0.1:$JS_PORT" "$JS_TOKEN" "$MB" 1)"
done
$PY - "$LB" "$JS" <<'PYEOF'
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
lb, js = rates(sys.argv[1]), rates(sys.argv[2])
print(json.dumps({'labbook_MBps': lb, 'jupyter_server_MBps': js,
                  'labbook_median': statistics.median(lb), 'jupyter_server_median': statistics.median(js),
                  'ratio': round(statistics.median(lb) / statistics.median(js), 2)}))
PYEOF
