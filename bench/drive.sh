#!/bin/sh
# Drive benchmark, labbook against jupyter_server in one run on loopback:
#  - a big file (default 1 GiB) uploaded through tus (one PATCH; 3 rounds, each
#    next to a `cp` + `sync` of the same file on the same disk, the floor) against
#    JupyterLab's chunked contents upload of the same bytes to both servers;
#  - a dataset of FILES x 4 KiB files uploaded as one tar through tus with
#    extract=1, against the same files PUT one by one to each contents API.
#   usage: bench/drive.sh [MB=1024] [FILES=10000]      prints one JSON object
set -eu
cd "$(dirname "$0")/.."
MB=${1:-1024}
FILES=${2:-10000}
LB_PORT=18823
JS_PORT=18824
. bench/lib.sh
bench_begin drive

head -c "${MB}M" /dev/urandom >"$WORK/big.bin"
$PY - "$WORK/set" "$FILES" <<'PYEOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    with open(os.path.join(d, 'f%05d.bin' % i), 'wb') as f:
        f.write(os.urandom(4096))
PYEOF
tar cf "$WORK/set.tar" -C "$WORK" set
sync

start_labbook "$LB_PORT"
start_jupyter_server "$JS_PORT"
LBU="http://127.0.0.1:$LB_PORT"
JSU="http://127.0.0.1:$JS_PORT"
# rounds alternate the floor (the same bytes copied on the same disk, then synced)
# and the tus upload, so that both see the same moment of a noisy machine
TUS=""
CP=""
for _ in 1 2 3; do
    CP="$CP $($PY bench/drive.py cp "$WORK/big.bin" "$WORK/copy.bin")"
    TUS="$TUS $($PY bench/drive.py tus "$LBU" "$LB_TOKEN" "$WORK/big.bin")"
done
LBC=$($PY bench/drive.py contents "$LBU" "$LB_TOKEN" "$WORK/big.bin")
JSC=$($PY bench/drive.py contents "$JSU" "$JS_TOKEN" "$WORK/big.bin")
# the extraction ends with syncfs: flush the gigabytes above first, so that it
# pays for its own files only
sync
EXT=$($PY bench/drive.py extract "$LBU" "$LB_TOKEN" "$WORK/set.tar")
LBM=$($PY bench/drive.py many "$LBU" "$LB_TOKEN" "$WORK/set")
JSM=$($PY bench/drive.py many "$JSU" "$JS_TOKEN" "$WORK/set")

$PY - "$CP" "$TUS" "$LBC" "$JSC" "$EXT" "$LBM" "$JSM" <<'PYEOF'
import json, statistics, sys
cp, tus_s, lbc, jsc, ext, lbm, jsm = sys.argv[1:]
dec = json.JSONDecoder()
def many(s):
    s, i, out = s.strip(), 0, []
    while i < len(s):
        o, i = dec.raw_decode(s, i)
        out.append(o)
        while i < len(s) and s[i] == ' ':
            i += 1
    return out
lbc, jsc, ext, lbm, jsm = (json.loads(x) for x in (lbc, jsc, ext, lbm, jsm))
tus = [o['MBps'] for o in many(tus_s)]
cps = many(cp)
t = statistics.median(tus)
cp = {'cp_MBps': [o['cp_MBps'] for o in cps], 'cp_sync_MBps': [o['cp_sync_MBps'] for o in cps]}
pairs = [round(a / b['cp_sync_MBps'], 2) for a, b in zip(tus, cps)]
print(json.dumps({
    'big_file_MB': many(tus_s)[0]['MB'],
    'tus_MBps': tus, 'tus_median_MBps': t, **cp,
    'tus_vs_cp_sync_per_round': pairs, 'tus_vs_cp_sync_median': statistics.median(pairs),
    'labbook_contents_chunked_MBps': lbc['MBps'], 'jupyter_server_contents_chunked_MBps': jsc['MBps'],
    'tus_vs_jupyter_server_contents': round(t / jsc['MBps'], 1),
    'dataset_files': ext['files'],
    'archive_upload_s': ext['upload_s'], 'archive_extract_s': ext['extract_s'],
    'archive_extract_files_per_s': ext['extract_files_per_s'],
    'archive_total_files_per_s': ext['files_per_s'],
    'labbook_one_by_one_files_per_s': lbm['files_per_s'],
    'jupyter_server_one_by_one_files_per_s': jsm['files_per_s'],
    'archive_vs_jupyter_server_one_by_one': round(ext['files_per_s'] / jsm['files_per_s'], 1),
}, indent=1))
PYEOF
