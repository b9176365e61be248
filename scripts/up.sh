#!/usr/bin/env bash
# Starts Skiff on this machine: installs the Debian packages it needs, builds
# the programs, and runs `skiff up`, which starts every program that exists —
# skiff-apiserver (with its embedded etcd-compatible store), the controller
# manager, the scheduler, the kubelet (as root it runs pods in containers on
# the bridge <name>0, fenced in by the nftables table inet <name>_up) and the
# proxy once it is built — supervised in the background, and returns once the
# node is Ready. Then: skiff status | skiff logs <program> | skiff down |
# skiff reset (target/release/skiff). Flags are passed on to `skiff up`
# (--data-dir, --port, --node-ip, --pod-subnet, --etcd-servers, --foreground);
# SKIFF_DATA_DIR, SKIFF_API_PORT, SKIFF_NODE_IP, SKIFF_POD_SUBNET work too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}" "${NODE_PACKAGES[@]}"
cargo build --release --locked --workspace --bins
exec ./target/release/skiff up "$@"
