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
//! Leader election (`--leader-elect`, on by default) takes the Lease kube-system/kube-scheduler
//! before scheduling, with [`skiff_proto::leader`], the controller manager's elector.
//!
//! Not yet: preemption, inter-pod affinity, volume-related plugins, `ScheduleAnyway` topology scoring.

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
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use metrics::Metrics;

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] skiff_proto::client::ClientError),
    #[error("lost the leader election lease kube-system/{LEASE_NAME}")]
    LostLease,
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

/// The Lease instances of the scheduler share, as upstream's.
pub const LEASE_NAME: &str = "kube-scheduler";

/// A running scheduler.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` are served (plain HTTP).
    pub health_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// The scheduling loop (behind the election): true when the Lease was lost.
    main: JoinHandle<bool>,
    http: JoinHandle<()>,
}

impl Running {
    /// Stops scheduling and serving; `Err(LostLease)` when the scheduler had
    /// already stopped because another instance took its Lease.
    pub async fn stop(self) -> Result<(), Error> {
        self.stop.cancel();
        let lost = self.main.await.unwrap_or(false);
        let _ = self.http.await;
        if lost { Err(Error::LostLease) } else { Ok(()) }
    }

    /// Resolves when the scheduler stops on its own (its Lease was lost).
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }
}

/// Connects, serves health and metrics, and starts scheduling.
pub async fn start(config: Config) -> Result<Running, Error> {
    if !config.bind_address.is_loopback() {
        return Err(Error::NotLoopback(config.bind_address));
    }
    let client = skiff_proto::client::connect(config.kubeconfig.as_deref()).await?;
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
    let elector = config.leader.elector(client.clone(), LEASE_NAME);
    let scheduler = scheduler::Scheduler::new(client, config, metrics.clone());
    let main = tokio::spawn(lead(elector, scheduler, stop.clone()));
    Ok(Running {
        health_addr,
        metrics,
        stop,
        main,
        http,
    })
}

/// Schedules while this instance holds the Lease (or always, without an
/// election); returns whether the Lease was lost, after stopping `stop`'s
/// tasks: like kube-scheduler, a scheduler that lost its Lease does not
/// come back as a follower — the process ends and is restarted.
async fn lead(
    elector: Option<skiff_proto::leader::Elector>,
    scheduler: scheduler::Scheduler,
    stop: CancellationToken,
) -> bool {
    if let Some(e) = &elector {
        tokio::select! {
            _ = e.acquire() => {}
            _ = stop.cancelled() => return false,
        }
    }
    let scheduling = tokio::spawn(scheduler.run(stop.clone()));
    let lost = match &elector {
        Some(e) => tokio::select! {
            _ = e.keep() => true,
            _ = stop.cancelled() => false,
        },
        None => {
            stop.cancelled().await;
            false
        }
    };
    stop.cancel();
    let _ = scheduling.await;
    if let (Some(e), false) = (&elector, lost) {
        e.release().await;
    }
    lost
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
    tokio::select! {
        _ = shutdown => {}
        _ = running.stopped() => {}
    }
    running.stop().await?;
    Ok(())
}
