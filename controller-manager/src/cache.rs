//! The controllers' view of the cluster: one watch per kind (kube-rs
//! `watcher`) feeding one reflector store per kind, shared by every
//! controller. Each change is handed to a handler *before* the store applies
//! it, so the handler sees the old object too (expectations need to know
//! whether a pod is new). Handlers only enqueue keys.
//!
//! Node Leases are watched in `kube-node-lease` only: they are the node
//! heartbeats, and the other Leases (leader election) are not ours to read.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// A namespaced object's key, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Key::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }

    pub fn obj_ref<K: Resource<DynamicType = ()>>(&self) -> ObjectRef<K> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The stores every controller reads.
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub replica_sets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub endpoints: Store<Endpoints>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    /// Node heartbeats: the Leases of `kube-node-lease`.
    pub leases: Store<Lease>,
}

/// Where node heartbeat Leases live (named after their node).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The writers that fill [`Caches`] (tests preload them directly).
pub struct Writers {
    pub deployments: Writer<Deployment>,
    pub replica_sets: Writer<ReplicaSet>,
    pub pods: Writer<Pod>,
    pub services: Writer<Service>,
    pub endpoints: Writer<Endpoints>,
    pub endpoint_slices: Writer<EndpointSlice>,
    pub nodes: Writer<Node>,
    pub leases: Writer<Lease>,
}

pub fn caches() -> (Caches, Writers) {
    let (deployments, dw) = reflector::store();
    let (replica_sets, rw) = reflector::store();
    let (pods, pw) = reflector::store();
    let (services, sw) = reflector::store();
    let (endpoints, ew) = reflector::store();
    let (endpoint_slices, esw) = reflector::store();
    let (nodes, nw) = reflector::store();
    let (leases, lw) = reflector::store();
    (
        Caches {
            deployments,
            replica_sets,
            pods,
            services,
            endpoints,
            endpoint_slices,
            nodes,
            leases,
        },
        Writers {
            deployments: dw,
            replica_sets: rw,
            pods: pw,
            services: sw,
            endpoints: ew,
            endpoint_slices: esw,
            nodes: nw,
            leases: lw,
        },
    )
}

impl Caches {
    /// All objects of `store` in `namespace`.
    pub fn in_namespace<K>(store: &Store<K>, namespace: &str) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        store
            .state()
            .iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
            .map(|o| (**o).clone())
            .collect()
    }
}

/// One change as a handler sees it.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// Created or updated; `old` is what the store held before.
    Applied {
        old: Option<Arc<K>>,
        new: &'a K,
    },
    Deleted(&'a K),
    /// A (re)list finished: the store now holds exactly what the server has.
    Relisted,
}

impl<'a, K> Change<'a, K> {
    /// The same change, borrowed again (to hand it to several handlers).
    pub fn reborrow(&self) -> Change<'a, K> {
        match self {
            Change::Applied { old, new } => Change::Applied {
                old: old.clone(),
                new,
            },
            Change::Deleted(o) => Change::Deleted(o),
            Change::Relisted => Change::Relisted,
        }
    }
}

/// Applies `event` to `writer`, telling `handler` about it first.
pub fn apply_event<K>(
    event: &Event<K>,
    store: &Store<K>,
    writer: &mut Writer<K>,
    handler: &(dyn Fn(Change<'_, K>) + Send + Sync),
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    match event {
        Event::Apply(obj) => {
            let old = store.get(&ObjectRef::from_obj(obj));
            writer.apply_watcher_event(event);
            handler(Change::Applied { old, new: obj });
        }
        Event::Delete(obj) => {
            writer.apply_watcher_event(event);
            handler(Change::Deleted(obj));
        }
        Event::Init | Event::InitApply(_) => writer.apply_watcher_event(event),
        Event::InitDone => {
            writer.apply_watcher_event(event);
            handler(Change::Relisted);
        }
    }
}

/// Watches `api` for ever (with kube-rs' default backoff on errors), filling
/// `writer` and calling `handler`. Sets `synced` after the first list.
pub async fn watch<K>(
    api: Api<K>,
    store: Store<K>,
    mut writer: Writer<K>,
    synced: Arc<AtomicBool>,
    handler: Handler<K>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let kind = K::kind(&());
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let done = matches!(event, Event::InitDone);
                apply_event(&event, &store, &mut writer, handler.as_ref());
                if done {
                    synced.store(true, Ordering::Release);
                    tracing::debug!(%kind, objects = store.state().len(), "cache synced");
                }
            }
            Err(err) => tracing::warn!(%kind, error = %err, "watch failed; retrying"),
        }
    }
}

