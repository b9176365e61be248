//! The two loops: [`EndpointsController`] (core/v1 Endpoints) and
//! [`EndpointSliceController`] (discovery.k8s.io/v1 EndpointSlices). Both are
//! keyed by Service: a Service change, a change of a pod one selects (before
//! or after the change), or a change to what they wrote enqueues it; a
//! reconcile reads the caches, asks the pure planner, and writes the
//! difference. Watches deliver a pod's readiness change in well under a
//! second, and nothing batches it further.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::discovery::ApiResource;
use serde_json::Value;

use super::address;
use super::slices::{self, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, ZONE_LABEL};
use super::subsets::{self, Action, TRIGGER_TIME};
use crate::cache::{Caches, Change, Key};
use crate::client::{Cluster, EventRecord, WriteError};
use crate::expectations::Expectations;
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const ENDPOINTS_NAME: &str = "endpoint-controller";
pub const SLICES_NAME: &str = "endpointslice-controller";

pub fn service_reference(svc: &Service) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        name: svc.metadata.name.clone(),
        namespace: svc.metadata.namespace.clone(),
        uid: svc.metadata.uid.clone(),
        resource_version: svc.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Enqueues the Services that select `pod`.
fn enqueue_selecting(caches: &Caches, queue: &WorkQueue<Key>, pod: &Pod) {
    for svc in caches.services.state() {
        if svc.metadata.namespace == pod.metadata.namespace
            && address::selector(&svc).is_some_and(|s| address::selected(s, pod))
        {
            queue.add(Key::of(svc.as_ref()));
        }
    }
}

/// What both controllers do on Service and pod changes.
fn on_service(caches: &Caches, queue: &WorkQueue<Key>, change: Change<'_, Service>) {
    match change {
        Change::Applied { new, .. } => queue.add(Key::of(new)),
        Change::Deleted(svc) => queue.add(Key::of(svc)),
        Change::Relisted => {
            for svc in caches.services.state() {
                queue.add(Key::of(svc.as_ref()));
            }
        }
    }
}

fn on_pod(caches: &Caches, queue: &WorkQueue<Key>, change: Change<'_, Pod>) {
    match change {
        Change::Applied { old, new } => {
            enqueue_selecting(caches, queue, new);
            // Relabelled: the Services it left need it gone.
            if let Some(old) = old.filter(|o| o.metadata.labels != new.metadata.labels) {
                enqueue_selecting(caches, queue, &old);
            }
        }
        Change::Deleted(pod) => enqueue_selecting(caches, queue, pod),
        Change::Relisted => {
            for svc in caches.services.state() {
                queue.add(Key::of(svc.as_ref()));
            }
        }
    }
}

pub(crate) fn warn<C: Cluster>(
    cluster: &C,
    reporter: &str,
    svc: Option<&Service>,
    reason: &str,
    err: &WriteError,
) {
    // A conflict only means the cache lagged; it is retried quietly.
    if matches!(err, WriteError::Conflict(_) | WriteError::AlreadyExists(_)) {
        return;
    }
    if let Some(svc) = svc {
        cluster.event(EventRecord {
            regarding: service_reference(svc),
            warning: true,
            reason: reason.into(),
            action: "Update".into(),
            note: err.to_string(),
            reporter: reporter.into(),
        });
    }
}

/// Keeps each selector Service's Endpoints object.
pub struct EndpointsController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub queue: Arc<WorkQueue<Key>>,
}

impl<C: Cluster> EndpointsController<C> {
    pub fn on_service(&self, change: Change<'_, Service>) {
        on_service(&self.caches, &self.queue, change);
    }

    pub fn on_pod(&self, change: Change<'_, Pod>) {
        on_pod(&self.caches, &self.queue, change);
    }

    /// Someone changed or deleted an Endpoints object: put it back as the
    /// Service wants it. An Endpoints without a Service is somebody else's,
    /// unless this controller wrote it (its trigger-time annotation) and its
    /// Service went while the controller was not looking.
    pub fn on_endpoints(&self, change: Change<'_, Endpoints>) {
        let consider = |ep: &Endpoints| {
            let key = Key::of(ep);
            let ours = ep
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(TRIGGER_TIME));
            if ours || self.caches.services.get(&key.obj_ref()).is_some() {
                self.queue.add(key);
            }
        };
        match change {
            Change::Applied { new, .. } => consider(new),
            Change::Deleted(ep) => {
                let key = Key::of(ep);
                if self.caches.services.get(&key.obj_ref()).is_some() {
                    self.queue.add(key);
                }
            }
            Change::Relisted => {
                for ep in self.caches.endpoints.state() {
                    consider(&ep);
                }
            }
        }
    }
}

