//! The pod's status from what the runtime holds — a pure function: phase,
//! conditions, IPs and a status per container (state, lastState,
//! restartCount, ready), as `kubectl get pods` and `describe` read them.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::{ContainerView, Observed};
use super::plan::{Waiting, finished, restart_policy, restarts};

/// What the worker knows that the runtime does not: why a container that
/// has no instance waits (`ErrImagePull`, …), and back-off waits.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    pub waiting: BTreeMap<String, Waiting>,
    pub failed: bool,
    /// Containers whose probes hold them back: not ready (readiness not
    /// yet passed, or failing) or not started (startup probe not yet
    /// passed). Absent: ready and started once running.
    pub not_ready: BTreeSet<String>,
    pub not_started: BTreeSet<String>,
}

fn time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| Timestamp::from_nanosecond(nanos as i128).ok())
        .flatten()
        .map(Time)
}

fn terminated(c: &ContainerView) -> ContainerState {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: c.exit_code,
            reason: Some(reason),
            message: (!c.message.is_empty()).then(|| c.message.clone()),
            started_at: time(c.started_at),
            finished_at: time(c.finished_at),
            container_id: Some(format!("skiff://{}", c.id)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.map(String::from),
        }),
        ..Default::default()
    }
}

fn container_status(
    name: &str,
    image: &str,
    observed: &Observed,
    notes: &Notes,
    not_yet: &str,
) -> ContainerStatus {
    let latest = observed.latest(name);
    let note = notes.waiting.get(name);
    let state = match (latest, note) {
        (_, Some(w)) => waiting(&w.reason, Some(&w.message)),
        (None, None) => waiting(not_yet, None),
        (Some(c), None) if c.running() => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(c.started_at),
            }),
            ..Default::default()
        },
        (Some(c), None) if c.exited() => terminated(c),
        (Some(_), None) => waiting("ContainerCreating", None),
    };
    // The instance before the one shown: the newest dead one when waiting
    // to restart, else the one before the newest.
    let last = match (latest, note) {
        (Some(c), Some(_)) if c.exited() => Some(c),
        _ => observed.previous(name).filter(|c| c.exited()),
    };
    let running = latest.is_some_and(|c| c.running()) && note.is_none();
    ContainerStatus {
        name: name.into(),
        image: image.into(),
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("skiff://{}", c.id)),
        ready: running && !notes.not_ready.contains(name),
        started: Some(running && !notes.not_started.contains(name)),
        restart_count: latest.map_or(0, |c| c.attempt as i32),
        state: Some(state),
        last_state: Some(last.map(terminated).unwrap_or_default()),
        ..Default::default()
    }
}

/// The pod's IP: its sandbox's, or for a `hostNetwork` pod the node's (as
/// upstream's kubelet: its sandbox has none, the pod is reached at the
/// node's address) — for the status, the downward API, probes and hooks.
pub fn pod_ip(pod: &Pod, sandbox_ip: Option<&str>, host_ip: &str) -> Option<String> {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    if host_network && !host_ip.is_empty() {
        return Some(host_ip.to_string());
    }
    sandbox_ip.filter(|ip| !ip.is_empty()).map(String::from)
}

/// `status` for `pod` at `now`; `previous` is the status last written, whose
/// condition transition times and start time are kept.
pub fn status(
    pod: &Pod,
    observed: &Observed,
    notes: &Notes,
    host_ip: &str,
    now: Timestamp,
) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let sandbox = observed.current_sandbox();
    let inits = spec.init_containers.clone().unwrap_or_default();
    let init_done = inits.iter().all(|c| {
        observed
            .latest(&c.name)
            .is_some_and(|v| v.exited() && v.exit_code == 0)
    });
    let init_statuses: Vec<ContainerStatus> = inits
        .iter()
        .map(|c| {
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                observed,
                notes,
                "PodInitializing",
            )
        })
        .collect();
    let app_statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let not_yet = if init_done {
                "ContainerCreating"
            } else {
                "PodInitializing"
            };
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                observed,
                notes,
                not_yet,
            )
        })
        .collect();

    let all_ready = !app_statuses.is_empty() && app_statuses.iter().all(|s| s.ready);
    let phase = if notes.failed {
        "Failed"
    } else if finished(pod, observed) {
        let all_ok = spec
            .containers
            .iter()
            .all(|c| observed.latest(&c.name).is_some_and(|v| v.exit_code == 0));
        if all_ok { "Succeeded" } else { "Failed" }
    } else if sandbox.is_some()
        && init_done
        && spec.containers.iter().all(|c| {
            observed
                .latest(&c.name)
                .is_some_and(|v| v.running() || (v.exited() && restarts(policy, v.exit_code)))
        })
    {
        "Running"
    } else {
        "Pending"
    };

    let condition = |type_: &str, ok: bool, reason: Option<&str>| {
        let status = if ok { "True" } else { "False" };
        let kept = previous
            .conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == status))
            .and_then(|c| c.last_transition_time.clone());
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(String::from),
            last_transition_time: Some(kept.unwrap_or(Time(now))),
            ..Default::default()
        }
    };
    let not_ready = (!all_ready).then_some(if phase == "Succeeded" || phase == "Failed" {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    });
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox.is_some(), None),
        condition(
            "Initialized",
            init_done,
            (!init_done).then_some("ContainersNotInitialized"),
        ),
        condition("Ready", all_ready, not_ready),
        condition("ContainersReady", all_ready, not_ready),
    ];
    // PodScheduled is the scheduler's; keep it as it is.
    if let Some(scheduled) = previous
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
    {
        conditions.push(scheduled.clone());
    }

    let ip = pod_ip(pod, sandbox.map(|s| s.ip.as_str()), host_ip);
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.into()),
        host_ips: Some(vec![HostIP { ip: host_ip.into() }]),
        pod_ip: ip.clone(),
        pod_ips: ip.map(|ip| vec![PodIP { ip }]),
        start_time: previous.start_time.or(Some(Time(now))),
        qos_class: Some(qos_class(pod).into()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(app_statuses),
        ..Default::default()
    }
}

