# shellcheck shell=bash
# What every demo shares. A demo sets DEMO_NAME and sources this file:
#
#   DEMO_NAME=scale
#   . "$(dirname "$0")/lib.sh"
#
# It then works in its own namespace, demo-$DEMO_NAME, which is created by
# `begin` and deleted on exit (whatever happened), so a demo can be run again
# and again, and leaves nothing in the cluster.
#
# Environment:
#   KUBECONFIG   the cluster (as kubectl reads it)
#   DEMO_PAUSE   pause between steps: unset = wait for Enter when stdin is a
#                terminal (no pause otherwise); a number = sleep that many
#                seconds; 0 = no pause (unattended, as the tests run them)
#   SKIFF        the skiff binary (default: skiff on PATH), for node demos
#   SKIFFCTL     skiffctl (default: on PATH, else ../../target/{release,debug})
#   KUBECTL      kubectl (default: kubectl on PATH)

set -euo pipefail

: "${DEMO_NAME:?a demo sets DEMO_NAME before sourcing lib.sh}"
NS="demo-$DEMO_NAME"
DEMO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
SKIFF=${SKIFF:-skiff}
if [ -z "${SKIFFCTL:-}" ]; then
    if command -v skiffctl >/dev/null 2>&1; then
        SKIFFCTL=skiffctl
    elif [ -x "$DEMO_DIR/../../target/release/skiffctl" ]; then
        SKIFFCTL="$DEMO_DIR/../../target/release/skiffctl"
    elif [ -x "$DEMO_DIR/../../target/debug/skiffctl" ]; then
        SKIFFCTL="$DEMO_DIR/../../target/debug/skiffctl"
    else
        SKIFFCTL=""
    fi
fi

if [ -t 1 ]; then
    _B=$'\e[1m' _G=$'\e[32m' _R=$'\e[31m' _D=$'\e[2m' _N=$'\e[0m'
else
    _B="" _G="" _R="" _D="" _N=""
fi
_STARTED=$SECONDS

# Elapsed seconds since the demo began, as +12s.
_t() { printf '+%ss' "$((SECONDS - _STARTED))"; }

# narrate TEXT…: what is about to happen, and why.
narrate() { printf '\n%s==> %s%s\n' "$_B" "$*" "$_N"; }

# note TEXT…: a smaller remark under a step.
note() { printf '    %s%s%s\n' "$_D" "$*" "$_N"; }

# passed TEXT…: an expectation that held.
passed() { printf '    %s✓ %s%s %s\n' "$_G" "$*" "$_N" "$(_t)"; }

# fail TEXT…: stops the demo (the cleanup still runs).
fail() {
    printf '\n%sDEMO %s FAILED: %s%s\n' "$_R" "$DEMO_NAME" "$*" "$_N" >&2
    exit 1
}

# shown CMD…: CMD as one would type it, arguments quoted where needed.
shown() {
    local a out=""
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+=" $a"
        elif [[ "$a" == *\'* && "$a" != *[\"\$\`]* && "$a" != *\\\\* ]]; then
            out+=" \"$a\""
        else
            out+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    printf '%s' "${out# }"
}

# run CMD…: shows the command as a teacher would type it, then runs it.
run() {
    printf '%s$ %s%s\n' "$_B" "$(shown "$@")" "$_N"
    "$@"
}

# k ARGS…: kubectl in the demo's namespace (shown as typed).
k() { run "$KUBECTL" -n "$NS" "$@"; }

# kq ARGS…: kubectl in the demo's namespace, not shown (for checks).
kq() { "$KUBECTL" -n "$NS" "$@"; }

# pause: lets the teacher talk before the next step (see DEMO_PAUSE).
pause() {
    if [ -n "${DEMO_PAUSE:-}" ]; then
        [ "$DEMO_PAUSE" = 0 ] || sleep "$DEMO_PAUSE"
    elif [ -t 0 ]; then
        read -r -p "${_D}    [Enter] to go on${_N}" _
    fi
}

# wait_for WHAT TIMEOUT CMD…: runs CMD (quietly) every second until it
# succeeds; after TIMEOUT seconds the demo fails, showing CMD's last output.
wait_for() {
    local what=$1 timeout=$2 out
    shift 2
    local deadline=$((SECONDS + timeout))
    note "waiting (at most ${timeout}s) for $what"
    while true; do
        if out=$("$@" 2>&1); then
            passed "$what"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '%s\n' "$out" | tail -20 >&2
            fail "timed out after ${timeout}s waiting for $what"
        fi
        sleep 1
    done
}

# expect WHAT CMD…: CMD must succeed now, else the demo fails.
expect() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        passed "$what"
    else
        printf '%s\n' "$out" | tail -20 >&2
        fail "expected $what"
    fi
}

# watching SECS WATCHER… -- WAITER…: runs WATCHER (kubectl get -w, skiffctl
# tree -w) in the background for the class to see, while WAITER runs in the
# foreground, quietly, until it succeeds; the watcher is then stopped (2 s
# later, so its last lines show). The demo fails if WAITER has not succeeded
# after SECS seconds.
watching() {
    local secs=$1
    shift
    local watcher=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        watcher+=("$1")
        shift
    done
    [ "${1:-}" = -- ] || fail "watching: no -- before the command to wait for"
    shift
    printf '%s$ %s &%s\n' "$_B" "$(shown "${watcher[@]}")" "$_N"
    "${watcher[@]}" &
    local wpid=$! deadline=$((SECONDS + secs)) out rc=1
    _BACKGROUND+=("$wpid")
    while [ "$SECONDS" -lt "$deadline" ]; do
        if out=$("$@" 2>&1); then
            rc=0
            break
        fi
        sleep 1
    done
    sleep 2
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    echo
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | tail -20 >&2
        fail "timed out after ${secs}s waiting for: $*"
    fi
}

# jp OBJECT JSONPATH: one field of an object in the demo's namespace.
jp() { kq get "$1" -o "jsonpath=$2"; }

# ready_pods SELECTOR: names of the pods matching SELECTOR that are Ready
# and not being deleted, one a line.
ready_pods() {
    kq get pods -l "$1" -o 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}' |
        awk '$2 == "True" && NF == 2 { print $1 }'
}

