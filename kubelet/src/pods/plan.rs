//! What one sync of a pod does, decided from the pod and what the runtime
//! holds — a pure function, as upstream's `computePodActions`:
//!
//! 1. No ready sandbox: make one (a new attempt), then start the first init
//!    container, or every app container when there are none.
//! 2. Init containers run one at a time, in order; a failed one is restarted
//!    (after its back-off) unless `restartPolicy: Never`, which fails the pod.
//! 3. App containers are started; an exited one is restarted when the
//!    policy says so (`Always`; `OnFailure` after a non-zero exit), after its
//!    back-off — meanwhile it waits in `CrashLoopBackOff`.
//! 4. Only the newest dead instance of each container is kept (for
//!    `lastState` and `kubectl logs --previous`); older ones are removed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::backoff::{Backoff, STABLE};
use super::observed::{ContainerView, Observed};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stop the containers and the sandbox (to replace it, or the pod is done).
    StopSandbox {
        id: String,
    },
    CreateSandbox {
        attempt: u32,
    },
    /// Pull (per policy), create and start container `name` as restart `attempt`.
    StartContainer {
        name: String,
        init: bool,
        attempt: u32,
    },
    RemoveContainer {
        id: String,
    },
}

/// A container waiting, and why (for its status).
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub waiting: BTreeMap<String, Waiting>,
    /// An init container failed under `restartPolicy: Never`.
    pub failed: bool,
}

/// `Always` unless the pod says otherwise.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether an instance that exited with `code` is restarted under `policy`.
pub fn restarts(policy: &str, code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

fn names(pod: &Pod, init: bool) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let list = if init {
        spec.init_containers.as_deref().unwrap_or_default()
    } else {
        &spec.containers
    };
    list.iter().map(|c| c.name.clone()).collect()
}

fn next_attempt(observed: &Observed, name: &str) -> u32 {
    observed.latest(name).map_or(0, |c| c.attempt + 1)
}

/// Whether `name`'s exited instance `c` may restart now, else why it waits.
fn may_restart(pod: &Pod, c: &ContainerView, backoff: &Backoff, now: i64) -> Result<(), Waiting> {
    let ran = Duration::from_nanos(c.finished_at.saturating_sub(c.started_at).max(0) as u64);
    if ran >= STABLE {
        return Ok(());
    }
    match backoff.remaining(&c.name, c.finished_at, now) {
        None => Ok(()),
        Some(_) => {
            let meta = &pod.metadata;
            Err(Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    backoff.delay(&c.name).as_secs(),
                    c.name,
                    meta.name.as_deref().unwrap_or_default(),
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.uid.as_deref().unwrap_or_default(),
                ),
            })
        }
    }
}

/// Whether every app container has finished for good (the pod is done).
pub fn finished(pod: &Pod, observed: &Observed) -> bool {
    let policy = restart_policy(pod);
    let app = names(pod, false);
    !app.is_empty()
        && app.iter().all(|n| {
            observed
                .latest(n)
                .is_some_and(|c| c.exited() && !restarts(policy, c.exit_code))
        })
}

