//! The writes controllers make, behind one small trait: [`Cluster`]. The real
//! one ([`KubeCluster`]) talks to the API server through `kube::Api`; tests
//! use [`fake::FakeCluster`], which records every write and event.
//!
//! Events go through a channel to one task that publishes them with
//! kube-rs' `Recorder` (events.k8s.io/v1), so a reconcile never waits for one.

use std::fmt;
use std::future::Future;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Client;
use kube::api::DynamicObject;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::discovery::ApiResource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The kinds controllers write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    ReplicaSet,
    Deployment,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Pod => "pods",
            Kind::ReplicaSet => "replicasets",
            Kind::Deployment => "deployments",
        })
    }
}

/// A failed write, by what the controller does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("not found: {0}")]
    NotFound(String),
    /// Optimistic concurrency: the object changed since the cache saw it.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Other(String),
}

impl From<kube::Error> for WriteError {
    fn from(err: kube::Error) -> Self {
        match &err {
            kube::Error::Api(status) if status.code == 404 => {
                WriteError::NotFound(status.message.clone())
            }
            kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists" => {
                WriteError::AlreadyExists(status.message.clone())
            }
            kube::Error::Api(status) if status.code == 409 => {
                WriteError::Conflict(status.message.clone())
            }
            other => WriteError::Other(other.to_string()),
        }
    }
}

/// One Event a controller reports about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: String,
    /// What was done (events.k8s.io `action`), e.g. `Scale`, `Create`, `Delete`.
    pub action: String,
    pub note: String,
    /// The component that reports it, e.g. `deployment-controller`.
    pub reporter: String,
}

/// The writes of every controller.
pub trait Cluster: Send + Sync + 'static {
    /// Creates `body` (JSON of the kind) in `namespace`; returns what the server stored.
    fn create(
        &self,
        kind: Kind,
        namespace: &str,
        body: Value,
    ) -> impl Future<Output = Result<Value, WriteError>> + Send;

    /// A JSON merge patch (of the status subresource when `status`).
    fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status: bool,
        patch: Value,
    ) -> impl Future<Output = Result<Value, WriteError>> + Send;

    /// Deletes, if `uid` is given only that incarnation of the name.
    fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Deletes a pod with a grace period of 0 (only incarnation `uid` when
    /// given): for pods no kubelet will finish deleting (pod GC).
    fn force_delete_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Reports an Event (never fails the caller).
    fn event(&self, event: EventRecord);

    /// Reads any kind (`None`: not found). The garbage collector checks an
    /// owner it does not have in its cache this way before calling it gone.
    fn get_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, WriteError>> + Send;

    /// A JSON merge patch of any kind.
    fn patch_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// A JSON merge patch of any kind's status subresource (nodes/status,
    /// pods/status), where kubelets and controllers write conditions.
    fn patch_status_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Creates an object of any kind.
    fn create_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Lists any kind in a namespace, from the API server (not a cache).
    fn list_dyn(
        &self,
        resource: &ApiResource,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<Value>, WriteError>> + Send;

    /// `PUT /api/v1/namespaces/{name}/finalize` with `spec.finalizers`.
    fn finalize_namespace(
        &self,
        name: &str,
        finalizers: Vec<String>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Deletes any kind with a propagation policy (`Background`, `Foreground`,
    /// `Orphan`), only that `uid` when given.
    fn delete_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        propagation: &str,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
}

fn dyn_api(client: Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client, ns, resource),
        None => Api::all_with(client, resource),
    }
}

fn delete_params(uid: Option<&str>, propagation: &str) -> DeleteParams {
    let mut params = match propagation {
        "Foreground" => DeleteParams::foreground(),
        "Orphan" => DeleteParams::orphan(),
        _ => DeleteParams::background(),
    };
    if let Some(uid) = uid {
        params.preconditions = Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        });
    }
    params
}

/// The real cluster, through kube-rs.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    events: mpsc::UnboundedSender<EventRecord>,
}

