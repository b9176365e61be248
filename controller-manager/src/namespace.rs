//! The namespace controller: `kubectl delete namespace x` makes the API
//! server mark it Terminating (deletionTimestamp) and keep it while
//! `spec.finalizers` holds `kubernetes`. This controller deletes everything in
//! it, kind by kind, looks again until nothing is left (pods and objects with
//! finalizers take a while), then removes `kubernetes` through the
//! `finalize` subresource, and the API server deletes the namespace.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::cache::{Change, Key};
use crate::client::{Cluster, WriteError};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "namespace-controller";
/// The finalizer the API server puts in every namespace's `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// Every namespaced kind whose objects a namespace deletion removes.
pub fn content_resources() -> Vec<ApiResource> {
    let mut all: Vec<ApiResource> = crate::gc::resources()
        .into_iter()
        .filter(|ar| !crate::gc::cluster_scoped(ar))
        .collect();
    all.push(ApiResource::erase::<Event>(&()));
    all.push(ApiResource::erase::<Lease>(&()));
    all
}

pub struct NamespaceController<C> {
    pub cluster: Arc<C>,
    pub namespaces: Store<Namespace>,
    pub queue: Arc<WorkQueue<Key>>,
    pub resources: Vec<ApiResource>,
}

fn deleting(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
}

impl<C: Cluster> NamespaceController<C> {
    pub fn on_namespace(&self, change: Change<'_, Namespace>) {
        match change {
            Change::Applied { new, .. } if deleting(new) => {
                self.queue
                    .add(Key::new("", new.metadata.name.clone().unwrap_or_default()));
            }
            Change::Relisted => {
                for ns in self.namespaces.state() {
                    if deleting(&ns) {
                        self.queue
                            .add(Key::new("", ns.metadata.name.clone().unwrap_or_default()));
                    }
                }
            }
            _ => {}
        }
    }
}

impl<C: Cluster> Reconcile for NamespaceController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let Some(ns) = self.namespaces.get(&ObjectRef::new(&key.name)) else {
            return Ok(None);
        };
        if !deleting(&ns) {
            return Ok(None);
        }
        let name = key.name.as_str();
        let mut remaining = 0;
        for resource in &self.resources {
            for item in self.cluster.list_dyn(resource, name).await? {
                remaining += 1;
                let meta = &item["metadata"];
                if !meta["deletionTimestamp"].is_null() {
                    continue;
                }
                let item_name = meta["name"].as_str().unwrap_or_default();
                match self
                    .cluster
                    .delete_dyn(
                        resource,
                        Some(name),
                        item_name,
                        meta["uid"].as_str(),
                        "Background",
                    )
                    .await
                {
                    Ok(()) | Err(WriteError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if remaining > 0 {
            tracing::info!(namespace = %name, remaining, "namespace terminating: waiting for its objects to go");
            return Ok(Some(Duration::from_millis(500)));
        }
        let finalizers: Vec<String> = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if finalizers.iter().any(|f| f == FINALIZER) {
            let rest = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
            tracing::info!(namespace = %name, "namespace empty: removing the kubernetes finalizer");
            match self.cluster.finalize_namespace(name, rest).await {
                Ok(()) | Err(WriteError::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::{FakeCluster, Write};

    #[test]
    fn a_namespace_holds_no_cluster_scoped_kind() {
        // The collector also follows Nodes; a namespace deletion must not
        // ask for "the nodes of namespace lab" (it would never finish).
        let kinds: Vec<String> = content_resources().into_iter().map(|ar| ar.kind).collect();
        assert!(!kinds.contains(&"Node".to_string()), "{kinds:?}");
        assert!(kinds.contains(&"Pod".to_string()) && kinds.contains(&"Lease".to_string()));
    }
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event as WatchEvent;
    use serde_json::json;

    fn controller(ns: serde_json::Value) -> NamespaceController<FakeCluster> {
        let (store, mut writer) = reflector::store::<Namespace>();
        writer.apply_watcher_event(&WatchEvent::Apply(serde_json::from_value(ns).unwrap()));
        NamespaceController {
            cluster: Arc::new(FakeCluster::default()),
            namespaces: store,
            queue: WorkQueue::new(),
            resources: content_resources(),
        }
    }

    const TERMINATING: &str = r#"{"metadata": {"name": "lab", "deletionTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}}"#;

    #[tokio::test(start_paused = true)]
    async fn deletes_content_then_waits() {
        let ctl = controller(serde_json::from_str(TERMINATING).unwrap());
        ctl.cluster.lists.lock().unwrap().insert(
            ("pods".into(), "lab".into()),
            vec![
                json!({"metadata": {"name": "a", "uid": "ua"}}),
                json!({"metadata": {"name": "b", "uid": "ub", "deletionTimestamp": "2024-01-01T00:00:00Z"}}),
            ],
        );
        ctl.cluster.lists.lock().unwrap().insert(
            ("configmaps".into(), "lab".into()),
            vec![json!({"metadata": {"name": "c", "uid": "uc"}})],
        );
        let again = ctl.reconcile(&Key::new("", "lab")).await.unwrap();
        assert_eq!(again, Some(Duration::from_millis(500)));
        let deleted: Vec<(String, String)> = ctl
            .cluster
            .writes()
            .into_iter()
            .map(|w| match w {
                Write::DynDelete { resource, name, .. } => (resource, name),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            deleted,
            [
                ("pods".into(), "a".into()),
                ("configmaps".into(), "c".into())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn empty_namespace_is_finalized() {
        let ctl = controller(serde_json::from_str(TERMINATING).unwrap());
        assert_eq!(ctl.reconcile(&Key::new("", "lab")).await.unwrap(), None);
        assert_eq!(
            ctl.cluster.writes(),
            [Write::Finalize {
                name: "lab".into(),
                finalizers: vec![]
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn live_namespace_is_left_alone() {
        let ctl = controller(
            json!({"metadata": {"name": "lab"}, "spec": {"finalizers": ["kubernetes"]}}),
        );
        ctl.cluster.lists.lock().unwrap().insert(
            ("pods".into(), "lab".into()),
            vec![json!({"metadata": {"name": "a", "uid": "ua"}})],
        );
        assert_eq!(ctl.reconcile(&Key::new("", "lab")).await.unwrap(), None);
        assert!(ctl.cluster.writes().is_empty());
    }
}
