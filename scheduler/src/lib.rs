//! `skiff-scheduler`: binds each pending pod to the best node, the way kube-scheduler does.
//!
//! # Where to start reading
//!
//! - [`framework`]: the filter and score plugin traits and one scheduling cycle
//!   ([`framework::Framework::schedule`]); also upstream's "0/3 nodes are available: …"
//!   message ([`framework::FitError`]).
//! - [`plugins`]: one small module per plugin (NodeResourcesFit, TaintToleration,
//!   NodeAffinity, …) and [`plugins::default_framework`], the list that puts them in order.
//! - [`snapshot`]: the nodes and the pods on them (assumed pods included) that plugins read;
//!   [`resources`]: quantities and a pod's requests as Kubernetes computes them.
//! - [`scheduler`]: the loop — watchers, the [`queue`] (active, backoff, unschedulable),
//!   assume-then-bind through `pods/binding`, status and events.
//! - [`run`] / [`start`]: how the program starts (client, `/healthz`, `/metrics`).
//!
//! # Adding a plugin (one file, one line)
//!
//! 1. Create `src/plugins/prefer_even_nodes.rs`:
//!
//!    ```ignore
//!    use crate::framework::{CycleState, ScorePlugin};
//!    use crate::snapshot::{NodeInfo, PodInfo};
//!
//!    /// Prefers nodes whose name ends in an even digit (a classroom example).
//!    pub struct PreferEvenNodes;
//!
//!    impl ScorePlugin for PreferEvenNodes {
//!        fn name(&self) -> &'static str { "PreferEvenNodes" }
//!        fn score(&self, _pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> i64 {
//!            let even = node.name.ends_with(['0', '2', '4', '6', '8']);
//!            if even { 100 } else { 0 }
//!        }
//!    }
//!    ```
//!
//!    (A filter implements [`framework::FilterPlugin`] instead and returns
//!    [`framework::Status::unschedulable`] with the reason `kubectl describe` should show.)
//! 2. Register it: `pub mod prefer_even_nodes;` in `src/plugins/mod.rs` and one line in
//!    [`plugins::default_framework`]:
//!    `(Box::new(prefer_even_nodes::PreferEvenNodes), 1),` — the number is its weight.
//!
//! Plugins are pure functions of the pod and the [`snapshot::Snapshot`]: test them with a
//! table of (pod, node, expected status or score), as every plugin module here does.
//!
//! Not yet: leader election (`--leader-elect` is accepted and ignored: run one scheduler),
//! preemption, inter-pod affinity, volume-related plugins, `ScheduleAnyway` topology scoring.

pub mod bench;
mod config;
pub mod framework;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod snapshot;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use metrics::Metrics;

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none found: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot build the API client: {0}")]
    Client(#[from] kube::Error),
    #[error(
        "--bind-address {0}: /healthz and /metrics are plain HTTP for now, so only a loopback \
         address is allowed"
    )]
    NotLoopback(IpAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The API client from `--kubeconfig`, or inferred (KUBECONFIG, ~/.kube/config, in-cluster).
pub async fn client(config: &Config) -> Result<Client, Error> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let err = |source| Error::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(kube_config)?)
}

/// A running scheduler.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` are served (plain HTTP).
    pub health_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Connects, serves health and metrics, and starts scheduling.
pub async fn start(config: Config) -> Result<Running, Error> {
    if config.leader_elect {
        tracing::warn!("--leader-elect is not implemented yet: scheduling without a lease");
    }
    if !config.bind_address.is_loopback() {
        return Err(Error::NotLoopback(config.bind_address));
    }
    let client = client(&config).await?;
    let addr = SocketAddr::new(config.bind_address, config.secure_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let health_addr = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    let metrics = Arc::new(Metrics::default());
    let stop = CancellationToken::new();
    let profile = config.scheduler_name.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |State(m): State<Arc<Metrics>>| async move { m.render(&profile) }),
        )
        .with_state(metrics.clone());
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "health server failed");
        }
    });
    tracing::info!(%health_addr, scheduler = %config.scheduler_name, "skiff-scheduler started");
    let scheduler = scheduler::Scheduler::new(client, config, metrics.clone());
    let loop_stop = stop.clone();
    let main = tokio::spawn(async move { scheduler.run(loop_stop).await });
    Ok(Running {
        health_addr,
        metrics,
        stop,
        tasks: vec![main, http],
    })
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.synced.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

/// Schedules until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let running = start(config).await?;
    shutdown.await;
    running.stop().await;
    Ok(())
}
