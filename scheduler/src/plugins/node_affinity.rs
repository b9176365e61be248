//! NodeAffinity: `spec.nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution`
//! node affinity decide which nodes a pod may go to (filter);
//! `preferredDuringSchedulingIgnoredDuringExecution` terms add their weight to the nodes they
//! match (score, scaled so the best node gets 100).
//!
//! Terms are ORed; inside a term every expression must hold. Operators: `In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels; `matchFields` on `metadata.name` (`In`,
//! `NotIn`). A term with no expressions matches no node, as upstream.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status, default_normalize};
use crate::snapshot::{NodeInfo, PodInfo};

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

/// One label (or field) requirement.
pub fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(number), values) else {
                return false;
            };
            let Some(want) = number(want) else {
                return false;
            };
            if req.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// Whether a node matches one term: all its label expressions and field expressions.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.labels();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name.as_str())))
}

/// `nodeSelector` and the required affinity terms, both of which must hold.
pub fn pod_matches_node(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    let labels: &BTreeMap<String, String> = node.labels();
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(selector) => selector
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node)),
        None => true,
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        if pod_matches_node(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        preferred
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0 && term_matches(&p.preference, node))
            .map(|p| i64::from(p.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{filter, node, node_json, pod, scores, snapshot};
    use serde_json::{Value, json};

    fn required(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": terms}}}})
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> Value {
        json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]})
    }

    #[test]
    fn filter_table() {
        let labels = json!({"metadata": {"labels": {"zone": "a", "disk": "ssd", "cores": "8"}}});
        let cases: Vec<(Value, bool)> = vec![
            (json!({}), true),
            (json!({"nodeSelector": {"zone": "a"}}), true),
            (json!({"nodeSelector": {"zone": "a", "disk": "ssd"}}), true),
            (json!({"nodeSelector": {"zone": "b"}}), false),
            (json!({"nodeSelector": {"gpu": "yes"}}), false),
            (required(json!([expr("zone", "In", &["a", "b"])])), true),
            (required(json!([expr("zone", "In", &["b"])])), false),
            (required(json!([expr("zone", "NotIn", &["b"])])), true),
            (required(json!([expr("zone", "NotIn", &["a"])])), false),
            (required(json!([expr("gpu", "NotIn", &["x"])])), true), // absent label: NotIn holds
            (required(json!([expr("disk", "Exists", &[])])), true),
            (required(json!([expr("gpu", "Exists", &[])])), false),
            (required(json!([expr("gpu", "DoesNotExist", &[])])), true),
            (required(json!([expr("disk", "DoesNotExist", &[])])), false),
            (required(json!([expr("cores", "Gt", &["4"])])), true),
            (required(json!([expr("cores", "Gt", &["8"])])), false),
            (required(json!([expr("cores", "Lt", &["16"])])), true),
            (required(json!([expr("cores", "Lt", &["8"])])), false),
            (required(json!([expr("zone", "Gt", &["1"])])), false), // not a number
            (required(json!([expr("gpu", "Lt", &["1"])])), false),  // absent
            // terms are ORed
            (
                required(json!([
                    expr("zone", "In", &["b"]),
                    expr("disk", "In", &["ssd"])
                ])),
                true,
            ),
            // expressions in a term are ANDed
            (
                required(json!([{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]},
                    {"key": "disk", "operator": "In", "values": ["hdd"]}]}])),
                false,
            ),
            // an empty term matches nothing
            (required(json!([{}])), false),
            // matchFields on the node's name
            (
                required(json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])),
                true,
            ),
            (
                required(json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}])),
                false,
            ),
            // nodeSelector and affinity must both hold
            (
                {
                    let mut s = required(json!([expr("zone", "In", &["a"])]));
                    s["nodeSelector"] = json!({"disk": "hdd"});
                    s
                },
                false,
            ),
        ];
        for (spec, want) in cases {
            let s = filter(
                &NodeAffinity,
                &pod(spec.clone()),
                &node("n1", labels.clone()),
            );
            if want {
                assert!(s.is_success(), "{spec}: {s:?}");
            } else {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{spec}");
                assert_eq!(s.reasons, [REASON]);
            }
        }
    }

    #[test]
    fn score_table() {
        let preferred = json!({"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": expr("zone", "In", &["a"])},
                {"weight": 30, "preference": expr("disk", "In", &["ssd"])}]}}});
        let s = snapshot(
            vec![
                node_json("none", json!({})),
                node_json("zone", json!({"metadata": {"labels": {"zone": "a"}}})),
                node_json("disk", json!({"metadata": {"labels": {"disk": "ssd"}}})),
                node_json(
                    "both",
                    json!({"metadata": {"labels": {"zone": "a", "disk": "ssd"}}}),
                ),
            ],
            vec![],
        );
        // raw 0, 10, 30, 40 → scaled to the best
        assert_eq!(scores(&NodeAffinity, &pod(preferred), &s), [0, 25, 75, 100]);
        assert_eq!(scores(&NodeAffinity, &pod(json!({})), &s), [0, 0, 0, 0]);
    }
}
