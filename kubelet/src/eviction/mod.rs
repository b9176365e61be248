//! The eviction manager: every `--eviction-monitoring-period` (10 s) it
//! compares the node with the `--eviction-hard` thresholds (the same
//! numbers the Node's pressure conditions come from, [`crate::node::pressure`]);
//! when one is crossed it first reclaims what the node itself holds (under
//! disk pressure: every unused image, through [`crate::image_gc`]), and if
//! the node is still short it evicts one pod — [`rank::rank`] picks it —
//! and waits for that pod to be gone before it looks again, as upstream.
//!
//! Never evicted, as upstream: pods being deleted or already finished,
//! mirror pods (a static pod is the node's own), and critical pods
//! (priority of at least 2 000 000 000, `system-cluster-critical` and up).
//! The eviction itself is the pod worker's ([`crate::pods::evict`]).

pub mod rank;
pub mod usage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::image_gc::ImageGc;
use crate::node::host::{self, HostPaths, Sample};
use crate::node::pressure::Thresholds;
use crate::pods::PodContext;
use crate::runtime::Runtime;
use rank::{Candidate, Resource};
use usage::PodUsage;

/// Upstream's `SystemCriticalPriority`: pods at or above it stay.
pub const CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// How long the manager waits for a victim's worker before it moves on.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The first threshold crossed (memory, then disk, then PIDs), with the
/// threshold and what is available, in the resource's unit.
pub fn short_of(
    sample: &Sample,
    memory_total: u64,
    t: &Thresholds,
) -> Option<(Resource, u64, u64)> {
    let checks = [
        (
            Resource::Memory,
            t.memory,
            sample.memory_available,
            memory_total,
        ),
        (
            Resource::Disk,
            t.nodefs,
            sample.nodefs_available,
            sample.nodefs_capacity,
        ),
        (
            Resource::Pids,
            t.pids,
            sample.pids_available,
            sample.pid_max,
        ),
    ];
    checks
        .into_iter()
        .find_map(|(r, threshold, available, total)| {
            let th = threshold?.of(total);
            (available < th).then_some((r, th, available))
        })
}

fn quantity_bytes(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> u64 {
    crate::node::quantity::parse_bytes(&q.0).unwrap_or(0)
}

/// The pod's request of `resource` (bytes): the sum over its containers.
pub fn request(pod: &Pod, resource: Resource) -> u64 {
    let key = match resource {
        Resource::Memory => "memory",
        Resource::Disk => "ephemeral-storage",
        Resource::Pids => return 0,
    };
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(key))
        .map(quantity_bytes)
        .sum()
}

/// Whether the manager may choose `pod` at all.
pub fn evictable(pod: &Pod) -> bool {
    let running = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        None | Some("Pending") | Some("Running") | Some("Unknown")
    );
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(crate::pods::static_pods::CONFIG_MIRROR));
    let critical = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0) >= CRITICAL_PRIORITY;
    running && pod.metadata.deletion_timestamp.is_none() && !mirror && !critical
}

/// Where the manager looks.
pub struct Settings {
    pub node: String,
    pub root_dir: PathBuf,
    pub memory_total: u64,
    pub thresholds: Thresholds,
    pub period: Duration,
}