/// Starts one watch per cache; returns once they are spawned.
pub fn spawn_watches(
    client: &Client,
    caches: &Caches,
    writers: Writers,
    synced: &Synced,
    handlers: Handlers,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(watch(
            Api::<Deployment>::all(client.clone()),
            caches.deployments.clone(),
            writers.deployments,
            synced.deployments.clone(),
            handlers.deployments,
        )),
        tokio::spawn(watch(
            Api::<ReplicaSet>::all(client.clone()),
            caches.replica_sets.clone(),
            writers.replica_sets,
            synced.replica_sets.clone(),
            handlers.replica_sets,
        )),
        tokio::spawn(watch(
            Api::<Pod>::all(client.clone()),
            caches.pods.clone(),
            writers.pods,
            synced.pods.clone(),
            handlers.pods,
        )),
        tokio::spawn(watch(
            Api::<Service>::all(client.clone()),
            caches.services.clone(),
            writers.services,
            synced.services.clone(),
            handlers.services,
        )),
        tokio::spawn(watch(
            Api::<Endpoints>::all(client.clone()),
            caches.endpoints.clone(),
            writers.endpoints,
            synced.endpoints.clone(),
            handlers.endpoints,
        )),
        tokio::spawn(watch(
            Api::<EndpointSlice>::all(client.clone()),
            caches.endpoint_slices.clone(),
            writers.endpoint_slices,
            synced.endpoint_slices.clone(),
            handlers.endpoint_slices,
        )),
        tokio::spawn(watch(
            Api::<Node>::all(client.clone()),
            caches.nodes.clone(),
            writers.nodes,
            synced.nodes.clone(),
            handlers.nodes,
        )),
        tokio::spawn(watch(
            Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
            caches.leases.clone(),
            writers.leases,
            synced.leases.clone(),
            handlers.leases,
        )),
    ]
}

/// Whether each cache has finished its first list.
#[derive(Debug, Default, Clone)]
pub struct Synced {
    pub deployments: Arc<AtomicBool>,
    pub replica_sets: Arc<AtomicBool>,
    pub pods: Arc<AtomicBool>,
    pub services: Arc<AtomicBool>,
    pub endpoints: Arc<AtomicBool>,
    pub endpoint_slices: Arc<AtomicBool>,
    pub nodes: Arc<AtomicBool>,
    pub leases: Arc<AtomicBool>,
}

impl Synced {
    pub fn all(&self) -> bool {
        [
            &self.deployments,
            &self.replica_sets,
            &self.pods,
            &self.services,
            &self.endpoints,
            &self.endpoint_slices,
            &self.nodes,
            &self.leases,
        ]
        .iter()
        .all(|s| s.load(Ordering::Acquire))
    }

    /// Whether the caches the node controllers read (nodes, Leases, pods)
    /// have listed once: before that a node's missing Lease means nothing.
    pub fn nodes(&self) -> bool {
        [&self.nodes, &self.leases, &self.pods]
            .iter()
            .all(|s| s.load(Ordering::Acquire))
    }
}

pub type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// What to do on each change of each kind.
pub struct Handlers {
    pub deployments: Handler<Deployment>,
    pub replica_sets: Handler<ReplicaSet>,
    pub pods: Handler<Pod>,
    pub services: Handler<Service>,
    pub endpoints: Handler<Endpoints>,
    pub endpoint_slices: Handler<EndpointSlice>,
    pub nodes: Handler<Node>,
    pub leases: Handler<Lease>,
}
