#!/bin/sh
# Installs the Debian packages labbook needs to build, run and test. As root it
# installs what is missing with apt-get; otherwise it prints the one line to run.
set -eu
# Runtimes' Python comes from the host image: numpy and GDAL make the seed example of
# Colab tutorials (docs/colab.md) run as it is.
PKGS="build-essential cmake pkg-config
libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjansson-dev libsqlite3-dev
libsodium-dev libzmq3-dev libarchive-dev libseccomp-dev libinih-dev libcmocka-dev
python3 python3-ipykernel python3-jupyter-client e2fsprogs
python3-numpy python3-gdal nodejs
iproute2 nftables slirp4netns"
# Node.js builds the UI. Tests and benchmarks also drive real clients, jupyter_server
# and a real browser (Debian's chromium, driven by playwright-core).
if [ "${1:-}" = "--test" ]; then
    PKGS="$PKGS clang-format python3-jupyter-server python3-websockets chromium"
fi
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        # Node.js may come from elsewhere than Debian (it brings npm along).
        if [ "$p" = nodejs ] && command -v node >/dev/null && command -v npm >/dev/null; then
            continue
        fi
        missing="$missing $p"
    fi
done
if [ "$(echo "$missing" | tr -d ' ')" = "" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || true
    case "$missing" in
        *nodejs*) missing="$missing npm" ;;
    esac
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
else
    echo "labbook needs these Debian packages; run as root:" >&2
    echo "    apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
