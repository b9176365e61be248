//! The plugins, one small module each, and the default profile that puts them in order.
//!
//! To add a plugin: write a module here with a unit struct implementing
//! [`FilterPlugin`](crate::framework::FilterPlugin) and/or
//! [`ScorePlugin`](crate::framework::ScorePlugin), declare it below (`mod my_plugin;`), and
//! add one line to [`default_framework`]'s list.

pub mod balanced_allocation;
pub mod image_locality;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod owner_spread;
pub mod pod_topology_spread;
pub mod taint_toleration;

use crate::framework::{FilterPlugin, Framework, ScorePlugin};

/// kube-scheduler's default profile, as far as Skiff has its plugins: filters in upstream's
/// order (cheap and decisive first), scores with upstream's weights.
pub fn default_framework() -> Framework {
    let filters: Vec<Box<dyn FilterPlugin>> = vec![
        Box::new(node_unschedulable::NodeUnschedulable),
        Box::new(node_name::NodeName),
        Box::new(taint_toleration::TaintToleration),
        Box::new(node_affinity::NodeAffinity),
        Box::new(node_ports::NodePorts),
        Box::new(node_resources_fit::NodeResourcesFit),
        Box::new(pod_topology_spread::PodTopologySpread),
    ];
    let scores: Vec<(Box<dyn ScorePlugin>, i64)> = vec![
        (Box::new(node_resources_fit::NodeResourcesFit), 1),
        (Box::new(balanced_allocation::BalancedAllocation), 1),
        (Box::new(image_locality::ImageLocality), 1),
        (Box::new(node_affinity::NodeAffinity), 2),
        (Box::new(taint_toleration::TaintToleration), 3),
        (Box::new(owner_spread::OwnerSpread), 2),
    ];
    Framework::new(filters, scores)
}

