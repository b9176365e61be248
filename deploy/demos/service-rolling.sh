#!/usr/bin/env bash
# A Service keeps answering, without one failed request, while the
# Deployment behind it is replaced pod by pod.
#
# Teaching points: a Service sends traffic only to Ready pods (its
# EndpointSlices list them); a readinessProbe is what says "Ready", so a new
# pod gets traffic only once it answers; a pod being deleted is taken out of
# the endpoints at the same time as its containers are told to stop, and
# every node's proxy needs a moment to notice, so a preStop hook that
# sleeps a few seconds keeps the old server answering until no proxy sends
# it new connections; maxUnavailable: 0 keeps full capacity throughout.
DEMO_NAME=service-rolling
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

begin "Demo: a Service answering through a rolling update"

narrate "Three replicas answering with their version, behind a Service called web. Two details make
    the update invisible to clients:
    - readinessProbe: a pod is added to the Service only once it answers HTTP;
    - preStop: sleep 3: a pod being replaced keeps serving 3 s after it is taken out of the
      Service, while every node's proxy catches up. The server stops at once on SIGTERM; without
      the hook it could stop while some proxy still sends it a connection: a refused request."
k apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        env: [{name: VERSION, value: "1"}]
        # A server that stops at once on SIGTERM, as a well-behaved one does
        # (busybox httpd as PID 1 would ignore it until the SIGKILL 30 s later).
        command: [sh, -c, 'echo "v$VERSION $(hostname)" > /var/www/index.html; httpd -f -p 80 -h /var/www & trap "kill $!; exit 0" TERM; wait']
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
        lifecycle:
          preStop:
            exec: {command: [sleep, "3"]}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sleep, "3600"]
EOF
wait_for "three web pods Ready" 120 count_pods app=web 3
client_runs() { kq exec client -- true; }
wait_for "the client pod running" 90 client_runs
# One request from the client, through the Service's name.
ask() { kq exec client -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80 | tail -1"; }
answers_v1() {
    local a
    a=$(ask)
    echo "$a"
    grep -q '^v1 ' <<<"$a"
}
wait_for "the Service to answer" 60 answers_v1
k get service,endpointslices
run "$KUBECTL" -n "$NS" exec client -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80"
pause

# The client's loop: one request every 0.2 s until /tmp/stop exists,
# printing 1 or 2 (the version that answered) or x (no answer), 50 a line,
# then the tally.
# shellcheck disable=SC2016 # expanded by the client pod's shell
LOOP='ok=0; bad=0; n=0
while [ ! -e /tmp/stop ]; do
  a=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 web 80 | tail -1)
  case "$a" in
    v[0-9]*) ok=$((ok+1)); v=${a%% *}; printf %s "${v#v}" ;;
    *) bad=$((bad+1)); printf x ;;
  esac
  n=$((n+1)); [ $((n % 50)) -ne 0 ] || echo
  sleep 0.2
done
echo; echo "ok=$ok bad=$bad"'

narrate "The client now sends a request every 0.2 s and prints the version that answered (1 or 2),
    or x for a request that failed. Meanwhile: version 2, one pod at a time."
tally=$(mktemp)
on_cleanup "rm -f '$tally'"
"$KUBECTL" -n "$NS" exec client -- sh -c "rm -f /tmp/stop; $LOOP" | tee "$tally" &
requests=$!
_BACKGROUND+=("$requests")
sleep 3
k set env deployment/web VERSION=2
wait_for "the rollout to finish" 180 rolled_out web
note "a few more seconds of requests after the rollout"
sleep 4
kq exec client -- touch /tmp/stop
wait "$requests" || fail "the client's request loop failed"
line=$(grep '^ok=' "$tally" || true)
[ -n "$line" ] || fail "the client's loop printed no tally"
ok=${line#ok=}
ok=${ok%% *}
bad=${line##*bad=}
[ "$ok" -gt 20 ] || fail "only $ok requests answered: the loop did not run through the rollout"
grep -q 2 "$tally" || fail "no request was answered by version 2"
[ "$bad" -eq 0 ] || fail "$bad of $((ok + bad)) requests failed during the rollout"
passed "$ok requests, all answered, first by version 1, then by both, then by version 2"
k get pods -o wide
note "try it without the preStop hook or the readinessProbe (DEMO_KEEP=1 keeps the namespace):"
note "some requests then fail with x while pods come and go."
