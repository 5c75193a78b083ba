#!/bin/sh
# Benchmarks labbook against jupyter_server and the direct-ZeroMQ floor in one run,
# on the same kernel (Debian's python3-ipykernel), with ../shared/bench's scripts.
# Prints each tool's JSON figures, then a table of ratios. Not a test: it never fails
# on a figure.
#   usage: bench/compare.sh [--quick]      (needs a built ./build/labbook)
set -eu
cd "$(dirname "$0")/.."
QUICK=${1:-}
SHARED=${SHARED_BENCH:-../shared/bench}
LB_PORT=${LB_PORT:-18801}
JS_PORT=${JS_PORT:-18802}
. bench/lib.sh
bench_begin bench

start_labbook "$LB_PORT"
start_jupyter_server "$JS_PORT"

if [ "$QUICK" = "--quick" ]; then N=100; MB=20; else N=300; MB=100; fi
echo "# labbook ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
LB=$($PY "$SHARED/jbench.py" "http://127.0.0.1:$LB_PORT" "$LB_TOKEN" $QUICK)
echo "$LB"
echo "# jupyter_server ($($PY -c 'import jupyter_server; print(jupyter_server.__version__)'))"
# In the full run jupyter_server drops iopub messages over its rate limits and
# jbench then waits forever for a cell to end: give it 10 minutes, and if it does
# not finish, measure it again with --quick so that its other figures are known.
JS=$(timeout 600 $PY "$SHARED/jbench.py" "http://127.0.0.1:$JS_PORT" "$JS_TOKEN" $QUICK 2>"$WORK/js.err" || true)
if [ -z "$JS" ] && [ "$QUICK" != "--quick" ]; then
    echo "jupyter_server did not finish the full run (a cell never ended: its iopub was dropped); measuring it with --quick"
    kill -TERM "$JS_PID" 2>/dev/null || true
    sleep 2
    start_jupyter_server "$JS_PORT"
    JS=$(timeout 600 $PY "$SHARED/jbench.py" "http://127.0.0.1:$JS_PORT" "$JS_TOKEN" --quick 2>>"$WORK/js.err" || true)
fi
[ -n "$JS" ] || JS='{}'
echo "$JS"
echo "# direct ZeroMQ floor"
FL=$($PY "$SHARED/zfloor.py" "$N" "$MB" 2>/dev/null | grep '^{')
echo "$FL"

$PY - "$LB" "$JS" "$FL" <<'PYEOF'
import json, sys
lb, js, fl = (json.loads(a) if a.strip() else {} for a in sys.argv[1:4])
def row(name, l, j, f=None, unit='', better='lower'):
    cells = [name, f"{l}{unit}" if l is not None else '-', f"{j}{unit}" if j is not None else 'failed']
    cells.append(f"{f}{unit}" if f is not None else '')
    note = ''
    if l is not None and j:
        note = f"labbook/jupyter_server = {l / j:.2f}x"
    if f is not None and l is not None:
        note += f"; labbook-floor = {l - f:+.2f}{unit}" if better == 'lower' else f"; labbook/floor = {l / f:.2f}x"
    print(f"| {' | '.join(cells)} | {note} |")
print()
print("| figure | labbook | jupyter_server | floor | ratio |")
print("|---|---|---|---|---|")
row('kernel start', lb.get('kernel_start_s'), js.get('kernel_start_s'), unit=' s')
row('execute p50', lb.get('exec_p50_ms'), js.get('exec_p50_ms'), fl.get('direct_exec_p50_ms'), ' ms')
row('execute p99', lb.get('exec_p99_ms'), js.get('exec_p99_ms'), fl.get('direct_exec_p99_ms'), ' ms')
rate = lambda d: round(d['stream_lines'] / d['stream_lines_s']) if d.get('stream_lines_s') else None
row('stream lines', rate(lb), rate(js), unit=' lines/s', better='higher')
row('big output', lb.get('big_output_MBps'), js.get('big_output_MBps'), fl.get('direct_big_output_MBps'), ' MB/s', 'higher')
row('small files', lb.get('small_files_per_s'), js.get('small_files_per_s'), unit='/s', better='higher')
row('chunked upload', lb.get('upload_MBps'), js.get('upload_MBps'), unit=' MB/s', better='higher')
PYEOF