impl KubeCluster {
    /// Also starts the task that publishes events; it ends when every
    /// clone of the returned value is dropped.
    pub fn new(client: Client, instance: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<EventRecord>();
        let events_client = client.clone();
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                // A recorder per event: kube-rs' recorder folds events with the
                // same reason into one series and keeps the first note, but
                // "Scaled up … from 2 to 4" must not read "from 0 to 2".
                let reporter = Reporter {
                    controller: record.reporter.clone(),
                    instance: Some(instance.clone()),
                };
                let recorder = Recorder::new(events_client.clone(), reporter);
                let event = Event {
                    type_: if record.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: record.reason.clone(),
                    note: Some(record.note.clone()),
                    action: record.action.clone(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &record.regarding).await {
                    tracing::warn!(error = %err, reason = %record.reason, "cannot write event");
                }
            }
        });
        KubeCluster { client, events: tx }
    }
}

fn decode<K: DeserializeOwned>(body: Value) -> Result<K, WriteError> {
    serde_json::from_value(body).map_err(|e| WriteError::Other(format!("bad object: {e}")))
}

fn encode<K: serde::Serialize>(obj: K) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

async fn create_typed<K>(client: Client, ns: &str, body: Value) -> Result<Value, WriteError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client, ns);
    let obj: K = decode(body)?;
    Ok(encode(api.create(&PostParams::default(), &obj).await?))
}

async fn patch_typed<K>(
    client: Client,
    ns: &str,
    name: &str,
    status: bool,
    patch: Value,
) -> Result<Value, WriteError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client, ns);
    let params = PatchParams::default();
    let patched = if status {
        api.patch_status(name, &params, &Patch::Merge(&patch))
            .await?
    } else {
        api.patch(name, &params, &Patch::Merge(&patch)).await?
    };
    Ok(encode(patched))
}

async fn delete_typed<K>(
    client: Client,
    ns: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<(), WriteError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client, ns);
    api.delete(name, &delete_params(uid, "Background")).await?;
    Ok(())
}

impl Cluster for KubeCluster {
    async fn create(&self, kind: Kind, namespace: &str, body: Value) -> Result<Value, WriteError> {
        let c = self.client.clone();
        match kind {
            Kind::Pod => create_typed::<Pod>(c, namespace, body).await,
            Kind::ReplicaSet => create_typed::<ReplicaSet>(c, namespace, body).await,
            Kind::Deployment => create_typed::<Deployment>(c, namespace, body).await,
        }
    }

    async fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status: bool,
        patch: Value,
    ) -> Result<Value, WriteError> {
        let c = self.client.clone();
        match kind {
            Kind::Pod => patch_typed::<Pod>(c, namespace, name, status, patch).await,
            Kind::ReplicaSet => patch_typed::<ReplicaSet>(c, namespace, name, status, patch).await,
            Kind::Deployment => patch_typed::<Deployment>(c, namespace, name, status, patch).await,
        }
    }

    async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), WriteError> {
        let c = self.client.clone();
        match kind {
            Kind::Pod => delete_typed::<Pod>(c, namespace, name, uid).await,
            Kind::ReplicaSet => delete_typed::<ReplicaSet>(c, namespace, name, uid).await,
            Kind::Deployment => delete_typed::<Deployment>(c, namespace, name, uid).await,
        }
    }

    async fn force_delete_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), WriteError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut params = delete_params(uid, "Background");
        params.grace_period_seconds = Some(0);
        api.delete(name, &params).await?;
        Ok(())
    }

    fn event(&self, event: EventRecord) {
        let _ = self.events.send(event);
    }

    async fn get_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, WriteError> {
        let api = dyn_api(self.client.clone(), resource, namespace);
        Ok(api.get_opt(name).await?.map(encode))
    }

    async fn patch_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<(), WriteError> {
        let api = dyn_api(self.client.clone(), resource, namespace);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn patch_status_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<(), WriteError> {
        let api = dyn_api(self.client.clone(), resource, namespace);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn create_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        mut body: Value,
    ) -> Result<(), WriteError> {
        body["apiVersion"] = json!(resource.api_version);
        body["kind"] = json!(resource.kind);
        let obj: DynamicObject = decode(body)?;
        let api = dyn_api(self.client.clone(), resource, namespace);
        api.create(&PostParams::default(), &obj).await?;
        Ok(())
    }

    async fn list_dyn(
        &self,
        resource: &ApiResource,
        namespace: &str,
    ) -> Result<Vec<Value>, WriteError> {
        let api = dyn_api(self.client.clone(), resource, Some(namespace));
        let list = api.list(&kube::api::ListParams::default()).await?;
        Ok(list.items.into_iter().map(encode).collect())
    }

    async fn finalize_namespace(
        &self,
        name: &str,
        finalizers: Vec<String>,
    ) -> Result<(), WriteError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let mut ns = api.get(name).await?;
        ns.spec.get_or_insert_with(Default::default).finalizers = Some(finalizers);
        api.replace_subresource("finalize", name, &PostParams::default(), &ns)
            .await?;
        Ok(())
    }

    async fn delete_dyn(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        propagation: &str,
    ) -> Result<(), WriteError> {
        let api = dyn_api(self.client.clone(), resource, namespace);
        api.delete(name, &delete_params(uid, propagation)).await?;
        Ok(())
    }
}

