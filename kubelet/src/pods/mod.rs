//! The pods bound to this node: a watch on `spec.nodeName=<node>` feeds one
//! [`worker`] per pod (keyed by uid); each worker [`plan`]s from what the
//! runtime holds ([`observed`]), acts through the CRI, and posts the
//! [`status`]. [`config`] builds the CRI configs, [`backoff`] times restarts,
//! [`probe`] runs startup, liveness and readiness probes, [`hooks`] the
//! postStart and preStop lifecycle hooks, [`volumes`] the pod's volumes
//! (from the objects [`sources`] fetches, which the environment reads too).

pub mod backoff;
pub mod config;
pub mod evict;
pub mod hooks;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod sources;
pub mod status;
pub mod termination;
pub mod volumes;
pub mod worker;

use std::collections::{HashMap, HashSet};
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

struct Worker {
    desired: watch::Sender<Option<Pod>>,
    task: JoinHandle<()>,
}

/// Runs the pods bound to `node` until `stop`.
pub async fn run<R: Runtime>(ctx: Arc<PodContext<R>>, node: String, stop: CancellationToken) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = stop.cancelled() => break,
        };
        let Some(event) = event else { break };
        workers.retain(|_, w| !w.task.is_finished());
        match event {
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                listed.insert(uid.clone());
                match workers.get(&uid) {
                    Some(w) => {
                        let _ = w.desired.send(Some(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(pod));
                        let task =
                            tokio::spawn(worker::run(ctx.clone(), uid.clone(), rx, stop.clone()));
                        workers.insert(uid, Worker { desired: tx, task });
                    }
                }
            }
            Ok(Event::Delete(pod)) => {
                if let Some(w) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                    let _ = w.desired.send(None);
                }
            }
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitDone) => {
                // Gone while we were not watching: their workers tear them down.
                for (uid, w) in &workers {
                    if !listed.contains(uid) {
                        let _ = w.desired.send(None);
                    }
                }
                let live: HashSet<String> = workers.keys().cloned().collect();
                remove_orphans(&ctx, &listed, &live).await;
            }
            Err(e) => tracing::warn!(error = %e, "watching this node's pods"),
        }
    }
    for (_, w) in workers {
        drop(w.desired);
        let _ = w.task.await;
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
