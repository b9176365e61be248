//! The node lifecycle loop: keyed by Node name; a Node change, a change of
//! its Lease, a change of a pod bound to an unhealthy node, and a sweep
//! every `--node-monitor-period` enqueue it. A reconcile notes the node's
//! heartbeats, asks [`health::plan`] what its conditions and taints should
//! be, writes them, then marks its pods not Ready and evicts those whose
//! tolerations ran out ([`pods`]).
//!
//! The conditions are written first and the reconcile stops there: the
//! Node's watch event brings it back with the new resourceVersion, so the
//! taints (which follow the conditions) are written against what the server
//! holds rather than clobbering a concurrent change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::discovery::ApiResource;
use kube::runtime::reflector::ObjectRef;

use super::disruption::{self, Limiter, ZoneCounts, ZoneState};
use super::health::{self, Heartbeats, NoExecute, NodePlan, Timing};
use super::pods;
use crate::cache::{Caches, Change, Key, NODE_LEASE_NAMESPACE, Synced};
use crate::client::{Cluster, EventRecord, WriteError};
use crate::nodeipam::node_reference;
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "node-lifecycle-controller";
/// Who reports evictions (upstream's taint eviction controller).
pub const EVICTION_NAME: &str = "taint-eviction-controller";

/// The controller's clock (tests set it).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

pub struct NodeLifecycleController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub synced: Synced,
    pub queue: Arc<WorkQueue<Key>>,
    pub heartbeats: Mutex<Heartbeats>,
    /// NoExecute taints without `timeAdded` (someone else's), by (node, key,
    /// value): when first seen, which is when their tolerations start.
    pub taints_seen: Mutex<HashMap<(String, String, String), Timestamp>>,
    pub grace: Duration,
    pub startup_grace: Duration,
    pub clock: Clock,
    /// The tainting rates (`--node-eviction-rate` and friends).
    pub eviction: disruption::Settings,
    /// Each zone's last state (to log changes) and tainting limiter.
    pub zones: Mutex<Zones>,
}

/// What the controller remembers of the zones.
#[derive(Debug, Default)]
pub struct Zones {
    states: BTreeMap<String, ZoneState>,
    all_full: bool,
    limiters: HashMap<String, Limiter>,
}

