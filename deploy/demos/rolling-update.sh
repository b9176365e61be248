#!/usr/bin/env bash
# A rolling update watched as a tree (Deployment → ReplicaSets → Pods), a
# broken update that stops by itself, and `kubectl rollout undo`.
#
# Teaching points: a change to the pod template makes a new ReplicaSet; the
# Deployment controller moves replicas from the old one to the new one step
# by step, within maxSurge/maxUnavailable, waiting for new pods to be Ready;
# a broken version never becomes Ready, so the rollout stalls with the old
# pods still serving; the old ReplicaSets are kept (scaled to 0) as the
# history that `rollout undo` goes back to.
DEMO_NAME=rolling-update
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

begin "Demo: a rolling update, a broken one, and rollout undo"

if [ -n "$SKIFFCTL" ]; then
    TREE=("$SKIFFCTL" -n "$NS" tree deploy/web)
else
    note "skiffctl not found (build it: cargo build --bins); showing kubectl get -w instead of the tree"
    # shellcheck disable=SC2054 # kubectl's list of types
    TREE=("$KUBECTL" -n "$NS" get replicasets,pods)
fi

narrate "Four replicas of a web server that answers with its version. The strategy: at most one pod
    more than wanted (maxSurge: 1), never one fewer Ready (maxUnavailable: 0)."
k apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    kubernetes.io/change-cause: "version 1"
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        env: [{name: VERSION, value: "1"}]
        command: [sh, -c, 'echo "v$VERSION $(hostname)" > /var/www/index.html && exec httpd -f -p 80 -h /var/www']
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
EOF
wait_for "four web pods Ready" 120 count_pods app=web 4
run "${TREE[@]}"
pause

# only_version V: every live web pod runs version V.
only_version() {
    local seen
    seen=$(kq get pods -l app=web -o 'jsonpath={range .items[*]}{.spec.containers[0].env[0].value} {.metadata.deletionTimestamp}{"\n"}{end}' |
        awk 'NF == 1 { print $1 }' | sort -u)
    echo "versions running: $seen"
    [ "$seen" = "$1" ]
}

narrate "Version 2: changing the pod template (here an environment variable) makes a new ReplicaSet.
    Watch the new one grow and the old one shrink, one pod at a time:"
k set env deployment/web VERSION=2
k annotate deployment/web kubernetes.io/change-cause="version 2" --overwrite
watching 180 "${TREE[@]}" -w -- rolled_out web
k rollout status deployment/web --timeout=10s
k get replicasets
note "the old ReplicaSet is still there, scaled to 0: it is the history"
k rollout history deployment/web
expect "every pod runs version 2" only_version 2
pause

bad_pod() {
    kq get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.waiting.reason}{"\n"}{end}' |
        grep -E 'ErrImageNeverPull|ErrImagePull|ImagePullBackOff'
}

narrate "Version 3 is broken: its image does not exist on the nodes (skiff/httpd:v3). The first new pod
    never becomes Ready, so the rollout stops there, and since maxUnavailable is 0 all four old pods
    keep serving. A bad release did not take the application down."
k set image deployment/web httpd=skiff/httpd:v3
k annotate deployment/web kubernetes.io/change-cause="version 3 (broken image)" --overwrite
watching 90 "${TREE[@]}" -w -- bad_pod
k get pods
expect "four old pods still available" test "$(jp deployment/web '{.status.availableReplicas}')" = 4
k rollout status deployment/web --timeout=3s || note "(rollout status gives up: the rollout is stuck, as expected)"
pause

narrate "Undo: the Deployment's template goes back to the previous revision's (version 2), the broken
    ReplicaSet is scaled to 0 and its pod deleted."
k rollout undo deployment/web
watching 120 "${TREE[@]}" -w -- rolled_out web
no_bad_pod() { ! bad_pod; }
wait_for "the broken pod gone" 60 no_bad_pod
expect "every pod runs version 2 again" only_version 2
expect "the template's image is skiff/httpd:latest again" \
    test "$(jp deployment/web '{.spec.template.spec.containers[0].image}')" = skiff/httpd:latest
k rollout history deployment/web
note "undo made revision 2 the newest: it is now listed as revision 4"
