#!/usr/bin/env bash
# Runs every Skiff test: formatting, lints, unit tests, and the integration
# tests that start real binaries (skiff-store, a real etcd, etcdctl). Tests
# that need root are marked #[ignore = "needs root: …"] and run here when the
# script runs as root, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo build"
cargo build --locked --workspace --all-targets

ignored=()
if [ "$(id -u)" -eq 0 ]; then
    ignored=(--include-ignored)
else
    echo "skiff: not root: tests that need root are skipped (CI runs them as root)" >&2
fi
echo "== cargo test"
cargo test --locked --workspace -- "${ignored[@]}"
