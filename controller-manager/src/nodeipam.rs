//! Node IPAM (upstream's `RangeAllocator`): each Node without
//! `spec.podCIDR` gets the next free block of `--node-cidr-mask-size` bits
//! from `--cluster-cidr`, in `spec.podCIDR` and `spec.podCIDRs`; the
//! kubelet's CNI config and the proxies' routes use it.
//!
//! The allocator's state is not stored anywhere: it is rebuilt from the
//! podCIDRs the Nodes already carry each time the node cache (re)lists, and
//! nothing is allocated before that, so a restarted controller manager never
//! hands out a block twice. A deleted Node's block is free again. When the
//! range is full the Node gets a `CIDRNotAvailable` event (as upstream) and
//! is looked at again later; a failed write gets `CIDRAssignmentFailed`.
//! IPv4 only. One worker: allocations are serialised.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::cache::{Change, Key};
use crate::client::{Cluster, EventRecord, WriteError};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "node-ipam-controller";

/// How long a Node waits for a block when the range is full.
pub const FULL_RETRY: Duration = Duration::from_secs(30);

/// Why a CIDR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid CIDR {0:?} (want a.b.c.d/n, IPv4)")]
    Invalid(String),
    #[error(
        "node mask /{node} must be at least the cluster mask /{cluster}, at most /32, and at most 16 bits more"
    )]
    MaskSize { cluster: u8, node: u8 },
    #[error("{0} is not inside the cluster CIDR {1}")]
    OutOfRange(String, String),
    #[error("the cluster CIDR {0} is full")]
    Full(String),
}

fn parse(cidr: &str) -> Result<(u32, u8), IpamError> {
    let bad = || IpamError::Invalid(cidr.to_string());
    let (ip, bits) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let bits: u8 = bits.parse().map_err(|_| bad())?;
    if bits > 32 {
        return Err(bad());
    }
    Ok((u32::from(ip) & mask(bits), bits))
}

fn mask(bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }
}

/// The blocks of one cluster CIDR: which are taken, and where to look next.
#[derive(Debug, Clone)]
pub struct CidrSet {
    base: u32,
    cluster_bits: u8,
    node_bits: u8,
    used: BTreeSet<u32>,
    /// Allocation goes round the range (upstream's `nextCandidate`), so a
    /// block just freed is not handed out again at once.
    next: u32,
}

