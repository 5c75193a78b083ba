#!/bin/sh
# Source checks run by `make test`: no banned C functions in src/ (their bounded or
# checked forms exist: snprintf, xstrdup, str_to_i64, ...), and every C file
# formatted by the repository's .clang-format.
set -eu
cd "$(dirname "$0")/.."
status=0
banned=$(grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll)\s*\(' src || true)
if [ -n "$banned" ]; then
    echo "banned functions in src/:" >&2
    echo "$banned" >&2
    status=1
fi
if command -v clang-format >/dev/null 2>&1; then
    for f in $(git ls-files 'src/*.c' 'src/*.h' 2>/dev/null || find src -name '*.[ch]'); do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "not clang-formatted: $f (run clang-format -i $f)" >&2
            status=1
        fi
    done
else
    echo "clang-format not installed: formatting not checked" >&2
fi
[ $status -eq 0 ] && echo "source checks: ok"
exit $status
