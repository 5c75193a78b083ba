# Shared by the bench scripts (sourced): starting labbook and jupyter_server side by
# side on loopback, each in its own folder under $WORK (bench_begin sets it up).

# bench_begin NAME: sets PY, LABBOOK (LABBOOK_BIN or ./build/labbook) and WORK (a new
# folder /var/tmp/lb-NAME.*), and stops the servers and removes WORK on exit.
bench_begin() {
    PY=/usr/bin/python3
    LABBOOK=${LABBOOK_BIN:-$PWD/build/labbook}
    WORK=$(mktemp -d "/var/tmp/lb-$1.XXXXXX")
    trap 'stop_servers; rm -rf "$WORK"' EXIT INT TERM
}

wait_up() { # url token
    for _ in $(seq 1 100); do
        if curl -fsS -H "Authorization: token $2" "$1/api/status" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "server at $1 did not come up" >&2
    return 1
}

# start_labbook PORT: sets LB_TOKEN and LB_PID. Returns once the hub's pool of
# pre-started runtimes (one, by default) is ready, so that no runtime is still
# starting, on the same cores, while a figure is measured.
start_labbook() {
    "$LABBOOK" user add bench --data "$WORK/lb" 2>/dev/null
    LB_TOKEN=$("$LABBOOK" user token bench --data "$WORK/lb")
    "$LABBOOK" serve --data "$WORK/lb" --port "$1" >>"$WORK/lb.log" 2>&1 &
    LB_PID=$!
    wait_up "http://127.0.0.1:$1" "$LB_TOKEN"
    for _ in $(seq 1 300); do
        if grep -q 'pool: runtime .* ready' "$WORK/lb.log"; then return 0; fi
        sleep 0.1
    done
    echo "labbook's pool runtime did not start (see $WORK/lb.log)" >&2
    return 1
}

# start_jupyter_server PORT: sets JS_TOKEN and JS_PID
start_jupyter_server() {
    JS_TOKEN=${JS_TOKEN:-benchtoken$$}
    mkdir -p "$WORK/js"
    $PY -m jupyter_server --ServerApp.token="$JS_TOKEN" --port="$1" --ip=127.0.0.1 \
        --ServerApp.root_dir="$WORK/js" --ServerApp.open_browser=False --allow-root \
        >>"$WORK/js.log" 2>&1 &
    JS_PID=$!
    wait_up "http://127.0.0.1:$1" "$JS_TOKEN"
}

# stop_servers: SIGTERM to both (whichever runs)
stop_servers() {
    [ -n "${LB_PID:-}" ] && kill -TERM "$LB_PID" 2>/dev/null || true
    [ -n "${JS_PID:-}" ] && kill -TERM "$JS_PID" 2>/dev/null || true
    sleep 1
}