/// Guaranteed when every container limits cpu and memory with requests equal
/// to limits (requests default to limits); BestEffort when nothing is
/// requested or limited; Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.clone().unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        any |= !limits.is_empty() || !requests.is_empty();
        for res in ["cpu", "memory"] {
            let limit = limits.get(res);
            let request = requests.get(res).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::observed::SandboxView;
    use skiff_proto::cri::ContainerState as Cri;

    const S: i64 = 1_000_000_000;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"restartPolicy": policy, "containers": [
                {"name": "a", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}
            ]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap()
    }

    fn observed(state: Cri, code: i32, attempt: u32) -> Observed {
        Observed {
            sandboxes: vec![SandboxView {
                id: "sb1".into(),
                ready: true,
                attempt: 0,
                created_at: S,
                ip: "10.244.0.7".into(),
            }],
            containers: vec![super::super::observed::ContainerView {
                id: "c1".into(),
                sandbox_id: "sb1".into(),
                name: "a".into(),
                attempt,
                state,
                created_at: 2 * S,
                started_at: 3 * S,
                finished_at: if state == Cri::ContainerExited {
                    4 * S
                } else {
                    0
                },
                exit_code: code,
                reason: String::new(),
                message: String::new(),
                image_ref: "sha256:abc".into(),
            }],
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn a_running_pod() {
        let s = status(
            &pod("Always"),
            &observed(Cri::ContainerRunning, 0, 0),
            &Notes::default(),
            "192.168.56.11",
            now(),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.7"));
        assert_eq!(s.qos_class.as_deref(), Some("Guaranteed"));
        let c = &s.container_statuses.unwrap()[0];
        assert!(c.ready && c.state.as_ref().unwrap().running.is_some());
        assert_eq!(c.container_id.as_deref(), Some("skiff://c1"));
        let conditions = s.conditions.unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        );
    }

    #[test]
    fn phases_by_policy_and_exit() {
        let cases = [
            ("Always", 0, "Running"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
        ];
        for (policy, code, want) in cases {
            let s = status(
                &pod(policy),
                &observed(Cri::ContainerExited, code, 0),
                &Notes::default(),
                "h",
                now(),
            );
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} {code}");
        }
    }

    #[test]
    fn crash_loop_shows_waiting_with_the_last_termination() {
        let mut notes = Notes::default();
        notes.waiting.insert(
            "a".into(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 20s restarting failed container=a pod=web_shop(u1)".into(),
            },
        );
        let s = status(
            &pod("Always"),
            &observed(Cri::ContainerExited, 2, 3),
            &notes,
            "h",
            now(),
        );
        let c = &s.container_statuses.unwrap()[0];
        let waiting = c.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
        assert_eq!(c.restart_count, 3);
        assert!(!c.ready);
    }

    #[test]
    fn a_host_network_pod_has_the_nodes_ip() {
        let mut p = pod("Always");
        p.spec.as_mut().unwrap().host_network = Some(true);
        // Its sandbox has no IP of its own (the runtime reports none).
        let mut o = observed(Cri::ContainerRunning, 0, 0);
        for sb in o.sandboxes.iter_mut() {
            sb.ip.clear();
        }
        let s = status(&p, &o, &Notes::default(), "192.168.56.11", now());
        assert_eq!(s.pod_ip.as_deref(), Some("192.168.56.11"));
        assert_eq!(
            s.pod_ips.unwrap()[0].ip,
            "192.168.56.11",
            "podIPs too, as upstream"
        );
        assert_eq!(s.host_ip.as_deref(), Some("192.168.56.11"));
        // The helper's table: the node's for hostNetwork whatever the
        // sandbox says; else the sandbox's, none when it has none.
        let own = pod("Always");
        for (pod, sandbox, want) in [
            (&p, Some("10.244.0.7"), Some("192.168.56.11")),
            (&p, None, Some("192.168.56.11")),
            (&own, Some("10.244.0.7"), Some("10.244.0.7")),
            (&own, Some(""), None),
            (&own, None, None),
        ] {
            assert_eq!(
                pod_ip(pod, sandbox, "192.168.56.11").as_deref(),
                want,
                "{sandbox:?}"
            );
        }
    }

    #[test]
    fn before_the_sandbox_everything_is_pending() {
        let s = status(
            &pod("Always"),
            &Observed::default(),
            &Notes::default(),
            "h",
            now(),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.pod_ip, None);
        let c = &s.container_statuses.unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
    }

    #[test]
    fn qos_classes() {
        let with = |resources: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"spec": {"containers": [
                {"name": "a", "resources": resources}]}}))
            .unwrap()
        };
        assert_eq!(qos_class(&with(serde_json::json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&with(
                serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&with(serde_json::json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
    }
}