fn node_key(name: &str) -> Key {
    Key::new("", name)
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

impl<C: Cluster> NodeLifecycleController<C> {
    pub fn on_node(&self, change: Change<'_, Node>) {
        match change {
            Change::Applied { new, .. } => {
                self.queue
                    .add(node_key(new.metadata.name.as_deref().unwrap_or_default()));
            }
            Change::Deleted(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.heartbeats.lock().unwrap().forget(&name);
                self.taints_seen.lock().unwrap().retain(|k, _| k.0 != name);
            }
            Change::Relisted => self.enqueue_all(),
        }
    }

    pub fn on_lease(&self, change: Change<'_, k8s_openapi::api::coordination::v1::Lease>) {
        match change {
            Change::Applied { new: lease, .. } | Change::Deleted(lease) => {
                self.queue
                    .add(node_key(lease.metadata.name.as_deref().unwrap_or_default()));
            }
            Change::Relisted => self.enqueue_all(),
        }
    }

    /// A pod bound to an unhealthy node may need marking or evicting.
    pub fn on_pod(&self, change: Change<'_, Pod>) {
        let Change::Applied { new, .. } = change else {
            return;
        };
        let Some(name) = node_of(new) else {
            return;
        };
        let Some(node) = self.caches.nodes.get(&ObjectRef::new(name)) else {
            return;
        };
        let tainted = taints(&node).iter().any(|t| t.effect == "NoExecute");
        if tainted || health::ready_status(&node) != "True" {
            self.queue.add(node_key(name));
        }
    }

    pub fn enqueue_all(&self) {
        for n in self.caches.nodes.state() {
            self.queue
                .add(node_key(n.metadata.name.as_deref().unwrap_or_default()));
        }
    }

    /// Enqueues every node every `period` (upstream's monitor loop), so a
    /// node whose heartbeats simply stop is noticed even with no event.
    pub async fn monitor(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            self.enqueue_all();
        }
    }

    /// When `node` was last heard from (and notes what it shows now).
    fn last_heard(&self, node: &Node, now: Timestamp) -> Timestamp {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let lease = self
            .caches
            .leases
            .get(&ObjectRef::new(name).within(NODE_LEASE_NAMESPACE));
        let renew = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        self.heartbeats
            .lock()
            .unwrap()
            .observe(name, renew, health::ready_heartbeat(node), now)
    }

    fn timing(&self, last_heard: Timestamp, now: Timestamp) -> Timing {
        Timing {
            last_heard,
            now,
            grace: self.grace,
            startup_grace: self.startup_grace,
            noexecute: NoExecute::Allow,
        }
    }

    /// (healthy, unhealthy) nodes of each zone, as [`health::plan`] sees them
    /// now; the states of the zones (changes logged); whether all are fully
    /// disrupted.
    fn zone_picture(&self, now: Timestamp) -> (ZoneCounts, BTreeMap<String, ZoneState>, bool) {
        let mut counts = ZoneCounts::new();
        for n in self.caches.nodes.state() {
            let heard = self.last_heard(&n, now);
            let healthy = health::plan(&n, &self.timing(heard, now)).ready == "True";
            let c = counts.entry(disruption::zone_of(&n)).or_default();
            if healthy {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        let (states, all_full) =
            disruption::zone_states(&counts, self.eviction.unhealthy_threshold);
        let mut zones = self.zones.lock().unwrap();
        for (zone, state) in &states {
            if zones.states.get(zone) != Some(state) {
                tracing::info!(%zone, ?state, "zone state changed");
            }
        }
        if all_full != zones.all_full {
            if all_full {
                tracing::warn!("every node is unhealthy: entering full disruption, no evictions");
            } else {
                tracing::info!("some nodes are healthy again: leaving full disruption");
            }
        }
        zones.states = states.clone();
        zones.all_full = all_full;
        (counts, states, all_full)
    }

    /// What may be done with an unhealthy node's NoExecute taint, and when
    /// to look again if a new one must wait for its zone's rate.
    fn noexecute_for(
        &self,
        node: &Node,
        alone: &NodePlan,
        now: Timestamp,
    ) -> (NoExecute, Option<Duration>) {
        let (counts, states, all_full) = self.zone_picture(now);
        if all_full {
            return (NoExecute::Remove, None);
        }
        // Only a new taint costs a token, and only on a pass that writes
        // taints (a status write comes first and ends its pass).
        if health::has_noexecute(node) || alone.status.is_some() || alone.taints.is_none() {
            return (NoExecute::Allow, None);
        }
        let zone = disruption::zone_of(node);
        let state = states.get(&zone).copied().unwrap_or(ZoneState::Normal);
        let size = counts.get(&zone).map_or(0, |(h, u)| h + u);
        let rate = disruption::tainting_rate(state, size, &self.eviction);
        let mut zones = self.zones.lock().unwrap();
        match zones
            .limiters
            .entry(zone.clone())
            .or_default()
            .try_take(rate, now)
        {
            Ok(()) => (NoExecute::Allow, None),
            Err(wait) => {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                tracing::info!(node = %name, %zone, ?state, rate, "NoExecute taint waits for the zone's eviction rate");
                (
                    NoExecute::KeepOnly,
                    wait.map(|w| w + Duration::from_millis(50)),
                )
            }
        }
    }

    /// The node's NoExecute taints, each with the time it counts from.
    fn noexecute_taints(&self, node: &Node, now: Timestamp) -> Vec<Taint> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut seen = self.taints_seen.lock().unwrap();
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for mut t in taints(node).into_iter().filter(|t| t.effect == "NoExecute") {
            if t.time_added.is_none() {
                let k = (
                    name.clone(),
                    t.key.clone(),
                    t.value.clone().unwrap_or_default(),
                );
                let first = *seen.entry(k.clone()).or_insert(now);
                t.time_added = Some(Time(first));
                keep.push(k);
            }
            out.push(t);
        }
        seen.retain(|k, _| k.0 != name || keep.contains(k));
        out
    }

    fn node_event(&self, node: &Node, reason: &str, note: &str) {
        self.cluster.event(EventRecord {
            regarding: node_reference(node),
            warning: false,
            reason: reason.into(),
            action: "StatusChange".into(),
            note: note.into(),
            reporter: NAME.into(),
        });
    }
}

impl<C: Cluster> Reconcile for NodeLifecycleController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        if !self.synced.nodes() {
            // Before the first list a missing Lease means nothing yet.
            return Ok(Some(Duration::from_secs(1)));
        }
        let name = key.name.as_str();
        let Some(node) = self.caches.nodes.get(&ObjectRef::new(name)) else {
            return Ok(None);
        };
        let now = (self.clock)();
        let heard = self.last_heard(&node, now);
        let mut timing = self.timing(heard, now);
        let alone = health::plan(&node, &timing);
        let mut waits = None;
        if alone.ready != "True" {
            (timing.noexecute, waits) = self.noexecute_for(&node, &alone, now);
        }
        let plan = health::plan(&node, &timing);
        let nodes = ApiResource::erase::<Node>(&());
        for (reason, note) in &plan.events {
            tracing::info!(node = %name, %reason, "{note}");
            self.node_event(&node, reason, note);
        }
        if let Some(status) = plan.status {
            match self
                .cluster
                .patch_status_dyn(&nodes, None, name, status)
                .await
            {
                Ok(()) => {
                    tracing::info!(node = %name, ready = %plan.ready, "node status set: Kubelet stopped posting node status")
                }
                Err(WriteError::NotFound(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
        } else if let Some(taints) = plan.taints {
            match self
                .cluster
                .patch_dyn(&nodes, None, name, taints.clone())
                .await
            {
                Ok(()) => {
                    tracing::info!(node = %name, taints = %taints["spec"]["taints"], "node taints set")
                }
                Err(WriteError::NotFound(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
        }

        let on_node: Vec<Arc<Pod>> = self
            .caches
            .pods
            .state()
            .into_iter()
            .filter(|p| node_of(p) == Some(name))
            .collect();
        let resource = ApiResource::erase::<Pod>(&());
        let mut failure = None;
        if plan.ready != "True" {
            for pod in on_node
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                let Some(patch) = pods::not_ready_patch(pod, now) else {
                    continue;
                };
                let ns = pod.metadata.namespace.as_deref();
                let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
                match self
                    .cluster
                    .patch_status_dyn(&resource, ns, pod_name, patch)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(node = %name, pod = %Key::of(pod.as_ref()), "marked pod not ready");
                        self.cluster.event(EventRecord {
                            regarding: pod_reference(pod),
                            warning: true,
                            reason: "NodeNotReady".into(),
                            action: "MarkNotReady".into(),
                            note: "Node is not ready".into(),
                            reporter: NAME.into(),
                        });
                    }
                    Err(WriteError::NotFound(_)) => {}
                    Err(err) => {
                        failure.get_or_insert(err);
                    }
                }
            }
        }

        let taints = self.noexecute_taints(&node, now);
        let mut recheck = match (plan.recheck, waits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if !taints.is_empty() {
            let refs: Vec<&Pod> = on_node.iter().map(|p| p.as_ref()).collect();
            let (evict, next) = pods::evictions(&refs, &taints, now);
            for pod in evict {
                let ns = pod.metadata.namespace.as_deref();
                let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
                let uid = pod.metadata.uid.as_deref();
                match self
                    .cluster
                    .delete_dyn(&resource, ns, pod_name, uid, "Background")
                    .await
                {
                    Ok(()) => {
                        let pod_key = Key::of(pod);
                        tracing::info!(node = %name, pod = %pod_key, "evicted pod: its node is tainted NoExecute");
                        self.cluster.event(EventRecord {
                            regarding: pod_reference(pod),
                            warning: false,
                            reason: "TaintManagerEviction".into(),
                            action: "Delete".into(),
                            note: format!("Marking for deletion Pod {pod_key}"),
                            reporter: EVICTION_NAME.into(),
                        });
                    }
                    Err(WriteError::NotFound(_)) => {}
                    Err(err) => {
                        failure.get_or_insert(err);
                    }
                }
            }
            if let Some(next) = next {
                let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
                let wait = wait + Duration::from_millis(50);
                recheck = Some(recheck.map_or(wait, |r| r.min(wait)));
            }
        }
        match failure {
            Some(err) => Err(err.into()),
            None => Ok(recheck),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::cache::{Writers, caches};
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::watcher::Event;
    use serde_json::{Value, json};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1"},
            "spec": {},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": at(0).to_string()},
                {"type": "MemoryPressure", "status": "False"},
            ]}
        }))
        .unwrap()
    }

    fn pod(name: &str, node: &str, tolerations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": "5"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], "tolerations": tolerations},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    }

    struct Rig {
        ctl: NodeLifecycleController<FakeCluster>,
        w: Writers,
        now: Arc<Mutex<Timestamp>>,
    }

    fn rig(nodes: Vec<Node>, pods: Vec<Pod>) -> Rig {
        let (caches, mut w) = caches();
        for n in nodes {
            w.nodes.apply_watcher_event(&Event::Apply(n));
        }
        for p in pods {
            w.pods.apply_watcher_event(&Event::Apply(p));
        }
        let synced = Synced::default();
        for s in [&synced.nodes, &synced.leases, &synced.pods] {
            s.store(true, Ordering::Release);
        }
        let now = Arc::new(Mutex::new(at(0)));
        let clock_now = now.clone();
        let ctl = NodeLifecycleController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            synced,
            queue: WorkQueue::new(),
            heartbeats: Mutex::new(Heartbeats::default()),
            taints_seen: Mutex::new(HashMap::new()),
            grace: Duration::from_secs(40),
            startup_grace: Duration::from_secs(60),
            clock: Arc::new(move || *clock_now.lock().unwrap()),
            eviction: disruption::Settings::default(),
            zones: Default::default(),
        };
        Rig { ctl, w, now }
    }

    impl Rig {
        async fn at(&self, s: i64, node: &str) -> Option<Duration> {
            *self.now.lock().unwrap() = at(s);
            self.ctl.reconcile(&node_key(node)).await.unwrap()
        }

        fn writes_since(&self, n: usize) -> Vec<Write> {
            self.ctl.cluster.writes()[n..].to_vec()
        }

        /// Applies a node merge patch to the cache, as the watch would.
        fn apply_node(&mut self, name: &str, patch: &Value) {
            let node = self.ctl.caches.nodes.get(&ObjectRef::new(name)).unwrap();
            let mut v = serde_json::to_value(node.as_ref()).unwrap();
            for (k, val) in patch.as_object().unwrap() {
                if k == "metadata" {
                    continue;
                }
                for (f, x) in val.as_object().unwrap() {
                    v[k][f] = x.clone();
                }
            }
            self.w
                .nodes
                .apply_watcher_event(&Event::Apply(serde_json::from_value(v).unwrap()));
        }

        fn renew_lease(&mut self, node: &str, s: i64) {
            self.w.leases.apply_watcher_event(&Event::Apply(
                serde_json::from_value(json!({
                    "metadata": {"name": node, "namespace": NODE_LEASE_NAMESPACE},
                    "spec": {"holderIdentity": node, "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(at(s))}
                }))
                .unwrap(),
            ));
        }
    }

    /// The kubelet of each of `names` reports Ready=False (in the cache).
    fn not_ready(r: &mut Rig, names: &[&str]) {
        for name in names {
            let status = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "lastHeartbeatTime": at(0).to_string()},
                {"type": "MemoryPressure", "status": "False"},
            ]}});
            r.apply_node(name, &status);
        }
    }

    /// The taints (key:effect) the newest write set on `node`, applied to
    /// the cache as the watch would.
    fn tainted(r: &mut Rig, node: &str, since: usize) -> Vec<String> {
        let writes = r.writes_since(since);
        let Some(Write::DynPatch { name, patch, .. }) = writes.first() else {
            panic!("{writes:?}")
        };
        assert_eq!(name, node);
        r.apply_node(node, patch);
        let mut keys: Vec<String> = patch["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap(),
                    t["effect"].as_str().unwrap()
                )
            })
            .collect();
        keys.sort();
        keys
    }

    #[tokio::test(start_paused = true)]
    async fn noexecute_taints_come_one_node_per_ten_seconds_in_a_zone() {
        let mut r = rig(vec![node("n1"), node("n2"), node("n3")], vec![]);
        not_ready(&mut r, &["n1", "n2"]);
        let both = [
            "node.kubernetes.io/not-ready:NoExecute",
            "node.kubernetes.io/not-ready:NoSchedule",
        ];
        r.at(1, "n1").await;
        assert_eq!(tainted(&mut r, "n1", 0), both);
        // n2 failed at the same moment: NoSchedule now, NoExecute once the
        // zone's 0.1/s has room again (10 s after n1's).
        let recheck = r.at(4, "n2").await;
        assert_eq!(recheck, Some(Duration::from_millis(7_050)));
        assert_eq!(
            tainted(&mut r, "n2", 1),
            ["node.kubernetes.io/not-ready:NoSchedule"]
        );
        let n = r.ctl.cluster.writes().len();
        r.at(8, "n2").await;
        assert_eq!(r.ctl.cluster.writes().len(), n, "still waiting");
        r.at(11, "n2").await;
        assert_eq!(tainted(&mut r, "n2", n), both);
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_zone_mostly_down_taints_nothing_new_and_all_down_removes_taints() {
        let mut r = rig(vec![node("n1"), node("n2"), node("n3"), node("n4")], vec![]);
        let both = [
            "node.kubernetes.io/not-ready:NoExecute",
            "node.kubernetes.io/not-ready:NoSchedule",
        ];
        not_ready(&mut r, &["n1"]);
        r.at(1, "n1").await;
        assert_eq!(tainted(&mut r, "n1", 0), both);
        // Three of four unhealthy: 0.75 ≥ 0.55 and more than 2, a partial
        // disruption of a zone under 50 nodes: no new NoExecute taint, ever.
        not_ready(&mut r, &["n2", "n3"]);
        // (All within the 40 s grace: the kubelets still post, saying False.)
        r.at(12, "n2").await;
        assert_eq!(
            tainted(&mut r, "n2", 1),
            ["node.kubernetes.io/not-ready:NoSchedule"]
        );
        let n = r.ctl.cluster.writes().len();
        r.at(35, "n2").await;
        assert_eq!(
            r.ctl.cluster.writes().len(),
            n,
            "no room at rate 0: {:?}",
            r.writes_since(n)
        );
        // n1 keeps the taint it had.
        r.at(35, "n1").await;
        assert_eq!(r.ctl.cluster.writes().len(), n);
        // All four down: full disruption everywhere, n1's NoExecute goes.
        not_ready(&mut r, &["n4"]);
        r.at(36, "n1").await;
        assert_eq!(
            tainted(&mut r, "n1", n),
            ["node.kubernetes.io/not-ready:NoSchedule"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silent_node_is_marked_tainted_and_its_pods_evicted_on_time() {
        let defaults = json!([{"key": health::UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]);
        let mut r = rig(
            vec![node("n1"), node("n2")],
            vec![
                pod("patient", "n1", defaults),
                pod("bare", "n1", json!([])),
                pod("elsewhere", "n2", json!([])),
            ],
        );
        // t=0: both heard from. n1 renews its Lease until t=20, then stops;
        // n2 keeps renewing.
        assert_eq!(r.at(0, "n1").await, Some(Duration::from_millis(40_100)));
        r.at(0, "n2").await;
        for t in [10, 20] {
            r.renew_lease("n1", t);
            r.renew_lease("n2", t);
            r.at(t, "n1").await;
        }
        for t in [30, 40, 50, 60] {
            r.renew_lease("n2", t);
            r.at(t, "n2").await;
        }
        assert!(r.ctl.cluster.writes().is_empty(), "healthy until 60");
        // t=61: silent for 41 s (> 40 s grace).
        r.at(61, "n1").await;
        let writes = r.writes_since(0);
        let Write::DynPatchStatus {
            resource,
            name,
            patch,
            ..
        } = &writes[0]
        else {
            panic!("{writes:?}")
        };
        assert_eq!((resource.as_str(), name.as_str()), ("nodes", "n1"));
        let ready = patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("Unknown"), Some("NodeStatusUnknown"))
        );
        // n1's pods are marked not ready; n2's are not.
        let marked: Vec<&str> = writes[1..]
            .iter()
            .map(|w| match w {
                Write::DynPatchStatus {
                    resource,
                    name,
                    patch,
                    ..
                } => {
                    assert_eq!(resource, "pods");
                    assert_eq!(patch["status"]["conditions"][0]["status"], "False");
                    name.as_str()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(marked.len(), 2);
        assert!(!marked.contains(&"elsewhere"));
        let reasons: Vec<String> = r
            .ctl
            .cluster
            .events()
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(reasons, ["NodeNotReady", "NodeNotReady", "NodeNotReady"]);

        // The watch brings the Unknown conditions: now the taints.
        let status = patch.clone();
        r.apply_node("n1", &status);
        let n = r.ctl.cluster.writes().len();
        r.at(62, "n1").await;
        let writes = r.writes_since(n);
        let Write::DynPatch { name, patch, .. } = &writes[0] else {
            panic!("{writes:?}")
        };
        assert_eq!(name, "n1");
        let keys: Vec<String> = patch["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap(),
                    t["effect"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        let taints = patch.clone();
        r.apply_node("n1", &taints);

        // Tainted at 62: the pod without a toleration goes at once, the other
        // is due at 362.
        let n = r.ctl.cluster.writes().len();
        let again = r.at(63, "n1").await;
        let deleted: Vec<String> = r
            .writes_since(n)
            .into_iter()
            .filter_map(|w| match w {
                Write::DynDelete {
                    resource,
                    name,
                    uid,
                    ..
                } => {
                    assert_eq!(resource, "pods");
                    assert_eq!(uid, Some(format!("uid-{name}")));
                    Some(name)
                }
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["bare"]);
        let ev = r.ctl.cluster.events().into_iter().last().unwrap();
        assert_eq!(
            (ev.reason.as_str(), ev.note.as_str(), ev.reporter.as_str()),
            (
                "TaintManagerEviction",
                "Marking for deletion Pod default/bare",
                EVICTION_NAME
            )
        );
        assert_eq!(again, Some(Duration::from_millis(299_050)));
        r.w.pods
            .apply_watcher_event(&Event::Delete(pod("bare", "n1", json!([]))));
        let n = r.ctl.cluster.writes().len();
        r.at(361, "n1").await;
        assert!(
            !r.writes_since(n)
                .iter()
                .any(|w| matches!(w, Write::DynDelete { .. }))
        );
        r.at(362, "n1").await;
        assert!(
            r.writes_since(n)
                .iter()
                .any(|w| matches!(w, Write::DynDelete { name, .. } if name == "patient"))
        );
        // n2 was never touched.
        assert!(!r.ctl.cluster.writes().iter().any(|w| matches!(w, Write::DynPatch { name, .. } | Write::DynPatchStatus { name, .. } if name == "n2" || name == "elsewhere")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_comes_back_loses_its_taints() {
        let mut n1 = node("n1");
        n1.spec.as_mut().unwrap().taints = Some(vec![
            Taint {
                key: health::UNREACHABLE.into(),
                effect: "NoSchedule".into(),
                value: None,
                time_added: None,
            },
            Taint {
                key: health::UNREACHABLE.into(),
                effect: "NoExecute".into(),
                value: None,
                time_added: Some(Time(at(0))),
            },
        ]);
        let mut r = rig(vec![n1], vec![]);
        r.renew_lease("n1", 100);
        r.at(100, "n1").await;
        let writes = r.writes_since(0);
        let [Write::DynPatch { patch, .. }] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(patch["spec"]["taints"], json!([]));
        assert_eq!(r.ctl.cluster.events()[0].reason, "NodeReady");
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_node_is_down_nothing_is_evicted() {
        let mut r = rig(vec![node("n1")], vec![pod("bare", "n1", json!([]))]);
        r.at(0, "n1").await;
        r.at(41, "n1").await;
        let Write::DynPatchStatus { patch, .. } = &r.writes_since(0)[0] else {
            panic!()
        };
        let status = patch.clone();
        r.apply_node("n1", &status);
        let n = r.ctl.cluster.writes().len();
        r.at(42, "n1").await;
        let writes = r.writes_since(n);
        let Write::DynPatch { patch, .. } = &writes[0] else {
            panic!("{writes:?}")
        };
        assert_eq!(
            patch["spec"]["taints"],
            json!([{"key": health::UNREACHABLE, "effect": "NoSchedule"}])
        );
        assert!(!writes.iter().any(|w| matches!(w, Write::DynDelete { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_happens_before_the_caches_listed() {
        let r = rig(vec![node("n1")], vec![]);
        r.ctl.synced.leases.store(false, Ordering::Release);
        assert_eq!(r.at(1000, "n1").await, Some(Duration::from_secs(1)));
        assert!(r.ctl.cluster.writes().is_empty());
    }
}
