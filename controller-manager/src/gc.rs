//! The garbage collector: deletes what its owners no longer need, following
//! `metadata.ownerReferences` (upstream `garbagecollector`).
//!
//! - **Background** (`kubectl delete`'s default): the owner goes at once; each
//!   dependent whose owners are all gone is then deleted (and its own
//!   dependents after it).
//! - **Foreground**: the API server keeps the owner, with the
//!   `foregroundDeletion` finalizer, while the collector deletes its
//!   dependents (in foreground too when they have dependents of their own);
//!   when no dependent with `blockOwnerDeletion` is left, the collector removes
//!   the finalizer and the API server deletes the owner.
//! - **Orphan**: the owner is kept with the `orphan` finalizer while the
//!   collector removes the owner's reference from every dependent, then the
//!   finalizer.
//!
//! The graph is the caches of the kinds below (one watch each). An owner that
//! is not in the cache is looked up on the API server before a dependent is
//! deleted for its absence: a cache that lags must never delete a ReplicaSet
//! whose brand new Deployment it has not seen yet. Owners of kinds that are
//! not watched count as present. Nothing is collected before every cache has
//! listed once. Work items are object UIDs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Node, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::cache::Key;
use crate::client::{Cluster, WriteError};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "garbage-collector-controller";
pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// The kinds whose ownerReferences the collector follows: namespaced ones,
/// and Nodes (which own their mirror pods and Leases).
pub fn resources() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Pod>(&()),
        ApiResource::erase::<ReplicaSet>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<DaemonSet>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<Endpoints>(&()),
        ApiResource::erase::<EndpointSlice>(&()),
        ApiResource::erase::<PersistentVolumeClaim>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<Node>(&()),
    ]
}

/// Kinds in `resources` that live outside namespaces.
pub fn cluster_scoped(ar: &ApiResource) -> bool {
    ar.api_version == "v1" && ar.kind == "Node"
}

/// How an owner stands, for one of its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Exists and is not being deleted in foreground.
    Solid,
    /// Gone (or the name now belongs to another object).
    Dangling,
    /// Being deleted in foreground: waiting for its dependents to go.
    Waiting,
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Remove the references to these owner UIDs (it has other, solid owners).
    RemoveRefs(Vec<String>),
    /// Delete it, in foreground when an owner waits and it has dependents itself.
    Delete {
        foreground: bool,
    },
}

/// Upstream `attemptToDeleteItem`'s decision for an object with owners.
pub fn decide(owners: &[(String, Owner)], has_dependents: bool) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    if owners.iter().any(|(_, o)| *o == Owner::Solid) {
        let drop: Vec<String> = owners
            .iter()
            .filter(|(_, o)| *o != Owner::Solid)
            .map(|(uid, _)| uid.clone())
            .collect();
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::RemoveRefs(drop)
        };
    }
    let waiting = owners.iter().any(|(_, o)| *o == Owner::Waiting);
    Decision::Delete {
        foreground: waiting && has_dependents,
    }
}

fn has_finalizer(obj: &DynamicObject, f: &str) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|fs| fs.iter().any(|x| x == f))
}

fn is_deleting(obj: &DynamicObject) -> bool {
    obj.metadata.deletion_timestamp.is_some()
}

/// The caches of every watched kind.
#[derive(Clone)]
pub struct Graph {
    pub kinds: Vec<(ApiResource, Store<DynamicObject>)>,
    pub synced: Vec<Arc<AtomicBool>>,
}

/// An object found in the graph.
#[derive(Debug, Clone)]
pub struct Found {
    pub resource: ApiResource,
    pub object: Arc<DynamicObject>,
}

impl Graph {
    pub fn new(resources: Vec<ApiResource>) -> (Graph, Vec<Writer<DynamicObject>>) {
        let mut kinds = Vec::new();
        let mut writers = Vec::new();
        let mut synced = Vec::new();
        for ar in resources {
            let writer = Writer::new(ar.clone());
            kinds.push((ar, writer.as_reader()));
            writers.push(writer);
            synced.push(Arc::new(AtomicBool::new(false)));
        }
        (Graph { kinds, synced }, writers)
    }