# count_pods SELECTOR N: exactly N pods match SELECTOR (terminating ones
# included: "down to 1" means the others are gone), all Ready.
count_pods() {
    local all ready
    all=$(kq get pods -l "$1" -o name | wc -l)
    ready=$(ready_pods "$1" | wc -l)
    echo "pods: $all, ready: $ready, want $2"
    [ "$all" -eq "$2" ] && [ "$ready" -eq "$2" ]
}

# rolled_out DEPLOYMENT: its rollout is complete: the controller saw the
# latest spec, and every replica is updated and available, none extra.
rolled_out() {
    local s gen seen want updated avail total
    s=$(jp "deployment/$1" '{.metadata.generation} {.status.observedGeneration} {.spec.replicas} {.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}')
    echo "generation, observed, wanted, updated, available, total: $s"
    read -r gen seen want updated avail total <<<"$s"
    [ "$gen" = "$seen" ] && [ "$updated" = "$want" ] && [ "$avail" = "$want" ] && [ "$total" = "$want" ]
}

# Hooks run on exit before the namespace goes (a demo appends to it, e.g.
# to start a node it stopped).
_CLEANUP_HOOKS=()
_BACKGROUND=()
on_cleanup() { _CLEANUP_HOOKS+=("$*"); }

_cleanup() {
    local rc=$?
    set +e
    for pid in "${_BACKGROUND[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for hook in "${_CLEANUP_HOOKS[@]}"; do
        eval "$hook"
    done
    if [ -n "${DEMO_KEEP:-}" ]; then
        note "DEMO_KEEP is set: namespace $NS stays"
    else
        note "cleaning up: kubectl delete namespace $NS"
        "$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null ||
            printf 'warning: namespace %s is not gone yet\n' "$NS" >&2
    fi
    if [ "$rc" -eq 0 ]; then
        printf '\n%sdemo %s done (%ss)%s\n' "$_G" "$DEMO_NAME" "$((SECONDS - _STARTED))" "$_N"
    fi
    exit "$rc"
}

# begin TITLE: checks the cluster answers, starts from a fresh namespace and
# arms the cleanup.
begin() {
    printf '%s%s%s\n' "$_B" "$*" "$_N"
    printf '%s(namespace %s, KUBECONFIG=%s)%s\n' "$_D" "$NS" "${KUBECONFIG:-~/.kube/config}" "$_N"
    command -v "$KUBECTL" >/dev/null || fail "kubectl is not on PATH"
    if ! "$KUBECTL" get nodes >/dev/null 2>&1; then
        fail "no cluster answers (KUBECONFIG=${KUBECONFIG:-unset}): start one with
    sudo skiff up --nodes 3 --demo
    export KUBECONFIG=\$PWD/.skiff/admin.kubeconfig"
    fi
    trap _cleanup EXIT
    trap 'exit 130' INT TERM
    if "$KUBECTL" get namespace "$NS" >/dev/null 2>&1; then
        note "namespace $NS is left from an earlier run: deleting it first"
        "$KUBECTL" delete namespace "$NS" --wait=true --timeout=120s >/dev/null
    fi
    "$KUBECTL" create namespace "$NS" >/dev/null
}
