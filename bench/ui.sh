#!/bin/sh
# The browser UI's figures for docs/benchmarks.md (not a test: it never fails on a
# figure): bundle sizes from the build, and, from a real hub and Debian's chromium,
# a 500-cell notebook's time to show and its longest frame while scrolling, key
# latency while a cell streams, and while a 30 MB output streams. The scale suite
# (tests/browser/scale.test.mjs) measures them; this prints its figures.
#   usage: bench/ui.sh        (needs make build)
set -eu
cd "$(dirname "$0")/.."
LABBOOK_BIN=${LABBOOK_BIN:-$PWD/build/labbook}
export LABBOOK_BIN
web/build.sh >/dev/null
echo "# bundle: $(cd web && node build.mjs 2>&1 | tail -1)"
tests/browser/run.sh scale.test.mjs 2>&1 | sed -n 's/^# \\# /# /p'
