#!/bin/sh
# Runs the browser suite: playwright-core driving Debian's chromium (headless)
# against a real hub. LABBOOK_BIN=path overrides ../../build/labbook; the UI must be
# built (make build). Extra arguments name test files.
set -eu
cd "$(dirname "$0")"

# npm ci when node_modules is missing or older than the lockfile: here, and in the
# integration suite whose server harness these tests share.
for d in . ../integration; do
    if [ ! -d "$d/node_modules" ] || [ ! -f "$d/node_modules/.package-lock.json" ] ||
       [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ] ||
       [ "$d/package.json" -nt "$d/node_modules/.package-lock.json" ]; then
        (cd "$d" && npm ci --no-audit --no-fund)
    fi
done
if [ ! -f ../../web/dist/index.html ]; then
    echo "the UI is not built: run make build (or web/build.sh)" >&2
    exit 1
fi

mkdir -p .tmp
if [ "$#" -gt 0 ]; then
    files="$*"
else
    files=$(ls *.test.mjs)
fi
# One file at a time (each starts its own hubs and kernels). Debian 12's own Node.js
# (18) has no --test-concurrency option: it then runs with its default.
conc=""
if node --help 2>/dev/null | grep -q -- --test-concurrency; then
    conc="--test-concurrency=1"
fi
# A file that hangs (a promise that never settles) fails after 10 minutes instead of
# holding the run for ever; the longest file takes about 3. Node 18 lacks the option.
limit=""
if node --help 2>/dev/null | grep -q -- --test-timeout; then
    limit="--test-timeout=${LABBOOK_TEST_FILE_TIMEOUT_MS:-600000}"
fi
# shellcheck disable=SC2086
exec node --test $conc $limit $files