impl<C: Cluster> Reconcile for EndpointsController<C> {
    fn name(&self) -> &'static str {
        ENDPOINTS_NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let service = self.caches.services.get(&key.obj_ref::<Service>());
        let observed = self.caches.endpoints.get(&key.obj_ref::<Endpoints>());
        let pods = Caches::in_namespace(&self.caches.pods, &key.namespace);
        let Some(action) = subsets::plan(service.as_deref(), &pods, observed.as_deref()) else {
            return Ok(None);
        };
        let resource = ApiResource::erase::<Endpoints>(&());
        let ns = Some(key.namespace.as_str());
        let result = match &action {
            Action::Create(ep) => {
                let body = serde_json::to_value(ep).unwrap_or(Value::Null);
                let r = self.cluster.create_dyn(&resource, ns, body).await;
                if r.is_ok() {
                    tracing::info!(service = %key, "created endpoints");
                }
                r
            }
            Action::Update(patch) => {
                let r = self
                    .cluster
                    .patch_dyn(&resource, ns, &key.name, patch.clone())
                    .await;
                if r.is_ok() {
                    tracing::info!(service = %key, "updated endpoints");
                }
                r
            }
            Action::Delete { uid } => {
                match self
                    .cluster
                    .delete_dyn(&resource, ns, &key.name, uid.as_deref(), "Background")
                    .await
                {
                    Ok(()) => {
                        tracing::info!(service = %key, "service gone: deleted its endpoints");
                        Ok(())
                    }
                    Err(WriteError::NotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(err) = result {
            warn(
                self.cluster.as_ref(),
                ENDPOINTS_NAME,
                service.as_deref(),
                "FailedToUpdateEndpoint",
                &err,
            );
            return Err(err.into());
        }
        Ok(None)
    }
}

/// Keeps each selector Service's EndpointSlices.
pub struct EndpointSliceController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub queue: Arc<WorkQueue<Key>>,
    /// Slices created and not yet seen in the cache, per Service: until they
    /// are, a second reconcile would create them again.
    pub expectations: Arc<Expectations>,
    pub max_per_slice: usize,
}

/// The Service a slice we manage belongs to.
fn slice_service(slice: &EndpointSlice) -> Option<Key> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let svc = labels.get(SERVICE_NAME_LABEL)?;
    Some(Key::new(
        slice.metadata.namespace.clone().unwrap_or_default(),
        svc,
    ))
}

impl<C: Cluster> EndpointSliceController<C> {
    pub fn on_service(&self, change: Change<'_, Service>) {
        on_service(&self.caches, &self.queue, change);
    }

    pub fn on_pod(&self, change: Change<'_, Pod>) {
        on_pod(&self.caches, &self.queue, change);
    }

    pub fn on_endpoint_slice(&self, change: Change<'_, EndpointSlice>) {
        match change {
            Change::Applied { old, new } => {
                if let Some(key) = slice_service(new) {
                    if old.is_none() {
                        self.expectations.creation_observed(&key.to_string());
                    }
                    self.queue.add(key);
                }
            }
            Change::Deleted(slice) => {
                if let Some(key) = slice_service(slice) {
                    self.queue.add(key);
                }
            }
            Change::Relisted => {
                self.expectations.clear();
                for svc in self.caches.services.state() {
                    self.queue.add(Key::of(svc.as_ref()));
                }
            }
        }
    }

    /// Node name → zone, for the endpoints' `zone`.
    fn zones(&self) -> BTreeMap<String, String> {
        self.caches
            .nodes
            .state()
            .iter()
            .filter_map(|n| {
                let zone = n.metadata.labels.as_ref()?.get(ZONE_LABEL)?;
                Some((n.metadata.name.clone()?, zone.clone()))
            })
            .collect()
    }
}

impl<C: Cluster> Reconcile for EndpointSliceController<C> {
    fn name(&self) -> &'static str {
        SLICES_NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        // A deleted Service's slices go with it: the garbage collector
        // follows their ownerReference.
        let Some(service) = self.caches.services.get(&key.obj_ref::<Service>()) else {
            self.expectations.forget(&key.to_string());
            return Ok(None);
        };
        let k = key.to_string();
        if !self.expectations.satisfied(&k) {
            // The watch event of the slice created last time enqueues the
            // Service again; this look is a safety net.
            return Ok(Some(Duration::from_secs(1)));
        }
        let owned: Vec<EndpointSlice> =
            Caches::in_namespace(&self.caches.endpoint_slices, &key.namespace)
                .into_iter()
                .filter(|s| slices::owned_by(s, &service))
                .collect();
        let pods = Caches::in_namespace(&self.caches.pods, &key.namespace);
        let plan = slices::plan(&service, &pods, &self.zones(), &owned, self.max_per_slice);
        if plan.is_empty() {
            return Ok(None);
        }
        if let Err(err) =
            apply_slice_plan(self.cluster.as_ref(), &self.expectations, key, &plan).await
        {
            warn(
                self.cluster.as_ref(),
                SLICES_NAME,
                Some(&service),
                "FailedToUpdateEndpointSlices",
                &err,
            );
            return Err(err.into());
        }
        tracing::info!(
            service = %key,
            created = plan.create.len(),
            updated = plan.update.len(),
            deleted = plan.delete.len(),
            "endpoint slices synced"
        );
        Ok(None)
    }
}

