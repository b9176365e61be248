//! Pod startup latency as the Kubernetes SLO defines it: from a pod's
//! creation to all its containers running, as a watcher sees it, with the
//! image already on the node. `skiff bench` creates `n` pods at once
//! (busybox `sleep`, `imagePullPolicy: Never`), times each from just before
//! its create call to the watch event that shows it Running with every
//! container running, and prints p50 / p99 / max beside the SLO.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

use crate::{Error, Result};

/// The label every benchmark pod carries (and is deleted by).
const LABEL: &str = "skiff.dev/bench";

fn running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty()
                && cs
                    .iter()
                    .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// The `q` quantile (0..=1) of sorted `v`, nearest rank.
pub fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Creates `n` pods at once and returns each one's startup latency
/// (sorted); the pods keep running (`skiff bench` measures the kubelet
/// with them, then resets the whole cluster).
pub async fn measure(kubeconfig: &Path, n: usize) -> Result<Vec<Duration>> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Failed(format!("{what}: {e}"));
    let client = skiff_proto::client::connect(Some(kubeconfig))
        .await
        .map_err(|e| failed("connect", &e))?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let selector = format!("{LABEL}=startup");
    let from = pods
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| failed("list", &e))?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut events = pods
        .watch(&WatchParams::default().labels(&selector), &from)
        .await
        .map_err(|e| failed("watch", &e))?
        .boxed();
    let mut started: HashMap<String, Instant> = HashMap::new();
    let creates = (0..n).map(|i| {
        let pods = pods.clone();
        async move {
            let name = format!("bench-startup-{i}");
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {LABEL: "startup"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "sleep", "image": "skiff/busybox:latest",
                                    "imagePullPolicy": "Never", "command": ["sleep", "3600"]}],
                },
            }))
            .expect("a valid pod");
            let at = Instant::now();
            pods.create(&PostParams::default(), &pod)
                .await
                .map(|_| (name, at))
        }
    });
    for created in futures::future::join_all(creates).await {
        let (name, at) = created.map_err(|e| failed("create", &e))?;
        started.insert(name, at);
    }
    let mut latencies = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while latencies.len() < n {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .map_err(|_| {
                Error::Failed(format!(
                    "only {} of {n} pods running after 300 s",
                    latencies.len()
                ))
            })?;
        let Some(Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) = event else {
            if event.is_none() {
                return Err(Error::Failed("the watch ended".into()));
            }
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if running(&pod)
            && let Some(at) = started.remove(&name)
        {
            latencies.push(at.elapsed());
        }
    }
    latencies.sort();
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(
            quantile(&[Duration::from_millis(7)], 0.99),
            Duration::from_millis(7)
        );
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
