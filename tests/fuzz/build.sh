#!/bin/sh
# Builds the libFuzzer targets in tests/fuzz with clang (ASan + UBSan), and optionally
# runs them: tests/fuzz/build.sh [SECONDS]  (runs each target for SECONDS if given).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz}
mkdir -p "$out"
CC=${CC:-clang}
CFLAGS="-std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -fno-omit-frame-pointer
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$root/src"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_wsframe" "$here/fuzz_wsframe.c" "$root/src/wire/wsframe.c" \
    "$root/src/common/util.c" $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_wsframe"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_upload_body" "$here/fuzz_upload_body.c" "$root/src/common/jsonbig.c" \
    "$root/src/common/base64.c" "$root/src/common/b64scan.c" "$root/src/common/util.c" \
    $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_upload_body"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_archive" "$here/fuzz_archive.c" "$root/src/hub/extract.c" \
    "$root/src/hub/drivefs.c" "$root/src/common/fsat.c" "$root/src/common/util.c" \
    $(pkg-config --cflags --libs libarchive libsodium)
echo "built $out/fuzz_archive"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_launcher" "$here/fuzz_launcher.c" "$root/src/hub/launcher_check.c" \
    "$root/src/common/fsat.c" "$root/src/store/store.c" "$root/src/common/util.c" \
    $(pkg-config --cflags --libs jansson libsodium libuv libwebsockets sqlite3)
echo "built $out/fuzz_launcher"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_files" "$here/fuzz_files.c" "$root/src/agent/files.c" \
    "$root/src/wire/stream.c" "$root/src/sandbox/disk.c" "$root/src/common/fsat.c" \
    "$root/src/common/util.c" $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_files"
if [ $# -ge 1 ]; then
    corpus="$out/corpus-wsframe"
    mkdir -p "$corpus"
    cp "$here"/corpus-wsframe/* "$corpus"/ 2>/dev/null || true
    "$out/fuzz_wsframe" -max_total_time="$1" -max_len=65536 -rss_limit_mb=4096 \
        -artifact_prefix="$out/" "$corpus"
    mkdir -p "$out/corpus-upload"
    cp "$here"/corpus-upload/* "$out/corpus-upload"/ 2>/dev/null || true
    "$out/fuzz_upload_body" -max_total_time="$1" -max_len=4096 -rss_limit_mb=4096 \
        -artifact_prefix="$out/" "$out/corpus-upload"
    mkdir -p "$out/corpus-archive"
    cp "$here"/corpus-archive/* "$out/corpus-archive"/ 2>/dev/null || true
    "$out/fuzz_archive" -max_total_time="$1" -max_len=65536 -rss_limit_mb=4096 \
        -artifact_prefix="$out/" "$out/corpus-archive"
    mkdir -p "$out/corpus-launcher" "$out/corpus-files"
    cp "$here"/corpus-launcher/* "$out/corpus-launcher"/ 2>/dev/null || true
    cp "$here"/corpus-files/* "$out/corpus-files"/ 2>/dev/null || true
    "$out/fuzz_launcher" -max_total_time="$1" -max_len=4096 -rss_limit_mb=4096 \
        -artifact_prefix="$out/" "$out/corpus-launcher"
    "$out/fuzz_files" -max_total_time="$1" -max_len=4096 -rss_limit_mb=4096 \
        -artifact_prefix="$out/" "$out/corpus-files"
fi
