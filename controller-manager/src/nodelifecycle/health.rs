//! A node's health: when it was last heard from, what its conditions and
//! taints should be (upstream `monitorNodeHealth` and the tainting passes).
//!
//! A node is heard from when its Lease in `kube-node-lease` is renewed or
//! its Ready condition's heartbeat moves. As upstream, the time that counts
//! is when *this controller saw* the change, not the timestamp the kubelet
//! wrote: a kubelet whose clock is off must not look dead (or alive). A
//! node silent for `--node-monitor-grace-period` (or, if it never posted a
//! Ready condition, `--node-startup-grace-period` since it was first seen)
//! gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown.
//!
//! Taints follow the (resulting) conditions: `not-ready` (Ready=False) or
//! `unreachable` (Ready=Unknown) both as NoSchedule and NoExecute, the
//! pressure taints as NoSchedule, `unschedulable` from
//! `spec.unschedulable`. A node whose Ready is True again loses them. When
//! every node is unhealthy at once the problem is more likely the control
//! plane's network than the nodes, so, as upstream's full-disruption mode,
//! no NoExecute taint is added and those present are removed: nothing is
//! evicted. Otherwise new NoExecute taints wait for their zone's rate
//! ([`super::disruption`]): [`NoExecute`] says what the caller allows.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The conditions set to Unknown when the kubelet goes silent.
const WATCHED: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What was last seen of a node's heartbeats, and when.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    lease_renew: Option<Timestamp>,
    ready_heartbeat: Option<Timestamp>,
    seen_at: Timestamp,
}

/// The time each node was last heard from, as this controller saw it.
#[derive(Debug, Default)]
pub struct Heartbeats {
    probes: HashMap<String, Probe>,
}

impl Heartbeats {
    /// Records the heartbeats seen now; returns when the node was last heard
    /// from. A node seen for the first time counts as heard from now.
    pub fn observe(
        &mut self,
        node: &str,
        lease_renew: Option<Timestamp>,
        ready_heartbeat: Option<Timestamp>,
        now: Timestamp,
    ) -> Timestamp {
        let probe = self.probes.entry(node.to_string()).or_insert(Probe {
            lease_renew,
            ready_heartbeat,
            seen_at: now,
        });
        if probe.lease_renew != lease_renew || probe.ready_heartbeat != ready_heartbeat {
            *probe = Probe {
                lease_renew,
                ready_heartbeat,
                seen_at: now,
            };
        }
        probe.seen_at
    }

    pub fn forget(&mut self, node: &str) {
        self.probes.remove(node);
    }
}

/// The node's condition of `type_`.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `True`, `False` or `Unknown` (also when missing).
pub fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("Unknown", |c| c.status.as_str())
}

pub fn ready_heartbeat(node: &Node) -> Option<Timestamp> {
    condition(node, "Ready")?
        .last_heartbeat_time
        .as_ref()
        .map(|t| t.0)
}

/// What the monitor decides for one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePlan {
    /// Merge patch of `nodes/status` (the conditions, preconditioned on
    /// the resourceVersion seen).
    pub status: Option<Value>,
    /// Merge patch of the node's `spec.taints`.
    pub taints: Option<Value>,
    /// Ready as it is after `status` is written: `True`, `False`, `Unknown`.
    pub ready: String,
    /// (reason, note) of Events on the Node.
    pub events: Vec<(String, String)>,
    /// When to look at the node again if nothing changes (its grace runs out).
    pub recheck: Option<Duration>,
}

/// The inputs of [`plan`] besides the node.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub last_heard: Timestamp,
    pub now: Timestamp,
    pub grace: Duration,
    pub startup_grace: Duration,
    /// Whether a NoExecute taint may be added or kept.
    pub noexecute: NoExecute,
}

/// What may be done with a node's `not-ready` / `unreachable` NoExecute taint
/// (see [`super::disruption`] for who decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoExecute {
    /// Added when the conditions call for it.
    #[default]
    Allow,
    /// Kept (or swapped between the two) if the node has one; none added:
    /// the zone's tainting rate has no room now.
    KeepOnly,
    /// Removed: every zone is fully disrupted.
    Remove,
}

/// Whether the node carries a `not-ready` or `unreachable` NoExecute taint.
pub fn has_noexecute(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(is_noexecute_managed))
}

fn is_noexecute_managed(t: &Taint) -> bool {
    t.effect == "NoExecute" && (t.key == UNREACHABLE || t.key == NOT_READY)
}

fn is_noschedule_managed(t: &Taint) -> bool {
    t.effect == "NoSchedule"
        && [
            UNREACHABLE,
            NOT_READY,
            MEMORY_PRESSURE,
            DISK_PRESSURE,
            PID_PRESSURE,
            NETWORK_UNAVAILABLE,
            UNSCHEDULABLE,
        ]
        .contains(&t.key.as_str())
}