    pub fn all_synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Acquire))
    }

    pub fn find(&self, uid: &str) -> Option<Found> {
        self.kinds.iter().find_map(|(ar, store)| {
            store
                .find(|o| o.metadata.uid.as_deref() == Some(uid))
                .map(|object| Found {
                    resource: ar.clone(),
                    object,
                })
        })
    }

    /// Objects with a reference to `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<Found> {
        let mut out = Vec::new();
        for (ar, store) in &self.kinds {
            for o in store.state() {
                if o.owner_references().iter().any(|r| r.uid == uid) {
                    out.push(Found {
                        resource: ar.clone(),
                        object: o,
                    });
                }
            }
        }
        out
    }

    fn resource_for(&self, r: &OwnerReference) -> Option<ApiResource> {
        self.kinds
            .iter()
            .map(|(ar, _)| ar)
            .find(|ar| ar.api_version == r.api_version && ar.kind == r.kind)
            .cloned()
    }
}

pub struct GarbageCollector<C> {
    pub cluster: Arc<C>,
    pub graph: Graph,
    pub queue: Arc<WorkQueue<Key>>,
}

fn uid_key(uid: &str) -> Key {
    Key::new("", uid)
}

impl<C: Cluster> GarbageCollector<C> {
    /// An object of a watched kind changed (`None`: the kind relisted).
    pub fn on_change(&self, object: Option<&DynamicObject>, deleted: bool) {
        let Some(obj) = object else {
            // After a relist anything may have changed: look at everything.
            for (_, store) in &self.graph.kinds {
                for o in store.state() {
                    if let Some(uid) = &o.metadata.uid {
                        self.queue.add(uid_key(uid));
                    }
                }
            }
            return;
        };
        let Some(uid) = obj.metadata.uid.as_deref() else {
            return;
        };
        if deleted {
            // Its dependents may now be orphans; its owners may be waiting for it.
            for d in self.graph.dependents(uid) {
                if let Some(u) = &d.object.metadata.uid {
                    self.queue.add(uid_key(u));
                }
            }
            for r in obj.owner_references() {
                self.queue.add(uid_key(&r.uid));
            }
        } else {
            self.queue.add(uid_key(uid));
            if is_deleting(obj) {
                for r in obj.owner_references() {
                    self.queue.add(uid_key(&r.uid));
                }
            }
        }
    }

    async fn classify(&self, dependent: &Found, r: &OwnerReference) -> Result<Owner, WriteError> {
        let owner_state = |o: &DynamicObject| {
            if is_deleting(o) && has_finalizer(o, FOREGROUND) {
                Owner::Waiting
            } else {
                Owner::Solid
            }
        };
        if let Some(found) = self.graph.find(&r.uid) {
            return Ok(owner_state(&found.object));
        }
        let Some(ar) = self.graph.resource_for(r) else {
            return Ok(Owner::Solid); // a kind we do not follow
        };
        // Not in the cache: ask the API server before calling it gone.
        let ns = if cluster_scoped(&ar) {
            None
        } else {
            dependent.object.metadata.namespace.as_deref()
        };
        match self.cluster.get_dyn(&ar, ns, &r.name).await? {
            Some(live) if live["metadata"]["uid"].as_str() == Some(r.uid.as_str()) => {
                let o: DynamicObject =
                    serde_json::from_value(live).map_err(|e| WriteError::Other(e.to_string()))?;
                Ok(owner_state(&o))
            }
            _ => Ok(Owner::Dangling),
        }
    }

