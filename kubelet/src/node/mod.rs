//! The Node: what it is ([`object`]), what the machine has ([`host`],
//! [`address`], [`quantity`]), when it is under pressure ([`pressure`]), and the
//! two heartbeats ([`lease`] and the status loop in [`NodeAgent::run`]).

pub mod address;
pub mod host;
pub mod lease;
pub mod object;
pub mod pod_cidr;
pub mod pressure;
pub mod quantity;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use host::HostPaths;
use object::{NodeFacts, Readiness};
use pressure::Thresholds;

/// What the runtime said at its last check: whether it is ready, and the
/// images it holds (the Node lists them, largest first, as upstream).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeView {
    pub readiness: Readiness,
    pub images: Vec<k8s_openapi::api::core::v1::ContainerImage>,
}

/// Registers the Node and keeps it alive.
pub struct NodeAgent {
    pub client: Client,
    pub facts: NodeFacts,
    pub paths: HostPaths,
    pub root_dir: PathBuf,
    pub thresholds: Thresholds,
    pub status_every: Duration,
    pub lease_seconds: i32,
    /// The registered Node (its uid owns the Lease).
    node: Mutex<Option<Node>>,
    conditions: Mutex<Vec<NodeCondition>>,
    /// Post the status now, not at the next tick (the runtime's readiness
    /// changed: a node that becomes Ready says so at once).
    pub status_now: tokio::sync::Notify,
}

impl NodeAgent {
    pub fn new(
        client: Client,
        facts: NodeFacts,
        root_dir: PathBuf,
        thresholds: Thresholds,
        status_every: Duration,
        lease_seconds: i32,
    ) -> NodeAgent {
        NodeAgent {
            client,
            facts,
            paths: HostPaths::default(),
            root_dir,
            thresholds,
            status_every,
            lease_seconds,
            node: Mutex::new(None),
            conditions: Mutex::new(Vec::new()),
            status_now: tokio::sync::Notify::new(),
        }
    }

    /// Creates the Node, or takes over an existing one of the same name (a
    /// restarted kubelet): its labels are brought up to date, its taints and
    /// podCIDR are left as the cluster set them.
    pub async fn register(&self) -> Result<Node, kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let want = self.facts.node();
        let node = match api.create(&PostParams::default(), &want).await {
            Ok(node) => {
                tracing::info!(node = %self.facts.name, ip = %self.facts.ip, "registered the Node");
                node
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let patch = serde_json::json!({"metadata": {"labels": want.metadata.labels}});
                let node = api
                    .patch(
                        &self.facts.name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                tracing::info!(node = %self.facts.name, "the Node exists: taking it over");
                node
            }
            Err(e) => return Err(e),
        };
        *self.conditions.lock().await = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        *self.node.lock().await = Some(node.clone());
        Ok(node)
    }

    /// Posts the status once: conditions from the machine now, capacity,
    /// addresses and node info.
    pub async fn post_status(&self, runtime: &RuntimeView) -> Result<(), kube::Error> {
        let readiness = &runtime.readiness;
        let sample = host::sample(&self.paths, &self.root_dir).ok();
        let pressures = match sample {
            Some(s) => pressure::conditions(&s, self.facts.host.memory_bytes, &self.thresholds),
            // Unreadable: no pressure claimed (the log says why once per update).
            None => {
                tracing::warn!(root = %self.root_dir.display(), "cannot read memory, disk or pid figures");
                pressure::conditions(
                    &host::Sample {
                        memory_available: u64::MAX,
                        nodefs_available: u64::MAX,
                        nodefs_capacity: u64::MAX,
                        pids_available: u64::MAX,
                        pid_max: u64::MAX,
                    },
                    self.facts.host.memory_bytes,
                    &Thresholds::default(),
                )
            }
        };
        let mut previous = self.conditions.lock().await;
        let conditions = object::conditions(&previous, &pressures, readiness, Timestamp::now());
        let status = self
            .facts
            .status(conditions.clone(), runtime.images.clone());
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({ "status": status });
        api.patch_status(
            &self.facts.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        *previous = conditions;
        Ok(())
    }

    /// The two heartbeats until `stop`: the Lease every quarter of its
    /// duration, the status every `status_every`. Failures are logged and
    /// retried at the next tick; the Node is registered again if it was deleted.
    pub async fn run(
        self: Arc<Self>,
        runtime: impl Fn() -> RuntimeView + Send + 'static,
        stop: CancellationToken,
    ) {
        let lease_agent = self.clone();
        let lease_stop = stop.clone();
        let lease = tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease::renew_interval(lease_agent.lease_seconds));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = lease_stop.cancelled() => return,
                }
                let node = lease_agent.node.lock().await.clone();
                let Some(node) = node else { continue };
                if let Err(e) =
                    lease::renew(&lease_agent.client, &node, lease_agent.lease_seconds).await
                {
                    tracing::warn!(error = %e, "cannot renew the node Lease");
                }
            }
        });
        let mut tick = tokio::time::interval(self.status_every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.status_now.notified() => {}
                _ = stop.cancelled() => break,
            }
            match self.post_status(&runtime()).await {
                Ok(()) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    tracing::warn!("the Node was deleted: registering it again");
                    if let Err(e) = self.register().await {
                        tracing::warn!(error = %e, "cannot register the Node");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot post the node status"),
            }
        }
        let _ = lease.await;
    }
}
