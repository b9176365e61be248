//! OwnerSpread: spread the pods of one controller (a ReplicaSet, StatefulSet, Job…) over the
//! nodes, so that replicas do not pile up on one node: the fewer pods of the same owner a
//! node has, the better (score 100 for none, 0 for the node with the most).
//!
//! Upstream gets this from PodTopologySpread's default constraints (and before that from
//! SelectorSpread); Skiff matches pods by their controller's uid, which is what those
//! selectors amount to for a ReplicaSet's pods.

use crate::framework::{CycleState, ScorePlugin, default_normalize};
use crate::snapshot::{NodeInfo, PodInfo};

pub struct OwnerSpread;

impl ScorePlugin for OwnerSpread {
    fn name(&self) -> &'static str {
        "OwnerSpread"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
        let Some(owner) = &pod.owner_uid else {
            return 0;
        };
        node.pods
            .iter()
            .filter(|p| p.owner_uid.as_ref() == Some(owner) && p.namespace == pod.namespace)
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{bound_pod, node_json, pod, pod_with, scores, snapshot};
    use serde_json::json;

    #[test]
    fn table() {
        let owned = |uid: &str| {
            json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "rs", "uid": uid, "controller": true}]})
        };
        let s = snapshot(
            vec![
                node_json("n0", json!({})),
                node_json("n1", json!({})),
                node_json("n2", json!({})),
            ],
            vec![
                bound_pod("a", "n1", owned("rs-1"), json!({})),
                bound_pod("b", "n2", owned("rs-1"), json!({})),
                bound_pod("c", "n2", owned("rs-1"), json!({})),
                bound_pod("d", "n0", owned("rs-2"), json!({})),
            ],
        );
        let mine = pod_with(owned("rs-1"), json!({}));
        assert_eq!(scores(&OwnerSpread, &mine, &s), [100, 50, 0]);
        let other = pod_with(owned("rs-2"), json!({}));
        assert_eq!(scores(&OwnerSpread, &other, &s), [0, 100, 100]);
        // no owner: no preference
        assert_eq!(scores(&OwnerSpread, &pod(json!({})), &s), [100, 100, 100]);
    }
}
