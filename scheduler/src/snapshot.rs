//! What the scheduler knows of the cluster: every node and the pods on it ([`NodeInfo`]),
//! including pods it has *assumed* onto a node while their binding is on its way.
//!
//! The scheduling loop owns the one [`Snapshot`] and changes it only between scheduling cycles
//! (from watch events and its own decisions), so a cycle always sees one consistent state
//! without copying it. Plugins only read it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use crate::resources::{self, Resources};

/// A host port a pod asks for: (host IP, protocol, port). An empty or `0.0.0.0` IP means
/// every address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
        self.port == other.port
            && self.protocol == other.protocol
            && (any(&self.ip) || any(&other.ip) || self.ip == other.ip)
    }
}

/// A pod with what the plugins ask of it computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// What it needs from a node ([`resources::pod_requests`]).
    pub requests: Resources,
    /// The same with upstream's defaults for containers that say nothing (for scoring).
    pub non_zero_requests: Resources,
    pub priority: i32,
    /// The uid of its controlling owner (its ReplicaSet, StatefulSet, Job…), if any.
    pub owner_uid: Option<String>,
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let owner_uid = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        let spec = pod.spec.as_ref();
        let host_ports = spec
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                ip: p.host_ip.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.host_port.unwrap_or(0),
            })
            .collect();
        PodInfo {
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            requests: resources::pod_requests(&pod),
            non_zero_requests: resources::pod_non_zero_requests(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            owner_uid,
            host_ports,
            pod,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }

    /// `namespace/name`, as events and logs name a pod.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A node and everything placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    pub allocatable: Resources,
    /// Sum of the requests of the pods on it.
    pub requested: Resources,
    /// Sum of their non-zero requests (for scoring).
    pub non_zero_requested: Resources,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Image name → size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut images = HashMap::new();
        for image in node.status.iter().flat_map(|s| s.images.iter().flatten()) {
            for name in image.names.iter().flatten() {
                images.insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
            }
        }
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            allocatable: resources::node_allocatable(&node),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            images,
            node,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    pub fn unschedulable(&self) -> bool {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let at = self.pods.iter().position(|p| p.uid == uid)?;
        let pod = self.pods.swap_remove(at);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        Some(pod)
    }
}

/// `nginx` → `nginx:latest`; names with a tag or digest are kept as they are.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[derive(Debug)]
struct PlacedPod {
    node: String,
    assumed: bool,
}

/// Every node with its pods, plus the pods on nodes not (yet) seen.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Pods bound to a node the scheduler has not seen (kept until it appears).
    waiting: HashMap<String, Vec<Arc<PodInfo>>>,
    placed: HashMap<String, PlacedPod>,
    /// Image name → how many nodes have it (ImageLocality's spread factor).
    image_nodes: HashMap<String, usize>,
}