/// A recording fake for unit tests.
pub mod fake {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// One write the fake saw.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Write {
        Create {
            kind: Kind,
            namespace: String,
            body: Value,
        },
        Patch {
            kind: Kind,
            namespace: String,
            name: String,
            status: bool,
            patch: Value,
        },
        Delete {
            kind: Kind,
            namespace: String,
            name: String,
            uid: Option<String>,
        },
        /// `force_delete_pod`.
        ForceDelete {
            namespace: String,
            name: String,
            uid: Option<String>,
        },
        /// `patch_dyn` (resource is the plural).
        DynPatch {
            resource: String,
            namespace: Option<String>,
            name: String,
            patch: Value,
        },
        /// `patch_status_dyn`.
        DynPatchStatus {
            resource: String,
            namespace: Option<String>,
            name: String,
            patch: Value,
        },
        /// `create_dyn`.
        DynCreate {
            resource: String,
            namespace: Option<String>,
            body: Value,
        },
        /// `finalize_namespace`.
        Finalize {
            name: String,
            finalizers: Vec<String>,
        },
        /// `delete_dyn`.
        DynDelete {
            resource: String,
            namespace: Option<String>,
            name: String,
            uid: Option<String>,
            propagation: String,
        },
    }

    /// (plural, namespace, name).
    pub type ObjectKey = (String, Option<String>, String);

    #[derive(Debug, Default)]
    pub struct FakeCluster {
        pub writes: Mutex<Vec<Write>>,
        pub events: Mutex<Vec<EventRecord>>,
        /// Errors the next writes get, in order (a `None` lets one succeed).
        pub failures: Mutex<VecDeque<Option<WriteError>>>,
        /// What `get_dyn` finds: (plural, namespace, name) → object.
        pub live: Mutex<std::collections::HashMap<ObjectKey, Value>>,
        /// What `list_dyn` finds: (plural, namespace) → objects.
        pub lists: Mutex<std::collections::HashMap<(String, String), Vec<Value>>>,
        names: Mutex<u64>,
    }

    impl FakeCluster {
        pub fn writes(&self) -> Vec<Write> {
            self.writes.lock().unwrap().clone()
        }

        pub fn events(&self) -> Vec<EventRecord> {
            self.events.lock().unwrap().clone()
        }

        /// The next `n` writes fail with `err` after `ok` successes.
        pub fn fail_after(&self, ok: usize, n: usize, err: WriteError) {
            let mut f = self.failures.lock().unwrap();
            f.extend(std::iter::repeat_n(None, ok));
            f.extend(std::iter::repeat_n(Some(err), n));
        }

        /// Records a write and answers it: the next scripted failure, or Ok.
        fn record(&self, write: Write) -> Result<(), WriteError> {
            self.writes.lock().unwrap().push(write);
            self.failures
                .lock()
                .unwrap()
                .pop_front()
                .flatten()
                .map_or(Ok(()), Err)
        }
    }

    impl Cluster for FakeCluster {
        async fn create(
            &self,
            kind: Kind,
            namespace: &str,
            mut body: Value,
        ) -> Result<Value, WriteError> {
            self.record(Write::Create {
                kind,
                namespace: namespace.into(),
                body: body.clone(),
            })?;
            let meta = &mut body["metadata"];
            if meta.get("name").is_none() {
                let mut n = self.names.lock().unwrap();
                *n += 1;
                let prefix = meta["generateName"].as_str().unwrap_or("x-").to_string();
                meta["name"] = Value::String(format!("{prefix}{n}"));
            }
            Ok(body)
        }

        async fn patch(
            &self,
            kind: Kind,
            namespace: &str,
            name: &str,
            status: bool,
            patch: Value,
        ) -> Result<Value, WriteError> {
            self.record(Write::Patch {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                status,
                patch: patch.clone(),
            })?;
            Ok(patch)
        }

        async fn delete(
            &self,
            kind: Kind,
            namespace: &str,
            name: &str,
            uid: Option<&str>,
        ) -> Result<(), WriteError> {
            self.record(Write::Delete {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.map(String::from),
            })
        }

        async fn force_delete_pod(
            &self,
            namespace: &str,
            name: &str,
            uid: Option<&str>,
        ) -> Result<(), WriteError> {
            self.record(Write::ForceDelete {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.map(String::from),
            })
        }

        fn event(&self, event: EventRecord) {
            self.events.lock().unwrap().push(event);
        }

        async fn get_dyn(
            &self,
            resource: &ApiResource,
            namespace: Option<&str>,
            name: &str,
        ) -> Result<Option<Value>, WriteError> {
            let key = (
                resource.plural.clone(),
                namespace.map(String::from),
                name.to_string(),
            );
            Ok(self.live.lock().unwrap().get(&key).cloned())
        }

        async fn patch_dyn(
            &self,
            resource: &ApiResource,
            namespace: Option<&str>,
            name: &str,
            patch: Value,
        ) -> Result<(), WriteError> {
            self.record(Write::DynPatch {
                resource: resource.plural.clone(),
                namespace: namespace.map(String::from),
                name: name.into(),
                patch,
            })
        }

        async fn patch_status_dyn(
            &self,
            resource: &ApiResource,
            namespace: Option<&str>,
            name: &str,
            patch: Value,
        ) -> Result<(), WriteError> {
            self.record(Write::DynPatchStatus {
                resource: resource.plural.clone(),
                namespace: namespace.map(String::from),
                name: name.into(),
                patch,
            })
        }

        async fn create_dyn(
            &self,
            resource: &ApiResource,
            namespace: Option<&str>,
            body: Value,
        ) -> Result<(), WriteError> {
            self.record(Write::DynCreate {
                resource: resource.plural.clone(),
                namespace: namespace.map(String::from),
                body,
            })
        }

        async fn list_dyn(
            &self,
            resource: &ApiResource,
            namespace: &str,
        ) -> Result<Vec<Value>, WriteError> {
            let key = (resource.plural.clone(), namespace.to_string());
            Ok(self
                .lists
                .lock()
                .unwrap()
                .get(&key)
                .cloned()
                .unwrap_or_default())
        }

        async fn finalize_namespace(
            &self,
            name: &str,
            finalizers: Vec<String>,
        ) -> Result<(), WriteError> {
            self.record(Write::Finalize {
                name: name.into(),
                finalizers,
            })
        }

        async fn delete_dyn(
            &self,
            resource: &ApiResource,
            namespace: Option<&str>,
            name: &str,
            uid: Option<&str>,
            propagation: &str,
        ) -> Result<(), WriteError> {
            self.record(Write::DynDelete {
                resource: resource.plural.clone(),
                namespace: namespace.map(String::from),
                name: name.into(),
                uid: uid.map(String::from),
                propagation: propagation.into(),
            })
        }
    }
}
