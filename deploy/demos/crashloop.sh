#!/usr/bin/env bash
# A container that exits 1 at once: the kubelet restarts it with growing
# delays (CrashLoopBackOff).
#
# Teaching points: restartPolicy: Always restarts a container that exits,
# but not in a tight loop: the delay doubles from 10 s (10, 20, 40, … up to
# 5 min; `skiff up --demo` caps it at 20 s); restartCount and the last
# termination state (exit code, reason) say what happened; the container's
# logs from the previous run are kept (`kubectl logs --previous`).
DEMO_NAME=crashloop
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

begin "Demo: a crashing container in back-off"

narrate "A pod whose container prints a line and exits with code 1: a program that fails at start-up
    (a missing setting, a database that does not answer)."
k apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  restartPolicy: Always
  containers:
  - name: app
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo "starting at $(date +%T)... cannot read /etc/app.conf"; exit 1']
EOF
pause

restarts() { jp pod/crash '{.status.containerStatuses[0].restartCount}'; }

# Each restartCount seen, when it was first seen (seconds since the demo
# began), and each back-off message the kubelet gave while it waited.
declare -a COUNT=() AT=() WHY=()
track() {
    local n msg
    n=$(restarts)
    n=${n:-0}
    if [ "${#COUNT[@]}" -eq 0 ] || [ "${COUNT[-1]}" != "$n" ]; then
        COUNT+=("$n")
        AT+=("$SECONDS")
    fi
    msg=$(jp pod/crash '{.status.containerStatuses[0].state.waiting.message}')
    if [ -n "$msg" ] && { [ "${#WHY[@]}" -eq 0 ] || [ "${WHY[-1]}" != "$msg" ]; }; then
        WHY+=("$msg")
    fi
    [ "$n" -ge 4 ]
}
narrate "Watch its STATUS: Error when it exits, CrashLoopBackOff while the kubelet waits before the
    next start, RESTARTS counting up. The first restart is immediate, then the wait doubles."
# (Not `watching`: its waiter runs in $(…), a subshell, and track's arrays
# would be lost.)
run "$KUBECTL" -n "$NS" get pod crash -w &
watch_pid=$!
_BACKGROUND+=("$watch_pid")
deadline=$((SECONDS + 200))
until track; do
    [ "$SECONDS" -lt "$deadline" ] || fail "restartCount did not reach 4 in 200s (it is $(restarts))"
    sleep 1
done
sleep 2
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
echo
passed "four restarts"

narrate "When each restart was seen, and what the kubelet said while it waited:"
gaps=()
for i in "${!COUNT[@]}"; do
    if [ "$i" -gt 0 ]; then
        gap=$((AT[i] - AT[i - 1]))
        # Only a gap between two changes seen here is a measured delay.
        [ "$i" -lt 2 ] || gaps+=("$gap")
        note "restartCount ${COUNT[i]} at +$((AT[i] - _STARTED))s ($gap s after the previous one)"
    fi
done
for m in "${WHY[@]}"; do
    note "waiting: ${m%% restarting*} …"
done
[ "${#WHY[@]}" -gt 0 ] || fail "the kubelet never reported a back-off while the container waited"
passed "the kubelet reported its back-off: ${WHY[-1]%% restarting*}"
# The last wait is 20 s (or more without --demo), not the first 10 s.
if [ "${#gaps[@]}" -eq 0 ] || [ "${gaps[-1]}" -lt 15 ]; then
    fail "the delays did not grow: ${gaps[*]:-none} s"
fi
passed "the delays grew: ${gaps[*]} s"
note "(a cluster started with --demo caps the delay at 20 s; the default cap is 5 minutes)"
pause

narrate "What describe shows: State (Waiting, CrashLoopBackOff), Last State (Terminated, Exit Code 1),
    Restart Count, and the pod's events."
k describe pod crash
expect "the last termination was exit code 1" \
    test "$(jp pod/crash '{.status.containerStatuses[0].lastState.terminated.exitCode}')" = 1
pause

narrate "The logs of the run that crashed (the current container may not have started yet):"
k logs crash --previous
narrate "Deleting the pod is the only way to stop the loop: restartPolicy: Always means forever."