/// Runs the manager until `stop`.
pub async fn run<R: Runtime>(
    ctx: Arc<PodContext<R>>,
    settings: Settings,
    usage: Arc<dyn PodUsage>,
    image_gc: Arc<tokio::sync::Mutex<ImageGc>>,
    stop: CancellationToken,
) {
    let paths = HostPaths::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.period) => {}
            _ = stop.cancelled() => return,
        }
        if ctx.evictions.pending(CLEANUP_TIMEOUT) {
            continue; // the last victim first
        }
        let sample = |what: &str| match host::sample(&paths, &settings.root_dir) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "eviction: cannot read the node's {what}");
                None
            }
        };
        let Some(s) = sample("usage") else { continue };
        let Some((mut resource, mut threshold, mut available)) =
            short_of(&s, settings.memory_total, &settings.thresholds)
        else {
            continue;
        };
        if resource == Resource::Disk {
            let freed = image_gc
                .lock()
                .await
                .collect(
                    ctx.runtime.as_ref(),
                    s.nodefs_capacity,
                    s.nodefs_available,
                    true,
                )
                .await;
            match freed {
                Ok(f) if !f.removed.is_empty() => {
                    tracing::info!(images = ?f.removed, bytes = f.bytes, "disk pressure: removed unused images");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "disk pressure: cannot remove unused images"),
            }
            let Some(s) = sample("usage after image GC") else {
                continue;
            };
            match short_of(&s, settings.memory_total, &settings.thresholds) {
                None => continue,
                Some(x) => (resource, threshold, available) = x,
            }
        }
        let api: Api<Pod> = Api::all(ctx.client.clone());
        let params = ListParams::default().fields(&format!("spec.nodeName={}", settings.node));
        let pods = match api.list(&params).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!(error = %e, "eviction: cannot list this node's pods");
                continue;
            }
        };
        let mut candidates: Vec<Candidate> = pods
            .iter()
            .filter(|p| evictable(p))
            .map(|p| {
                let used = match resource {
                    Resource::Memory => usage.memory(p),
                    Resource::Disk => usage.disk(p),
                    Resource::Pids => usage.pids(p),
                };
                Candidate {
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    namespace: p.metadata.namespace.clone().unwrap_or_default(),
                    name: p.metadata.name.clone().unwrap_or_default(),
                    priority: p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                    request: request(p, resource),
                    usage: used.unwrap_or(0),
                }
            })
            .collect();
        if candidates.is_empty() {
            tracing::warn!(
                resource = resource.name(),
                "the node is short but no pod can be evicted"
            );
            continue;
        }
        rank::rank(resource, &mut candidates);
        let victim = &candidates[0];
        let message = rank::message(resource, threshold, available, victim);
        tracing::warn!(
            pod = %format!("{}/{}", victim.namespace, victim.name),
            resource = resource.name(),
            usage = victim.usage,
            "the node is short: evicting"
        );
        ctx.evictions.mark(&victim.uid, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::pressure::Threshold;
    use serde_json::json;

    fn sample(memory: u64, disk: u64, pids: u64) -> Sample {
        Sample {
            memory_available: memory,
            nodefs_available: disk,
            nodefs_capacity: 1000,
            pids_available: pids,
            pid_max: 1000,
        }
    }

    #[test]
    fn the_first_threshold_crossed_is_the_resource_short() {
        let t = Thresholds {
            memory: Some(Threshold::Bytes(100)),
            nodefs: Some(Threshold::Percent(1000)), // 10 %
            pids: Some(Threshold::Percent(500)),
        };
        assert_eq!(short_of(&sample(500, 500, 500), 1000, &t), None);
        assert_eq!(
            short_of(&sample(50, 500, 500), 1000, &t),
            Some((Resource::Memory, 100, 50))
        );
        assert_eq!(
            short_of(&sample(500, 99, 500), 1000, &t),
            Some((Resource::Disk, 100, 99))
        );
        assert_eq!(
            short_of(&sample(500, 100, 49), 1000, &t),
            Some((Resource::Pids, 50, 49))
        );
        // Memory first when several are short.
        assert_eq!(
            short_of(&sample(1, 1, 1), 1000, &t).map(|x| x.0),
            Some(Resource::Memory)
        );
        assert_eq!(
            short_of(&sample(0, 0, 0), 1000, &Thresholds::default()),
            None
        );
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn what_may_be_evicted_and_its_requests() {
        let plain = pod(json!({
            "metadata": {"name": "a", "uid": "1"},
            "spec": {"containers": [
                {"name": "x", "image": "i", "resources": {"requests": {"memory": "64Mi", "ephemeral-storage": "1Gi"}}},
                {"name": "y", "image": "i", "resources": {"requests": {"memory": "32Mi"}}}
            ]},
            "status": {"phase": "Running"}
        }));
        assert!(evictable(&plain));
        assert_eq!(request(&plain, Resource::Memory), 96 << 20);
        assert_eq!(request(&plain, Resource::Disk), 1 << 30);
        assert_eq!(request(&plain, Resource::Pids), 0);
        let cases = [
            json!({"metadata": {"name": "done"}, "spec": {"containers": []}, "status": {"phase": "Succeeded"}}),
            json!({"metadata": {"name": "failed"}, "spec": {"containers": []}, "status": {"phase": "Failed"}}),
            json!({"metadata": {"name": "going", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": []}}),
            json!({"metadata": {"name": "mirror", "annotations": {"kubernetes.io/config.mirror": "h"}}, "spec": {"containers": []}}),
            json!({"metadata": {"name": "critical"}, "spec": {"containers": [], "priority": 2000001000}}),
        ];
        for c in cases {
            assert!(!evictable(&pod(c.clone())), "{c}");
        }
    }
}
