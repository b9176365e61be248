//! The scheduling loop: watch nodes and pods, keep the [`Snapshot`] and the [`Queue`] up to
//! date, take pods from the queue one at a time, decide with the [`Framework`], assume the pod
//! onto its node and bind it in the background.
//!
//! One task owns the snapshot and the queue. Everything else — the two watchers, the binding
//! and status-writing tasks — talks to it through one channel, so the state needs no locks and
//! a scheduling cycle always sees a consistent cluster:
//!
//! ```text
//!  watcher(nodes) ─┐
//!  watcher(pods)  ─┼─► channel ─► loop: apply every message, then schedule one pod
//!  bind results   ─┘                   ├─ fits: assume on the node, spawn bind + Scheduled event
//!                                      └─ fits nowhere: unschedulable queue, spawn
//!                                         PodScheduled=False status + FailedScheduling event
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::framework::{Framework, ScheduleError};
use crate::metrics::{AttemptResult, Metrics};
use crate::plugins;
use crate::queue::Queue;
use crate::snapshot::{PodInfo, Snapshot};

/// At most this many binding / status / event requests in flight at once.
const MAX_WRITES_IN_FLIGHT: usize = 64;

enum Msg {
    Node(Box<watcher::Event<Node>>),
    Pod(Box<watcher::Event<Pod>>),
    BindDone {
        uid: String,
        result: Result<(), kube::Error>,
    },
}

/// Where a relist (a watcher's `Init` … `InitDone`) stands.
#[derive(Default)]
struct Relist {
    active: bool,
    seen: HashSet<String>,
    done_once: bool,
}

pub struct Scheduler {
    client: Client,
    config: Config,
    framework: Framework,
    snapshot: Snapshot,
    queue: Queue,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    reporter: Reporter,
    writes: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    nodes_relist: Relist,
    pods_relist: Relist,
    /// When each in-flight pod was popped (for the attempt latency).
    popped: std::collections::HashMap<String, Instant>,
    lengths_published: Instant,
}