impl CidrSet {
    pub fn new(cluster_cidr: &str, node_mask: u8) -> Result<CidrSet, IpamError> {
        let (base, cluster_bits) = parse(cluster_cidr)?;
        if node_mask < cluster_bits || node_mask > 32 || node_mask - cluster_bits > 16 {
            return Err(IpamError::MaskSize {
                cluster: cluster_bits,
                node: node_mask,
            });
        }
        Ok(CidrSet {
            base,
            cluster_bits,
            node_bits: node_mask,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    /// How many blocks the range holds.
    pub fn capacity(&self) -> u32 {
        1 << (self.node_bits - self.cluster_bits)
    }

    fn cluster(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.cluster_bits)
    }

    fn block(&self, index: u32) -> String {
        let ip = self.base + (index << (32 - self.node_bits as u32));
        format!("{}/{}", Ipv4Addr::from(ip), self.node_bits)
    }

    /// The block indexes `cidr` covers (a larger or smaller CIDR than a
    /// block covers every block it overlaps).
    fn indexes(&self, cidr: &str) -> Result<std::ops::Range<u32>, IpamError> {
        let (ip, bits) = parse(cidr)?;
        if bits < self.cluster_bits || (ip & mask(self.cluster_bits)) != self.base {
            return Err(IpamError::OutOfRange(cidr.to_string(), self.cluster()));
        }
        let shift = 32 - self.node_bits as u32;
        let first = (ip - self.base) >> shift;
        let count = if bits >= self.node_bits {
            1
        } else {
            1 << (self.node_bits - bits)
        };
        Ok(first..first + count)
    }

    /// Marks `cidr` (a Node's existing podCIDR) as taken.
    pub fn occupy(&mut self, cidr: &str) -> Result<(), IpamError> {
        for i in self.indexes(cidr)? {
            self.used.insert(i);
        }
        Ok(())
    }

    pub fn release(&mut self, cidr: &str) -> Result<(), IpamError> {
        for i in self.indexes(cidr)? {
            self.used.remove(&i);
        }
        Ok(())
    }

    /// The next free block.
    pub fn allocate(&mut self) -> Result<String, IpamError> {
        let cap = self.capacity();
        for k in 0..cap {
            let i = (self.next + k) % cap;
            if self.used.insert(i) {
                self.next = (i + 1) % cap;
                return Ok(self.block(i));
            }
        }
        Err(IpamError::Full(self.cluster()))
    }
}

/// The allocator with what it handed out per Node.
#[derive(Debug)]
pub struct Allocator {
    set: CidrSet,
    cluster_cidr: String,
    node_mask: u8,
    /// Blocks handed out (or seen) per Node name, so that a Node reconciled
    /// again before its write is seen gets the same block.
    assigned: HashMap<String, String>,
    /// False until the node cache listed once and the state was rebuilt.
    ready: bool,
}

/// A Node's podCIDR, when set.
pub fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()?
        .pod_cidr
        .as_deref()
        .filter(|c| !c.is_empty())
}

impl Allocator {
    pub fn new(cluster_cidr: &str, node_mask: u8) -> Result<Allocator, IpamError> {
        Ok(Allocator {
            set: CidrSet::new(cluster_cidr, node_mask)?,
            cluster_cidr: cluster_cidr.to_string(),
            node_mask,
            assigned: HashMap::new(),
            ready: false,
        })
    }

    /// Starts over from the Nodes as listed: every podCIDR they carry is
    /// taken; blocks handed out whose write is not seen yet stay taken.
    pub fn rebuild<'a>(&mut self, nodes: impl IntoIterator<Item = &'a Node>) {
        let mut set = CidrSet::new(&self.cluster_cidr, self.node_mask).expect("validated in new");
        set.next = self.set.next;
        let mut assigned = HashMap::new();
        let mut present = Vec::new();
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            match pod_cidr(node) {
                Some(cidr) => match set.occupy(cidr) {
                    Ok(()) => {
                        assigned.insert(name, cidr.to_string());
                    }
                    Err(err) => {
                        tracing::warn!(node = %name, error = %err, "node podCIDR not from the cluster CIDR: ignored")
                    }
                },
                None => present.push(name),
            }
        }
        for name in present {
            if let Some(cidr) = self.assigned.get(&name)
                && set.occupy(cidr).is_ok()
            {
                assigned.insert(name, cidr.clone());
            }
        }
        self.set = set;
        self.assigned = assigned;
        self.ready = true;
    }

    /// The block for the Node `name` (which has no podCIDR yet): the one
    /// it was given before, or the next free one.
    pub fn assign(&mut self, name: &str) -> Result<String, IpamError> {
        if let Some(cidr) = self.assigned.get(name) {
            return Ok(cidr.clone());
        }
        let cidr = self.set.allocate()?;
        self.assigned.insert(name.to_string(), cidr.clone());
        Ok(cidr)
    }

    /// The Node `name` is gone (or its write failed for good): its block is free.
    pub fn forget(&mut self, name: &str) {
        if let Some(cidr) = self.assigned.remove(name) {
            let _ = self.set.release(&cidr);
        }
    }

    /// A Node carries `cidr` now (set by us or by someone else).
    pub fn observe(&mut self, name: &str, cidr: &str) {
        match self.assigned.get(name) {
            Some(have) if have == cidr => {}
            _ => {
                self.forget(name);
                if self.set.occupy(cidr).is_ok() {
                    self.assigned.insert(name.to_string(), cidr.to_string());
                }
            }
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }
}

