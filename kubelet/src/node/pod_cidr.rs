//! The node's pod CIDR, passed on to the runtime: the controller manager's
//! node IPAM writes `spec.podCIDR` on our Node after registration, and the
//! kubelet hands it to the runtime with CRI `UpdateRuntimeConfig`, as
//! upstream's does, so pods on each node get addresses from that node's own
//! block (which the proxies route between nodes).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;

/// Watches Node `name` and tells the runtime each new `spec.podCIDR`
/// (again after a failed call, at the next change or relist).
pub async fn sync<R: Runtime>(
    client: kube::Client,
    runtime: Arc<R>,
    name: String,
    stop: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(nodes, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut told: Option<String> = None;
    loop {
        let node = tokio::select! {
            n = events.next() => n,
            _ = stop.cancelled() => return,
        };
        let node = match node {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "watching our Node for its pod CIDR");
                continue;
            }
            None => return,
        };
        let Some(cidr) = node.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) else {
            continue;
        };
        if told.as_deref() == Some(cidr.as_str()) {
            continue;
        }
        match runtime.update_runtime_config(&cidr).await {
            Ok(()) => {
                tracing::info!(pod_cidr = %cidr, "the runtime takes pod addresses from this node's pod CIDR");
                told = Some(cidr);
            }
            Err(e) => {
                tracing::warn!(pod_cidr = %cidr, error = %e, "cannot pass the pod CIDR to the runtime")
            }
        }
    }
}
