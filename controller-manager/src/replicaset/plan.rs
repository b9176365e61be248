//! The ReplicaSet controller's decisions, as a pure function:
//! `plan(replica_set, observed) -> Vec<Action>` (upstream `syncReplicaSet`).
//!
//! Claim the pods (adopt orphans the selector matches, release ours it no
//! longer matches); unless expectations from the last pass are still
//! outstanding (the cache has not yet seen pods we created or deleted), create
//! what is missing or delete the least valuable extras; compute the status
//! from the pods as seen.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::owner::{Claim, claim, controller_ref};

/// Upstream's `burstReplicas`: most creations or deletions in one pass.
pub const BURST_REPLICAS: usize = 500;

#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Pods of the ReplicaSet's namespace (every one: the planner claims).
    pub pods: &'a [Pod],
    /// False while creations or deletions of the last pass are not yet seen.
    pub expectations_satisfied: bool,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    AdoptPod {
        name: String,
        uid: String,
    },
    ReleasePod {
        name: String,
        uid: String,
    },
    /// Create `count` pods like `pod` (its `generateName` gives each a name),
    /// in slow-start batches.
    CreatePods {
        count: usize,
        pod: Box<Pod>,
    },
    /// Delete these pods (name, uid), least valuable first.
    DeletePods(Vec<(String, String)>),
    UpdateStatus(Box<ReplicaSetStatus>),
    RequeueAfter(Duration),
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i64 {
    rs.spec.min_ready_seconds.map_or(0, i64::from)
}

/// Not finished and not being deleted (upstream `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase(pod), Some("Succeeded" | "Failed"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// The time the pod became Ready, when it is Ready.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready` seconds (upstream `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready: i64, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready == 0 => true,
        Some(None) => false,
        Some(Some(t)) => t + SignedDuration::from_secs(min_ready) <= now,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
        })
}

fn phase_order(pod: &Pod) -> u8 {
    match phase(pod) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// Which of two pods to delete first (`Less` = `a` goes first), upstream's
/// `ActivePods` order: unscheduled, then pending (then unknown), then not
/// ready, then ready for less time, then more restarts, then newer.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_order(a).cmp(&phase_order(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            // Both ready: the one ready more recently goes first (an unknown
            // time counts as most recent).
            match (ready_since(a), ready_since(b)) {
                (Some(ta), Some(tb)) => later_or_unknown_first(ta, tb),
                _ => Ordering::Equal,
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| later_or_unknown_first(created(a), created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn later_or_unknown_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// A pod for `rs` from its template (upstream `GetPodFromTemplate`).
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.template.clone().unwrap_or_default();
    let t_meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.metadata.name.as_deref().unwrap_or("pod"))),
            namespace: rs.metadata.namespace.clone(),
            labels: t_meta.labels,
            annotations: t_meta.annotations,
            finalizers: t_meta.finalizers,
            owner_references: Some(vec![controller_ref("apps/v1", "ReplicaSet", &rs.metadata)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The status for `pods` (the active pods the ReplicaSet owns), upstream
/// `calculateStatus`; `failure` is the error of this pass's creates/deletes.
pub fn calculate_status(
    rs: &ReplicaSet,
    pods: &[&Pod],
    failure: Option<(&str, String)>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = min_ready_seconds(rs);
    let empty = BTreeMap::new();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref().unwrap_or(&empty);
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count() as i32;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i32;
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count() as i32;
    let has_failure = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_.as_deref() == Some("ReplicaFailure"));
    match failure {
        Some((reason, message)) if !has_failure => {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(ReplicaSetCondition {
                    type_: Some("ReplicaFailure".into()),
                    status: Some("True".into()),
                    reason: Some(reason.into()),
                    message: Some(message),
                    last_transition_time: Some(Time(now)),
                });
        }
        None if has_failure => {
            if let Some(c) = status.conditions.as_mut() {
                c.retain(|c| c.type_.as_deref() != Some("ReplicaFailure"));
            }
            if status.conditions.as_ref().is_some_and(|c| c.is_empty()) {
                status.conditions = None;
            }
        }
        _ => {}
    }
    status.replicas = pods.len() as i32;
    status.fully_labeled_replicas = Some(fully_labeled);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.observed_generation = rs.metadata.generation;
    status
}

/// Plans one pass over `rs`.
pub fn plan(rs: &ReplicaSet, observed: &Observed<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let selector = Some(&rs.spec.selector);
    let mut owned: Vec<&Pod> = Vec::new();
    for pod in observed.pods {
        if pod.metadata.namespace != rs.metadata.namespace || !is_active(pod) {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        match claim(&uid, deleting, selector, &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                actions.push(Action::AdoptPod { name, uid: pod_uid });
                owned.push(pod);
            }
            Claim::Release => actions.push(Action::ReleasePod { name, uid: pod_uid }),
            Claim::Ignore => {}
        }
    }
    let want = spec_replicas(rs).max(0) as usize;
    if observed.expectations_satisfied && !deleting {
        if owned.len() < want {
            let count = (want - owned.len()).min(BURST_REPLICAS);
            actions.push(Action::CreatePods {
                count,
                pod: Box::new(pod_from_template(rs)),
            });
        } else if owned.len() > want {
            let count = (owned.len() - want).min(BURST_REPLICAS);
            let mut ranked = owned.clone();
            ranked.sort_by(|a, b| deletion_order(a, b));
            let doomed = ranked
                .iter()
                .take(count)
                .map(|p| {
                    (
                        p.metadata.name.clone().unwrap_or_default(),
                        p.metadata.uid.clone().unwrap_or_default(),
                    )
                })
                .collect();
            actions.push(Action::DeletePods(doomed));
        }
    }
    let status = calculate_status(rs, &owned, None, observed.now);
    if rs.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateStatus(Box::new(status)));
    }
    // Look again when the next ready pod has been ready for minReadySeconds.
    let min_ready = min_ready_seconds(rs);
    if min_ready > 0 {
        let next = owned
            .iter()
            .filter(|p| !is_available(p, min_ready, observed.now))
            .filter_map(|p| ready_since(p).flatten())
            .map(|t| t + SignedDuration::from_secs(min_ready))
            .min();
        if let Some(at) = next {
            let after = Duration::try_from(at.duration_since(observed.now)).unwrap_or_default();
            actions.push(Action::RequeueAfter(after + Duration::from_millis(100)));
        }
    }
    actions
}

