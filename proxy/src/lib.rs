//! `skiff-proxy` makes Services work on one node, as kube-proxy does in its
//! nftables mode.
//!
//! Where to start: [`run`] watches Services and EndpointSlices; after every
//! change (debounced) [`model::service_ports`] turns them into service ports
//! with their endpoints and [`rules::ruleset`] into one nftables ruleset,
//! which [`nft::Nft`] loads in one transaction — the table is rebuilt whole
//! each time, so a sync is atomic and nothing stale survives it. The table
//! goes on clean shutdown and with `--cleanup`.

pub mod model;
pub mod nft;
pub mod rules;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::nft::Nft;

/// Command-line flags of `skiff-proxy` (kube-proxy's names where it has one).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Kubeconfig to reach the API server; default: in-cluster or ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (default: the host name), for traffic policy Local.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The pods' range: traffic to a Service from outside it is masqueraded.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// The ClusterIP range: packets to its unallocated addresses are dropped.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// The cluster DNS Service's IP, served on the node by the DNS server, not by these rules.
    #[arg(long, default_value = "10.96.0.10")]
    pub cluster_dns: String,
    /// The nftables table (family ip) the proxy owns; nothing else touches it.
    #[arg(long, default_value = "skiff_proxy")]
    pub nft_table: String,
    /// Remove the table and exit.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] skiff_proto::client::ClientError),
    #[error(transparent)]
    Nft(#[from] nft::NftError),
}

impl Config {
    fn settings(&self) -> rules::Settings {
        rules::Settings {
            table: self.nft_table.clone(),
            cluster_cidr: self.cluster_cidr.clone(),
            service_cidr: self.service_cluster_ip_range.clone(),
            cluster_dns: (!self.cluster_dns.is_empty()).then(|| self.cluster_dns.clone()),
        }
    }
}

/// Runs the proxy with the real `nft` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    run_with(config, Arc::new(nft::RealNft), shutdown).await
}

/// [`run`] with the caller's `nft` (tests: [`nft::RecordingNft`]).
pub async fn run_with<N: Nft>(
    config: Config,
    nft: Arc<N>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    if config.cleanup {
        nft.apply(&rules::delete(&config.nft_table))?;
        tracing::info!(table = %config.nft_table, "removed");
        return Ok(());
    }
    let client = skiff_proto::client::connect(config.kubeconfig.as_deref()).await?;
    let node = config.hostname_override.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    });
    let changed = Arc::new(tokio::sync::Notify::new());
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let svc_events = watcher::watcher(Api::<Service>::all(client.clone()), Default::default())
        .default_backoff()
        .reflect(svc_writer)
        .boxed();
    let slice_events = watcher::watcher(
        Api::<EndpointSlice>::all(client.clone()),
        Default::default(),
    )
    .default_backoff()
    .reflect(slice_writer)
    .boxed();
    // Event handlers only say "something changed"; the sync loop reads the stores.
    let notify = changed.clone();
    let watch = tokio::spawn(async move {
        let mut events = futures::stream::select(
            svc_events.map(|e| e.map(|_| ()).map_err(|e| e.to_string())),
            slice_events.map(|e| e.map(|_| ()).map_err(|e| e.to_string())),
        );
        while let Some(e) = events.next().await {
            match e {
                Ok(()) => notify.notify_one(),
                Err(e) => tracing::warn!(error = %e, "watching Services and EndpointSlices"),
            }
        }
    });
    let settings = config.settings();
    let sync = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let mut last = String::new();
        loop {
            let started = Instant::now();
            let ports = model::service_ports(
                &snapshot(&services),
                &snapshot(&slices),
                Some(node.as_str()),
            );
            let ruleset = rules::ruleset(&ports, &settings);
            if ruleset != last {
                match nft.apply(&ruleset) {
                    Ok(()) => {
                        tracing::info!(
                            service_ports = ports.len(),
                            ms = started.elapsed().as_secs_f64() * 1000.0,
                            "rules synced"
                        );
                        last = ruleset;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot load the rules"),
                }
            }
            changed.notified().await;
            // Many events arrive together (a rollout): one sync for them.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = sync => {}
        _ = shutdown => {}
    }
    watch.abort();
    nft.apply(&rules::delete(&config.nft_table))?;
    tracing::info!(table = %config.nft_table, "stopped; table removed");
    Ok(())
}

fn snapshot<K: kube::Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state().iter().map(|o| o.as_ref().clone()).collect()
}
