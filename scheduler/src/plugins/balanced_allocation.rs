//! NodeResourcesBalancedAllocation: prefer nodes where cpu and memory would be used in equal
//! proportions after placing the pod: `(1 - std(cpu fraction, memory fraction)) × 100`.
//! A pod that requests neither gets 0 everywhere (the plugin has nothing to balance).

use crate::framework::{CycleState, MAX_NODE_SCORE, ScorePlugin};
use crate::snapshot::{NodeInfo, PodInfo};

pub struct BalancedAllocation;

/// The standard deviation of the fractions is turned into a score; with two resources it is
/// half their difference.
pub fn balanced_score(requested: &[i64], allocatable: &[i64]) -> i64 {
    let fractions: Vec<f64> = requested
        .iter()
        .zip(allocatable)
        .filter(|(_, a)| **a > 0)
        .map(|(r, a)| (*r as f64 / *a as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
        let want = &pod.requests;
        if want.milli_cpu == 0 && want.memory == 0 {
            return 0;
        }
        let used = &node.requested;
        balanced_score(
            &[used.milli_cpu + want.milli_cpu, used.memory + want.memory],
            &[node.allocatable.milli_cpu, node.allocatable.memory],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{bound_pod, node_json, pod, pod_requesting, scores, snapshot};
    use serde_json::json;

    #[test]
    fn table() {
        let spec = |cpu: &str, mem: &str| {
            json!({"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
        };
        // nodes: 4 cpu / 8Gi. "cpu-heavy" already has 2 cpu / 0 memory requested.
        let s = snapshot(
            vec![
                node_json("empty", json!({})),
                node_json("cpu-heavy", json!({})),
            ],
            vec![bound_pod("a", "cpu-heavy", json!({}), spec("2", "0"))],
        );
        // 1 cpu / 2Gi on empty: 0.25 and 0.25 → 100; on cpu-heavy: 0.75 and 0.25 → 75
        assert_eq!(
            scores(&BalancedAllocation, &pod_requesting("1", "2Gi"), &s),
            [100, 75]
        );
        // a memory-only pod evens out the cpu-heavy node: 0.5 / 0.5 → 100; empty: 0 / 0.5 → 75
        assert_eq!(
            scores(&BalancedAllocation, &pod_requesting("0", "4Gi"), &s),
            [75, 100]
        );
        assert_eq!(scores(&BalancedAllocation, &pod(json!({})), &s), [0, 0]);
        // fractions are capped at 1; three resources use the population std
        assert_eq!(balanced_score(&[10, 1], &[1, 1]), 100);
        assert_eq!(balanced_score(&[0, 1, 2], &[2, 2, 2]), 59); // std of 0, .5, 1 = 0.408
    }
}
