//! `skiff-controller-manager`: the control loops that move the cluster toward
//! what users declared.
//!
//! Where to start reading:
//!
//! - [`run`]: what starts — one watch per kind ([`cache`]), the controllers'
//!   work queues ([`queue`]) and workers ([`worker`]), `/healthz` and `/metrics`.
//! - [`deployment::plan`] and [`replicaset::plan`]: every decision, as pure
//!   functions of what the caches hold (table-tested); the `controller`
//!   module beside each applies a plan through [`client::Cluster`].
//! - [`deployment::rolling`]: maxSurge / maxUnavailable, rounded as upstream.
//! - [`expectations`]: why the ReplicaSet controller never creates twice.

pub mod cache;
pub mod client;
pub mod deployment;
pub mod expectations;
pub mod owner;
pub mod queue;
pub mod replicaset;
pub mod server;
pub mod worker;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cache::{Handlers, Synced};
use crate::client::KubeCluster;
use crate::deployment::controller::DeploymentController;
use crate::expectations::Expectations;
use crate::queue::WorkQueue;
use crate::replicaset::controller::ReplicaSetController;
use crate::worker::{ControllerMetrics, run_workers};

/// Command line (kube-controller-manager's flag names).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "skiff-controller-manager",
    version,
    about = "Skiff's controller manager: ReplicaSet and Deployment controllers (more to come)."
)]
pub struct Config {
    /// kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// CIDR range of the cluster's pods (node IPAM hands out a /24 per node).
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,

    /// How long a node may be silent before it is marked NotReady.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// Take a Lease before running the controllers, so that only one of
    /// several instances acts. Not implemented yet: accepted for
    /// compatibility; run one instance at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub leader_elect: bool,

    /// Deployments reconciled at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,

    /// ReplicaSets reconciled at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,

    /// Address for /healthz, /readyz and /metrics (plain HTTP).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// Port for /healthz, /readyz and /metrics (0: any free port; see the log).
    #[arg(long, default_value_t = 10257)]
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        <Config as clap::Parser>::parse_from(["skiff-controller-manager"])
    }
}

/// Why the controller manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubeconfig {path}: {why}")]
    Kubeconfig { path: PathBuf, why: String },
    #[error("cannot build a client: {0}")]
    Client(#[from] kube::Error),
    #[error("cannot serve /healthz on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A client from `--kubeconfig` (or kube-rs' usual search).
pub async fn client(config: &Config) -> Result<Client, Error> {
    match &config.kubeconfig {
        Some(path) => {
            let err = |why: String| Error::Kubeconfig {
                path: path.clone(),
                why,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
            let cfg =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| err(e.to_string()))?;
            Ok(Client::try_from(cfg)?)
        }
        None => Ok(Client::try_default().await?),
    }
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let client = client(&config).await?;
    run_with_client(config, client, shutdown).await
}

/// [`run`] with a client already built (tests, `skiff up`).
pub async fn run_with_client(
    config: Config,
    client: Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let instance = hostname();
    let cluster = Arc::new(KubeCluster::new(client.clone(), instance));
    let (caches, writers) = cache::caches();
    let synced = Synced::default();
    let expectations = Arc::new(Expectations::default());

    let rs_ctl = Arc::new(ReplicaSetController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        expectations,
        queue: WorkQueue::new(),
    });
    let d_ctl = Arc::new(DeploymentController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        queue: WorkQueue::new(),
    });
    let metrics = server::Metrics {
        controllers: vec![
            (
                deployment::controller::NAME,
                Arc::new(ControllerMetrics::default()),
            ),
            (
                replicaset::controller::NAME,
                Arc::new(ControllerMetrics::default()),
            ),
        ],
        synced: synced.clone(),
    };
    let addr = SocketAddr::new(config.bind_address, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(%local, "serving /healthz, /readyz and /metrics");
    let server = tokio::spawn(server::serve(listener, metrics.clone()));

    let handlers = {
        let (r1, r2, r3) = (rs_ctl.clone(), rs_ctl.clone(), d_ctl.clone());
        let (d1, d2) = (d_ctl.clone(), d_ctl.clone());
        Handlers {
            deployments: Box::new(move |c| d1.on_deployment(c)),
            replica_sets: Box::new(move |c| {
                match &c {
                    cache::Change::Applied { old, new } => {
                        r1.on_replica_set(cache::Change::Applied {
                            old: old.clone(),
                            new,
                        });
                    }
                    cache::Change::Deleted(rs) => r1.on_replica_set(cache::Change::Deleted(rs)),
                    cache::Change::Relisted => r1.on_replica_set(cache::Change::Relisted),
                }
                d2.on_replica_set(c);
            }),
            pods: Box::new(move |c| {
                match &c {
                    cache::Change::Applied { old, new } => {
                        r2.on_pod(cache::Change::Applied {
                            old: old.clone(),
                            new,
                        });
                    }
                    cache::Change::Deleted(p) => r2.on_pod(cache::Change::Deleted(p)),
                    cache::Change::Relisted => r2.on_pod(cache::Change::Relisted),
                }
                r3.on_pod(c);
            }),
        }
    };
    let watches = cache::spawn_watches(&client, &caches, writers, &synced, handlers);
    tracing::info!("controllers started: deployment, replicaset");
    let workers = vec![
        tokio::spawn(run_workers(
            d_ctl.clone(),
            d_ctl.queue.clone(),
            metrics.controllers[0].1.clone(),
            config.concurrent_deployment_syncs,
        )),
        tokio::spawn(run_workers(
            rs_ctl.clone(),
            rs_ctl.queue.clone(),
            metrics.controllers[1].1.clone(),
            config.concurrent_replicaset_syncs,
        )),
    ];

    shutdown.await;
    tracing::info!("shutting down");
    d_ctl.queue.shut_down();
    rs_ctl.queue.shut_down();
    for w in watches {
        w.abort();
    }
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    server.abort();
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "skiff-controller-manager".into())
}