/// Builders for the plugins' table tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};

    use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status};
    use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

    /// A pod from its spec (containers default to one without requests) and metadata.
    pub fn pod_with(meta: Value, mut spec: Value) -> PodInfo {
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
        }
        let mut metadata = json!({"name": "p", "namespace": "default", "uid": "p-uid"});
        if let Value::Object(m) = meta {
            for (k, v) in m {
                metadata[k] = v;
            }
        }
        let pod: Pod = serde_json::from_value(json!({"metadata": metadata, "spec": spec})).unwrap();
        PodInfo::new(Arc::new(pod))
    }

    pub fn pod(spec: Value) -> PodInfo {
        pod_with(json!({}), spec)
    }

    /// A pod asking for `cpu` and `memory` in one container.
    pub fn pod_requesting(cpu: &str, memory: &str) -> PodInfo {
        pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
    }

    /// A node with 4 cpu, 8Gi, 110 pods, and `extra` merged into it.
    pub fn node_json(name: &str, extra: Value) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        });
        merge(&mut n, extra);
        serde_json::from_value(n).unwrap()
    }

    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    pub fn node(name: &str, extra: Value) -> NodeInfo {
        NodeInfo::new(Arc::new(node_json(name, extra)))
    }

    /// A node with the given pods on it.
    pub fn node_with_pods(name: &str, extra: Value, pods: Vec<PodInfo>) -> NodeInfo {
        let mut n = node(name, extra);
        for p in pods {
            n.add_pod(Arc::new(p));
        }
        n
    }

    pub fn filter(plugin: &dyn FilterPlugin, pod: &PodInfo, node: &NodeInfo) -> Status {
        let snapshot = Snapshot::default();
        let mut state = CycleState::default();
        plugin.pre_filter(pod, &snapshot, &mut state);
        plugin.filter(pod, node, &state)
    }

    /// Scores every node of the snapshot (all feasible), normalized.
    pub fn scores(plugin: &dyn ScorePlugin, pod: &PodInfo, snapshot: &Snapshot) -> Vec<i64> {
        let nodes: Vec<&NodeInfo> = snapshot.nodes().iter().collect();
        let mut state = CycleState::default();
        plugin.pre_score(pod, &nodes, snapshot, &mut state);
        let mut s: Vec<i64> = nodes.iter().map(|n| plugin.score(pod, n, &state)).collect();
        plugin.normalize(&mut s);
        s
    }

    /// A snapshot of the given nodes (with pods bound as their spec.nodeName says).
    pub fn snapshot(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        Snapshot::from_parts(nodes, pods)
    }

    /// A bound pod (for snapshots).
    pub fn bound_pod(name: &str, node: &str, meta: Value, mut spec: Value) -> Pod {
        spec["nodeName"] = json!(node);
        let p = pod_with(json!({"name": name, "uid": name}), spec);
        let mut pod = (*p.pod).clone();
        if let Value::Object(m) = meta {
            let mut md = serde_json::to_value(&pod.metadata).unwrap();
            for (k, v) in m {
                md[k] = v;
            }
            pod.metadata = serde_json::from_value(md).unwrap();
        }
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{bound_pod, node_json, pod, pod_requesting, snapshot};
    use super::*;
    use crate::framework::ScheduleError;
    use serde_json::json;

    #[test]
    fn default_profile_picks_and_explains() {
        let cp = json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
        let spec = |cpu: &str| {
            json!({"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]})
        };
        let s = snapshot(
            vec![
                node_json("cp", cp),
                node_json("busy", json!({})),
                node_json("idle", json!({})),
                node_json("cordoned", json!({"spec": {"unschedulable": true}})),
            ],
            vec![bound_pod("x", "busy", json!({}), spec("3"))],
        );
        let mut fw = default_framework();
        // 500m fits busy and idle; least allocated prefers idle every time.
        for _ in 0..5 {
            let r = fw.schedule(&pod_requesting("500m", "1Gi"), &s).unwrap();
            assert_eq!(r.node, "idle");
            assert_eq!((r.evaluated_nodes, r.feasible_nodes), (4, 2));
        }
        // 2 cpu fits only idle.
        assert_eq!(fw.schedule(&pod(spec("2")), &s).unwrap().node, "idle");
        // 5 cpu fits nowhere; each node says why.
        let Err(ScheduleError::Fit(err)) = fw.schedule(&pod(spec("5")), &s) else {
            panic!("should not fit");
        };
        let mut by_node: Vec<(String, &str)> = err
            .statuses
            .iter()
            .map(|(n, st)| (n.clone(), st.plugin))
            .collect();
        by_node.sort();
        assert_eq!(
            by_node,
            [
                ("busy".to_string(), "NodeResourcesFit"),
                ("cordoned".to_string(), "NodeUnschedulable"),
                ("cp".to_string(), "TaintToleration"),
                ("idle".to_string(), "NodeResourcesFit"),
            ]
        );
        assert_eq!(
            err.to_string(),
            "0/4 nodes are available: 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable, \
             2 Insufficient cpu. preemption: 0/4 nodes are available: 2 No preemption victims \
             found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fw.schedule(&pod(json!({})), &snapshot(vec![], vec![])),
            Err(ScheduleError::NoNodes)
        );
    }

    #[test]
    fn large_clusters_are_sampled_round_robin() {
        let nodes: Vec<_> = (0..300)
            .map(|i| node_json(&format!("n{i}"), json!({})))
            .collect();
        let s = snapshot(nodes, vec![]);
        let mut fw = default_framework();
        // 300 nodes: 50 - 300/125 = 48% → 144 feasible nodes are enough.
        let r = fw.schedule(&pod(json!({})), &s).unwrap();
        assert_eq!((r.evaluated_nodes, r.feasible_nodes), (144, 144));
        let index = |name: &str| name[1..].parse::<usize>().unwrap();
        assert!(index(&r.node) < 144, "{}", r.node);
        // The next pod starts where this one stopped: nodes 144..288.
        let r = fw.schedule(&pod(json!({})), &s).unwrap();
        assert!((144..288).contains(&index(&r.node)), "{}", r.node);
    }
}