    /// Whether the server's copy of `found` is the same object with the
    /// same owner references as the cache's.
    async fn server_agrees(
        &self,
        found: &Found,
        refs: &[OwnerReference],
    ) -> Result<bool, WriteError> {
        let o = &found.object;
        let live = self
            .cluster
            .get_dyn(
                &found.resource,
                o.metadata.namespace.as_deref(),
                &o.name_any(),
            )
            .await?;
        let Some(live) = live else {
            return Ok(false);
        };
        if live["metadata"]["uid"].as_str() != o.metadata.uid.as_deref() {
            return Ok(false);
        }
        let live_refs: Vec<OwnerReference> =
            serde_json::from_value(live["metadata"]["ownerReferences"].clone()).unwrap_or_default();
        Ok(live_refs
            .iter()
            .map(|r| &r.uid)
            .eq(refs.iter().map(|r| &r.uid)))
    }

    async fn remove_finalizer(&self, found: &Found, finalizer: &str) -> Result<(), WriteError> {
        let o = &found.object;
        let remaining: Vec<&String> = o
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        let patch = json!({"metadata": {
            "finalizers": if remaining.is_empty() { Value::Null } else { json!(remaining) },
            "resourceVersion": o.metadata.resource_version,
        }});
        let ns = o.metadata.namespace.as_deref();
        tracing::info!(kind = %found.resource.kind, name = %o.name_any(), %finalizer, "removing finalizer");
        ignore_not_found(
            self.cluster
                .patch_dyn(&found.resource, ns, &o.name_any(), patch)
                .await,
        )
    }

    async fn remove_refs(&self, found: &Found, uids: &[String]) -> Result<(), WriteError> {
        let o = &found.object;
        let remaining: Vec<&OwnerReference> = o
            .owner_references()
            .iter()
            .filter(|r| !uids.contains(&r.uid))
            .collect();
        let patch = json!({"metadata": {
            "ownerReferences": if remaining.is_empty() { Value::Null } else { json!(remaining) },
            "uid": o.metadata.uid,
        }});
        let ns = o.metadata.namespace.as_deref();
        tracing::info!(kind = %found.resource.kind, name = %o.name_any(), owners = ?uids, "removing owner references");
        ignore_not_found(
            self.cluster
                .patch_dyn(&found.resource, ns, &o.name_any(), patch)
                .await,
        )
    }
}

fn ignore_not_found(r: Result<(), WriteError>) -> Result<(), WriteError> {
    match r {
        Err(WriteError::NotFound(_)) => Ok(()),
        other => other,
    }
}

impl<C: Cluster> Reconcile for GarbageCollector<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        if !self.graph.all_synced() {
            return Ok(Some(Duration::from_secs(1)));
        }
        let uid = key.name.as_str();
        let Some(found) = self.graph.find(uid) else {
            return Ok(None);
        };
        let obj = found.object.clone();
        let ns = obj.metadata.namespace.clone();
        // As an owner being deleted.
        if is_deleting(&obj) && has_finalizer(&obj, ORPHAN) {
            for d in self.graph.dependents(uid) {
                self.remove_refs(&d, &[uid.to_string()]).await?;
            }
            self.remove_finalizer(&found, ORPHAN).await?;
            return Ok(None);
        }
        if is_deleting(&obj) && has_finalizer(&obj, FOREGROUND) {
            let blocking: Vec<Found> = self
                .graph
                .dependents(uid)
                .into_iter()
                .filter(|d| {
                    d.object
                        .owner_references()
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                })
                .collect();
            if blocking.is_empty() {
                self.remove_finalizer(&found, FOREGROUND).await?;
                return Ok(None);
            }
            for d in blocking {
                if let Some(u) = &d.object.metadata.uid {
                    self.queue.add(uid_key(u));
                }
            }
        }
        // As a dependent.
        let refs = obj.owner_references().to_vec();
        if refs.is_empty() || is_deleting(&obj) && !has_finalizer(&obj, FOREGROUND) {
            return Ok(None);
        }
        let mut owners = Vec::new();
        for r in &refs {
            owners.push((r.uid.clone(), self.classify(&found, r).await?));
        }
        let has_dependents = !self.graph.dependents(uid).is_empty();
        match decide(&owners, has_dependents) {
            Decision::Keep => {}
            Decision::RemoveRefs(uids) => self.remove_refs(&found, &uids).await?,
            Decision::Delete { foreground } => {
                if is_deleting(&obj) {
                    return Ok(None);
                }
                // The cache may still hold references that were just removed
                // (an orphaning owner patches its dependents, then goes:
                // the owner's Delete event can come before the dependent's
                // update). Act only on the references the server holds now,
                // as upstream's attemptToDeleteItem reads the latest object.
                if !self.server_agrees(&found, &refs).await? {
                    return Ok(Some(Duration::from_millis(200)));
                }
                let policy = if foreground {
                    "Foreground"
                } else {
                    "Background"
                };
                tracing::info!(kind = %found.resource.kind, namespace = ?ns, name = %obj.name_any(), %policy, "deleting: its owners are gone or going");
                ignore_not_found(
                    self.cluster
                        .delete_dyn(
                            &found.resource,
                            ns.as_deref(),
                            &obj.name_any(),
                            Some(uid),
                            policy,
                        )
                        .await,
                )?;
            }
        }
        Ok(None)
    }
}