/// Writes a [`slices::SlicePlan`] for the Service (or Endpoints) `key`:
/// creates first, deletes last, so that an endpoint moving between slices
/// is never missing from all of them. Creations are announced to
/// `expectations` first, so a reconcile before their watch events arrive
/// does not create them again. Stops at the first failure.
pub(crate) async fn apply_slice_plan<C: Cluster>(
    cluster: &C,
    expectations: &Expectations,
    key: &Key,
    plan: &slices::SlicePlan,
) -> Result<(), WriteError> {
    let resource = ApiResource::erase::<EndpointSlice>(&());
    let ns = Some(key.namespace.as_str());
    let k = key.to_string();
    expectations.expect_creations(&k, plan.create.len());
    let mut created = 0;
    let mut result = Ok(());
    for slice in &plan.create {
        let body = serde_json::to_value(slice).unwrap_or(Value::Null);
        if let Err(e) = cluster.create_dyn(&resource, ns, body).await {
            result = Err(e);
            break;
        }
        created += 1;
    }
    for _ in created..plan.create.len() {
        expectations.creation_observed(&k);
    }
    result?;
    for (name, patch) in &plan.update {
        cluster
            .patch_dyn(&resource, ns, name, patch.clone())
            .await?;
    }
    for (name, uid) in &plan.delete {
        match cluster
            .delete_dyn(&resource, ns, name, uid.as_deref(), "Background")
            .await
        {
            Ok(()) | Err(WriteError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Writers, caches};
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, labels: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn setup(services: Vec<Service>, pods: Vec<Pod>) -> (Caches, Writers) {
        let (caches, mut w) = caches();
        for s in services {
            w.services.apply_watcher_event(&Event::Apply(s));
        }
        for p in pods {
            w.pods.apply_watcher_event(&Event::Apply(p));
        }
        (caches, w)
    }

    fn endpoints_controller(caches: Caches) -> EndpointsController<FakeCluster> {
        EndpointsController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            queue: WorkQueue::new(),
        }
    }

    fn key() -> Key {
        Key::new("default", "web")
    }

    #[tokio::test(start_paused = true)]
    async fn endpoints_are_created_then_left_alone_then_deleted() {
        let web = json!({"app": "web"});
        let (caches, mut w) = setup(
            vec![service()],
            vec![
                pod("a", "10.0.0.1", true, web.clone()),
                pod("b", "10.0.0.2", false, web),
            ],
        );
        let ctl = endpoints_controller(caches);
        ctl.reconcile(&key()).await.unwrap();
        let writes = ctl.cluster.writes();
        let [
            Write::DynCreate {
                resource,
                namespace,
                body,
            },
        ] = writes.as_slice()
        else {
            panic!("{writes:?}")
        };
        assert_eq!(
            (resource.as_str(), namespace.as_deref()),
            ("endpoints", Some("default"))
        );
        assert_eq!(body["metadata"]["name"], "web");
        assert_eq!(body["subsets"][0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(body["subsets"][0]["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert_eq!(
            body["subsets"][0]["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );

        // The server has it: reconciling again writes nothing.
        let mut stored: Endpoints = serde_json::from_value(body.clone()).unwrap();
        stored.metadata.uid = Some("ep-uid".into());
        stored.metadata.resource_version = Some("5".into());
        w.endpoints
            .apply_watcher_event(&Event::Apply(stored.clone()));
        ctl.reconcile(&key()).await.unwrap();
        assert_eq!(ctl.cluster.writes().len(), 1);

        // The Service goes: so do its Endpoints, that incarnation only.
        w.services.apply_watcher_event(&Event::Delete(service()));
        ctl.on_service(Change::Deleted(&service()));
        assert_eq!(ctl.queue.get().await, Some(key()));
        ctl.reconcile(&key()).await.unwrap();
        assert_eq!(
            ctl.cluster.writes().last(),
            Some(&Write::DynDelete {
                resource: "endpoints".into(),
                namespace: Some("default".into()),
                name: "web".into(),
                uid: Some("ep-uid".into()),
                propagation: "Background".into(),
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn user_endpoints_without_a_service_are_not_touched() {
        let (caches, mut w) = setup(vec![], vec![]);
        let ctl = endpoints_controller(caches);
        let theirs: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default", "uid": "u"},
            "subsets": [{"addresses": [{"ip": "192.168.0.5"}], "ports": [{"port": 5432}]}]
        }))
        .unwrap();
        w.endpoints
            .apply_watcher_event(&Event::Apply(theirs.clone()));
        ctl.on_endpoints(Change::Applied {
            old: None,
            new: &theirs,
        });
        ctl.on_endpoints(Change::Relisted);
        assert!(ctl.queue.is_empty());
        // One this controller wrote, whose Service went while it was down: deleted.
        let mut ours = theirs.clone();
        ours.metadata.name = Some("old".into());
        ours.metadata.annotations =
            Some([(TRIGGER_TIME.to_string(), "2024-01-01T00:00:00Z".to_string())].into());
        w.endpoints.apply_watcher_event(&Event::Apply(ours));
        ctl.on_endpoints(Change::Relisted);
        assert_eq!(ctl.queue.get().await, Some(Key::new("default", "old")));
        ctl.reconcile(&Key::new("default", "old")).await.unwrap();
        assert!(
            matches!(ctl.cluster.writes().as_slice(), [Write::DynDelete { name, .. }] if name == "old")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pod_changes_enqueue_the_services_selecting_it_before_and_after() {
        let mut db = service();
        db.metadata.name = Some("db".into());
        db.spec.as_mut().unwrap().selector = Some([("app".to_string(), "db".to_string())].into());
        let mut bare = service();
        bare.metadata.name = Some("bare".into());
        bare.spec.as_mut().unwrap().selector = None;
        let (caches, _w) = setup(vec![service(), db, bare], vec![]);
        let ctl = endpoints_controller(caches);
        let before = pod("a", "10.0.0.1", true, json!({"app": "web"}));
        let after = pod("a", "10.0.0.1", true, json!({"app": "db"}));
        ctl.on_pod(Change::Applied {
            old: Some(Arc::new(before)),
            new: &after,
        });
        let mut got = vec![
            ctl.queue.get().await.unwrap(),
            ctl.queue.get().await.unwrap(),
        ];
        got.sort();
        assert_eq!(got, [Key::new("default", "db"), key()]);
        assert!(ctl.queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn slices_are_not_created_twice_while_the_cache_lags() {
        let (caches, mut w) = setup(
            vec![service()],
            vec![pod("a", "10.0.0.1", true, json!({"app": "web"}))],
        );
        let ctl = EndpointSliceController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            queue: WorkQueue::new(),
            expectations: Arc::new(Expectations::default()),
            max_per_slice: 100,
        };
        assert_eq!(ctl.reconcile(&key()).await.unwrap(), None);
        let writes = ctl.cluster.writes();
        let [Write::DynCreate { resource, body, .. }] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(resource, "endpointslices");
        assert_eq!(body["endpoints"][0]["addresses"], json!(["10.0.0.1"]));
        assert_eq!(
            body["endpoints"][0]["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        // Another pod event before the new slice is seen: no second create.
        assert_eq!(
            ctl.reconcile(&key()).await.unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(ctl.cluster.writes().len(), 1);
        // The slice arrives: expectations met, the Service queued, and in sync.
        let mut slice: EndpointSlice = serde_json::from_value(body.clone()).unwrap();
        slice.metadata.name = Some("web-abcde".into());
        slice.metadata.resource_version = Some("3".into());
        w.endpoint_slices
            .apply_watcher_event(&Event::Apply(slice.clone()));
        ctl.on_endpoint_slice(Change::Applied {
            old: None,
            new: &slice,
        });
        assert_eq!(ctl.queue.get().await, Some(key()));
        assert_eq!(ctl.reconcile(&key()).await.unwrap(), None);
        assert_eq!(ctl.cluster.writes().len(), 1);

        // The pod turns not ready: the slice is updated in place.
        w.pods.apply_watcher_event(&Event::Apply(pod(
            "a",
            "10.0.0.1",
            false,
            json!({"app": "web"}),
        )));
        ctl.reconcile(&key()).await.unwrap();
        let writes = ctl.cluster.writes();
        let Some(Write::DynPatch { name, patch, .. }) = writes.last() else {
            panic!("{writes:?}")
        };
        assert_eq!(name, "web-abcde");
        assert_eq!(patch["metadata"]["resourceVersion"], "3");
        assert_eq!(patch["endpoints"][0]["conditions"]["ready"], false);
    }
}
