//! NodeResourcesFit: the pod's requests must fit in what the node has left (allocatable minus
//! the requests of the pods on it, assumed ones included), and the node must have room for one
//! more pod (filter). Score: *least allocated* — the more of cpu and memory stays free after
//! placing the pod, the better, so pods spread over the nodes.

use crate::framework::{CycleState, FilterPlugin, MAX_NODE_SCORE, ScorePlugin, Status};
use crate::snapshot::{NodeInfo, PodInfo};

pub struct NodeResourcesFit;

/// Upstream's reasons, one per resource that does not fit.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    let (want, free, used) = (&pod.requests, &node.allocatable, &node.requested);
    if node.pods.len() as i64 + 1 > free.pods {
        reasons.push("Too many pods".to_string());
    }
    if want.is_zero() {
        return reasons;
    }
    let mut check = |name: &str, want: i64, allocatable: i64, used: i64| {
        if want > 0 && want > allocatable - used {
            reasons.push(format!("Insufficient {name}"));
        }
    };
    check("cpu", want.milli_cpu, free.milli_cpu, used.milli_cpu);
    check("memory", want.memory, free.memory, used.memory);
    check(
        "ephemeral-storage",
        want.ephemeral_storage,
        free.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, amount) in &want.scalar {
        let allocatable = free.scalar.get(name).copied().unwrap_or(0);
        let in_use = used.scalar.get(name).copied().unwrap_or(0);
        check(name, *amount, allocatable, in_use);
    }
    reasons
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                reasons,
                ..Status::unschedulable("")
            }
        }
    }
}

/// `(allocatable - requested) * 100 / allocatable`, 0 when it does not fit.
fn least_requested(requested: i64, allocatable: i64) -> i64 {
    if allocatable <= 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_NODE_SCORE / allocatable
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    /// Mean of cpu's and memory's least-requested scores (weights 1 and 1, as upstream),
    /// over non-zero requests.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
        let (want, used, all) = (
            &pod.non_zero_requests,
            &node.non_zero_requested,
            &node.allocatable,
        );
        let cpu = least_requested(used.milli_cpu + want.milli_cpu, all.milli_cpu);
        let memory = least_requested(used.memory + want.memory, all.memory);
        (cpu + memory) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{
        bound_pod, node_json, node_with_pods, pod, pod_requesting, scores, snapshot,
    };
    use serde_json::json;

    #[test]
    fn filter_table() {
        // node: 4 cpu, 8Gi, 110 pods; already 3 cpu and 6Gi requested
        let busy = || node_with_pods("n", json!({}), vec![pod_requesting("3", "6Gi")]);
        let cases: Vec<(PodInfo, &[&str])> = vec![
            (pod_requesting("1", "2Gi"), &[]),
            (pod_requesting("1001m", "1Gi"), &["Insufficient cpu"]),
            (pod_requesting("500m", "3Gi"), &["Insufficient memory"]),
            (
                pod_requesting("2", "3Gi"),
                &["Insufficient cpu", "Insufficient memory"],
            ),
            (pod(json!({})), &[]), // asks for nothing
            (
                pod(json!({"containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"ephemeral-storage": "1Gi"}}}]})),
                &["Insufficient ephemeral-storage"], // the node reports none
            ),
            (
                pod(json!({"containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"nvidia.com/gpu": "1"}}}]})),
                &["Insufficient nvidia.com/gpu"],
            ),
            // an init container bigger than what is left
            (
                pod(json!({"containers": [{"name": "c", "image": "i",
                                           "resources": {"requests": {"cpu": "100m"}}}],
                           "initContainers": [{"name": "i", "image": "i",
                                               "resources": {"requests": {"cpu": "2"}}}]})),
                &["Insufficient cpu"],
            ),
        ];
        for (p, want) in cases {
            let s = NodeResourcesFit.filter(&p, &busy(), &CycleState::default());
            if want.is_empty() {
                assert!(s.is_success(), "{:?}: {s:?}", p.requests);
            } else {
                assert_eq!(s.code, Code::Unschedulable);
                assert_eq!(s.reasons, want, "{:?}", p.requests);
            }
        }
        // pods allowed
        let full = node_with_pods(
            "n",
            json!({"status": {"allocatable": {"pods": "2"}}}),
            vec![pod(json!({})), pod(json!({}))],
        );
        let s =
            NodeResourcesFit.filter(&pod_requesting("10", "1Ti"), &full, &CycleState::default());
        assert_eq!(
            s.reasons,
            ["Too many pods", "Insufficient cpu", "Insufficient memory"]
        );
    }

    #[test]
    fn least_allocated_table() {
        let spec = |cpu: &str, mem: &str| {
            json!({"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
        };
        let s = snapshot(
            vec![
                node_json("empty", json!({})),
                node_json("half", json!({})),
                node_json("full", json!({})),
            ],
            vec![
                bound_pod("a", "half", json!({}), spec("2", "4Gi")),
                bound_pod("b", "full", json!({}), spec("4", "8Gi")),
            ],
        );
        // pod 1 cpu / 2Gi: empty → (75 + 75) / 2; half → (25 + 25) / 2; full → 0
        assert_eq!(
            scores(&NodeResourcesFit, &pod_requesting("1", "2Gi"), &s),
            [75, 25, 0]
        );
        // no requests: counted as 100m / 200Mi
        let best_effort = scores(&NodeResourcesFit, &pod(json!({})), &s);
        assert_eq!(best_effort, [(97 + 97) / 2, (47 + 47) / 2, 0]);
        assert_eq!(least_requested(1, 0), 0);
    }
}
