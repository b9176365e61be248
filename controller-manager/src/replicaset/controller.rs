//! The ReplicaSet controller's loop: event handlers enqueue ReplicaSet keys
//! (and track expectations); a reconcile reads the caches, asks
//! [`plan`](super::plan::plan) what to do, and does it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use serde_json::{Value, json};

use super::plan::{Action, Observed, calculate_status, plan, slow_start_batches};
use crate::cache::{Caches, Change, Key};
use crate::client::{Cluster, EventRecord, Kind, WriteError};
use crate::expectations::Expectations;
use crate::owner::{controller_of, controller_ref, selects};
use crate::queue::WorkQueue;
use crate::worker::{Reconcile, ReconcileError};

pub const NAME: &str = "replicaset-controller";

pub struct ReplicaSetController<C> {
    pub cluster: Arc<C>,
    pub caches: Caches,
    pub expectations: Arc<Expectations>,
    pub queue: Arc<WorkQueue<Key>>,
}

pub fn reference(rs: &ReplicaSet) -> ObjectReference {
    ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("ReplicaSet".into()),
        name: rs.metadata.name.clone(),
        namespace: rs.metadata.namespace.clone(),
        uid: rs.metadata.uid.clone(),
        resource_version: rs.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// The ReplicaSet a pod's controller reference names, if any.
fn owner_key(pod: &Pod) -> Option<Key> {
    let r = controller_of(&pod.metadata)?;
    (r.kind == "ReplicaSet")
        .then(|| Key::new(pod.metadata.namespace.clone().unwrap_or_default(), &r.name))
}

fn pod_key(pod: &Pod) -> String {
    Key::of(pod).to_string()
}

impl<C: Cluster> ReplicaSetController<C> {
    /// A ReplicaSet changed.
    pub fn on_replica_set(&self, change: Change<'_, ReplicaSet>) {
        match change {
            Change::Applied { new, .. } => self.queue.add(Key::of(new)),
            Change::Deleted(rs) => {
                self.expectations.forget(&Key::of(rs).to_string());
                self.queue.add(Key::of(rs));
            }
            Change::Relisted => {
                self.expectations.clear();
                for rs in self.caches.replica_sets.state() {
                    self.queue.add(Key::of(rs.as_ref()));
                }
            }
        }
    }

    /// A pod changed: settle expectations, enqueue its ReplicaSet (or, for an
    /// orphan, every ReplicaSet that may adopt it).
    pub fn on_pod(&self, change: Change<'_, Pod>) {
        match change {
            Change::Applied { old, new } => {
                let owner = owner_key(new);
                if let Some(owner) = &owner {
                    let k = owner.to_string();
                    if old.is_none() {
                        self.expectations.creation_observed(&k);
                    }
                    if new.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(&k, &pod_key(new));
                    }
                    self.queue.add(owner.clone());
                } else {
                    self.enqueue_selecting(new);
                }
                if let Some(old_owner) = old.as_deref().and_then(owner_key)
                    && Some(&old_owner) != owner.as_ref()
                {
                    self.queue.add(old_owner);
                }
            }
            Change::Deleted(pod) => {
                if let Some(owner) = owner_key(pod) {
                    self.expectations
                        .deletion_observed(&owner.to_string(), &pod_key(pod));
                    self.queue.add(owner);
                }
            }
            Change::Relisted => {
                self.expectations.clear();
                for rs in self.caches.replica_sets.state() {
                    self.queue.add(Key::of(rs.as_ref()));
                }
            }
        }
    }

    fn enqueue_selecting(&self, pod: &Pod) {
        for rs in self.caches.replica_sets.state() {
            if rs.metadata.namespace == pod.metadata.namespace
                && selects(Some(&rs.spec.selector), pod.metadata.labels.as_ref())
            {
                self.queue.add(Key::of(rs.as_ref()));
            }
        }
    }

    fn event(&self, rs: &ReplicaSet, warning: bool, reason: &str, action: &str, note: String) {
        self.cluster.event(EventRecord {
            regarding: reference(rs),
            warning,
            reason: reason.into(),
            action: action.into(),
            note,
            reporter: NAME.into(),
        });
    }

    async fn create_pods(
        &self,
        rs: &ReplicaSet,
        key: &str,
        count: usize,
        pod: &Pod,
    ) -> Result<(), WriteError> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let body = serde_json::to_value(pod).unwrap_or(Value::Null);
        self.expectations.expect_creations(key, count);
        let mut created = 0;
        let mut failure = None;
        for batch in slow_start_batches(count) {
            let results =
                join_all((0..batch).map(|_| self.cluster.create(Kind::Pod, &ns, body.clone())))
                    .await;
            for result in results {
                match result {
                    Ok(pod) => {
                        created += 1;
                        let name = pod["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        tracing::info!(replicaset = %key, pod = %name, "created pod");
                        self.event(
                            rs,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {name}"),
                        );
                    }
                    Err(err) => {
                        self.event(
                            rs,
                            true,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {err}"),
                        );
                        failure.get_or_insert(err);
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }
        // Creations that failed or were never tried will not be seen.
        for _ in created..count {
            self.expectations.creation_observed(key);
        }
        failure.map_or(Ok(()), Err)
    }

    async fn delete_pods(
        &self,
        rs: &ReplicaSet,
        key: &str,
        pods: &[(String, String)],
    ) -> Result<(), WriteError> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        self.expectations
            .expect_deletions(key, pods.iter().map(|(name, _)| format!("{ns}/{name}")));
        let results = join_all(
            pods.iter()
                .map(|(name, uid)| self.cluster.delete(Kind::Pod, &ns, name, Some(uid))),
        )
        .await;
        let mut failure = None;
        for ((name, _), result) in pods.iter().zip(results) {
            match result {
                Ok(()) => {
                    tracing::info!(replicaset = %key, pod = %name, "deleted pod");
                    self.event(
                        rs,
                        false,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(WriteError::NotFound(_)) => {
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{name}"));
                }
                Err(err) => {
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{name}"));
                    self.event(
                        rs,
                        true,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {err}"),
                    );
                    failure.get_or_insert(err);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn set_owner(
        &self,
        rs: &ReplicaSet,
        name: &str,
        uid: &str,
        adopt: bool,
    ) -> Result<(), WriteError> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let refs = if adopt {
            json!([controller_ref("apps/v1", "ReplicaSet", &rs.metadata)])
        } else {
            let current = self
                .caches
                .pods
                .get(&Key::new(&ns, name).obj_ref())
                .and_then(|p| p.metadata.owner_references.clone())
                .unwrap_or_default();
            let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
            json!(
                current
                    .into_iter()
                    .filter(|r| r.uid != rs_uid)
                    .collect::<Vec<_>>()
            )
        };
        let patch = json!({"metadata": {"uid": uid, "ownerReferences": refs}});
        match self.cluster.patch(Kind::Pod, &ns, name, false, patch).await {
            Ok(_) | Err(WriteError::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The status as a merge patch: every field present, so a condition that
/// went away is removed.
fn status_patch(status: &k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    if status.conditions.is_none() {
        value["conditions"] = Value::Null;
    }
    json!({ "status": value })
}

impl<C: Cluster> Reconcile for ReplicaSetController<C> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &Key) -> Result<Option<Duration>, ReconcileError> {
        let Some(rs) = self.caches.replica_sets.get(&key.obj_ref()) else {
            self.expectations.forget(&key.to_string());
            return Ok(None);
        };
        let pods = Caches::in_namespace(&self.caches.pods, &key.namespace);
        let k = key.to_string();
        let now = Timestamp::now();
        let actions = plan(
            &rs,
            &Observed {
                pods: &pods,
                expectations_satisfied: self.expectations.satisfied(&k),
                now,
            },
        );
        let mut requeue = None;
        let mut failure: Option<(&str, WriteError)> = None;
        for action in actions {
            match action {
                Action::AdoptPod { name, uid } => self.set_owner(&rs, &name, &uid, true).await?,
                Action::ReleasePod { name, uid } => self.set_owner(&rs, &name, &uid, false).await?,
                Action::CreatePods { count, pod } => {
                    if let Err(err) = self.create_pods(&rs, &k, count, &pod).await {
                        failure = Some(("FailedCreate", err));
                    }
                }
                Action::DeletePods(pods) => {
                    if let Err(err) = self.delete_pods(&rs, &k, &pods).await {
                        failure = Some(("FailedDelete", err));
                    }
                }
                Action::UpdateStatus(status) => {
                    let status = match &failure {
                        None => *status,
                        Some((reason, err)) => {
                            let owned: Vec<&Pod> = Vec::new();
                            let mut with_failure =
                                calculate_status(&rs, &owned, Some((reason, err.to_string())), now);
                            with_failure.replicas = status.replicas;
                            with_failure.fully_labeled_replicas = status.fully_labeled_replicas;
                            with_failure.ready_replicas = status.ready_replicas;
                            with_failure.available_replicas = status.available_replicas;
                            with_failure
                        }
                    };
                    let ns = &key.namespace;
                    match self
                        .cluster
                        .patch(Kind::ReplicaSet, ns, &key.name, true, status_patch(&status))
                        .await
                    {
                        Ok(_) | Err(WriteError::NotFound(_)) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                Action::RequeueAfter(after) => requeue = Some(after),
            }
        }
        match failure {
            Some((_, err)) => Err(err.into()),
            None => Ok(requeue),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::cache::{Writers, caches};
    use crate::client::fake::{FakeCluster, Write};
    use crate::worker::{ControllerMetrics, run_workers};
    use kube::runtime::watcher::Event;

    fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "rs-uid", "generation": 1},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap()
    }

    fn pod(name: &str, ready_since: Option<Timestamp>) -> Pod {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"},
                         "creationTimestamp": "2024-01-01T00:00:00Z",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Pending"}
        });
        if let Some(t) = ready_since {
            v["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t.to_string()}]});
        }
        serde_json::from_value(v).unwrap()
    }

    fn controller(
        rs_obj: ReplicaSet,
        pods: Vec<Pod>,
    ) -> (Arc<ReplicaSetController<FakeCluster>>, Writers) {
        let (caches, mut writers) = caches();
        writers
            .replica_sets
            .apply_watcher_event(&Event::Apply(rs_obj));
        for p in pods {
            writers.pods.apply_watcher_event(&Event::Apply(p));
        }
        let ctl = Arc::new(ReplicaSetController {
            cluster: Arc::new(FakeCluster::default()),
            caches,
            expectations: Arc::new(Expectations::default()),
            queue: WorkQueue::new(),
        });
        (ctl, writers)
    }

    fn key() -> Key {
        Key::new("default", "web-1")
    }

    fn pod_creates(writes: &[Write]) -> usize {
        writes
            .iter()
            .filter(|w| {
                matches!(
                    w,
                    Write::Create {
                        kind: Kind::Pod,
                        ..
                    }
                )
            })
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn creates_pods_once_until_the_cache_catches_up() {
        let (ctl, _w) = controller(rs(3, 0), vec![pod("a", None)]);
        ctl.reconcile(&key()).await.unwrap();
        let writes = ctl.cluster.writes();
        assert_eq!(pod_creates(&writes), 2);
        let Write::Create { body, .. } = &writes[0] else {
            panic!()
        };
        assert_eq!(body["metadata"]["generateName"], "web-1-");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "rs-uid");
        let notes: Vec<String> = ctl
            .cluster
            .events()
            .iter()
            .map(|e| format!("{} {}", e.reason, e.note))
            .collect();
        assert_eq!(
            notes,
            [
                "SuccessfulCreate Created pod: web-1-1",
                "SuccessfulCreate Created pod: web-1-2"
            ]
        );
        assert_eq!(ctl.cluster.events()[0].reporter, NAME);
        // The status write says what was seen: one pod.
        let status = writes.iter().find_map(|w| match w {
            Write::Patch {
                kind: Kind::ReplicaSet,
                status: true,
                patch,
                ..
            } => Some(patch.clone()),
            _ => None,
        });
        assert_eq!(status.unwrap()["status"]["replicas"], 1);

        // Reconciled again before the watch delivers the new pods: no more creates.
        ctl.reconcile(&key()).await.unwrap();
        assert_eq!(pod_creates(&ctl.cluster.writes()), 2);
        assert_eq!(ctl.expectations.outstanding("default/web-1"), (2, 0));

        // The watch delivers them: expectations met, the ReplicaSet is queued.
        for name in ["web-1-1", "web-1-2"] {
            ctl.on_pod(Change::Applied {
                old: None,
                new: &pod(name, None),
            });
        }
        assert!(ctl.expectations.satisfied("default/web-1"));
        assert_eq!(ctl.queue.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_stops_at_the_first_failing_batch() {
        let (ctl, _w) = controller(rs(10, 0), vec![]);
        ctl.cluster
            .fail_after(1, 100, WriteError::Other("exceeded quota".into()));
        let err = ctl.reconcile(&key()).await.unwrap_err();
        assert!(err.to_string().contains("exceeded quota"));
        // Batch of 1 succeeded, batch of 2 failed, nothing more was tried.
        assert_eq!(pod_creates(&ctl.cluster.writes()), 3);
        // Only the one created pod is still expected.
        assert_eq!(ctl.expectations.outstanding("default/web-1"), (1, 0));
        let warnings: Vec<_> = ctl
            .cluster
            .events()
            .into_iter()
            .filter(|e| e.warning)
            .map(|e| e.reason)
            .collect();
        assert_eq!(warnings, ["FailedCreate", "FailedCreate"]);
    }

    #[tokio::test(start_paused = true)]
    async fn deletes_least_valuable_pods_with_uid_preconditions() {
        let now = Timestamp::now();
        let pods = vec![
            pod(
                "old-ready",
                Some(now - jiff::SignedDuration::from_secs(600)),
            ),
            pod("pending", None),
            pod("new-ready", Some(now - jiff::SignedDuration::from_secs(5))),
        ];
        let (ctl, _w) = controller(rs(1, 0), pods);
        ctl.reconcile(&key()).await.unwrap();
        let deletes: Vec<(String, Option<String>)> = ctl
            .cluster
            .writes()
            .into_iter()
            .filter_map(|w| match w {
                Write::Delete { name, uid, .. } => Some((name, uid)),
                _ => None,
            })
            .collect();
        assert_eq!(
            deletes,
            [
                ("pending".to_string(), Some("uid-pending".to_string())),
                ("new-ready".to_string(), Some("uid-new-ready".to_string()))
            ]
        );
        assert_eq!(ctl.expectations.outstanding("default/web-1"), (0, 2));
        ctl.on_pod(Change::Deleted(&pod("pending", None)));
        let mut terminating = pod("new-ready", None);
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        ctl.on_pod(Change::Applied {
            old: Some(Arc::new(pod("new-ready", None))),
            new: &terminating,
        });
        assert!(ctl.expectations.satisfied("default/web-1"));
        let notes: Vec<String> = ctl.cluster.events().into_iter().map(|e| e.note).collect();
        assert_eq!(notes, ["Deleted pod: pending", "Deleted pod: new-ready"]);
    }

    #[tokio::test(start_paused = true)]
    async fn workers_requeue_when_min_ready_seconds_pass() {
        let ready_at = Timestamp::now();
        let (ctl, _w) = controller(rs(1, 10), vec![pod("a", Some(ready_at))]);
        let metrics = Arc::new(ControllerMetrics::default());
        let workers = tokio::spawn(run_workers(
            ctl.clone(),
            ctl.queue.clone(),
            metrics.clone(),
            2,
        ));
        ctl.queue.add(key());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(metrics.reconciles.load(Ordering::Relaxed), 1);
        // The reconcile asked to look again when the pod has been ready for 10 s.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(metrics.reconciles.load(Ordering::Relaxed), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(metrics.reconciles.load(Ordering::Relaxed), 2);
        ctl.queue.shut_down();
        workers.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn orphans_enqueue_the_replica_sets_that_select_them() {
        let (ctl, mut w) = controller(rs(1, 0), vec![]);
        let mut orphan = pod("o", None);
        orphan.metadata.owner_references = None;
        w.pods.apply_watcher_event(&Event::Apply(orphan.clone()));
        ctl.on_pod(Change::Applied {
            old: None,
            new: &orphan,
        });
        assert_eq!(ctl.queue.get().await, Some(key()));
        ctl.reconcile(&key()).await.unwrap();
        let adopt = ctl.cluster.writes().into_iter().find_map(|w| match w {
            Write::Patch {
                kind: Kind::Pod,
                name,
                patch,
                ..
            } => Some((name, patch)),
            _ => None,
        });
        let (name, patch) = adopt.expect("adopted");
        assert_eq!(name, "o");
        assert_eq!(patch["metadata"]["uid"], "uid-o");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["name"], "web-1");
        assert_eq!(pod_creates(&ctl.cluster.writes()), 0, "the orphan counts");
    }
}