pub fn plan(pod: &Pod, observed: &Observed, backoff: &Backoff, now: i64) -> Plan {
    let mut plan = Plan::default();
    let policy = restart_policy(pod);
    let done = finished(pod, observed);

    let Some(sandbox) = observed.current_sandbox() else {
        if done {
            return plan;
        }
        plan.actions.push(Action::CreateSandbox {
            attempt: observed
                .sandboxes
                .iter()
                .map(|s| s.attempt + 1)
                .max()
                .unwrap_or(0),
        });
        match names(pod, true).first() {
            Some(first) => plan.actions.push(Action::StartContainer {
                name: first.clone(),
                init: true,
                attempt: next_attempt(observed, first),
            }),
            None => {
                for name in names(pod, false) {
                    let attempt = next_attempt(observed, &name);
                    plan.actions.push(Action::StartContainer {
                        name,
                        init: false,
                        attempt,
                    });
                }
            }
        }
        return plan;
    };

    // A pod that is done gives its sandbox (and IP) back.
    if done {
        plan.actions.push(Action::StopSandbox {
            id: sandbox.id.clone(),
        });
        return plan;
    }

    let mut initialized = true;
    for name in names(pod, true) {
        match observed.latest_in(&sandbox.id, &name) {
            None => {
                plan.actions.push(Action::StartContainer {
                    attempt: next_attempt(observed, &name),
                    name,
                    init: true,
                });
                initialized = false;
            }
            Some(c) if c.exited() && c.exit_code == 0 => continue,
            Some(c) if c.exited() => {
                if policy == "Never" {
                    plan.failed = true;
                } else {
                    match may_restart(pod, c, backoff, now) {
                        Ok(()) => plan.actions.push(Action::StartContainer {
                            name: name.clone(),
                            init: true,
                            attempt: c.attempt + 1,
                        }),
                        Err(w) => {
                            plan.waiting.insert(name.clone(), w);
                        }
                    }
                }
                initialized = false;
            }
            // Running or being created: wait for it.
            Some(_) => initialized = false,
        }
        break;
    }

    if initialized {
        for name in names(pod, false) {
            match observed.latest_in(&sandbox.id, &name) {
                None => plan.actions.push(Action::StartContainer {
                    attempt: next_attempt(observed, &name),
                    name,
                    init: false,
                }),
                Some(c) if c.exited() && restarts(policy, c.exit_code) => {
                    match may_restart(pod, c, backoff, now) {
                        Ok(()) => plan.actions.push(Action::StartContainer {
                            name: name.clone(),
                            init: false,
                            attempt: c.attempt + 1,
                        }),
                        Err(w) => {
                            plan.waiting.insert(name.clone(), w);
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }

    // Keep the newest dead instance of each container, remove older ones.
    for c in &observed.containers {
        let newest = observed.latest(&c.name).map(|l| l.id.as_str());
        let previous = observed.previous(&c.name).map(|p| p.id.as_str());
        let keep = Some(c.id.as_str()) == newest || Some(c.id.as_str()) == previous;
        if c.exited() && !keep {
            plan.actions
                .push(Action::RemoveContainer { id: c.id.clone() });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::observed::SandboxView;
    use skiff_proto::cri::ContainerState;

    const S: i64 = 1_000_000_000;

    fn pod(policy: &str, init: &[&str], app: &[&str]) -> Pod {
        let c = |n: &&str| serde_json::json!({"name": n, "image": "busybox"});
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {
                "restartPolicy": policy,
                "initContainers": init.iter().map(c).collect::<Vec<_>>(),
                "containers": app.iter().map(c).collect::<Vec<_>>(),
            }
        }))
        .unwrap()
    }

    fn sandbox(id: &str, ready: bool) -> SandboxView {
        SandboxView {
            id: id.into(),
            ready,
            attempt: 0,
            created_at: 1,
            ip: "10.244.0.5".into(),
        }
    }

    fn ctr(id: &str, name: &str, attempt: u32, state: ContainerState, code: i32) -> ContainerView {
        ContainerView {
            id: id.into(),
            sandbox_id: "sb1".into(),
            name: name.into(),
            attempt,
            state,
            created_at: attempt as i64,
            started_at: 10 * S,
            finished_at: if state == ContainerState::ContainerExited {
                11 * S
            } else {
                0
            },
            exit_code: code,
            reason: String::new(),
            message: String::new(),
            image_ref: String::new(),
        }
    }

    use ContainerState::{ContainerExited as Exited, ContainerRunning as Running};

    fn start(name: &str, init: bool, attempt: u32) -> Action {
        Action::StartContainer {
            name: name.into(),
            init,
            attempt,
        }
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_and_its_containers() {
        let p = plan(
            &pod("Always", &[], &["a", "b"]),
            &Observed::default(),
            &Backoff::default(),
            0,
        );
        assert_eq!(
            p.actions,
            [
                Action::CreateSandbox { attempt: 0 },
                start("a", false, 0),
                start("b", false, 0)
            ]
        );
        let with_init = plan(
            &pod("Always", &["i1", "i2"], &["a"]),
            &Observed::default(),
            &Backoff::default(),
            0,
        );
        assert_eq!(
            with_init.actions,
            [Action::CreateSandbox { attempt: 0 }, start("i1", true, 0)]
        );
    }

    #[test]
    fn init_containers_run_in_order_then_the_app() {
        let p = pod("Always", &["i1", "i2"], &["a"]);
        let mut o = Observed {
            sandboxes: vec![sandbox("sb1", true)],
            containers: vec![ctr("c1", "i1", 0, Running, 0)],
        };
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [],
            "wait for i1"
        );
        o.containers[0] = ctr("c1", "i1", 0, Exited, 0);
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [start("i2", true, 0)]
        );
        o.containers.push(ctr("c2", "i2", 0, Exited, 0));
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [start("a", false, 0)]
        );
    }

    #[test]
    fn a_failed_init_container_under_never_fails_the_pod() {
        let p = pod("Never", &["i1"], &["a"]);
        let o = Observed {
            sandboxes: vec![sandbox("sb1", true)],
            containers: vec![ctr("c1", "i1", 0, Exited, 3)],
        };
        let got = plan(&p, &o, &Backoff::default(), 0);
        assert!(got.failed && got.actions.is_empty());
    }

    #[test]
    fn restart_policy_table() {
        // (policy, exit code, restarted?)
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 0, false),
            ("Never", 2, false),
        ];
        for (policy, code, want) in cases {
            let p = pod(policy, &[], &["a", "b"]);
            let o = Observed {
                sandboxes: vec![sandbox("sb1", true)],
                containers: vec![
                    ctr("c1", "a", 0, Exited, code),
                    ctr("c2", "b", 0, Running, 0),
                ],
            };
            let got = plan(&p, &o, &Backoff::default(), 20 * S);
            assert_eq!(
                got.actions.contains(&start("a", false, 1)),
                want,
                "{policy} {code}"
            );
        }
    }

    #[test]
    fn back_off_makes_it_wait_in_crash_loop() {
        let p = pod("Always", &[], &["a"]);
        let o = Observed {
            sandboxes: vec![sandbox("sb1", true)],
            containers: vec![ctr("c1", "a", 1, Exited, 1)],
        };
        let mut b = Backoff::default();
        b.restarted("a", Duration::from_secs(1)); // 10 s from its finish at 11 s
        let waiting = plan(&p, &o, &b, 15 * S);
        assert!(waiting.actions.is_empty());
        let w = &waiting.waiting["a"];
        assert_eq!(w.reason, "CrashLoopBackOff");
        assert_eq!(
            w.message,
            "back-off 10s restarting failed container=a pod=web_shop(u1)"
        );
        assert_eq!(plan(&p, &o, &b, 22 * S).actions, [start("a", false, 2)]);
    }

    #[test]
    fn a_finished_pod_gives_its_sandbox_back_and_is_not_restarted() {
        let p = pod("OnFailure", &[], &["a"]);
        let mut o = Observed {
            sandboxes: vec![sandbox("sb1", true)],
            containers: vec![ctr("c1", "a", 0, Exited, 0)],
        };
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [Action::StopSandbox { id: "sb1".into() }]
        );
        o.sandboxes[0].ready = false;
        assert_eq!(plan(&p, &o, &Backoff::default(), 0).actions, []);
    }

    #[test]
    fn a_lost_sandbox_is_replaced_and_restart_counts_go_on() {
        let p = pod("Always", &[], &["a"]);
        let o = Observed {
            sandboxes: vec![sandbox("sb1", false)],
            containers: vec![ctr("c1", "a", 4, Exited, 137)],
        };
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [Action::CreateSandbox { attempt: 1 }, start("a", false, 5)]
        );
    }

    #[test]
    fn only_the_newest_dead_instances_are_kept() {
        let p = pod("Always", &[], &["a"]);
        let o = Observed {
            sandboxes: vec![sandbox("sb1", true)],
            containers: vec![
                ctr("c1", "a", 0, Exited, 1),
                ctr("c2", "a", 1, Exited, 1),
                ctr("c3", "a", 2, Running, 0),
            ],
        };
        assert_eq!(
            plan(&p, &o, &Backoff::default(), 0).actions,
            [Action::RemoveContainer { id: "c1".into() }]
        );
    }
}