fn taint(key: &str, effect: &str, added: Option<Timestamp>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: added.map(Time),
    }
}

/// The node's taints as its conditions call for, the others unchanged.
pub fn desired_taints(node: &Node, conditions: &[NodeCondition], t: &Timing) -> Vec<Taint> {
    let status = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.as_str())
    };
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut want: Vec<(&str, &str)> = Vec::new();
    // No Ready condition yet (a node just registered): no taint until the
    // startup grace runs out and Ready becomes Unknown.
    match status("Ready") {
        None | Some("True") => {}
        Some("False") => want.push((NOT_READY, "NoSchedule")),
        Some(_) => want.push((UNREACHABLE, "NoSchedule")),
    }
    for (cond, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if status(cond) == Some("True") {
            want.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        want.push((UNSCHEDULABLE, "NoSchedule"));
    }
    let may_taint = match t.noexecute {
        NoExecute::Allow => true,
        NoExecute::KeepOnly => current.iter().any(is_noexecute_managed),
        NoExecute::Remove => false,
    };
    if may_taint {
        match status("Ready") {
            None | Some("True") => {}
            Some("False") => want.push((NOT_READY, "NoExecute")),
            Some(_) => want.push((UNREACHABLE, "NoExecute")),
        }
    }
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|c| !is_noexecute_managed(c) && !is_noschedule_managed(c))
        .cloned()
        .collect();
    for (key, effect) in want {
        // A taint already there keeps its timeAdded: evictions count from it.
        match current.iter().find(|c| c.key == key && c.effect == effect) {
            Some(existing) => out.push(existing.clone()),
            None => out.push(taint(key, effect, (effect == "NoExecute").then_some(t.now))),
        }
    }
    out
}

