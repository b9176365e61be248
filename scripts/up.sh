#!/usr/bin/env bash
# Starts Skiff on this machine: every program that exists so far. Today that
# is skiff-apiserver, with its embedded etcd-compatible store in-process.
# Ctrl-C stops it; its state stays in .skiff/ (SKIFF_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}"
cargo build --release --locked -p skiff-apiserver -p skiff-store

port="${SKIFF_API_PORT:-6443}"
data="${SKIFF_DATA_DIR:-$PWD/.skiff}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "skiff: something already listens on 127.0.0.1:$port; choose another port: SKIFF_API_PORT=16443 $0" >&2
    exit 1
fi
mkdir -p "$data"
cat <<MSG
skiff: starting skiff-apiserver on https://127.0.0.1:$port (embedded store, data in $data)
skiff: from another terminal:
    export KUBECONFIG=$data/admin.kubeconfig
    kubectl get namespaces
    kubectl create deployment web --image=nginx:1.27 --replicas=2
    kubectl get deploy,svc -A
    kubectl get events -w
skiff: (the scheduler, controllers, kubelet and proxy are not part of Skiff yet:
skiff:  objects are stored and served, but no pods run.)
skiff: Ctrl-C stops it.
MSG
exec ./target/release/skiff-apiserver --data-dir "$data" --bind-address 127.0.0.1 --secure-port "$port"
