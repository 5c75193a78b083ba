#!/bin/sh
# Runs the integration suite. LABBOOK_TARGET=labbook (default) or jupyter_server;
# LABBOOK_BIN=path overrides ../../build/labbook. Extra arguments name test files.
set -eu
cd "$(dirname "$0")"

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ package.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
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