fn same_taints(a: &[Taint], b: &[Taint]) -> bool {
    let key = |t: &Taint| (t.key.clone(), t.effect.clone(), t.value.clone());
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

fn to_std(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// The decision for one node.
pub fn plan(node: &Node, t: &Timing) -> NodePlan {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let never_posted = condition(node, "Ready").is_none();
    let grace = if never_posted {
        t.startup_grace
    } else {
        t.grace
    };
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    let deadline = t.last_heard + grace;
    let mut out = NodePlan::default();
    let silent = t.now > deadline;
    if silent {
        let mut changed = false;
        for type_ in WATCHED {
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                Some(c) if c.status == "Unknown" => {}
                Some(c) => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(Time(t.now));
                    changed = true;
                }
                None => {
                    conditions.push(NodeCondition {
                        type_: type_.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                        last_transition_time: Some(Time(t.now)),
                    });
                    changed = true;
                }
            }
        }
        if changed {
            out.status = Some(json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "status": {"conditions": conditions},
            }));
            if ready_status(node) == "True" {
                out.events.push((
                    "NodeNotReady".into(),
                    format!("Node {name} status is now: NodeNotReady"),
                ));
            }
        }
    } else {
        out.recheck = Some(to_std(deadline.duration_since(t.now)) + Duration::from_millis(100));
    }
    out.ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or("Unknown".into(), |c| c.status.clone());

    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let want = desired_taints(node, &conditions, t);
    if !same_taints(&current, &want) {
        let had_bad = current
            .iter()
            .any(|c| c.key == UNREACHABLE || c.key == NOT_READY);
        let has_bad = want
            .iter()
            .any(|c| c.key == UNREACHABLE || c.key == NOT_READY);
        if had_bad && !has_bad {
            out.events.push((
                "NodeReady".into(),
                format!("Node {name} status is now: NodeReady"),
            ));
        }
        // The kubelet said Ready=False itself (a silence was reported when
        // the conditions were written): that is the transition to report.
        if !had_bad && has_bad && out.ready == "False" {
            out.events.push((
                "NodeNotReady".into(),
                format!("Node {name} status is now: NodeNotReady"),
            ));
        }
        out.taints = Some(json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": want},
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn timing(last_heard: i64, now: i64) -> Timing {
        Timing {
            last_heard: at(last_heard),
            now: at(now),
            grace: Duration::from_secs(40),
            startup_grace: Duration::from_secs(60),
            noexecute: NoExecute::Allow,
        }
    }

    fn node(ready: Option<&str>, taints: Value) -> Node {
        let mut conditions = vec![
            json!({"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"}),
            json!({"type": "DiskPressure", "status": "False"}),
            json!({"type": "PIDPressure", "status": "False"}),
        ];
        if let Some(r) = ready {
            conditions.push(json!({"type": "Ready", "status": r, "reason": "KubeletReady",
                "lastHeartbeatTime": "2023-11-14T22:13:20Z", "lastTransitionTime": "2023-11-14T22:13:20Z"}));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "resourceVersion": "42", "creationTimestamp": "2023-11-14T22:00:00Z"},
            "spec": {"taints": taints},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn taint_keys(plan: &NodePlan) -> Vec<String> {
        let mut keys: Vec<String> = plan.taints.as_ref().map_or(vec![], |p| {
            p["spec"]["taints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap(),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect()
        });
        keys.sort();
        keys
    }

    #[test]
    fn heartbeats_count_when_seen_not_when_written() {
        let mut h = Heartbeats::default();
        // First seen: heard from now, whatever the Lease says.
        assert_eq!(h.observe("n1", Some(at(-1000)), None, at(0)), at(0));
        // Nothing new: still 0.
        assert_eq!(h.observe("n1", Some(at(-1000)), None, at(30)), at(0));
        // The Lease moved (even to a time in the past: a slow clock): now.
        assert_eq!(h.observe("n1", Some(at(-990)), None, at(35)), at(35));
        // So does a new Ready heartbeat.
        assert_eq!(h.observe("n1", Some(at(-990)), Some(at(1)), at(50)), at(50));
        h.forget("n1");
        assert_eq!(h.observe("n1", Some(at(-990)), Some(at(1)), at(60)), at(60));
    }

    #[test]
    fn silent_node_goes_unknown_with_unreachable_taints() {
        let n = node(
            Some("True"),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        );
        let p = plan(&n, &timing(0, 41));
        let status = p.status.as_ref().expect("conditions written");
        assert_eq!(status["metadata"]["resourceVersion"], "42");
        let conds = status["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 4);
        for c in conds {
            assert_eq!(c["status"], "Unknown", "{c}");
            assert_eq!(c["reason"], "NodeStatusUnknown");
            assert_eq!(c["message"], "Kubelet stopped posting node status.");
            assert_eq!(c["lastTransitionTime"], at(41).to_string());
        }
        // The last heartbeat stays what the kubelet wrote.
        let ready = conds.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["lastHeartbeatTime"], "2023-11-14T22:13:20Z");
        assert_eq!(p.ready, "Unknown");
        assert_eq!(
            taint_keys(&p),
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule"
            ]
        );
        let taints = &p.taints.as_ref().unwrap()["spec"]["taints"];
        let noexec = taints
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["effect"] == "NoExecute")
            .unwrap();
        assert_eq!(noexec["timeAdded"], at(41).to_string());
        assert_eq!(
            p.events,
            [(
                "NodeNotReady".to_string(),
                "Node n1 status is now: NodeNotReady".to_string()
            )]
        );
    }

    #[test]
    fn table_of_node_states() {
        struct Case {
            what: &'static str,
            node: Node,
            timing: Timing,
            writes_status: bool,
            ready: &'static str,
            taints: Vec<&'static str>,
            events: Vec<&'static str>,
            recheck: Option<u64>,
        }
        let unreachable = json!([
            {"key": UNREACHABLE, "effect": "NoSchedule"},
            {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2023-11-14T22:14:00Z"}
        ]);
        let cases = [
            Case {
                what: "healthy: nothing to write, look again when the grace runs out",
                node: node(Some("True"), json!(null)),
                timing: timing(0, 10),
                writes_status: false,
                ready: "True",
                taints: vec![],
                events: vec![],
                recheck: Some(30_100),
            },
            Case {
                what: "exactly at the grace period: still healthy",
                node: node(Some("True"), json!(null)),
                timing: timing(0, 40),
                writes_status: false,
                ready: "True",
                taints: vec![],
                events: vec![],
                recheck: Some(100),
            },
            Case {
                what: "already Unknown and tainted: nothing more",
                node: {
                    let mut n = node(Some("Unknown"), unreachable.clone());
                    for c in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
                        c.status = "Unknown".into();
                    }
                    n
                },
                timing: timing(0, 100),
                writes_status: false,
                ready: "Unknown",
                taints: vec![],
                events: vec![],
                recheck: None,
            },
            Case {
                what: "back: Ready=True, fresh heartbeat, taints removed",
                node: node(Some("True"), unreachable.clone()),
                timing: timing(100, 101),
                writes_status: false,
                ready: "True",
                taints: vec!["(none)"],
                events: vec!["NodeReady"],
                recheck: Some(39_100),
            },
            Case {
                what: "the kubelet says Ready=False: not-ready taints",
                node: node(Some("False"), json!(null)),
                timing: timing(0, 5),
                writes_status: false,
                ready: "False",
                taints: vec![
                    "node.kubernetes.io/not-ready:NoExecute",
                    "node.kubernetes.io/not-ready:NoSchedule",
                ],
                events: vec!["NodeNotReady"],
                recheck: Some(35_100),
            },
            Case {
                what: "Ready=False then silent: not-ready swapped for unreachable",
                node: node(
                    Some("False"),
                    json!([
                        {"key": NOT_READY, "effect": "NoSchedule"},
                        {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "2023-11-14T22:14:00Z"}
                    ]),
                ),
                timing: timing(0, 50),
                writes_status: true,
                ready: "Unknown",
                taints: vec![
                    "node.kubernetes.io/unreachable:NoExecute",
                    "node.kubernetes.io/unreachable:NoSchedule",
                ],
                events: vec![],
                recheck: None,
            },
            Case {
                what: "never posted Ready: the startup grace applies, no taint yet",
                node: node(None, json!(null)),
                timing: timing(0, 50),
                writes_status: false,
                ready: "Unknown",
                taints: vec![],
                events: vec![],
                recheck: Some(10_100),
            },
            Case {
                what: "never posted Ready past the startup grace: Unknown, unreachable",
                node: node(None, json!(null)),
                timing: timing(0, 61),
                writes_status: true,
                ready: "Unknown",
                taints: vec![
                    "node.kubernetes.io/unreachable:NoExecute",
                    "node.kubernetes.io/unreachable:NoSchedule",
                ],
                events: vec![],
                recheck: None,
            },
            Case {
                what: "Ready=False while the zone's rate has no room: NoSchedule only",
                node: node(Some("False"), json!(null)),
                timing: Timing {
                    noexecute: NoExecute::KeepOnly,
                    ..timing(0, 5)
                },
                writes_status: false,
                ready: "False",
                taints: vec!["node.kubernetes.io/not-ready:NoSchedule"],
                events: vec!["NodeNotReady"],
                recheck: Some(35_100),
            },
            Case {
                what: "no room, but a NoExecute taint already there is swapped, not dropped",
                node: node(
                    Some("False"),
                    json!([
                        {"key": NOT_READY, "effect": "NoSchedule"},
                        {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "2023-11-14T22:14:00Z"}
                    ]),
                ),
                timing: Timing {
                    noexecute: NoExecute::KeepOnly,
                    ..timing(0, 50)
                },
                writes_status: true,
                ready: "Unknown",
                taints: vec![
                    "node.kubernetes.io/unreachable:NoExecute",
                    "node.kubernetes.io/unreachable:NoSchedule",
                ],
                events: vec![],
                recheck: None,
            },
            Case {
                what: "full disruption: no NoExecute taint, the old one removed",
                node: node(Some("True"), unreachable.clone()),
                timing: Timing {
                    noexecute: NoExecute::Remove,
                    ..timing(0, 41)
                },
                writes_status: true,
                ready: "Unknown",
                taints: vec!["node.kubernetes.io/unreachable:NoSchedule"],
                events: vec!["NodeNotReady"],
                recheck: None,
            },
            Case {
                what: "pressure and cordon are NoSchedule taints",
                node: {
                    let mut n = node(Some("True"), json!(null));
                    n.spec.as_mut().unwrap().unschedulable = Some(true);
                    let conds = n.status.as_mut().unwrap().conditions.as_mut().unwrap();
                    conds[0].status = "True".into();
                    n
                },
                timing: timing(0, 1),
                writes_status: false,
                ready: "True",
                taints: vec![
                    "node.kubernetes.io/memory-pressure:NoSchedule",
                    "node.kubernetes.io/unschedulable:NoSchedule",
                ],
                events: vec![],
                recheck: Some(39_100),
            },
        ];
        for case in cases {
            let p = plan(&case.node, &case.timing);
            assert_eq!(p.status.is_some(), case.writes_status, "{}", case.what);
            assert_eq!(p.ready, case.ready, "{}", case.what);
            let mut keys = taint_keys(&p);
            if p.taints.is_some() && keys.is_empty() {
                keys.push("(none)".into());
            }
            assert_eq!(keys, case.taints, "{}", case.what);
            let reasons: Vec<&str> = p.events.iter().map(|(r, _)| r.as_str()).collect();
            assert_eq!(reasons, case.events, "{}", case.what);
            assert_eq!(
                p.recheck.map(|d| d.as_millis() as u64),
                case.recheck,
                "{}",
                case.what
            );
        }
    }

    #[test]
    fn existing_noexecute_taints_keep_their_time() {
        let n = node(
            Some("Unknown"),
            json!([
                {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2023-11-14T22:14:00Z"}
            ]),
        );
        let t = timing(0, 100);
        let conds = n.status.clone().unwrap().conditions.unwrap();
        let want = desired_taints(&n, &conds, &t);
        let noexec = want.iter().find(|t| t.effect == "NoExecute").unwrap();
        assert_eq!(
            noexec.time_added.as_ref().unwrap().0.to_string(),
            "2023-11-14T22:14:00Z"
        );
    }
}