impl Scheduler {
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut framework = plugins::default_framework();
        framework.percentage_of_nodes_to_score = config.percentage_of_nodes_to_score;
        let reporter = Reporter::from(config.scheduler_name.as_str());
        let recorder = Recorder::new(client.clone(), reporter.clone());
        Scheduler {
            client,
            config,
            framework,
            snapshot: Snapshot::default(),
            queue: Queue::new(),
            metrics,
            recorder,
            reporter,
            writes: Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT)),
            tx,
            rx,
            nodes_relist: Relist::default(),
            pods_relist: Relist::default(),
            popped: Default::default(),
            lengths_published: Instant::now(),
        }
    }

    /// Schedules until `stop` is cancelled. A leader-elected wrapper calls this while it
    /// holds the lease and cancels `stop` when it loses it.
    pub async fn run(mut self, stop: CancellationToken) {
        self.spawn_watchers(stop.clone());
        loop {
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
            }
            let synced = self.nodes_relist.done_once && self.pods_relist.done_once;
            self.metrics
                .synced
                .store(synced, std::sync::atomic::Ordering::Relaxed);
            if synced && let Some(entry) = self.queue.pop(Instant::now()) {
                self.schedule_one(entry);
                self.publish_lengths(true);
                continue;
            }
            self.publish_lengths(false);
            let wakeup = self.queue.next_wakeup();
            tokio::select! {
                _ = stop.cancelled() => return,
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                _ = async {
                    match wakeup {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    /// Updates the pending-pods gauges (counting walks the queue: at most every 100ms while
    /// busy, always when idle).
    fn publish_lengths(&mut self, busy: bool) {
        let now = Instant::now();
        if busy && now.duration_since(self.lengths_published) < Duration::from_millis(100) {
            return;
        }
        self.lengths_published = now;
        let (active, backoff, unschedulable, _) = self.queue.lengths();
        self.metrics.set_pending(active, backoff, unschedulable);
    }

    fn spawn_watchers(&self, stop: CancellationToken) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        let tx = self.tx.clone();
        let stop2 = stop.clone();
        tokio::spawn(async move {
            let mut stream = watcher(nodes, watcher::Config::default())
                .default_backoff()
                .boxed();
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => return,
                    next = stream.next() => match next {
                        Some(Ok(ev)) => if tx.send(Msg::Node(Box::new(ev))).is_err() { return },
                        Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                        None => return,
                    }
                }
            }
        });
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut stream = watcher(pods, watcher::Config::default())
                .default_backoff()
                .boxed();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    next = stream.next() => match next {
                        Some(Ok(ev)) => if tx.send(Msg::Pod(Box::new(ev))).is_err() { return },
                        Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                        None => return,
                    }
                }
            }
        });
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Node(ev) => match *ev {
                watcher::Event::Init => {
                    self.nodes_relist.active = true;
                    self.nodes_relist.seen.clear();
                }
                watcher::Event::InitApply(node) => {
                    self.nodes_relist
                        .seen
                        .insert(node.metadata.name.clone().unwrap_or_default());
                    self.node_applied(node, now);
                }
                watcher::Event::InitDone => {
                    for name in self.snapshot.node_names() {
                        if !self.nodes_relist.seen.contains(&name) {
                            self.snapshot.remove_node(&name);
                        }
                    }
                    self.nodes_relist.active = false;
                    self.nodes_relist.done_once = true;
                }
                watcher::Event::Apply(node) => self.node_applied(node, now),
                watcher::Event::Delete(node) => {
                    self.snapshot
                        .remove_node(node.metadata.name.as_deref().unwrap_or_default());
                }
            },
            Msg::Pod(ev) => match *ev {
                watcher::Event::Init => {
                    self.pods_relist.active = true;
                    self.pods_relist.seen.clear();
                }
                watcher::Event::InitApply(pod) => {
                    self.pods_relist
                        .seen
                        .insert(pod.metadata.uid.clone().unwrap_or_default());
                    self.pod_applied(pod, now);
                }
                watcher::Event::InitDone => {
                    let gone: Vec<String> = self
                        .snapshot
                        .placed_uids()
                        .into_iter()
                        .chain(self.queue.uids())
                        .filter(|uid| !self.pods_relist.seen.contains(uid))
                        .collect();
                    for uid in gone {
                        self.pod_deleted(&uid, now);
                    }
                    self.pods_relist.active = false;
                    self.pods_relist.done_once = true;
                }
                watcher::Event::Apply(pod) => self.pod_applied(pod, now),
                watcher::Event::Delete(pod) => {
                    self.pod_deleted(pod.metadata.uid.as_deref().unwrap_or_default(), now)
                }
            },
            Msg::BindDone { uid, result } => self.bind_done(uid, result, now),
        }
    }

    fn node_applied(&mut self, node: Node, now: Instant) {
        if self.snapshot.upsert_node(Arc::new(node)) {
            self.queue.move_all(now);
        }
    }

    fn pod_applied(&mut self, pod: Pod, now: Instant) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let node = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded") | Some("Failed"));
        if let Some(node) = node {
            self.queue.remove(&uid);
            if terminal {
                // A finished pod frees its node's resources.
                if self.snapshot.remove_pod(&uid) {
                    self.queue.move_all(now);
                }
            } else {
                self.snapshot
                    .place_pod(Arc::new(PodInfo::new(Arc::new(pod))), &node, false);
            }
            return;
        }
        if self
            .snapshot
            .placement(&uid)
            .is_some_and(|(_, assumed)| assumed)
        {
            return; // our binding is on its way
        }
        let ours = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
            == self.config.scheduler_name;
        if !ours || terminal || pod.metadata.deletion_timestamp.is_some() {
            self.queue.remove(&uid);
            return;
        }
        self.queue.add_or_update(Arc::new(pod), now);
    }

    fn pod_deleted(&mut self, uid: &str, now: Instant) {
        self.queue.remove(uid);
        self.popped.remove(uid);
        if self.snapshot.remove_pod(uid) {
            self.queue.move_all(now);
        }
    }

    fn schedule_one(&mut self, entry: crate::queue::QueuedPod) {
        let started = Instant::now();
        let info = Arc::new(PodInfo::new(entry.pod.clone()));
        match self.framework.schedule(&info, &self.snapshot) {
            Ok(result) => {
                tracing::debug!(pod = %info.key(), node = %result.node,
                    evaluated = result.evaluated_nodes, feasible = result.feasible_nodes, "scheduled");
                self.snapshot.place_pod(info.clone(), &result.node, true);
                self.popped.insert(info.uid.clone(), started);
                self.spawn_bind(info, result.node);
            }
            Err(err) => {
                let message = err.to_string();
                tracing::info!(pod = %info.key(), %message, "unschedulable");
                self.queue.unschedulable(&info.uid, Instant::now());
                self.metrics
                    .attempt(AttemptResult::Unschedulable, started.elapsed());
                self.spawn_unschedulable(info, &err);
            }
        }
    }

    fn spawn_bind(&self, pod: Arc<PodInfo>, node: String) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        // A recorder of its own: a Scheduled event is never repeated, and the shared
        // recorder's cache (walked on every publish) would grow by one per pod.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let writes = self.writes.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _permit = writes.acquire_owned().await;
            let mut binding = Binding::default();
            binding.metadata.name = Some(pod.name.clone());
            binding.metadata.namespace = Some(pod.namespace.clone());
            binding.metadata.uid = Some(pod.uid.clone());
            binding.target = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.clone()),
                ..ObjectReference::default()
            };
            let result = api
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &pod.name,
                    &PostParams::default(),
                    &binding,
                )
                .await
                .map(|_| ());
            let ok = result.is_ok();
            let _ = tx.send(Msg::BindDone {
                uid: pod.uid.clone(),
                result,
            });
            if ok {
                let note = format!("Successfully assigned {} to {node}", pod.key());
                let event = KubeEvent {
                    type_: EventType::Normal,
                    reason: "Scheduled".into(),
                    note: Some(note),
                    action: "Binding".into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &pod.pod.object_ref(&())).await {
                    tracing::warn!(pod = %pod.key(), error = %e, "cannot record the Scheduled event");
                }
            }
        });
    }

    fn bind_done(&mut self, uid: String, result: Result<(), kube::Error>, now: Instant) {
        let took = self
            .popped
            .remove(&uid)
            .map(|t| now.duration_since(t))
            .unwrap_or_default();
        match result {
            Ok(()) => {
                self.queue.done(&uid);
                self.metrics.attempt(AttemptResult::Scheduled, took);
            }
            Err(err) => {
                self.metrics.attempt(AttemptResult::Error, took);
                // Forget the assumption (unless the watch already showed it bound).
                if self
                    .snapshot
                    .placement(&uid)
                    .is_some_and(|(_, assumed)| assumed)
                {
                    self.snapshot.remove_pod(&uid);
                }
                let code = match &err {
                    kube::Error::Api(s) => Some(s.code),
                    _ => None,
                };
                tracing::warn!(%uid, error = %err, "binding failed");
                match code {
                    // Gone, or already bound / being deleted: the watch tells the rest.
                    Some(404) | Some(409) => {
                        self.queue.remove(&uid);
                    }
                    _ => self.queue.retry_after_backoff(&uid, now),
                }
            }
        }
    }

    /// `PodScheduled=False` with upstream's message (when it changed) and a
    /// `FailedScheduling` event.
    fn spawn_unschedulable(&self, pod: Arc<PodInfo>, err: &ScheduleError) {
        let message = err.to_string();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let recorder = self.recorder.clone();
        let writes = self.writes.clone();
        let current = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
        let unchanged = current
            == Some((
                "False".into(),
                Some("Unschedulable".into()),
                Some(message.clone()),
            ));
        tokio::spawn(async move {
            let _permit = writes.acquire_owned().await;
            if !unchanged {
                let now = jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_default();
                let patch = json!({"status": {"conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": now.to_string(),
                }]}});
                if let Err(e) = api
                    .patch_status(
                        &pod.name,
                        &PatchParams::default(),
                        &Patch::Strategic(&patch),
                    )
                    .await
                {
                    tracing::warn!(pod = %pod.key(), error = %e, "cannot set PodScheduled=False");
                }
            }
            let event = KubeEvent {
                type_: EventType::Warning,
                reason: "FailedScheduling".into(),
                note: Some(message),
                action: "Scheduling".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &pod.pod.object_ref(&())).await {
                tracing::warn!(pod = %pod.key(), error = %e, "cannot record the FailedScheduling event");
            }
        });
    }
}
