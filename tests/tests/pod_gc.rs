//! The pod garbage collector through the real API server and controller
//! manager (`--terminated-pod-gc-threshold=2`, a 1 s orphan quarantine, a
//! 300 ms period): of four Succeeded pods on a node the two oldest are
//! deleted and the two newest kept; a Running pod bound to a node that does
//! not exist is marked Failed (DisruptionTarget, DeletionByPodGC) and
//! deleted; a Running pod on the node that exists stays.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_tests::{TestCluster, eventually};

async fn pod(pods: &Api<Pod>, name: &str, node: &str, phase: &str) {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": phase}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_over_the_threshold_and_orphans_are_collected() {
    let cluster = TestCluster::start_with(&[
        "--terminated-pod-gc-threshold=2",
        "--pod-gc-orphan-quarantine=1s",
        "--pod-gc-period=300ms",
    ])
    .await;
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pod(&pods, "stays", "n1", "Running").await;
    for name in ["done-1", "done-2", "done-3", "done-4"] {
        pod(&pods, name, "n1", "Succeeded").await;
        // creationTimestamp has a resolution of a second: make the order plain.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // The orphan, watched from its creation: the Failed mark must come
    // before the deletion.
    pod(&pods, "orphan", "ghost", "Running").await;
    let from = pods
        .get("orphan")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let failed_seen = tokio::spawn({
        let pods = pods.clone();
        async move {
            use futures::StreamExt;
            use kube::api::{WatchEvent, WatchParams};
            let params = WatchParams::default().fields("metadata.name=orphan");
            let mut events = pods.watch(&params, &from).await.unwrap().boxed();
            let mut marked = false;
            while let Some(Ok(event)) = events.next().await {
                match event {
                    WatchEvent::Modified(p) => {
                        let status = p.status.unwrap_or_default();
                        marked |= status.phase.as_deref() == Some("Failed")
                            && status.conditions.unwrap_or_default().iter().any(|c| {
                                c.type_ == "DisruptionTarget"
                                    && c.reason.as_deref() == Some("DeletionByPodGC")
                            });
                    }
                    WatchEvent::Deleted(_) => return marked,
                    _ => {}
                }
            }
            false
        }
    });
    let left = eventually("the pod GC to collect", Duration::from_secs(30), || {
        let pods = pods.clone();
        async move {
            let mut names: Vec<String> = pods
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            names.sort();
            (names.len() == 3).then_some(names)
        }
    })
    .await;
    assert_eq!(left, ["done-3", "done-4", "stays"]);
    // Deleted at once (grace 0): no pod is left Terminating.
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_none())
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(10), failed_seen)
            .await
            .expect("the orphan's deletion is watched")
            .unwrap(),
        "the orphan was marked Failed by the pod GC before it was deleted"
    );
    cluster.stop().await;
}