impl Snapshot {
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn nodes_with_image(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Adds or replaces a node, keeping the pods already on it. Returns whether anything a
    /// pod's fit depends on changed (new node, labels, taints, cordon, allocatable, images).
    pub fn upsert_node(&mut self, node: Arc<Node>) -> bool {
        let mut info = NodeInfo::new(node);
        if let Some(&i) = self.index.get(&info.name) {
            let old = &self.nodes[i];
            let relevant = |n: &NodeInfo| {
                (
                    n.labels().clone(),
                    n.taints().to_vec(),
                    n.unschedulable(),
                    n.allocatable.clone(),
                )
            };
            let changed = relevant(old) != relevant(&info)
                || old.images.len() != info.images.len()
                || old.images.keys().any(|k| !info.images.contains_key(k));
            for image in old.images.keys() {
                self.image_nodes
                    .entry(image.clone())
                    .and_modify(|n| *n -= 1);
            }
            for image in info.images.keys() {
                *self.image_nodes.entry(image.clone()).or_default() += 1;
            }
            let old = std::mem::replace(&mut self.nodes[i], info);
            let new = &mut self.nodes[i];
            for pod in old.pods {
                new.add_pod(pod);
            }
            changed
        } else {
            for image in info.images.keys() {
                *self.image_nodes.entry(image.clone()).or_default() += 1;
            }
            for pod in self.waiting.remove(&info.name).unwrap_or_default() {
                info.add_pod(pod);
            }
            self.index.insert(info.name.clone(), self.nodes.len());
            self.nodes.push(info);
            true
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let info = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
        for image in info.images.keys() {
            self.image_nodes
                .entry(image.clone())
                .and_modify(|n| *n -= 1);
        }
        if !info.pods.is_empty() {
            self.waiting.insert(info.name, info.pods);
        }
    }

    /// Places a pod on a node, as bound (`assumed == false`) or as assumed by this scheduler.
    /// A pod already placed is moved (an assumed pod becomes bound).
    pub fn place_pod(&mut self, pod: Arc<PodInfo>, node: &str, assumed: bool) {
        self.remove_pod(&pod.uid);
        self.placed.insert(
            pod.uid.clone(),
            PlacedPod {
                node: node.to_string(),
                assumed,
            },
        );
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(pod),
            None => self.waiting.entry(node.to_string()).or_default().push(pod),
        }
    }

    /// Takes a pod off its node. Returns whether it was placed.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(placed) = self.placed.remove(uid) else {
            return false;
        };
        match self.index.get(&placed.node) {
            Some(&i) => {
                self.nodes[i].remove_pod(uid);
            }
            None => {
                if let Some(pods) = self.waiting.get_mut(&placed.node) {
                    pods.retain(|p| p.uid != uid);
                    if pods.is_empty() {
                        self.waiting.remove(&placed.node);
                    }
                }
            }
        }
        true
    }

    /// The node a pod is placed on and whether that is only assumed.
    pub fn placement(&self, uid: &str) -> Option<(&str, bool)> {
        self.placed.get(uid).map(|p| (p.node.as_str(), p.assumed))
    }

    /// Every placed pod's uid (to find the ones a relist no longer shows).
    pub fn placed_uids(&self) -> Vec<String> {
        self.placed.keys().cloned().collect()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Builds a snapshot from nodes and bound pods (for tests and tools).
    pub fn from_parts(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.upsert_node(Arc::new(n));
        }
        for p in pods {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            if let Some(node) = node {
                s.place_pod(Arc::new(PodInfo::new(Arc::new(p))), &node, false);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"},
                       "images": [{"names": ["nginx:1.27"], "sizeBytes": 100}]}}))
        .unwrap()
    }

    fn pod(uid: &str, cpu: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid},
                "spec": {"containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"cpu": cpu}},
                    "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}))
            .unwrap(),
        )))
    }

    #[test]
    fn pods_follow_nodes_and_assumptions() {
        let mut s = Snapshot::default();
        // a pod bound to a node not seen yet waits for it
        s.place_pod(pod("a", "500m"), "n1", false);
        assert!(s.node("n1").is_none());
        assert!(s.upsert_node(Arc::new(node("n1"))));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 500);
        assert_eq!(s.node("n1").unwrap().used_ports.len(), 1);
        // the same node again changes nothing a pod's fit depends on
        assert!(!s.upsert_node(Arc::new(node("n1"))));
        assert_eq!(s.node("n1").unwrap().pods.len(), 1);
        // assume, then confirm: counted once
        s.upsert_node(Arc::new(node("n2")));
        s.place_pod(pod("b", "1"), "n2", true);
        assert_eq!(s.placement("b"), Some(("n2", true)));
        s.place_pod(pod("b", "1"), "n2", false);
        assert_eq!(s.placement("b"), Some(("n2", false)));
        assert_eq!(s.node("n2").unwrap().requested.milli_cpu, 1000);
        assert_eq!(s.nodes_with_image("nginx:1.27"), 2);
        // forget
        assert!(s.remove_pod("b"));
        assert_eq!(s.node("n2").unwrap().requested.milli_cpu, 0);
        assert!(s.node("n2").unwrap().used_ports.is_empty());
        // removing a node keeps its pods waiting for it; index stays right
        s.remove_node("n1");
        assert_eq!(s.node("n2").unwrap().name, "n2");
        assert_eq!(s.nodes_with_image("nginx:1.27"), 1);
        s.upsert_node(Arc::new(node("n1")));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 500);
    }

    #[test]
    fn image_names() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("nginx:1.27"), "nginx:1.27");
        assert_eq!(
            normalized_image_name("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalized_image_name("a/b@sha256:00"), "a/b@sha256:00");
    }
}
