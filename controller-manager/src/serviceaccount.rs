//! The ServiceAccount controller: every namespace that is not being deleted
//! has a ServiceAccount named `default` (created when the namespace appears,
//! and again if someone deletes it).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::cache::{Change, Key};
use crate::client::{Cluster, WriteError};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "serviceaccount-controller";
pub const DEFAULT: &str = "default";

pub struct ServiceAccountController<C> {
    pub cluster: Arc<C>,
    pub namespaces: Store<Namespace>,
    pub service_accounts: Store<ServiceAccount>,
    pub queue: Arc<WorkQueue<Key>>,
}

impl<C: Cluster> ServiceAccountController<C> {
    pub fn on_namespace(&self, change: Change<'_, Namespace>) {
        match change {
            Change::Applied { new, .. } => {
                self.queue
                    .add(Key::new("", new.metadata.name.clone().unwrap_or_default()));
            }
            Change::Relisted => {
                for ns in self.namespaces.state() {
                    self.queue
                        .add(Key::new("", ns.metadata.name.clone().unwrap_or_default()));
                }
            }
            Change::Deleted(_) => {}
        }
    }

    pub fn on_service_account(&self, change: Change<'_, ServiceAccount>) {
        match change {
            Change::Deleted(sa) if sa.metadata.name.as_deref() == Some(DEFAULT) => {
                self.queue.add(Key::new(
                    "",
                    sa.metadata.namespace.clone().unwrap_or_default(),
                ));
            }
            Change::Relisted => self.on_namespace(Change::Relisted),
            _ => {}
        }
    }
}

impl<C: Cluster> Reconcile for ServiceAccountController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let Some(ns) = self.namespaces.get(&ObjectRef::new(&key.name)) else {
            return Ok(None);
        };
        let terminating =
            ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if ns.metadata.deletion_timestamp.is_some() || terminating {
            return Ok(None);
        }
        let existing = ObjectRef::<ServiceAccount>::new(DEFAULT).within(&key.name);
        if self.service_accounts.get(&existing).is_some() {
            return Ok(None);
        }
        let body = json!({"metadata": {"name": DEFAULT, "namespace": key.name}});
        let resource = ApiResource::erase::<ServiceAccount>(&());
        match self
            .cluster
            .create_dyn(&resource, Some(&key.name), body)
            .await
        {
            Ok(()) => tracing::info!(namespace = %key.name, "created ServiceAccount default"),
            Err(WriteError::AlreadyExists(_)) => {}
            Err(err) => return Err(err.into()),
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn controller(
        namespaces: &[serde_json::Value],
        sas: &[serde_json::Value],
    ) -> ServiceAccountController<FakeCluster> {
        let (ns_store, mut ns_writer) = reflector::store::<Namespace>();
        for n in namespaces {
            ns_writer
                .apply_watcher_event(&Event::Apply(serde_json::from_value(n.clone()).unwrap()));
        }
        let (sa_store, mut sa_writer) = reflector::store::<ServiceAccount>();
        for s in sas {
            sa_writer
                .apply_watcher_event(&Event::Apply(serde_json::from_value(s.clone()).unwrap()));
        }
        ServiceAccountController {
            cluster: Arc::new(FakeCluster::default()),
            namespaces: ns_store,
            service_accounts: sa_store,
            queue: WorkQueue::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn creates_default_where_missing_only() {
        let ctl = controller(
            &[
                json!({"metadata": {"name": "a"}}),
                json!({"metadata": {"name": "b"}}),
                json!({"metadata": {"name": "gone", "deletionTimestamp": "2024-01-01T00:00:00Z"}}),
            ],
            &[json!({"metadata": {"name": "default", "namespace": "b"}})],
        );
        for ns in ["a", "b", "gone", "missing"] {
            ctl.reconcile(&Key::new("", ns)).await.unwrap();
        }
        assert_eq!(
            ctl.cluster.writes(),
            [Write::DynCreate {
                resource: "serviceaccounts".into(),
                namespace: Some("a".into()),
                body: json!({"metadata": {"name": "default", "namespace": "a"}}),
            }]
        );
        // Already there after all (the cache lagged): fine.
        ctl.cluster
            .fail_after(0, 1, WriteError::AlreadyExists("x".into()));
        ctl.reconcile(&Key::new("", "a")).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn deleting_default_requeues_its_namespace() {
        let ctl = controller(&[json!({"metadata": {"name": "a"}})], &[]);
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default", "namespace": "a"}}))
                .unwrap();
        ctl.on_service_account(Change::Deleted(&sa));
        assert_eq!(ctl.queue.get().await, Some(Key::new("", "a")));
        let other: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "robot", "namespace": "a"}}))
                .unwrap();
        ctl.on_service_account(Change::Deleted(&other));
        assert!(ctl.queue.is_empty());
    }
}
