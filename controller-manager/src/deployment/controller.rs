//! The Deployment controller's loop: handlers enqueue Deployment keys; a
//! reconcile reads the caches, asks [`plan`](super::plan::plan) for one pass,
//! and writes it: ReplicaSet creates, scales (merge patches guarded by the
//! resourceVersion the plan saw, so a stale cache costs a retry, never a
//! wrong scale), deletes, the revision annotation, the status, and Events.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use serde_json::{Map, Value, json};

use super::plan::{Action, Observed, plan};
use super::rolling::is_rolling;
use crate::cache::{Caches, Change, Key};
use crate::client::{Cluster, EventRecord, Kind, WriteError};
use crate::owner::{controller_of, controller_ref, selects};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "deployment-controller";

pub struct DeploymentController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub queue: Arc<WorkQueue<Key>>,
}

pub fn reference(d: &Deployment) -> ObjectReference {
    ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: d.metadata.name.clone(),
        namespace: d.metadata.namespace.clone(),
        uid: d.metadata.uid.clone(),
        resource_version: d.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn deployment_of(rs: &ReplicaSet) -> Option<Key> {
    let r = controller_of(&rs.metadata)?;
    (r.kind == "Deployment")
        .then(|| Key::new(rs.metadata.namespace.clone().unwrap_or_default(), &r.name))
}

impl<C: Cluster> DeploymentController<C> {
    pub fn on_deployment(&self, change: Change<'_, Deployment>) {
        match change {
            Change::Applied { new, .. } => self.queue.add(Key::of(new)),
            Change::Deleted(d) => self.queue.add(Key::of(d)),
            Change::Relisted => {
                for d in self.caches.deployments.state() {
                    self.queue.add(Key::of(d.as_ref()));
                }
            }
        }
    }

    /// A ReplicaSet changed: its Deployment (or, for an orphan, every
    /// Deployment that may adopt it) looks again.
    pub fn on_replica_set(&self, change: Change<'_, ReplicaSet>) {
        match change {
            Change::Applied { old, new } => {
                let owner = deployment_of(new);
                match &owner {
                    Some(key) => self.queue.add(key.clone()),
                    None => self.enqueue_selecting(new),
                }
                if let Some(previous) = old.as_deref().and_then(deployment_of)
                    && Some(&previous) != owner.as_ref()
                {
                    self.queue.add(previous);
                }
            }
            Change::Deleted(rs) => {
                if let Some(key) = deployment_of(rs) {
                    self.queue.add(key);
                }
            }
            Change::Relisted => {}
        }
    }

    /// A pod went away: a Recreate rollout may be waiting for that.
    pub fn on_pod(&self, change: Change<'_, Pod>) {
        let Change::Deleted(pod) = change else {
            return;
        };
        let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if let Some(rs) = self
            .caches
            .replica_sets
            .get(&Key::new(&ns, &r.name).obj_ref())
            && let Some(key) = deployment_of(&rs)
        {
            self.queue.add(key);
        }
    }

    fn enqueue_selecting(&self, rs: &ReplicaSet) {
        for d in self.caches.deployments.state() {
            if d.metadata.namespace == rs.metadata.namespace
                && selects(Some(&d.spec.selector), rs.metadata.labels.as_ref())
            {
                self.queue.add(Key::of(d.as_ref()));
            }
        }
    }

    fn event(&self, d: &Deployment, warning: bool, reason: &str, note: String) {
        let action = match reason {
            "ScalingReplicaSet" => "Scale",
            _ => "Sync",
        };
        self.cluster.event(EventRecord {
            regarding: reference(d),
            warning,
            reason: reason.into(),
            action: action.into(),
            note,
            reporter: NAME.into(),
        });
    }
}

/// `Ok` for the errors a write may meet when the cache lags harmlessly.
fn tolerate_not_found<T>(result: Result<T, WriteError>) -> Result<(), WriteError> {
    match result {
        Ok(_) | Err(WriteError::NotFound(_)) => Ok(()),
        Err(err) => Err(err),
    }
}

impl<C: Cluster> Reconcile for DeploymentController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let Some(d) = self.caches.deployments.get(&key.obj_ref()) else {
            return Ok(None);
        };
        let ns = key.namespace.as_str();
        let replica_sets = Caches::in_namespace(&self.caches.replica_sets, ns);
        let pods = if is_rolling(&d) {
            Vec::new()
        } else {
            Caches::in_namespace(&self.caches.pods, ns)
        };
        let actions = plan(
            &d,
            &Observed {
                replica_sets: &replica_sets,
                pods: &pods,
                now: Timestamp::now(),
            },
        );
        let mut requeue = None;
        for action in actions {
            match action {
                Action::AdoptReplicaSet { name, uid } => {
                    let refs = json!([controller_ref("apps/v1", "Deployment", &d.metadata)]);
                    let patch = json!({"metadata": {"uid": uid, "ownerReferences": refs}});
                    tolerate_not_found(
                        self.cluster
                            .patch(Kind::ReplicaSet, ns, &name, false, patch)
                            .await,
                    )?;
                    tracing::info!(deployment = %key, replicaset = %name, "adopted replica set");
                }
                Action::ReleaseReplicaSet { name, uid } => {
                    let d_uid = d.metadata.uid.clone().unwrap_or_default();
                    let refs: Vec<_> = replica_sets
                        .iter()
                        .find(|rs| rs.metadata.name.as_deref() == Some(&name))
                        .and_then(|rs| rs.metadata.owner_references.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| r.uid != d_uid)
                        .collect();
                    let patch = json!({"metadata": {"uid": uid, "ownerReferences": refs}});
                    tolerate_not_found(
                        self.cluster
                            .patch(Kind::ReplicaSet, ns, &name, false, patch)
                            .await,
                    )?;
                    tracing::info!(deployment = %key, replicaset = %name, "released replica set");
                }
                Action::CreateReplicaSet(rs) => {
                    let name = rs.metadata.name.clone().unwrap_or_default();
                    let body = serde_json::to_value(&*rs).unwrap_or(Value::Null);
                    self.cluster.create(Kind::ReplicaSet, ns, body).await?;
                    tracing::info!(deployment = %key, replicaset = %name, replicas = rs.spec.replicas, "created replica set");
                }
                Action::UpdateReplicaSet(update) => {
                    let mut meta = Map::new();
                    if let Some(rv) = &update.resource_version {
                        meta.insert("resourceVersion".into(), json!(rv));
                    }
                    if !update.annotations.is_empty() {
                        meta.insert("annotations".into(), json!(update.annotations));
                    }
                    let mut spec = Map::new();
                    if let Some(n) = update.replicas {
                        spec.insert("replicas".into(), json!(n));
                    }
                    if let Some(m) = update.min_ready_seconds {
                        spec.insert("minReadySeconds".into(), json!(m));
                    }
                    let patch = json!({"metadata": meta, "spec": spec});
                    self.cluster
                        .patch(Kind::ReplicaSet, ns, &update.name, false, patch)
                        .await?;
                    if let Some(n) = update.replicas {
                        tracing::info!(deployment = %key, replicaset = %update.name, replicas = n, "scaled replica set");
                    }
                }
                Action::DeleteReplicaSet { name, uid } => {
                    tolerate_not_found(
                        self.cluster
                            .delete(Kind::ReplicaSet, ns, &name, Some(&uid))
                            .await,
                    )?;
                    tracing::info!(deployment = %key, replicaset = %name, "deleted old replica set (revisionHistoryLimit)");
                }
                Action::SetDeploymentRevision(revision) => {
                    let patch =
                        json!({"metadata": {"annotations": {super::plan::REVISION: revision}}});
                    tolerate_not_found(
                        self.cluster
                            .patch(Kind::Deployment, ns, &key.name, false, patch)
                            .await,
                    )?;
                }
                Action::UpdateStatus(status) => {
                    // Guarded by the resourceVersion this pass read, as
                    // upstream's UpdateStatus is: a pass working from a stale
                    // cache gets a conflict (and runs again) instead of
                    // overwriting a newer status — which once put a finished
                    // rollout's NewReplicaSetAvailable back over a new one's
                    // NewReplicaSetCreated, so its deadline never ran out.
                    let mut patch = json!({ "status": *status });
                    if let Some(rv) = &d.metadata.resource_version {
                        patch["metadata"] = json!({ "resourceVersion": rv });
                    }
                    tolerate_not_found(
                        self.cluster
                            .patch(Kind::Deployment, ns, &key.name, true, patch)
                            .await,
                    )?;
                }
                Action::Event {
                    warning,
                    reason,
                    note,
                } => {
                    tracing::info!(deployment = %key, %reason, "{note}");
                    self.event(&d, warning, &reason, note);
                }
                Action::RequeueAfter(after) => requeue = Some(after),
            }
        }
        Ok(requeue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::caches;
    use crate::client::fake::{FakeCluster, Write};
    use kube::runtime::watcher::Event;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1, "resourceVersion": "41"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}
        }))
        .unwrap()
    }

    fn controller(objects: Vec<ReplicaSet>) -> DeploymentController<FakeCluster> {
        let (caches, mut writers) = caches();
        writers
            .deployments
            .apply_watcher_event(&Event::Apply(deployment()));
        for rs in objects {
            writers.replica_sets.apply_watcher_event(&Event::Apply(rs));
        }
        drop(writers);
        DeploymentController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            queue: WorkQueue::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_reconcile_writes_replica_set_revision_status_and_event() {
        let ctl = controller(vec![]);
        ctl.reconcile(&Key::new("default", "web")).await.unwrap();
        let writes = ctl.cluster.writes();
        let kinds: Vec<String> = writes
            .iter()
            .map(|w| match w {
                Write::Create { kind, .. } => format!("create {kind}"),
                Write::Patch { kind, status, .. } => {
                    format!("patch {kind}{}", if *status { "/status" } else { "" })
                }
                Write::Delete { kind, .. } => format!("delete {kind}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "create replicasets",
                "patch deployments",
                "patch deployments/status"
            ]
        );
        let Write::Create { body, .. } = &writes[0] else {
            panic!()
        };
        let name = body["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-"));
        assert_eq!(body["spec"]["replicas"], 3);
        let Write::Patch { patch, .. } = &writes[1] else {
            panic!()
        };
        assert_eq!(
            patch["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        // The status write is guarded by the resourceVersion read.
        let Write::Patch { patch, .. } = &writes[2] else {
            panic!()
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "41");
        let events = ctl.cluster.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].reason.as_str(), events[0].action.as_str()),
            ("ScalingReplicaSet", "Scale")
        );
        assert_eq!(
            events[0].note,
            format!("Scaled up replica set {name} from 0 to 3")
        );
        assert_eq!(events[0].regarding.kind.as_deref(), Some("Deployment"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_conflict_fails_the_pass_and_emits_no_event() {
        // A settled deployment scaled from 3 to 5: the scale meets a conflict.
        let ctl = controller(vec![]);
        ctl.reconcile(&Key::new("default", "web")).await.unwrap();
        let Write::Create { body, .. } = &ctl.cluster.writes()[0] else {
            panic!()
        };
        let mut rs: ReplicaSet = serde_json::from_value(body.clone()).unwrap();
        rs.metadata.uid = Some("rs-uid".into());
        rs.metadata.resource_version = Some("42".into());
        let mut d = deployment();
        d.spec.replicas = Some(5);
        let (caches, mut writers) = caches();
        writers.deployments.apply_watcher_event(&Event::Apply(d));
        writers.replica_sets.apply_watcher_event(&Event::Apply(rs));
        let ctl = DeploymentController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            queue: WorkQueue::new(),
        };
        ctl.cluster
            .fail_after(0, 1, WriteError::Conflict("changed".into()));
        let err = ctl
            .reconcile(&Key::new("default", "web"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ReconcileError::Write(WriteError::Conflict(_))
        ));
        let Write::Patch { patch, .. } = &ctl.cluster.writes()[0] else {
            panic!()
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(patch["spec"]["replicas"], 5);
        assert!(ctl.cluster.events().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn replica_set_changes_enqueue_the_owner() {
        let ctl = controller(vec![]);
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "default",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid", "controller": true}]}
        }))
        .unwrap();
        ctl.on_replica_set(Change::Applied {
            old: None,
            new: &rs,
        });
        assert_eq!(ctl.queue.get().await, Some(Key::new("default", "web")));
        // An orphan with matching labels enqueues the deployment that may adopt it.
        let orphan: ReplicaSet = serde_json::from_value(
            json!({"metadata": {"name": "o", "namespace": "default", "labels": {"app": "web"}}}),
        )
        .unwrap();
        ctl.queue.done(&Key::new("default", "web"));
        ctl.on_replica_set(Change::Applied {
            old: None,
            new: &orphan,
        });
        assert_eq!(ctl.queue.len(), 1);
    }
}