pub struct NodeIpamController<C> {
    pub cluster: Arc<C>,
    pub nodes: Store<Node>,
    pub queue: Arc<WorkQueue<Key>>,
    pub allocator: Mutex<Allocator>,
}

fn node_key(node: &Node) -> Key {
    Key::new("", node.metadata.name.clone().unwrap_or_default())
}

pub fn node_reference(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..Default::default()
    }
}

impl<C: Cluster> NodeIpamController<C> {
    pub fn on_node(&self, change: Change<'_, Node>) {
        match change {
            Change::Applied { new, .. } => {
                let name = new.metadata.name.clone().unwrap_or_default();
                match pod_cidr(new) {
                    Some(cidr) => {
                        let mut a = self.allocator.lock().unwrap();
                        if a.is_ready() {
                            a.observe(&name, cidr);
                        }
                    }
                    None => self.queue.add(node_key(new)),
                }
            }
            Change::Deleted(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.allocator.lock().unwrap().forget(&name);
                tracing::info!(node = %name, "node deleted: its pod CIDR is free");
                // Someone may have been waiting for room.
                for n in self.nodes.state() {
                    if pod_cidr(&n).is_none() {
                        self.queue.add(node_key(&n));
                    }
                }
            }
            Change::Relisted => {
                let nodes = self.nodes.state();
                self.allocator
                    .lock()
                    .unwrap()
                    .rebuild(nodes.iter().map(|n| n.as_ref()));
                for n in nodes {
                    if pod_cidr(&n).is_none() {
                        self.queue.add(node_key(&n));
                    }
                }
            }
        }
    }

    fn event(&self, node: &Node, reason: &str, note: String) {
        self.cluster.event(EventRecord {
            regarding: node_reference(node),
            warning: reason == "CIDRAssignmentFailed",
            reason: reason.into(),
            action: "Allocate".into(),
            note,
            reporter: NAME.into(),
        });
    }
}

