#!/usr/bin/env bash
# Starts Skiff on this machine: today, the embedded etcd-compatible store
# (skiff-store) on loopback. Ctrl-C stops it; its data stays in .skiff/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}"
cargo build --release --locked -p skiff-store

port="${SKIFF_STORE_PORT:-2379}"
data="${SKIFF_DATA_DIR:-$PWD/.skiff}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "skiff: something already listens on 127.0.0.1:$port (a Debian etcd service?)." >&2
    echo "skiff: stop it, or choose another port: SKIFF_STORE_PORT=23790 $0" >&2
    exit 1
fi
mkdir -p "$data"
cat <<MSG
skiff: starting skiff-store (etcd v3 API) on http://127.0.0.1:$port, data in $data/store
skiff: look into it from another terminal:
    export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=http://127.0.0.1:$port
    etcdctl put /registry/hello world
    etcdctl get /registry --prefix
    etcdctl watch /registry --prefix
    etcdctl endpoint status -w table
    curl http://127.0.0.1:$port/metrics
skiff: Ctrl-C stops it.
MSG
exec ./target/release/skiff-store --data-dir "$data/store" --listen-client-urls "http://127.0.0.1:$port"
