//! PodTopologySpread (hard constraints): for each `topologySpreadConstraints` entry with
//! `whenUnsatisfiable: DoNotSchedule`, placing the pod on a node must not make the number of
//! matching pods in the node's domain (its value of `topologyKey`) exceed the emptiest
//! domain's by more than `maxSkew`.
//!
//! As upstream: only nodes that pass the pod's node affinity/selector (`nodeAffinityPolicy:
//! Honor`, the default) and carry every constraint's topology key form domains; taints are
//! ignored unless `nodeTaintsPolicy: Honor`; `minDomains` counts missing domains as empty;
//! `matchLabelKeys` adds the pod's own values of those labels to the selector; terminating
//! pods are not counted. `ScheduleAnyway` constraints (a score upstream) are not used yet.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::node_affinity::pod_matches_node;
use super::taint_toleration::tolerates;
use crate::framework::{CycleState, FilterPlugin, Status};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

pub struct PodTopologySpread;

/// Whether `labels` match a label selector. `None` (no selector) matches nothing; an empty
/// selector matches everything.
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or(&[]);
            let have = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => have.is_some_and(|v| values.contains(v)),
                "NotIn" => have.is_none_or(|v| !values.contains(v)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        })
}

struct Constraint {
    key: String,
    max_skew: i64,
    min_domains: usize,
    selector: Option<LabelSelector>,
    self_match: i64,
}

/// Per constraint: matching pods per domain, and the smallest count.
struct State {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    min: Vec<i64>,
}

