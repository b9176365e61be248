//! The loop of the EndpointSlice mirroring controller, keyed by the
//! Endpoints' (and so the Service's) namespace/name: a change of the
//! Endpoints, of whether its Service exists and has a selector, or of a
//! mirrored slice enqueues it; a reconcile asks [`mirroring::plan`] and
//! writes the difference with the same writer as the EndpointSlice
//! controller.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::controller::{apply_slice_plan, warn};
use super::mirroring;
use crate::cache::{Caches, Change, Key};
use crate::client::Cluster;
use crate::expectations::Expectations;
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "endpointslicemirroring-controller";

pub struct EndpointSliceMirroringController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub queue: Arc<WorkQueue<Key>>,
    /// Mirrored slices created and not yet seen in the cache.
    pub expectations: Arc<Expectations>,
    /// Most endpoints in one mirrored slice.
    pub max_per_slice: usize,
}

impl<C: Cluster> EndpointSliceMirroringController<C> {
    pub fn on_endpoints(&self, change: Change<'_, Endpoints>) {
        match change {
            Change::Applied { new, .. } => self.queue.add(Key::of(new)),
            Change::Deleted(ep) => self.queue.add(Key::of(ep)),
            Change::Relisted => self.enqueue_all(),
        }
    }

    pub fn on_service(&self, change: Change<'_, Service>) {
        match change {
            Change::Applied { old, new } => {
                if mirroring::service_matters(old.as_deref(), new) {
                    self.queue.add(Key::of(new));
                }
            }
            Change::Deleted(svc) => self.queue.add(Key::of(svc)),
            Change::Relisted => self.enqueue_all(),
        }
    }

    pub fn on_endpoint_slice(&self, change: Change<'_, EndpointSlice>) {
        let key_of = |s: &EndpointSlice| {
            let name = mirroring::mirrored_name(s)?;
            Some(Key::new(
                s.metadata.namespace.clone().unwrap_or_default(),
                name,
            ))
        };
        match change {
            Change::Applied { old, new } => {
                if let Some(key) = key_of(new) {
                    if old.is_none() {
                        self.expectations.creation_observed(&key.to_string());
                    }
                    self.queue.add(key);
                }
            }
            Change::Deleted(slice) => {
                if let Some(key) = key_of(slice) {
                    self.queue.add(key);
                }
            }
            Change::Relisted => {
                self.expectations.clear();
                self.enqueue_all();
            }
        }
    }

    /// Every Endpoints object, and every name that has mirrored slices (an
    /// Endpoints deleted while we were away leaves slices to remove).
    fn enqueue_all(&self) {
        for ep in self.caches.endpoints.state() {
            self.queue.add(Key::of(ep.as_ref()));
        }
        for slice in self.caches.endpoint_slices.state() {
            if let Some(name) = mirroring::mirrored_name(&slice) {
                let ns = slice.metadata.namespace.clone().unwrap_or_default();
                self.queue.add(Key::new(ns, name));
            }
        }
    }
}

impl<C: Cluster> Reconcile for EndpointSliceMirroringController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let k = key.to_string();
        if !self.expectations.satisfied(&k) {
            return Ok(Some(Duration::from_secs(1)));
        }
        let service = self.caches.services.get(&key.obj_ref::<Service>());
        let endpoints = self
            .caches
            .endpoints
            .get(&key.obj_ref::<Endpoints>())
            .filter(|ep| mirroring::wants_mirror(service.as_deref(), ep));
        let existing: Vec<EndpointSlice> =
            Caches::in_namespace(&self.caches.endpoint_slices, &key.namespace)
                .into_iter()
                .filter(|s| mirroring::mirrored_for(s, &key.name))
                .collect();
        let plan = mirroring::plan(endpoints.as_deref(), &existing, self.max_per_slice);
        if plan.is_empty() {
            if endpoints.is_none() {
                self.expectations.forget(&k);
            }
            return Ok(None);
        }
        if let Err(err) =
            apply_slice_plan(self.cluster.as_ref(), &self.expectations, key, &plan).await
        {
            warn(
                self.cluster.as_ref(),
                NAME,
                service.as_deref(),
                "FailedToUpdateEndpointSlices",
                &err,
            );
            return Err(err.into());
        }
        tracing::info!(
            endpoints = %key,
            created = plan.create.len(),
            updated = plan.update.len(),
            deleted = plan.delete.len(),
            "mirrored endpoint slices synced"
        );
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::caches;
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn service(selector: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "svc-uid"},
            "spec": {"selector": selector, "ports": [{"port": 5432}]}
        }))
        .unwrap()
    }

    fn endpoints() -> Endpoints {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "ep-uid"},
            "subsets": [{"addresses": [{"ip": "192.168.7.7"}], "ports": [{"port": 5432}]}]
        }))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn mirrors_then_waits_for_its_slice_then_removes_it_when_a_selector_appears() {
        let (caches, mut w) = caches();
        w.services
            .apply_watcher_event(&Event::Apply(service(json!(null))));
        w.endpoints.apply_watcher_event(&Event::Apply(endpoints()));
        let ctl = EndpointSliceMirroringController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            queue: WorkQueue::new(),
            expectations: Arc::new(Expectations::default()),
            max_per_slice: 1000,
        };
        let key = Key::new("shop", "db");
        ctl.on_endpoints(Change::Applied {
            old: None,
            new: &endpoints(),
        });
        assert_eq!(ctl.queue.get().await, Some(key.clone()));
        ctl.queue.done(&key);
        ctl.reconcile(&key).await.unwrap();
        let writes = ctl.cluster.writes();
        let [Write::DynCreate { resource, body, .. }] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(resource, "endpointslices");
        assert_eq!(body["endpoints"][0]["addresses"][0], "192.168.7.7");
        assert_eq!(
            body["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            mirroring::MIRROR_MANAGED_BY
        );

        // Until the created slice is seen, another pass waits instead of
        // creating it again.
        assert_eq!(
            ctl.reconcile(&key).await.unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(ctl.cluster.writes().len(), 1);
        let mut stored: EndpointSlice = serde_json::from_value(body.clone()).unwrap();
        stored.metadata.name = Some("db-abcde".into());
        stored.metadata.uid = Some("slice-uid".into());
        w.endpoint_slices
            .apply_watcher_event(&Event::Apply(stored.clone()));
        ctl.on_endpoint_slice(Change::Applied {
            old: None,
            new: &stored,
        });
        ctl.reconcile(&key).await.unwrap();
        assert_eq!(ctl.cluster.writes().len(), 1, "nothing more to write");

        // The Service gains a selector: the slice controller's from now on.
        let old = Arc::new(service(json!(null)));
        let selected = service(json!({"app": "db"}));
        w.services
            .apply_watcher_event(&Event::Apply(selected.clone()));
        ctl.on_service(Change::Applied {
            old: Some(old),
            new: &selected,
        });
        assert_eq!(ctl.queue.get().await, Some(key.clone()));
        ctl.reconcile(&key).await.unwrap();
        assert_eq!(
            ctl.cluster.writes().last(),
            Some(&Write::DynDelete {
                resource: "endpointslices".into(),
                namespace: Some("shop".into()),
                name: "db-abcde".into(),
                uid: Some("slice-uid".into()),
                propagation: "Background".into(),
            })
        );
    }
}
