//! The pods bound to this node: a watch on `spec.nodeName=<node>` feeds one
//! [`worker`] per pod (keyed by uid); each worker [`plan`]s from what the
//! runtime holds ([`observed`]), acts through the CRI, and posts the
//! [`status`]. [`config`] builds the CRI configs ([`dns`] the pod's DNS per
//! `dnsPolicy`), [`backoff`] times restarts,
//! [`probe`] runs startup, liveness and readiness probes, [`hooks`] the
//! postStart and preStop lifecycle hooks, [`volumes`] the pod's volumes
//! (from the objects [`sources`] fetches, which the environment reads too).
//!
//! Pods come from two sources: the API (the watch) and this node's manifest
//! directory ([`static_pods`], keyed by their hash uid); [`mirror`] shows
//! the latter in the API. Mirror pods in the watch are never run.

pub mod backoff;
pub mod config;
pub mod dns;
pub mod evict;
pub mod hooks;
pub mod mirror;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod sources;
pub mod static_pods;
pub mod status;
pub mod termination;
pub mod userns;
pub mod volumes;
pub mod worker;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
pub use worker::PodContext;

/// How often the static pods' workers are checked against the directory's
/// pods without a change to prompt it.
const STATIC_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

struct Worker {
    desired: watch::Sender<Option<Pod>>,
    task: JoinHandle<()>,
}

/// Starts the worker of pod `uid` or gives it the pod's newest version.
fn give<R: Runtime>(
    ctx: &Arc<PodContext<R>>,
    workers: &mut HashMap<String, Worker>,
    uid: String,
    pod: Option<Pod>,
    stop: &CancellationToken,
) {
    match workers.get(&uid) {
        Some(w) => {
            let _ = w.desired.send(pod);
        }
        None => {
            let (tx, rx) = watch::channel(pod);
            let task = tokio::spawn(worker::run(ctx.clone(), uid.clone(), rx, stop.clone()));
            workers.insert(uid, Worker { desired: tx, task });
        }
    }
}

/// Runs the pods bound to `node` (from the API) and the static pods of
/// `statics` (from the manifest directory) until `stop`.
pub async fn run<R: Runtime>(
    ctx: Arc<PodContext<R>>,
    node: String,
    mut statics: watch::Receiver<static_pods::StaticPods>,
    stop: CancellationToken,
) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    // Static pods run whether or not the API server answers.
    let mut static_running = BTreeSet::new();
    statics.mark_changed();
    // A static pod whose file came back while its worker was still
    // stopping it is started again once that worker has ended.
    let mut check = tokio::time::interval(STATIC_CHECK);
    // No --pod-manifest-path: the sender is gone from the start.
    let mut statics_open = true;
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            changed = statics.changed(), if statics_open => {
                if changed.is_err() {
                    statics_open = false;
                    continue;
                }
                workers.retain(|_, w| !w.task.is_finished());
                static_running.retain(|uid| workers.contains_key(uid));
                let wanted = statics.borrow_and_update().clone();
                sync_static(&ctx, &mut workers, &wanted, &mut static_running, &stop);
                continue;
            }
            _ = check.tick() => {
                workers.retain(|_, w| !w.task.is_finished());
                static_running.retain(|uid| workers.contains_key(uid));
                let wanted = statics.borrow().clone();
                sync_static(&ctx, &mut workers, &wanted, &mut static_running, &stop);
                continue;
            }
            _ = stop.cancelled() => break,
        };
        let Some(event) = event else { break };
        workers.retain(|_, w| !w.task.is_finished());
        match event {
            // A mirror pod is the API's view of a static pod, which runs
            // from its file: running it too would run it twice.
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) if static_pods::is_mirror(&pod) => {}
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                listed.insert(uid.clone());
                give(&ctx, &mut workers, uid, Some(pod), &stop);
            }
            Ok(Event::Delete(pod)) if static_pods::is_mirror(&pod) => {}
            Ok(Event::Delete(pod)) => {
                if let Some(w) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                    let _ = w.desired.send(None);
                }
            }
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitDone) => {
                // Gone while we were not watching: their workers tear them
                // down. Static pods are not the API's to remove.
                for (uid, w) in &workers {
                    if !listed.contains(uid) && !static_running.contains(uid) {
                        let _ = w.desired.send(None);
                    }
                }
                let live: HashSet<String> = workers.keys().cloned().collect();
                let mut known = listed.clone();
                known.extend(statics.borrow().keys().cloned());
                remove_orphans(&ctx, &known, &live).await;
            }
            Err(e) => tracing::warn!(error = %e, "watching this node's pods"),
        }
    }
    for (_, w) in workers {
        drop(w.desired);
        let _ = w.task.await;
    }
}

/// Starts the workers of new static pods and stops those whose file is
/// gone or changed (a changed file is a new uid): stopped as a deleted pod
/// is, with its grace period and preStop hooks.
fn sync_static<R: Runtime>(
    ctx: &Arc<PodContext<R>>,
    workers: &mut HashMap<String, Worker>,
    wanted: &static_pods::StaticPods,
    running: &mut BTreeSet<String>,
    stop: &CancellationToken,
) {
    let diff = static_pods::diff(wanted, running);
    for uid in diff.stop {
        running.remove(&uid);
        let Some(w) = workers.get(&uid) else { continue };
        let mut pod = w.desired.borrow().clone();
        if let Some(p) = pod.as_mut() {
            tracing::info!(pod = %mirror::full_name(p), %uid, "static pod removed from its directory: stopping it");
            p.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            );
        }
        let _ = w.desired.send(pod);
    }
    for pod in diff.start {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        tracing::info!(pod = %mirror::full_name(&pod), %uid, "starting static pod");
        running.insert(uid.clone());
        give(ctx, workers, uid, Some(pod), stop);
    }
}

/// Sandboxes of pods that no longer exist (deleted while the kubelet was
/// down) are stopped and removed, and so are their directories (volumes
/// unmounted first) unless a worker is still tearing the pod down.
async fn remove_orphans<R: Runtime>(
    ctx: &PodContext<R>,
    pods: &HashSet<String>,
    workers: &HashSet<String>,
) {
    for entry in std::fs::read_dir(&ctx.pods_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let uid = entry.file_name().to_string_lossy().into_owned();
        if !pods.contains(&uid) && !workers.contains(&uid) {
            tracing::info!(uid = %uid, "removing the files of a pod that is gone");
            worker::forget_pod(ctx, &uid);
        }
    }
    let Ok(sandboxes) = ctx.runtime.list_pod_sandboxes(&[]).await else {
        return;
    };
    for sb in sandboxes {
        let Some(uid) = sb.labels.get(observed::POD_UID) else {
            continue;
        };
        if pods.contains(uid) {
            continue;
        }
        tracing::info!(sandbox = %sb.id, uid = %uid, "removing the sandbox of a pod that is gone");
        if let Ok(containers) = ctx.runtime.list_containers(&sb.id).await {
            for c in containers {
                let _ = ctx.runtime.stop_container(&c.id, 0).await;
                let _ = ctx.runtime.remove_container(&c.id).await;
            }
        }
        let _ = ctx.runtime.stop_pod_sandbox(&sb.id).await;
        let _ = ctx.runtime.remove_pod_sandbox(&sb.id).await;
    }
}