fn hard_constraints(pod: &PodInfo) -> Vec<Constraint> {
    let spec = pod.pod.spec.as_ref();
    let list: &[TopologySpreadConstraint] = spec
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    list.iter()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .map(|c| {
            let mut selector = c.label_selector.clone();
            if let Some(sel) = selector.as_mut() {
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(value) = pod.labels().get(key) {
                        sel.match_expressions.get_or_insert_with(Vec::new).push(
                            LabelSelectorRequirement {
                                key: key.clone(),
                                operator: "In".into(),
                                values: Some(vec![value.clone()]),
                            },
                        );
                    }
                }
            }
            Constraint {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
                self_match: i64::from(selector_matches(selector.as_ref(), pod.labels())),
                selector,
            }
        })
        .collect()
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_filter(&self, pod: &PodInfo, snapshot: &Snapshot, state: &mut CycleState) {
        let constraints = hard_constraints(pod);
        if constraints.is_empty() {
            return;
        }
        let honor_taints = pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.topology_spread_constraints.iter().flatten())
            .any(|c| c.node_taints_policy.as_deref() == Some("Honor"));
        let honor_affinity = !pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.topology_spread_constraints.iter().flatten())
            .any(|c| c.node_affinity_policy.as_deref() == Some("Ignore"));
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for node in snapshot.nodes() {
            let labels = node.labels();
            if !constraints.iter().all(|c| labels.contains_key(&c.key)) {
                continue;
            }
            if honor_affinity && !pod_matches_node(pod, node) {
                continue;
            }
            if honor_taints
                && node.taints().iter().any(|taint| {
                    (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                        && !pod.tolerations().iter().any(|t| tolerates(t, taint))
                })
            {
                continue;
            }
            for (c, count) in constraints.iter().zip(counts.iter_mut()) {
                let n = node
                    .pods
                    .iter()
                    .filter(|p| {
                        p.namespace == pod.namespace
                            && p.pod.metadata.deletion_timestamp.is_none()
                            && selector_matches(c.selector.as_ref(), p.labels())
                    })
                    .count() as i64;
                *count.entry(labels[&c.key].clone()).or_default() += n;
            }
        }
        let min = constraints
            .iter()
            .zip(&counts)
            .map(|(c, count)| {
                if count.len() < c.min_domains {
                    0
                } else {
                    count.values().copied().min().unwrap_or(0)
                }
            })
            .collect();
        state.write(
            "PodTopologySpread",
            State {
                constraints,
                counts,
                min,
            },
        );
    }

    fn filter(&self, _pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> Status {
        let Some(s) = state.read::<State>("PodTopologySpread") else {
            return Status::success();
        };
        let labels = node.labels();
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(domain) = labels.get(&c.key) else {
                return Status::unresolvable(REASON_MISSING_LABEL);
            };
            let here = s.counts[i].get(domain).copied().unwrap_or(0);
            if here + c.self_match - s.min[i] > c.max_skew {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{bound_pod, node_json, pod_with, snapshot};
    use serde_json::{Value, json};

    fn spread(key: &str, max_skew: i32, extra: Value) -> Value {
        let mut c = json!({"maxSkew": max_skew, "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                c[k] = v;
            }
        }
        json!({"topologySpreadConstraints": [c]})
    }

    fn web() -> Value {
        json!({"labels": {"app": "web"}})
    }

    /// Filters every node of the snapshot; returns each node's code.
    fn run(spec: Value, s: &Snapshot) -> Vec<Code> {
        let p = pod_with(json!({"labels": {"app": "web", "rev": "2"}}), spec);
        let mut state = CycleState::default();
        PodTopologySpread.pre_filter(&p, s, &mut state);
        s.nodes()
            .iter()
            .map(|n| PodTopologySpread.filter(&p, n, &state).code)
            .collect()
    }

    #[test]
    fn table() {
        let zone =
            |name: &str, z: &str| node_json(name, json!({"metadata": {"labels": {"zone": z}}}));
        let nodes = || {
            vec![
                zone("a1", "a"),
                zone("a2", "a"),
                zone("b1", "b"),
                node_json("bare", json!({})),
            ]
        };
        // two web pods in zone a, none in b
        let pods = || {
            vec![
                bound_pod("w1", "a1", web(), json!({})),
                bound_pod("w2", "a2", web(), json!({})),
                bound_pod("x", "b1", json!({"labels": {"app": "other"}}), json!({})),
            ]
        };
        let s = snapshot(nodes(), pods());
        use Code::*;
        // maxSkew 1 by zone: a would be 3 vs 0 → only b; the node without the label never
        assert_eq!(
            run(spread("zone", 1, json!({})), &s),
            [
                Unschedulable,
                Unschedulable,
                Success,
                UnschedulableAndUnresolvable
            ]
        );
        // maxSkew 3: a would be 3 - 0 = 3 ≤ 3
        assert_eq!(
            run(spread("zone", 3, json!({})), &s),
            [Success, Success, Success, UnschedulableAndUnresolvable]
        );
        // by hostname: each node is a domain; bare has a hostname label too
        assert_eq!(
            run(spread("kubernetes.io/hostname", 1, json!({})), &s),
            [Unschedulable, Unschedulable, Success, Success]
        );
        // ScheduleAnyway constraints do not filter
        assert_eq!(
            run(
                spread("zone", 1, json!({"whenUnsatisfiable": "ScheduleAnyway"})),
                &s
            ),
            [Success, Success, Success, Success]
        );
        // minDomains 3 with 2 zones: the global minimum is 0 even where b had pods
        let s2 = snapshot(nodes(), {
            let mut p = pods();
            p.push(bound_pod("w3", "b1", web(), json!({})));
            p
        });
        assert_eq!(
            run(spread("zone", 1, json!({})), &s2),
            [
                Unschedulable,
                Unschedulable,
                Success,
                UnschedulableAndUnresolvable
            ]
        );
        assert_eq!(
            run(spread("zone", 1, json!({"minDomains": 3})), &s2),
            [
                Unschedulable,
                Unschedulable,
                Unschedulable,
                UnschedulableAndUnresolvable
            ]
        );
        // nodes the pod's nodeSelector excludes are no domain: only zone a counts → min 2
        let mut only_a = spread("zone", 1, json!({}));
        only_a["nodeSelector"] = json!({"zone": "a"});
        assert_eq!(run(only_a, &s)[..2], [Success, Success]);
        // matchLabelKeys: only pods with the same rev count → nothing counted anywhere
        assert_eq!(
            run(spread("zone", 1, json!({"matchLabelKeys": ["rev"]})), &s),
            [Success, Success, Success, UnschedulableAndUnresolvable]
        );
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let sel = |v: Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        assert!(!selector_matches(None, &labels));
        assert!(selector_matches(Some(&sel(json!({}))), &labels));
        assert!(selector_matches(
            Some(&sel(json!({"matchLabels": {"app": "web"}}))),
            &labels
        ));
        assert!(!selector_matches(
            Some(&sel(json!({"matchLabels": {"app": "db"}}))),
            &labels
        ));
        let expr = |op: &str, values: &[&str]| {
            sel(json!({"matchExpressions": [{"key": "app", "operator": op, "values": values}]}))
        };
        assert!(selector_matches(Some(&expr("In", &["web", "db"])), &labels));
        assert!(!selector_matches(Some(&expr("NotIn", &["web"])), &labels));
        assert!(selector_matches(Some(&expr("Exists", &[])), &labels));
        assert!(!selector_matches(Some(&expr("DoesNotExist", &[])), &labels));
    }
}
