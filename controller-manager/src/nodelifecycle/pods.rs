//! What a node's health does to the pods bound to it.
//!
//! - A node that is not Ready has its pods marked not Ready (their `Ready`
//!   condition set to False through `pods/status`), so that Services stop
//!   sending them traffic before anything else happens (upstream
//!   `MarkPodsNotReady`).
//! - A pod on a node with NoExecute taints is evicted (deleted) when a
//!   taint is not tolerated at all, or when the shortest `tolerationSeconds`
//!   of the tolerations it uses has passed since the taint was added
//!   (upstream's taint eviction controller). The API server gives every pod
//!   a 300 s toleration of `not-ready` and `unreachable` (upstream's
//!   DefaultTolerationSeconds admission), so by default pods go five
//!   minutes after their node; a toleration without `tolerationSeconds`
//!   keeps the pod for ever. Their ReplicaSets then replace them elsewhere.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

/// Whether `toleration` tolerates `taint` (upstream `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    match toleration.operator.as_deref().unwrap_or("Equal") {
        // An empty key with Exists tolerates everything.
        "Exists" => key.is_empty() || key == taint.key,
        "Equal" => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When `pod` must leave a node with these NoExecute `taints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Tolerated for ever (or no NoExecute taint).
    Stays,
    Evict,
    /// Tolerated until then.
    EvictAt(Timestamp),
}

/// The pod's fate under the node's taints; a taint without `timeAdded`
/// counts from `now`.
pub fn fate(pod: &Pod, taints: &[Taint], now: Timestamp) -> Fate {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut until: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Fate::Evict;
        }
        // The shortest of the tolerations used (none with seconds: for ever).
        let Some(seconds) = used.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map_or(now, |t| t.0);
        let at = added + SignedDuration::from_secs(seconds.max(0));
        until = Some(until.map_or(at, |u| u.min(at)));
    }
    match until {
        None => Fate::Stays,
        Some(at) if at <= now => Fate::Evict,
        Some(at) => Fate::EvictAt(at),
    }
}

/// The pods on a node with NoExecute taints to evict now, and when the
/// next one is due.
pub fn evictions<'a>(
    pods: &[&'a Pod],
    taints: &[Taint],
    now: Timestamp,
) -> (Vec<&'a Pod>, Option<Timestamp>) {
    let mut now_list = Vec::new();
    let mut next: Option<Timestamp> = None;
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match fate(pod, taints, now) {
            Fate::Stays => {}
            Fate::Evict => now_list.push(*pod),
            Fate::EvictAt(at) => next = Some(next.map_or(at, |n| n.min(at))),
        }
    }
    (now_list, next)
}

/// The `pods/status` patch that marks `pod` not Ready, if it is Ready now.
/// The whole conditions list is sent (a merge patch replaces lists), with
/// the resourceVersion seen, so a kubelet's concurrent write is not lost.
pub fn not_ready_patch(pod: &Pod, now: Timestamp) -> Option<Value> {
    let status = pod.status.as_ref()?;
    let mut conditions = status.conditions.clone()?;
    let ready = conditions
        .iter_mut()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    ready.status = "False".into();
    ready.last_transition_time = Some(Time(now));
    Some(json!({
        "metadata": {"resourceVersion": pod.metadata.resource_version},
        "status": {"conditions": conditions},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: added.map(|s| Time(at(s))),
        }
    }

    fn pod(tolerations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "resourceVersion": "9"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations},
            "status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2023-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

    #[test]
    fn table_of_toleration_fates() {
        let defaults = json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]);
        let cases = [
            (
                "no toleration: evicted at once",
                json!([]),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                1,
                Fate::Evict,
            ),
            (
                "the API server's defaults: 300 s after the taint",
                defaults.clone(),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                10,
                Fate::EvictAt(at(300)),
            ),
            (
                "… and at 300 s it goes",
                defaults.clone(),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                300,
                Fate::Evict,
            ),
            (
                "NoSchedule taints evict nothing",
                json!([]),
                vec![taint(UNREACHABLE, "NoSchedule", None)],
                1,
                Fate::Stays,
            ),
            (
                "tolerated without seconds: for ever",
                json!([{"key": UNREACHABLE, "operator": "Exists"}]),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                99999,
                Fate::Stays,
            ),
            (
                "an empty key with Exists tolerates all",
                json!([{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]),
                vec![
                    taint(UNREACHABLE, "NoExecute", Some(0)),
                    taint("other", "NoExecute", Some(2)),
                ],
                1,
                Fate::EvictAt(at(5)),
            ),
            (
                "the shortest toleration used wins",
                json!([
                {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 60},
                {"operator": "Exists", "tolerationSeconds": 20}]),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                1,
                Fate::EvictAt(at(20)),
            ),
            (
                "one untolerated taint is enough",
                defaults.clone(),
                vec![
                    taint(UNREACHABLE, "NoExecute", Some(0)),
                    taint("dedicated", "NoExecute", Some(0)),
                ],
                1,
                Fate::Evict,
            ),
            (
                "Equal compares the value",
                json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
                vec![Taint {
                    value: Some("cpu".into()),
                    ..taint("dedicated", "NoExecute", Some(0))
                }],
                1,
                Fate::Evict,
            ),
            (
                "negative seconds mean now",
                json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": -5}]),
                vec![taint(UNREACHABLE, "NoExecute", Some(0))],
                0,
                Fate::Evict,
            ),
            (
                "a taint without timeAdded counts from now",
                defaults,
                vec![taint(UNREACHABLE, "NoExecute", None)],
                50,
                Fate::EvictAt(at(350)),
            ),
        ];
        for (what, tolerations, taints, now, want) in cases {
            assert_eq!(fate(&pod(tolerations), &taints, at(now)), want, "{what}");
        }
    }

    #[test]
    fn evictions_skip_terminating_pods_and_report_the_next_time() {
        let short =
            pod(json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30}]));
        let long =
            pod(json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 90}]));
        let bare = pod(json!([]));
        let mut leaving = pod(json!([]));
        leaving.metadata.deletion_timestamp = Some(Time(at(0)));
        let taints = [taint(UNREACHABLE, "NoExecute", Some(0))];
        let (now, next) = evictions(&[&short, &long, &bare, &leaving], &taints, at(10));
        assert_eq!(now.len(), 1);
        assert!(std::ptr::eq(now[0], &bare));
        assert_eq!(next, Some(at(30)));
    }

    #[test]
    fn not_ready_patch_flips_only_a_ready_pod() {
        let p = pod(json!([]));
        let patch = not_ready_patch(&p, at(5)).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "9");
        assert_eq!(
            patch["status"]["conditions"],
            json!([
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "lastTransitionTime": at(5).to_string()}
            ])
        );
        let mut already: Pod = p.clone();
        already
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[1]
            .status = "False".into();
        assert_eq!(not_ready_patch(&already, at(5)), None);
    }
}
