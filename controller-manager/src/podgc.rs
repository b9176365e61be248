//! The pod garbage collector (upstream's `podgc`): every `--pod-gc-period`
//! (20 s, upstream's fixed period) it removes the pods nothing else will:
//!
//! - **terminated pods over the threshold**: when more than
//!   `--terminated-pod-gc-threshold` pods (12 500; 0 turns it off) have
//!   phase Succeeded or Failed, the excess goes — evicted pods first, then
//!   the oldest. Worked example: threshold 2, terminated pods created at
//!   t=1, 2, 3, 4 → 4 − 2 = 2 deleted: those of t=1 and t=2.
//! - **orphaned pods**: pods bound to a node that does not exist. Upstream
//!   waits out a 40 s quarantine (a node's deletion and recreation, or a
//!   cache that lags) before it acts; `--pod-gc-orphan-quarantine` sets it
//!   here. A pod still running is first marked Failed with a
//!   `DisruptionTarget` condition (reason `DeletionByPodGC`), as upstream.
//! - **unscheduled terminating pods**: deleted (with a deletionTimestamp)
//!   but never bound, so no kubelet will finish their deletion.
//!
//! All three are deleted with a grace period of 0: no kubelet is going to
//! run their shutdown. [`plan`] decides (pure, table-tested);
//! [`PodGc::collect`] applies, logging every deletion with its reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::cache::{Caches, Synced};
use crate::client::{Cluster, Kind};
use crate::nodelifecycle::controller::Clock;

pub const NAME: &str = "pod-garbage-collector";

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// One of the oldest terminated pods over the threshold.
    Terminated,
    /// Its node is gone; `mark_failed`: it had not finished.
    Orphaned { mark_failed: bool },
    /// Deleted before it was ever bound to a node.
    UnscheduledTerminating,
}

/// One pod to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collect {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub reason: Reason,
}

fn collect(pod: &Pod, reason: Reason) -> Collect {
    Collect {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone(),
        reason,
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn terminated(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// What the collector's settings are.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Terminated pods kept (0: no limit).
    pub threshold: usize,
    /// How long a node must have been missing before its pods go.
    pub quarantine: Duration,
}

/// The pods to delete now, given the nodes that exist and since when each
/// missing node has been seen missing.
pub fn plan(
    pods: &[Arc<Pod>],
    nodes: &HashSet<String>,
    missing_since: &HashMap<String, Timestamp>,
    now: Timestamp,
    settings: Settings,
) -> Vec<Collect> {
    let mut out = Vec::new();
    let mut taken: HashSet<(String, String)> = HashSet::new();
    let mut take = |out: &mut Vec<Collect>, c: Collect| {
        if taken.insert((c.namespace.clone(), c.name.clone())) {
            out.push(c);
        }
    };
    // Unscheduled and terminating.
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() && node_of(p).is_empty() {
            take(&mut out, collect(p, Reason::UnscheduledTerminating));
        }
    }
    // Orphaned, once the quarantine is over.
    let quarantine = SignedDuration::try_from(settings.quarantine).unwrap_or(SignedDuration::MAX);
    for p in pods {
        let node = node_of(p);
        if node.is_empty() || nodes.contains(node) {
            continue;
        }
        let Some(since) = missing_since.get(node) else {
            continue;
        };
        if now.duration_since(*since) >= quarantine {
            let mark_failed = !terminated(p);
            take(&mut out, collect(p, Reason::Orphaned { mark_failed }));
        }
    }
    // Terminated over the threshold: evicted first, then oldest.
    if settings.threshold > 0 {
        let mut done: Vec<&Arc<Pod>> = pods.iter().filter(|p| terminated(p)).collect();
        if done.len() > settings.threshold {
            let excess = done.len() - settings.threshold;
            let evicted =
                |p: &Pod| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
            done.sort_by_key(|p| {
                (
                    !evicted(p),
                    p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    p.metadata.name.clone(),
                )
            });
            for p in done.into_iter().take(excess) {
                take(&mut out, collect(p, Reason::Terminated));
            }
        }
    }
    out
}

/// Keeps, for each node some pod is bound to but that does not exist, when
/// it was first seen missing (nodes that exist again are forgotten).
pub fn track_missing(
    pods: &[Arc<Pod>],
    nodes: &HashSet<String>,
    missing_since: &mut HashMap<String, Timestamp>,
    now: Timestamp,
) {
    let missing: HashSet<&str> = pods
        .iter()
        .map(|p| node_of(p))
        .filter(|n| !n.is_empty() && !nodes.contains(*n))
        .collect();
    missing_since.retain(|n, _| missing.contains(n.as_str()));
    for n in missing {
        missing_since.entry(n.to_string()).or_insert(now);
    }
}

/// The collector.
pub struct PodGc<C: Cluster> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub synced: Synced,
    pub settings: Settings,
    pub clock: Clock,
    pub missing_since: Mutex<HashMap<String, Timestamp>>,
}

