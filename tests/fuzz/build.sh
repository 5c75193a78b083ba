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
    "$root/src/common/utf8.c" \
    "$root/src/common/util.c" $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_files"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_stream" "$here/fuzz_stream.c" "$root/src/wire/stream.c" \
    "$root/src/wire/wsframe.c" "$root/src/common/util.c" \
    $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_stream"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_zmsg" "$here/fuzz_zmsg.c" "$root/src/wire/zmsg.c" \
    "$root/src/wire/wsframe.c" "$root/src/common/utf8.c" "$root/src/common/util.c" \
    $(pkg-config --cflags --libs jansson libsodium libzmq libcrypto)
echo "built $out/fuzz_zmsg"
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/fuzz_nbdoc" "$here/fuzz_nbdoc.c" "$root/src/hub/nbdoc.c" \
    "$root/src/common/nbformat.c" "$root/src/common/fsat.c" "$root/src/common/utf8.c" \
    "$root/src/common/util.c" $(pkg-config --cflags --libs jansson libsodium)
echo "built $out/fuzz_nbdoc"
# The HTTP request path: every hub source but http.c (the target has its own, in
# memory). sandbox.c is compiled by the system compiler without instrumentation: it
# uses a declaration after a label, which clang 14 refuses.
hub_srcs=$(ls "$root"/src/hub/*.c "$root"/src/common/*.c "$root"/src/store/*.c \
    "$root"/src/wire/*.c "$root"/src/sandbox/*.c "$root"/src/agent/*.c |
    grep -v -e '/src/hub/http\.c$' -e '/src/sandbox/sandbox\.c$')
${HOSTCC:-cc} -std=gnu11 -O1 -g -D_GNU_SOURCE -I"$root/src" -c -o "$out/sandbox.o" \
    "$root/src/sandbox/sandbox.c"
# shellcheck disable=SC2086
$CC $CFLAGS -DLABBOOK_WEB_DIR='"/nonexistent"' -DLABBOOK_PYTHON_DIR='"/nonexistent"' \
    -o "$out/fuzz_http" "$here/fuzz_http.c" $hub_srcs "$out/sandbox.o" \
    $(pkg-config --cflags --libs libwebsockets libuv jansson sqlite3 libsodium libcrypto libzmq \
    libarchive libseccomp inih) -lpthread
echo "built $out/fuzz_http"
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
    for t in http stream zmsg nbdoc; do
        mkdir -p "$out/corpus-$t"
        cp "$here/corpus-$t"/* "$out/corpus-$t"/ 2>/dev/null || true
        "$out/fuzz_$t" -max_total_time="$1" -max_len=4096 -rss_limit_mb=4096 \
            -artifact_prefix="$out/" "$out/corpus-$t"
    done
fi
