//! TaintToleration: a node's `NoSchedule` and `NoExecute` taints keep off every pod that does
//! not tolerate them (filter); `PreferNoSchedule` taints it does not tolerate make a node less
//! attractive (score: fewer is better).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status, default_normalize};
use crate::snapshot::{NodeInfo, PodInfo};

pub struct TaintToleration;

/// Whether `toleration` tolerates `taint`, as upstream's `ToleratesTaint`: the effect matches
/// (or the toleration names none), the key matches (an empty key with `Exists` matches every
/// key), and `Exists` or an equal value.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        let untolerated = node.taints().iter().find(|taint| {
            (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !pod.tolerations().iter().any(|t| tolerates(t, taint))
        });
        match untolerated {
            None => Status::success(),
            Some(taint) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    /// How many `PreferNoSchedule` taints the pod does not tolerate (only tolerations with
    /// that effect or none count).
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
        let prefer: Vec<&Toleration> = pod
            .tolerations()
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .collect();
        node.taints()
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !prefer.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{filter, node, node_json, pod, scores, snapshot};
    use serde_json::json;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(String::from),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        Toleration {
            key: s(key),
            operator: s(op),
            value: s(value),
            effect: s(effect),
            ..Toleration::default()
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint("k", Some("v"), "NoSchedule");
        let cases = [
            (toleration("k", "Equal", "v", "NoSchedule"), true),
            (toleration("k", "", "v", "NoSchedule"), true),
            (toleration("k", "Equal", "v", ""), true),
            (toleration("k", "Equal", "w", "NoSchedule"), false),
            (toleration("k", "Exists", "", "NoSchedule"), true),
            (toleration("", "Exists", "", ""), true),
            (toleration("", "Equal", "v", ""), false),
            (toleration("other", "Exists", "", ""), false),
            (toleration("k", "Exists", "", "NoExecute"), false),
        ];
        for (tol, want) in cases {
            assert_eq!(tolerates(&tol, &t), want, "{tol:?}");
        }
        let no_value = taint("k", None, "NoSchedule");
        assert!(tolerates(&toleration("k", "Equal", "", ""), &no_value));
    }

    #[test]
    fn filter_table() {
        let cp = json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
        let exec =
            json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoExecute"}]}});
        let prefer = json!({"spec": {"taints": [{"key": "slow", "effect": "PreferNoSchedule"}]}});
        let tol_cp = json!({"tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]});
        let tol_gpu = json!({"tolerations": [{"key": "gpu", "value": "yes"}]});
        let cases = [
            (json!({}), json!({}), None),
            (json!({}), prefer, None),
            (
                json!({}),
                cp.clone(),
                Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (tol_cp, cp, None),
            (
                json!({}),
                exec.clone(),
                Some("node(s) had untolerated taint {gpu: yes}"),
            ),
            (tol_gpu, exec, None),
        ];
        for (spec, n, want) in cases {
            let s = filter(&TaintToleration, &pod(spec.clone()), &node("n", n.clone()));
            match want {
                None => assert!(s.is_success(), "{spec} on {n}: {s:?}"),
                Some(reason) => {
                    assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
                    assert_eq!(s.reasons, [reason]);
                }
            }
        }
    }

    #[test]
    fn score_table() {
        let prefer = |keys: &[&str]| {
            let taints: Vec<_> = keys
                .iter()
                .map(|k| json!({"key": k, "effect": "PreferNoSchedule"}))
                .collect();
            json!({"spec": {"taints": taints}})
        };
        let nodes = vec![
            node_json("clean", json!({})),
            node_json("one", prefer(&["a"])),
            node_json("two", prefer(&["a", "b"])),
        ];
        let s = snapshot(nodes, vec![]);
        assert_eq!(scores(&TaintToleration, &pod(json!({})), &s), [100, 50, 0]);
        // tolerating "a" (with PreferNoSchedule or no effect) leaves only "b" counting
        let tolerant = pod(json!({"tolerations": [{"key": "a", "operator": "Exists"}]}));
        assert_eq!(scores(&TaintToleration, &tolerant, &s), [100, 100, 0]);
        // a NoSchedule toleration does not count for PreferNoSchedule taints
        let other = pod(json!({"tolerations": [
            {"key": "a", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert_eq!(scores(&TaintToleration, &other, &s), [100, 50, 0]);
    }
}