impl<C: Cluster> PodGc<C> {
    /// One pass: plan from the caches, then delete.
    pub async fn collect(&self) {
        if !self.synced.nodes() {
            return;
        }
        let now = (self.clock)();
        let pods = self.caches.pods.state();
        let nodes: HashSet<String> = self
            .caches
            .nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let plan = {
            let mut missing = self.missing_since.lock().unwrap();
            track_missing(&pods, &nodes, &mut missing, now);
            plan(&pods, &nodes, &missing, now, self.settings)
        };
        for c in plan {
            self.apply(&c).await;
        }
    }

    async fn apply(&self, c: &Collect) {
        let (ns, name) = (c.namespace.as_str(), c.name.as_str());
        let why = match c.reason {
            Reason::Terminated => format!(
                "more than {} terminated pods (--terminated-pod-gc-threshold)",
                self.settings.threshold
            ),
            Reason::Orphaned { .. } => "its node no longer exists".to_string(),
            Reason::UnscheduledTerminating => "it was deleted before it was scheduled".into(),
        };
        if let Reason::Orphaned { mark_failed: true } = c.reason {
            let now = Timestamp::now().to_string();
            let failed = json!({"status": {
                "phase": "Failed",
                "conditions": [{
                    "type": "DisruptionTarget", "status": "True",
                    "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                    "lastTransitionTime": now,
                }],
            }});
            if let Err(e) = self.cluster.patch(Kind::Pod, ns, name, true, failed).await {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "pod GC: cannot mark the pod Failed");
            }
        }
        match self
            .cluster
            .force_delete_pod(ns, name, c.uid.as_deref())
            .await
        {
            Ok(()) => {
                tracing::info!(pod = %format!("{ns}/{name}"), reason = %why, "pod GC: deleted")
            }
            Err(e) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "pod GC: cannot delete")
            }
        }
    }

    /// Collects every `period` for ever.
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            self.collect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::caches;
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::watcher::Event;
    use std::sync::atomic::Ordering;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn pod(name: &str, node: &str, phase: &str, created: i64) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                             "creationTimestamp": at(created).to_string()},
                "spec": {"nodeName": node, "containers": [{"name": "c"}]},
                "status": {"phase": phase},
            }))
            .unwrap(),
        )
    }

    fn names(plan: &[Collect]) -> Vec<(&str, Reason)> {
        plan.iter().map(|c| (c.name.as_str(), c.reason)).collect()
    }

    const SETTINGS: Settings = Settings {
        threshold: 2,
        quarantine: Duration::from_secs(40),
    };

    #[test]
    fn terminated_pods_over_the_threshold_go_evicted_then_oldest_first() {
        let nodes = HashSet::from(["n1".to_string()]);
        let mut evicted = (*pod("evicted", "n1", "Failed", 9)).clone();
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let cases: Vec<(Vec<Arc<Pod>>, Vec<&str>)> = vec![
            // Two terminated, threshold 2: nothing.
            (
                vec![pod("a", "n1", "Succeeded", 1), pod("b", "n1", "Failed", 2)],
                vec![],
            ),
            // Four: the two oldest; running pods never count.
            (
                vec![
                    pod("d", "n1", "Succeeded", 4),
                    pod("a", "n1", "Succeeded", 1),
                    pod("run", "n1", "Running", 0),
                    pod("c", "n1", "Failed", 3),
                    pod("b", "n1", "Failed", 2),
                ],
                vec!["a", "b"],
            ),
            // An evicted pod goes before older ones.
            (
                vec![
                    pod("a", "n1", "Succeeded", 1),
                    pod("b", "n1", "Succeeded", 2),
                    Arc::new(evicted),
                ],
                vec!["evicted"],
            ),
        ];
        for (pods, want) in cases {
            let got = plan(&pods, &nodes, &HashMap::new(), at(100), SETTINGS);
            let got: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(got, want);
        }
        // Threshold 0: no limit.
        let pods: Vec<_> = (0..5)
            .map(|i| pod(&format!("p{i}"), "n1", "Succeeded", i))
            .collect();
        let off = Settings {
            threshold: 0,
            ..SETTINGS
        };
        assert!(plan(&pods, &nodes, &HashMap::new(), at(100), off).is_empty());
    }

    #[test]
    fn orphans_go_after_the_quarantine_running_ones_marked_failed() {
        let nodes = HashSet::from(["n1".to_string()]);
        let pods = vec![
            pod("kept", "n1", "Running", 1),
            pod("lost", "gone", "Running", 1),
            pod("done", "gone", "Succeeded", 1),
        ];
        let mut missing = HashMap::new();
        track_missing(&pods, &nodes, &mut missing, at(0));
        assert_eq!(missing, HashMap::from([("gone".to_string(), at(0))]));
        assert!(plan(&pods, &nodes, &missing, at(39), SETTINGS).is_empty());
        assert_eq!(
            names(&plan(&pods, &nodes, &missing, at(40), SETTINGS)),
            [
                ("lost", Reason::Orphaned { mark_failed: true }),
                ("done", Reason::Orphaned { mark_failed: false }),
            ]
        );
        // The node comes back: forgotten, and its pods stay.
        let back = HashSet::from(["n1".to_string(), "gone".to_string()]);
        track_missing(&pods, &back, &mut missing, at(41));
        assert!(missing.is_empty());
        assert!(plan(&pods, &back, &missing, at(100), SETTINGS).is_empty());
    }

    #[test]
    fn unscheduled_terminating_pods_go_at_once() {
        let mut deleted = (*pod("deleted", "", "Pending", 1)).clone();
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(5)));
        let pods = vec![Arc::new(deleted), pod("waiting", "", "Pending", 1)];
        assert_eq!(
            names(&plan(
                &pods,
                &HashSet::new(),
                &HashMap::new(),
                at(6),
                SETTINGS
            )),
            [("deleted", Reason::UnscheduledTerminating)]
        );
    }

    #[tokio::test]
    async fn a_pass_marks_and_force_deletes_through_the_client() {
        let (caches, mut w) = caches();
        w.nodes.apply_watcher_event(&Event::Apply(
            serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        ));
        for p in [
            pod("lost", "gone", "Running", 1),
            pod("kept", "n1", "Running", 1),
        ] {
            w.pods.apply_watcher_event(&Event::Apply((*p).clone()));
        }
        let synced = Synced::default();
        let now = Arc::new(Mutex::new(at(0)));
        let clock_now = now.clone();
        let gc = PodGc {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            synced: synced.clone(),
            settings: SETTINGS,
            clock: Arc::new(move || *clock_now.lock().unwrap()),
            missing_since: Mutex::default(),
        };
        // Not before the caches have listed.
        gc.collect().await;
        assert!(gc.missing_since.lock().unwrap().is_empty());
        for s in [&synced.nodes, &synced.leases, &synced.pods] {
            s.store(true, Ordering::Release);
        }
        gc.collect().await;
        assert!(gc.cluster.writes().is_empty(), "quarantined");
        *now.lock().unwrap() = at(40);
        gc.collect().await;
        let writes = gc.cluster.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        match &writes[0] {
            Write::Patch {
                name,
                status,
                patch,
                ..
            } => {
                assert_eq!((name.as_str(), *status), ("lost", true));
                assert_eq!(patch["status"]["phase"], "Failed");
                assert_eq!(
                    patch["status"]["conditions"][0]["reason"],
                    "DeletionByPodGC"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            writes[1],
            Write::ForceDelete {
                namespace: "default".into(),
                name: "lost".into(),
                uid: Some("uid-lost".into()),
            }
        );
    }
}