/// Slow-start batch sizes for `count` creations: 1, 2, 4, … (upstream
/// `slowStartBatch` with an initial batch of 1), the last one what is left.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = count;
    let mut size = 1;
    while left > 0 {
        let batch = size.min(left);
        out.push(batch);
        left -= batch;
        size *= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const NOW: i64 = 1_700_000_000;

    fn ts(secs: i64) -> String {
        Timestamp::from_second(NOW + secs).unwrap().to_string()
    }

    fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid", "generation": 3},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap()
    }

    /// A pod owned by the ReplicaSet: `extra` is merged over the defaults.
    fn pod(name: &str, extra: Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                         "labels": {"app": "web"}, "creationTimestamp": ts(-100),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web-abc", "uid": "rs-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        });
        merge(&mut base, extra);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn ready(node: &str, since: i64) -> Value {
        json!({"spec": {"nodeName": node}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(since)}]}})
    }

    fn observed(pods: &[Pod]) -> Observed<'_> {
        Observed {
            pods,
            expectations_satisfied: true,
            now: Timestamp::from_second(NOW).unwrap(),
        }
    }

    fn creates(actions: &[Action]) -> usize {
        actions
            .iter()
            .map(|a| match a {
                Action::CreatePods { count, .. } => *count,
                _ => 0,
            })
            .sum()
    }

    fn deletes(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .flat_map(|a| match a {
                Action::DeletePods(p) => p.iter().map(|(n, _)| n.clone()).collect(),
                _ => vec![],
            })
            .collect()
    }

    fn status(actions: &[Action]) -> ReplicaSetStatus {
        actions
            .iter()
            .find_map(|a| match a {
                Action::UpdateStatus(s) => Some((**s).clone()),
                _ => None,
            })
            .expect("a status update")
    }

    #[test]
    fn creates_missing_pods_from_the_template() {
        let pods = [pod("a", ready("n1", -50))];
        let actions = plan(&rs(3, 0), &observed(&pods));
        assert_eq!(creates(&actions), 2);
        let Some(Action::CreatePods { pod, .. }) = actions
            .iter()
            .find(|a| matches!(a, Action::CreatePods { .. }))
        else {
            unreachable!()
        };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()["a"], "b");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("ReplicaSet", "rs-uid", Some(true))
        );
        let s = status(&actions);
        assert_eq!(
            (
                s.replicas,
                s.ready_replicas,
                s.available_replicas,
                s.observed_generation
            ),
            (1, Some(1), Some(1), Some(3))
        );
    }

    #[test]
    fn waits_for_expectations() {
        let pods = [pod("a", json!({}))];
        let mut obs = observed(&pods);
        obs.expectations_satisfied = false;
        let actions = plan(&rs(3, 0), &obs);
        assert_eq!(
            creates(&actions),
            0,
            "no creates while the cache lags: {actions:?}"
        );
        // Status is still written from what is seen.
        assert_eq!(status(&actions).replicas, 1);
    }

    #[test]
    fn burst_is_bounded() {
        assert_eq!(creates(&plan(&rs(2000, 0), &observed(&[]))), BURST_REPLICAS);
    }

    #[test]
    fn deletion_ranking() {
        // From least to most valuable.
        let pods = vec![
            pod("unscheduled", json!({"status": {"phase": "Pending"}})),
            pod(
                "pending",
                json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}}),
            ),
            pod(
                "unknown",
                json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Unknown"}}),
            ),
            pod(
                "not-ready",
                json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
            ),
            pod("ready-5s", ready("n1", -5)),
            pod("ready-60s-3-restarts", {
                let mut v = ready("n1", -60);
                merge(
                    &mut v,
                    json!({"status": {"containerStatuses": [{"name": "c", "restartCount": 3, "ready": true, "image": "", "imageID": ""}]}}),
                );
                v
            }),
            pod("ready-60s-newer", {
                let mut v = ready("n1", -60);
                merge(&mut v, json!({"metadata": {"creationTimestamp": ts(-70)}}));
                v
            }),
            pod("ready-60s-older", ready("n1", -60)),
        ];
        let names: Vec<&str> = pods
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect();
        for keep in 0..pods.len() {
            let actions = plan(&rs(keep as i32, 0), &observed(&pods));
            let doomed = deletes(&actions);
            assert_eq!(doomed, names[..pods.len() - keep], "keeping {keep}");
        }
        // Whatever order the cache lists them in.
        let mut reversed = pods.clone();
        reversed.reverse();
        assert_eq!(deletes(&plan(&rs(3, 0), &observed(&reversed))), names[..5]);
    }

    #[test]
    fn claims_orphans_and_releases_strays() {
        let orphan = {
            let mut p = pod("orphan", ready("n1", -10));
            p.metadata.owner_references = None;
            p
        };
        let stray = pod("stray", json!({"metadata": {"labels": {"app": "other"}}}));
        let other_owner = pod(
            "theirs",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "other", "controller": true}]}}),
        );
        let terminating = pod(
            "terminating",
            json!({"metadata": {"deletionTimestamp": ts(0)}}),
        );
        let done = pod("done", json!({"status": {"phase": "Succeeded"}}));
        let pods = [
            orphan,
            stray,
            other_owner,
            terminating,
            done,
            pod("mine", ready("n1", -10)),
        ];
        let actions = plan(&rs(2, 0), &observed(&pods));
        assert!(actions.contains(&Action::AdoptPod {
            name: "orphan".into(),
            uid: "uid-orphan".into()
        }));
        assert!(actions.contains(&Action::ReleasePod {
            name: "stray".into(),
            uid: "uid-stray".into()
        }));
        assert_eq!(creates(&actions), 0, "orphan + mine = 2: {actions:?}");
        assert!(deletes(&actions).is_empty());
        assert_eq!(status(&actions).replicas, 2);
    }

    #[test]
    fn min_ready_seconds_availability_and_requeue() {
        let pods = [
            pod("old", ready("n1", -30)),
            pod("young", ready("n1", -4)),
            pod("nr", json!({"status": {"phase": "Running"}})),
        ];
        let actions = plan(&rs(3, 10), &observed(&pods));
        let s = status(&actions);
        assert_eq!(
            (s.replicas, s.ready_replicas, s.available_replicas),
            (3, Some(2), Some(1))
        );
        assert!(
            actions.contains(&Action::RequeueAfter(Duration::from_millis(6100))),
            "{actions:?}"
        );
    }

    #[test]
    fn fully_labeled_counts_template_labels() {
        let mut r = rs(2, 0);
        r.spec
            .template
            .as_mut()
            .unwrap()
            .metadata
            .as_mut()
            .unwrap()
            .labels = Some(BTreeMap::from([
            ("app".into(), "web".into()),
            ("tier".into(), "front".into()),
        ]));
        let pods = [
            pod("a", json!({"metadata": {"labels": {"tier": "front"}}})),
            pod("b", json!({})),
        ];
        assert_eq!(
            status(&plan(&r, &observed(&pods))).fully_labeled_replicas,
            Some(1)
        );
    }

    #[test]
    fn no_status_write_when_nothing_changed() {
        let pods = [pod("a", ready("n1", -10))];
        let mut r = rs(1, 0);
        let first = plan(&r, &observed(&pods));
        r.status = Some(status(&first));
        assert_eq!(plan(&r, &observed(&pods)), vec![]);
    }

    #[test]
    fn failure_condition_comes_and_goes() {
        let r = rs(2, 0);
        let now = Timestamp::from_second(NOW).unwrap();
        let failed = calculate_status(&r, &[], Some(("FailedCreate", "quota".into())), now);
        let cond = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (cond.type_.as_deref(), cond.reason.as_deref()),
            (Some("ReplicaFailure"), Some("FailedCreate"))
        );
        let mut r2 = r.clone();
        r2.status = Some(failed);
        assert_eq!(calculate_status(&r2, &[], None, now).conditions, None);
    }

    #[test]
    fn slow_start() {
        assert_eq!(slow_start_batches(0), Vec::<usize>::new());
        assert_eq!(slow_start_batches(1), vec![1]);
        assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
        assert_eq!(slow_start_batches(15), vec![1, 2, 4, 8]);
        assert_eq!(slow_start_batches(16), vec![1, 2, 4, 8, 1]);
    }

    #[test]
    fn deleting_replica_set_only_updates_status() {
        let mut r = rs(0, 0);
        r.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(NOW).unwrap()));
        let pods = [pod("a", ready("n1", -10))];
        let actions = plan(&r, &observed(&pods));
        assert!(deletes(&actions).is_empty());
        assert_eq!(status(&actions).replicas, 1);
    }
}
