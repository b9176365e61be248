//! `skiff-kubelet`: the node agent.
//!
//! # Where to start reading
//!
//! - [`run`]: how the program starts — client, the machine's facts, the Node's
//!   address, registration, then the heartbeats.
//! - [`node`]: the Node object and its status ([`node::object`]), what is read
//!   from the machine ([`node::host`]), which address is reported and why
//!   ([`node::address`]), pressure conditions from eviction thresholds
//!   ([`node::pressure`]), and the Lease heartbeat ([`node::lease`]).
//!
//! Not yet (issue 7 goes on): running pods. Until the pod workers drive the
//! embedded runtime (`kubelet/runtime`, issue 6) the Node reports
//! `Ready=False` with the reason, so nothing is scheduled onto a node that
//! cannot run it.

pub mod config;
pub mod node;

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::Config;
use node::NodeAgent;
use node::address::{self, AddressError};
use node::object::{self, NodeFacts, NodeFlagError, Readiness};
use node::pressure::{ThresholdError, Thresholds};
use node::quantity::{QuantityError, Reserved};

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] skiff_proto::client::ClientError),
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Flag(#[from] NodeFlagError),
    #[error("--system-reserved/--kube-reserved: {0}")]
    Reserved(#[from] QuantityError),
    #[error("--eviction-hard: {0}")]
    Eviction(#[from] ThresholdError),
    #[error("--root-dir {path}: {source}")]
    RootDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot register the Node: {0}")]
    Register(kube::Error),
}

/// What the Node reports as long as no runtime drives its pods.
pub const NOT_READY_YET: &str = "container runtime not connected: this kubelet registers and heartbeats but does not run pods yet";

/// Everything [`run`] decides before talking to the API server: the Node's
/// name, address, capacity and flags (pure, so `--help`-level mistakes fail
/// before any network traffic).
pub fn facts(config: &Config) -> Result<(NodeFacts, Thresholds), Error> {
    std::fs::create_dir_all(&config.root_dir).map_err(|source| Error::RootDir {
        path: config.root_dir.clone(),
        source,
    })?;
    let host = node::host::info(&node::host::HostPaths::default(), &config.root_dir).map_err(
        |source| Error::RootDir {
            path: config.root_dir.clone(),
            source,
        },
    )?;
    let hostname = skiff_proto::leader::hostname().to_lowercase();
    let name = config
        .hostname_override
        .clone()
        .unwrap_or_else(|| hostname.clone());
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let choice = address::choose(
        config.node_ip,
        &address::local_candidates(),
        address::default_route_interface(&route).as_deref(),
    )?;
    tracing::info!(ip = %choice.ip, why = %choice.why, "node address");
    for other in &choice.others {
        tracing::info!(
            "also on this machine: {} on {} (pass --node-ip={} to report it instead)",
            other.ip,
            other.interface,
            other.ip
        );
    }
    let thresholds = Thresholds::parse(&config.eviction_hard)?;
    let mut reserved =
        Reserved::parse(&config.system_reserved)?.plus(&Reserved::parse(&config.kube_reserved)?);
    // Upstream's allocatable: capacity - kube-reserved - system-reserved -
    // the hard memory eviction threshold.
    reserved.memory += thresholds.memory.map_or(0, |t| t.of(host.memory_bytes));
    Ok((
        NodeFacts {
            name,
            ip: choice.ip,
            hostname,
            host,
            max_pods: config.max_pods,
            reserved,
            labels: object::parse_labels(&config.node_labels)?,
            taints: object::parse_taints(&config.register_with_taints)?,
        },
        thresholds,
    ))
}

/// Registers the Node and heartbeats until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let (facts, thresholds) = facts(&config)?;
    let client = skiff_proto::client::connect(config.kubeconfig.as_deref()).await?;
    let agent = Arc::new(NodeAgent::new(
        client,
        facts,
        config.root_dir.clone(),
        thresholds,
        config.node_status_update_frequency,
        config.node_lease_duration_seconds,
    ));
    agent.register().await.map_err(Error::Register)?;
    let stop = CancellationToken::new();
    let heartbeats = tokio::spawn(
        agent
            .clone()
            .run(|| Readiness::NotReady(NOT_READY_YET.into()), stop.clone()),
    );
    shutdown.await;
    stop.cancel();
    let _ = heartbeats.await;
    Ok(())
}
