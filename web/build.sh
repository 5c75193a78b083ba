#!/bin/sh
# Builds the browser UI into web/dist (what the hub serves): npm ci when
# node_modules is missing or older than the lockfile, then type-check and bundle.
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ package.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
# Rebuild only when a source changed since the last build.
if [ -f dist/index.html ] && [ -z "$(find src build.mjs package-lock.json tsconfig.json -newer dist/index.html -print -quit)" ]; then
    exit 0
fi
exec node build.mjs --check
