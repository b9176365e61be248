#!/usr/bin/env bash
# Starts Skiff on this machine: every program that exists so far. Today that
# is skiff-apiserver (with its embedded etcd-compatible store in-process),
# skiff-controller-manager (ReplicaSets and Deployments), skiff-scheduler
# (binds pods to nodes) and skiff-kubelet (registers this machine as a Node and
# runs its pods in containers through its embedded runtime; as root), which use
# the admin kubeconfig the API server writes. Pods get addresses in
# SKIFF_POD_SUBNET (10.244.0.0/24) on the bridge skiff0; an nftables table
# (inet skiff_up) keeps their packets on this machine. Ctrl-C stops the
# programs; pods' containers outlive the kubelet (as upstream's do) and the
# fence stays while they may run: `nft delete table inet skiff_up` after.
# Ctrl-C stops them all; the state stays in .skiff/ (SKIFF_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}" "${NODE_PACKAGES[@]}"
cargo build --release --locked -p skiff-apiserver -p skiff-store -p skiff-controller-manager \
    -p skiff-scheduler -p skiff-kubelet

port="${SKIFF_API_PORT:-6443}"
data="${SKIFF_DATA_DIR:-$PWD/.skiff}"
# The address this machine's Node reports: loopback for a one-machine cluster.
node_ip="${SKIFF_NODE_IP:-127.0.0.1}"
pod_subnet="${SKIFF_POD_SUBNET:-10.244.0.0/24}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "skiff: something already listens on 127.0.0.1:$port; choose another port: SKIFF_API_PORT=16443 $0" >&2
    exit 1
fi
mkdir -p "$data"
# The node: test and demo images built from busybox-static (no registry is
# needed), a CNI network for the pods, and the fence around it.
if [ "$(id -u)" -eq 0 ]; then
    [ -s "$data/kubelet/images/skiff-httpd.tar" ] || bash kubelet/images/build.sh "$data/kubelet/images" >/dev/null
    mkdir -p "$data/cni"
    cat >"$data/cni/10-skiff.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "skiff", "plugins": [
  {"type": "bridge", "bridge": "skiff0", "isGateway": true, "ipMasq": false,
   "capabilities": {"ipRanges": true},
   "ipam": {"type": "host-local", "dataDir": "$data/cni/ipam"}}]}
JSON
    nft delete table inet skiff_up 2>/dev/null || true
    nft -f - <<NFT
table inet skiff_up {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip saddr $pod_subnet oifname != "skiff0" drop
    ip daddr $pod_subnet iifname != "skiff0" drop
  }
  chain output {
    type filter hook output priority -10; policy accept;
    ip saddr $pod_subnet oifname != "skiff0" drop
  }
}
NFT
else
    echo "skiff: not root: the kubelet registers the Node but cannot run pods (its runtime needs root)" >&2
fi
cat <<MSG
skiff: starting skiff-apiserver on https://127.0.0.1:$port (embedded store, data in $data)
skiff: and skiff-controller-manager (log: $data/controller-manager.log)
skiff: and skiff-scheduler (log: $data/scheduler.log, metrics: http://127.0.0.1:10259/metrics)
skiff: and skiff-kubelet (Node $(hostname | tr 'A-Z' 'a-z') at $node_ip, log: $data/kubelet.log)
skiff: from another terminal:
    export KUBECONFIG=$data/admin.kubeconfig
    kubectl get namespaces
    kubectl create deployment web --image=nginx:1.27 --replicas=2
    kubectl get deploy,rs,pods -A
    kubectl get events -w
    kubectl get nodes -o wide
    kubectl run web --image=skiff/httpd --image-pull-policy=Never
    kubectl get pods -o wide                   # then: curl http://<pod IP>/
skiff: images: skiff/busybox, skiff/httpd, skiff/layers (built here; use imagePullPolicy Never or
skiff:  IfNotPresent, as no public registry is reached).
skiff: Ctrl-C stops it.
MSG
./target/release/skiff-apiserver --data-dir "$data" --bind-address 127.0.0.1 --secure-port "$port" &
apiserver=$!
controller_manager=""
scheduler=""
kubelet=""
stop() {
    [ -n "$kubelet" ] && kill "$kubelet" 2>/dev/null
    [ -n "$scheduler" ] && kill "$scheduler" 2>/dev/null
    [ -n "$controller_manager" ] && kill "$controller_manager" 2>/dev/null
    kill "$apiserver" 2>/dev/null
    wait
}
trap stop EXIT INT TERM
# The API server writes its admin kubeconfig on first start; wait until it serves.
for _ in $(seq 1 300); do
    if [ -s "$data/admin.kubeconfig" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    kill -0 "$apiserver" 2>/dev/null || { echo "skiff: skiff-apiserver exited" >&2; exit 1; }
    sleep 0.2
done
# One node: the cluster's pod range is this node's whole block, so the
# podCIDR the node IPAM assigns (and the kubelet hands to the CNI plugins as
# ipRanges) is exactly the fenced SKIFF_POD_SUBNET.
./target/release/skiff-controller-manager --kubeconfig "$data/admin.kubeconfig" \
    --cluster-cidr "$pod_subnet" --node-cidr-mask-size "${pod_subnet#*/}" \
    >>"$data/controller-manager.log" 2>&1 &
controller_manager=$!
./target/release/skiff-scheduler --kubeconfig "$data/admin.kubeconfig" \
    >>"$data/scheduler.log" 2>&1 &
scheduler=$!
./target/release/skiff-kubelet --kubeconfig "$data/admin.kubeconfig" --root-dir "$data/kubelet" \
    --node-ip "$node_ip" --address "$node_ip" --cni-conf-dir "$data/cni" >>"$data/kubelet.log" 2>&1 &
kubelet=$!
wait "$apiserver"
