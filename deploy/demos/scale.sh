#!/usr/bin/env bash
# Scale a Deployment up to 5 and down to 1, watching pods come and go.
#
# Teaching points: a Deployment is a desired state (replicas: N), not a
# command; the ReplicaSet controller creates or deletes pods until the count
# matches; the scheduler places each new pod on a node; scaling down deletes
# pods (they terminate gracefully) and nothing else changes.
DEMO_NAME=scale
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

begin "Demo: scaling a Deployment up and down"

narrate "A Deployment of the demo web server with one replica. The image is built into every node
    (imagePullPolicy: Never: there is no registry in this lab)."
k apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      # httpd runs as PID 1 of its container and ignores SIGTERM: without
      # this it would be killed only after the default 30 s.
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        ports: [{containerPort: 80}]
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
EOF
wait_for "one web pod Ready" 90 count_pods app=web 1
k get deployment,replicaset,pods -o wide
pause

narrate "Ask for five. Nothing is started by this command: it only changes spec.replicas. The
    ReplicaSet controller sees 1 pod where 5 are wanted and creates 4; the scheduler binds each to
    a node; each node's kubelet starts what is bound to it. Watch them appear:"
k scale deployment web --replicas=5
watching 120 "$KUBECTL" -n "$NS" get pods -o wide -w -- count_pods app=web 5
k get pods -o wide
note "the NODE column: the scheduler spreads the replicas over the nodes"
expect "five web pods Ready" count_pods app=web 5
pause

narrate "Back to one. The ReplicaSet controller deletes four pods; each shows Terminating: its
    containers get SIGTERM, and SIGKILL after terminationGracePeriodSeconds (5 s here, 30 by
    default: busybox httpd runs as PID 1, which ignores SIGTERM, so it waits for the SIGKILL)."
k scale deployment web --replicas=1
watching 120 "$KUBECTL" -n "$NS" get pods -o wide -w -- count_pods app=web 1
k get deployment web
expect "the Deployment reports 1/1 available" \
    test "$(jp deployment/web '{.status.availableReplicas}/{.status.replicas}')" = 1/1
pause

narrate "Delete the last pod by hand: the ReplicaSet still wants one, so a new one appears at once
    (with a new name). That is reconciliation: the controllers compare desired and actual state,
    forever."
old=$(ready_pods app=web)
k delete pod "$old" --wait=false
replaced() {
    local p
    p=$(ready_pods app=web)
    echo "ready: ${p:-none}"
    [ -n "$p" ] && [ "$p" != "$old" ]
}
wait_for "a replacement pod Ready" 90 replaced
k get pods -o wide