/// Watches every kind of `graph` for ever, telling `gc` about each change.
pub fn spawn_watches<C: Cluster>(
    client: &Client,
    gc: Arc<GarbageCollector<C>>,
    writers: Vec<Writer<DynamicObject>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (i, mut writer) in writers.into_iter().enumerate() {
        let (ar, _) = gc.graph.kinds[i].clone();
        let synced = gc.graph.synced[i].clone();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let gc = gc.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        writer.apply_watcher_event(&event);
                        match &event {
                            Event::Apply(o) => gc.on_change(Some(o), false),
                            Event::Delete(o) => gc.on_change(Some(o), true),
                            Event::InitDone => {
                                synced.store(true, Ordering::Release);
                                gc.on_change(None, false);
                            }
                            Event::Init | Event::InitApply(_) => {}
                        }
                    }
                    Err(err) => {
                        tracing::warn!(kind = %ar.kind, error = %err, "watch failed; retrying")
                    }
                }
            }
        }));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::{FakeCluster, Write};

    #[test]
    fn decisions() {
        use Owner::*;
        let o = |v: &[(&str, Owner)]| {
            v.iter()
                .map(|(u, s)| (u.to_string(), *s))
                .collect::<Vec<_>>()
        };
        let cases = [
            (o(&[]), false, Decision::Keep),
            (o(&[("a", Solid)]), false, Decision::Keep),
            (
                o(&[("a", Dangling)]),
                false,
                Decision::Delete { foreground: false },
            ),
            (
                o(&[("a", Dangling)]),
                true,
                Decision::Delete { foreground: false },
            ),
            (
                o(&[("a", Waiting)]),
                false,
                Decision::Delete { foreground: false },
            ),
            (
                o(&[("a", Waiting)]),
                true,
                Decision::Delete { foreground: true },
            ),
            (
                o(&[("a", Dangling), ("b", Waiting)]),
                true,
                Decision::Delete { foreground: true },
            ),
            (
                o(&[("a", Solid), ("b", Dangling)]),
                false,
                Decision::RemoveRefs(vec!["b".into()]),
            ),
            (
                o(&[("a", Waiting), ("b", Solid)]),
                true,
                Decision::RemoveRefs(vec!["a".into()]),
            ),
        ];
        for (owners, deps, want) in cases {
            assert_eq!(decide(&owners, deps), want, "{owners:?} {deps}");
        }
    }

    fn obj(kind: &str, name: &str, uid: &str, extra: Value) -> DynamicObject {
        let mut v = json!({"apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" }, "kind": kind,
                           "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "5"}});
        if let (Value::Object(m), Value::Object(e)) = (&mut v["metadata"], extra) {
            m.extend(e);
        }
        serde_json::from_value(v).unwrap()
    }

    fn owned_by(kind: &str, name: &str, uid: &str) -> Value {
        json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
                                     "controller": true, "blockOwnerDeletion": true}]})
    }

    fn gc(objects: Vec<(usize, DynamicObject)>) -> GarbageCollector<FakeCluster> {
        let (graph, mut writers) = Graph::new(resources());
        for (i, o) in objects {
            writers[i].apply_watcher_event(&Event::Apply(o));
        }
        for s in &graph.synced {
            s.store(true, Ordering::Release);
        }
        GarbageCollector {
            cluster: Arc::new(FakeCluster::default()),
            graph,
            queue: WorkQueue::new(),
        }
    }

    const PODS: usize = 0;
    const RSS: usize = 1;
    const DEPLOYS: usize = 2;

    #[tokio::test(start_paused = true)]
    async fn background_deletes_a_dependent_only_after_asking_the_server() {
        let rs = obj(
            "ReplicaSet",
            "web-1",
            "rs-uid",
            owned_by("Deployment", "web", "d-uid"),
        );
        let g = gc(vec![(RSS, rs)]);
        // The Deployment is not in the cache but the server has it (cache lag): keep.
        g.cluster.live.lock().unwrap().insert(
            ("deployments".into(), Some("default".into()), "web".into()),
            json!({"metadata": {"name": "web", "uid": "d-uid"}}),
        );
        g.reconcile(&uid_key("rs-uid")).await.unwrap();
        assert!(g.cluster.writes().is_empty());
        // A new Deployment of the same name is another owner: the old one is gone.
        g.cluster.live.lock().unwrap().insert(
            ("deployments".into(), Some("default".into()), "web".into()),
            json!({"metadata": {"name": "web", "uid": "other"}}),
        );
        // The server's ReplicaSet has lost its reference (an orphaning
        // delete patched it) though the cache has not seen that yet: keep.
        g.cluster.live.lock().unwrap().insert(
            ("replicasets".into(), Some("default".into()), "web-1".into()),
            json!({"metadata": {"name": "web-1", "uid": "rs-uid"}}),
        );
        assert_eq!(
            g.reconcile(&uid_key("rs-uid")).await.unwrap(),
            Some(Duration::from_millis(200))
        );
        assert!(g.cluster.writes().is_empty());
        // The server agrees the reference is there: delete.
        g.cluster.live.lock().unwrap().insert(
            ("replicasets".into(), Some("default".into()), "web-1".into()),
            json!({"metadata": {"name": "web-1", "uid": "rs-uid",
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": "web", "uid": "d-uid"}]}}),
        );
        g.reconcile(&uid_key("rs-uid")).await.unwrap();
        assert_eq!(
            g.cluster.writes(),
            [Write::DynDelete {
                resource: "replicasets".into(),
                namespace: Some("default".into()),
                name: "web-1".into(),
                uid: Some("rs-uid".into()),
                propagation: "Background".into()
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn foreground_deletes_dependents_then_the_finalizer() {
        let deleting =
            json!({"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": [FOREGROUND]});
        let d = obj("Deployment", "web", "d-uid", deleting);
        let rs = obj(
            "ReplicaSet",
            "web-1",
            "rs-uid",
            owned_by("Deployment", "web", "d-uid"),
        );
        let pod = obj(
            "Pod",
            "web-1-a",
            "p-uid",
            owned_by("ReplicaSet", "web-1", "rs-uid"),
        );
        let g = gc(vec![(DEPLOYS, d.clone()), (RSS, rs), (PODS, pod)]);
        // The owner waits: its ReplicaSet is enqueued, not the finalizer removed.
        g.reconcile(&uid_key("d-uid")).await.unwrap();
        assert!(g.cluster.writes().is_empty());
        assert_eq!(g.queue.get().await, Some(uid_key("rs-uid")));
        // The ReplicaSet has a pod of its own: deleted in foreground too.
        g.cluster.live.lock().unwrap().insert(
            ("replicasets".into(), Some("default".into()), "web-1".into()),
            json!({"metadata": {"name": "web-1", "uid": "rs-uid",
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": "web", "uid": "d-uid"}]}}),
        );
        g.reconcile(&uid_key("rs-uid")).await.unwrap();
        assert!(
            matches!(&g.cluster.writes()[0], Write::DynDelete { name, propagation, .. } if name == "web-1" && propagation == "Foreground")
        );
        // Once nothing blocks, the finalizer goes.
        let g = gc(vec![(DEPLOYS, d)]);
        g.reconcile(&uid_key("d-uid")).await.unwrap();
        let Write::DynPatch { patch, .. } = &g.cluster.writes()[0] else {
            panic!()
        };
        assert_eq!(
            patch,
            &json!({"metadata": {"finalizers": null, "resourceVersion": "5"}})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn orphan_removes_references_then_the_finalizer() {
        let deleting = json!({"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": [ORPHAN, "example.com/keep"]});
        let d = obj("Deployment", "web", "d-uid", deleting);
        let rs = obj(
            "ReplicaSet",
            "web-1",
            "rs-uid",
            owned_by("Deployment", "web", "d-uid"),
        );
        let g = gc(vec![(DEPLOYS, d), (RSS, rs)]);
        g.reconcile(&uid_key("d-uid")).await.unwrap();
        let patches: Vec<(String, Value)> = g
            .cluster
            .writes()
            .into_iter()
            .map(|w| match w {
                Write::DynPatch { name, patch, .. } => (name, patch),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            patches,
            [
                (
                    "web-1".into(),
                    json!({"metadata": {"ownerReferences": null, "uid": "rs-uid"}})
                ),
                (
                    "web".into(),
                    json!({"metadata": {"finalizers": ["example.com/keep"], "resourceVersion": "5"}})
                ),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_mirror_pod_goes_with_its_node() {
        let mirror = obj(
            "Pod",
            "web-n1",
            "p-uid",
            json!({"ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "n-uid"}]}),
        );
        let g = gc(vec![(PODS, mirror)]);
        // The Node is asked for by name, outside any namespace: still there.
        g.cluster.live.lock().unwrap().insert(
            ("nodes".into(), None, "n1".into()),
            json!({"metadata": {"name": "n1", "uid": "n-uid"}}),
        );
        g.cluster.live.lock().unwrap().insert(
            ("pods".into(), Some("default".into()), "web-n1".into()),
            json!({"metadata": {"name": "web-n1", "uid": "p-uid",
                                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "n-uid"}]}}),
        );
        g.reconcile(&uid_key("p-uid")).await.unwrap();
        assert!(g.cluster.writes().is_empty());
        // Gone: the mirror is deleted.
        g.cluster
            .live
            .lock()
            .unwrap()
            .remove(&("nodes".into(), None, "n1".into()));
        g.reconcile(&uid_key("p-uid")).await.unwrap();
        assert!(
            matches!(&g.cluster.writes()[..], [Write::DynDelete { resource, name, .. }] if resource == "pods" && name == "web-n1"),
            "{:?}",
            g.cluster.writes()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_collected_before_every_cache_listed() {
        let rs = obj(
            "ReplicaSet",
            "web-1",
            "rs-uid",
            owned_by("Deployment", "web", "d-uid"),
        );
        let g = gc(vec![(RSS, rs)]);
        g.graph.synced[3].store(false, Ordering::Release);
        assert_eq!(
            g.reconcile(&uid_key("rs-uid")).await.unwrap(),
            Some(Duration::from_secs(1))
        );
        assert!(g.cluster.writes().is_empty());
    }
}