impl<C: Cluster> Reconcile for NodeIpamController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let Some(node) = self.nodes.get(&ObjectRef::new(&key.name)) else {
            return Ok(None);
        };
        if pod_cidr(&node).is_some() {
            return Ok(None);
        }
        let assigned = {
            let mut a = self.allocator.lock().unwrap();
            if !a.is_ready() {
                // The relist that rebuilds the allocator enqueues it again.
                return Ok(None);
            }
            a.assign(&key.name)
        };
        let cidr = match assigned {
            Ok(cidr) => cidr,
            Err(err) => {
                tracing::warn!(node = %key.name, error = %err, "no pod CIDR for the node");
                self.event(
                    &node,
                    "CIDRNotAvailable",
                    format!("Node {} status is now: CIDRNotAvailable", key.name),
                );
                return Ok(Some(FULL_RETRY));
            }
        };
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        let resource = ApiResource::erase::<Node>(&());
        match self
            .cluster
            .patch_dyn(&resource, None, &key.name, patch)
            .await
        {
            Ok(()) => {
                tracing::info!(node = %key.name, %cidr, "allocated the node's pod CIDR");
                Ok(None)
            }
            Err(WriteError::NotFound(_)) => {
                self.allocator.lock().unwrap().forget(&key.name);
                Ok(None)
            }
            Err(err) => {
                self.event(
                    &node,
                    "CIDRAssignmentFailed",
                    format!("Node {} status is now: CIDRAssignmentFailed", key.name),
                );
                Err(err.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    #[test]
    fn allocator_table() {
        struct Case {
            what: &'static str,
            cluster: &'static str,
            mask: u8,
            occupied: Vec<&'static str>,
            want: Vec<Result<&'static str, IpamError>>,
        }
        let full = |c: &str| Err(IpamError::Full(c.to_string()));
        let cases = [
            Case {
                what: "/24 blocks of a /16, in order",
                cluster: "10.244.0.0/16",
                mask: 24,
                occupied: vec![],
                want: vec![
                    Ok("10.244.0.0/24"),
                    Ok("10.244.1.0/24"),
                    Ok("10.244.2.0/24"),
                ],
            },
            Case {
                what: "occupied blocks are skipped",
                cluster: "10.244.0.0/16",
                mask: 24,
                occupied: vec!["10.244.0.0/24", "10.244.2.0/24"],
                want: vec![Ok("10.244.1.0/24"), Ok("10.244.3.0/24")],
            },
            Case {
                what: "a larger CIDR occupies every block it covers",
                cluster: "10.244.0.0/16",
                mask: 24,
                occupied: vec!["10.244.0.0/23"],
                want: vec![Ok("10.244.2.0/24")],
            },
            Case {
                what: "a /30 holds four /32s, then it is full",
                cluster: "192.168.5.0/30",
                mask: 32,
                occupied: vec!["192.168.5.2/32"],
                want: vec![
                    Ok("192.168.5.0/32"),
                    Ok("192.168.5.1/32"),
                    Ok("192.168.5.3/32"),
                    full("192.168.5.0/30"),
                ],
            },
            Case {
                what: "the cluster CIDR's host bits are ignored",
                cluster: "10.0.7.9/22",
                mask: 24,
                occupied: vec![],
                want: vec![
                    Ok("10.0.4.0/24"),
                    Ok("10.0.5.0/24"),
                    Ok("10.0.6.0/24"),
                    Ok("10.0.7.0/24"),
                    full("10.0.4.0/22"),
                ],
            },
        ];
        for case in cases {
            let mut set = CidrSet::new(case.cluster, case.mask).unwrap();
            for c in &case.occupied {
                set.occupy(c).unwrap();
            }
            let got: Vec<Result<String, IpamError>> =
                case.want.iter().map(|_| set.allocate()).collect();
            let want: Vec<Result<String, IpamError>> =
                case.want.into_iter().map(|r| r.map(String::from)).collect();
            assert_eq!(got, want, "{}", case.what);
        }
    }

    #[test]
    fn bad_configurations_and_foreign_cidrs_are_refused() {
        assert!(matches!(
            CidrSet::new("10.244.0.0", 24),
            Err(IpamError::Invalid(_))
        ));
        assert!(matches!(
            CidrSet::new("fd00::/64", 80),
            Err(IpamError::Invalid(_))
        ));
        assert!(matches!(
            CidrSet::new("10.0.0.0/24", 16),
            Err(IpamError::MaskSize { .. })
        ));
        assert!(matches!(
            CidrSet::new("10.0.0.0/8", 30),
            Err(IpamError::MaskSize { .. })
        ));
        let mut set = CidrSet::new("10.244.0.0/16", 24).unwrap();
        assert_eq!(set.capacity(), 256);
        assert!(matches!(
            set.occupy("10.245.0.0/24"),
            Err(IpamError::OutOfRange(..))
        ));
        assert!(matches!(
            set.occupy("10.0.0.0/8"),
            Err(IpamError::OutOfRange(..))
        ));
    }

    #[test]
    fn released_blocks_are_allocated_again() {
        let mut set = CidrSet::new("10.1.0.0/30", 31).unwrap();
        assert_eq!(set.allocate().unwrap(), "10.1.0.0/31");
        assert_eq!(set.allocate().unwrap(), "10.1.0.2/31");
        assert!(set.allocate().is_err());
        set.release("10.1.0.0/31").unwrap();
        assert_eq!(set.allocate().unwrap(), "10.1.0.0/31");
    }

    fn node(name: &str, cidr: Option<&str>) -> Node {
        let mut v = json!({"metadata": {"name": name, "uid": format!("uid-{name}")}, "spec": {}});
        if let Some(c) = cidr {
            v["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
        }
        serde_json::from_value(v).unwrap()
    }

    fn controller(
        nodes: &[Node],
        cluster_cidr: &str,
        mask: u8,
    ) -> (
        NodeIpamController<FakeCluster>,
        reflector::store::Writer<Node>,
    ) {
        let (store, mut writer) = reflector::store::<Node>();
        for n in nodes {
            writer.apply_watcher_event(&Event::Apply(n.clone()));
        }
        let ctl = NodeIpamController {
            cluster: Arc::new(FakeCluster::default()),
            nodes: store,
            queue: WorkQueue::new(),
            allocator: Mutex::new(Allocator::new(cluster_cidr, mask).unwrap()),
        };
        (ctl, writer)
    }

    fn allocations(ctl: &NodeIpamController<FakeCluster>) -> Vec<(String, String)> {
        ctl.cluster
            .writes()
            .into_iter()
            .filter_map(|w| match w {
                Write::DynPatch {
                    resource,
                    name,
                    patch,
                    ..
                } if resource == "nodes" => {
                    assert_eq!(patch["spec"]["podCIDRs"], json!([patch["spec"]["podCIDR"]]));
                    Some((name, patch["spec"]["podCIDR"].as_str()?.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn restart_keeps_existing_blocks_and_allocates_around_them() {
        // What a restarted controller manager finds: two nodes already
        // allocated (not the first blocks), one new.
        let nodes = [
            node("a", Some("10.244.0.0/24")),
            node("b", Some("10.244.1.0/24")),
            node("c", None),
        ];
        let (ctl, _w) = controller(&nodes, "10.244.0.0/16", 24);
        // Nothing is allocated before the cache has listed.
        ctl.reconcile(&Key::new("", "c")).await.unwrap();
        assert!(ctl.cluster.writes().is_empty());
        ctl.on_node(Change::Relisted);
        assert_eq!(ctl.queue.get().await, Some(Key::new("", "c")));
        ctl.reconcile(&Key::new("", "c")).await.unwrap();
        // Reconciled again before the patch is seen: the same block.
        ctl.reconcile(&Key::new("", "c")).await.unwrap();
        assert_eq!(
            allocations(&ctl),
            [
                ("c".into(), "10.244.2.0/24".into()),
                ("c".into(), "10.244.2.0/24".into())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_range_reports_and_deleted_nodes_free_their_block() {
        let nodes = [
            node("a", Some("10.9.0.0/25")),
            node("b", Some("10.9.0.128/25")),
            node("c", None),
        ];
        let (ctl, mut w) = controller(&nodes, "10.9.0.0/24", 25);
        ctl.on_node(Change::Relisted);
        let again = ctl.reconcile(&Key::new("", "c")).await.unwrap();
        assert_eq!(again, Some(FULL_RETRY));
        assert!(allocations(&ctl).is_empty());
        let events = ctl.cluster.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "CIDRNotAvailable");
        assert_eq!(events[0].regarding.name.as_deref(), Some("c"));
        // b goes: c gets its block.
        w.apply_watcher_event(&Event::Delete(nodes[1].clone()));
        ctl.on_node(Change::Deleted(&nodes[1]));
        assert_eq!(ctl.queue.get().await, Some(Key::new("", "c")));
        ctl.reconcile(&Key::new("", "c")).await.unwrap();
        assert_eq!(allocations(&ctl), [("c".into(), "10.9.0.128/25".into())]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_reported_and_retried_with_the_same_block() {
        let (ctl, _w) = controller(&[node("a", None)], "10.244.0.0/16", 24);
        ctl.on_node(Change::Relisted);
        ctl.cluster
            .fail_after(0, 1, WriteError::Other("etcd down".into()));
        assert!(ctl.reconcile(&Key::new("", "a")).await.is_err());
        assert_eq!(ctl.cluster.events()[0].reason, "CIDRAssignmentFailed");
        assert!(ctl.cluster.events()[0].warning);
        ctl.reconcile(&Key::new("", "a")).await.unwrap();
        let got = allocations(&ctl);
        assert_eq!(got[0], got[1]);
        assert_eq!(got[0].1, "10.244.0.0/24");
    }
}
