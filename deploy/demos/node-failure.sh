#!/usr/bin/env bash
# A node dies; its pods are replaced on the others; it comes back.
#
# Needs a cluster of simulated nodes from `sudo skiff up --nodes 3 --demo`
# (run as root: `skiff node stop` powers a node off), with
#   SKIFF_DATA_DIR  that cluster's data dir (default: .skiff, as skiff's)
#   SKIFF           the skiff binary (default: skiff on PATH)
#   NODE            the node to stop (default: node3)
#
# Teaching points: a node is declared NotReady when its kubelet stops
# renewing its Lease (40 s by default, 10 s with --demo); the node
# lifecycle controller then taints it (node.kubernetes.io/unreachable,
# NoExecute); each pod tolerates that taint for tolerationSeconds (300 by
# default) and is then evicted; its ReplicaSet makes a replacement, which the
# scheduler puts on a healthy node. When the node comes back nothing moves
# back by itself: Kubernetes does not rebalance running pods.
DEMO_NAME=node-failure
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NODE=${NODE:-node3}
begin "Demo: a node fails and its pods move"

# --- Is this a cluster whose nodes skiff can stop? ---------------------------
cannot() {
    printf '\nThis demo cannot run here: %s\n\n' "$*" >&2
    cat >&2 <<EOF
It needs a cluster of simulated nodes on this machine, started as root:

    sudo skiff up --nodes 3 --demo            # or: --data-dir DIR
    export KUBECONFIG=\$PWD/.skiff/admin.kubeconfig
    sudo -E deploy/demos/node-failure.sh     # with SKIFF_DATA_DIR=DIR if not .skiff

(On real VMs, power one off instead and watch the same thing.)
EOF
    exit 2
}
command -v "$SKIFF" >/dev/null 2>&1 || cannot "no skiff binary (SKIFF=$SKIFF)"
[ "$(id -u)" -eq 0 ] || cannot "skiff node stop needs root"
status=$("$SKIFF" status 2>&1) ||
    cannot "skiff status finds no running cluster in ${SKIFF_DATA_DIR:-.skiff} (set SKIFF_DATA_DIR)"
grep -q "^kubelet-$NODE " <<<"$status" ||
    cannot "the cluster in ${SKIFF_DATA_DIR:-.skiff} has no simulated node $NODE (skiff up --nodes 3)"
"$KUBECTL" get node "$NODE" >/dev/null 2>&1 ||
    cannot "KUBECONFIG's cluster has no node $NODE: is it the cluster of ${SKIFF_DATA_DIR:-.skiff}?"
nodes=$("$KUBECTL" get nodes -o name | wc -l)
[ "$nodes" -ge 3 ] || cannot "it has $nodes nodes, 3 are needed"
lease=$("$KUBECTL" -n kube-node-lease get lease "$NODE" -o 'jsonpath={.spec.leaseDurationSeconds}' 2>/dev/null || true)
if [ -n "$lease" ] && [ "$lease" -gt 10 ]; then
    note "this cluster was not started with --demo: $NODE will be NotReady only after 40 s"
fi

node_ready() {
    "$KUBECTL" get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
}
expect "$NODE is Ready" test "$(node_ready)" = True

# (name node) of each Ready web pod that is not being deleted.
web_pods() {
    kq get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}' |
        awk '$3 == "True" && NF == 3 { print $1, $2 }'
}
# spread N NODES: N Ready pods over exactly NODES nodes.
spread() {
    local p
    p=$(web_pods)
    echo "$p"
    [ "$(grep -c . <<<"$p")" -eq "$1" ] && [ "$(awk '{ print $2 }' <<<"$p" | sort -u | wc -l)" -eq "$2" ]
}
# none_on: no Ready web pod on $NODE, and six elsewhere.
none_on() {
    local p
    p=$(web_pods)
    echo "$p"
    [ "$(grep -c . <<<"$p")" -eq 6 ] && ! awk '{ print $2 }' <<<"$p" | grep -qx "$NODE"
}

narrate "Six replicas spread over the nodes (a topology spread constraint: at most one more on any
    node than on another). Each pod tolerates an unreachable or not-ready node for 30 s before it
    is evicted (the default is 300 s; skiff up --demo also makes 30 s the default)."
k apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 6
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      # Honor: a failed (tainted) node is not counted, so pods can move.
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector: {matchLabels: {app: web}}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
EOF
wait_for "six pods Ready on $nodes nodes" 120 spread 6 "$(( nodes < 6 ? nodes : 6 ))"
k get pods -o wide
k get nodes
pause

start_again() {
    note "starting $NODE again"
    "$SKIFF" node start "$NODE" >/dev/null || true
}
narrate "Power $NODE off: its kubelet and proxy are killed and its containers are gone, as in a power
    cut. Nobody tells the API server: it only notices that $NODE's Lease is no longer renewed."
on_cleanup start_again
run "$SKIFF" node stop "$NODE"
down_at=$SECONDS
not_ready() {
    local r
    r=$(node_ready)
    echo "Ready=$r"
    [ "$r" != True ]
}
watching 90 "$KUBECTL" get node "$NODE" -w -- not_ready
note "NotReady after $((SECONDS - down_at)) s of silence"
k get pods -o wide
note "its pods still show Running: the last thing their kubelet reported. They are only marked"
note "not Ready, and taken out of Services' endpoints."
run "$KUBECTL" describe node "$NODE" | awk '/^Taints:/ { on = 1 } /^Unschedulable:/ { on = 0 } on'
note "the node lifecycle controller's taints: NoSchedule keeps new pods off, NoExecute evicts"
note "the pods that do not tolerate it (ours: for 30 s)"
pause

narrate "Now the 30 s of tolerationSeconds run out: the pods on $NODE are evicted (deleted), and
    their ReplicaSet creates replacements, which the scheduler puts on the nodes that are up."
watching 150 "$KUBECTL" -n "$NS" get pods -o wide -w -- none_on
note "six pods Ready, none on $NODE, $((SECONDS - down_at)) s after it stopped"
k get pods -o wide
note "the evicted pods stay Terminating: only their kubelet can confirm their containers stopped"
pause

gone_from_node() {
    local n
    n=$(kq get pods -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -cx "$NODE" || true)
    echo "pods still bound to $NODE: $n"
    [ "$n" -eq 0 ]
}
narrate "Boot $NODE again. Its kubelet finds its containers gone, confirms the evicted pods' deletion,
    and the node is Ready again."
run "$SKIFF" node start "$NODE"
_CLEANUP_HOOKS=()
is_ready() {
    local r
    r=$(node_ready)
    echo "Ready=$r"
    [ "$r" = True ]
}
watching 90 "$KUBECTL" get node "$NODE" -w -- is_ready
wait_for "the evicted pods gone from the API" 90 gone_from_node
k get pods -o wide
note "$NODE is empty: running pods are never moved back by themselves."
pause

narrate "To spread again, replace the pods: a rollout restart creates new pods one by one, and the
    scheduler puts them where the spread constraint wants, $NODE included."
k rollout restart deployment/web
back_on_node() {
    rolled_out web && web_pods | awk '{ print $2 }' | grep -qx "$NODE"
}
wait_for "the restarted pods Ready, some on $NODE again" 180 back_on_node
k get pods -o wide
