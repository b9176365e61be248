//! `skiff-proxy` makes Services work on one node, as kube-proxy does in its
//! nftables mode.
//!
//! Where to start: [`run`] watches Services and EndpointSlices; after every
//! change (debounced) [`model::service_ports`] turns them into service ports
//! with their endpoints and [`rules::programme`] into what the nftables
//! table should hold. The first sync loads the table whole
//! ([`rules::full`]: stale rules from an earlier run go); each later one
//! loads only the difference ([`rules::update`]), each in one transaction
//! through [`nft::Nft`]. After a failed load the next sync is whole again.
//! The table goes on clean shutdown and with `--cleanup`. The same stores feed the
//! cluster DNS server ([`dns`]), which every node's proxy runs. With
//! `--host-gw` (the default) it also watches Nodes and routes every other
//! node's pod CIDR through that node's InternalIP ([`routes`]).
//!
//! `--mode userspace` replaces the rules with the proxy's own listeners on
//! every ClusterIP and NodePort ([`userspace`]), for machines without
//! nftables; the rest (model, DNS, routes) is the same.

pub mod bench;
pub mod dns;
pub mod metrics;
pub mod model;
pub mod nft;
pub mod routes;
pub mod rules;
pub mod userspace;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::nft::Nft;

/// How Services are implemented on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Kernel rules (DNAT): no copy of the data through the proxy.
    Nftables,
    /// The proxy listens on every ClusterIP and NodePort and relays.
    Userspace,
}

/// Command-line flags of `skiff-proxy` (kube-proxy's names where it has one).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// nftables (kernel rules) or userspace (the proxy relays; for machines without nftables).
    #[arg(
        long,
        visible_alias = "proxy-mode",
        value_enum,
        default_value = "nftables"
    )]
    pub mode: Mode,
    /// Userspace mode: how long a UDP session with no datagram either way is kept.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub udp_timeout: Duration,
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
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Serve cluster DNS on --cluster-dns (and keep the kube-system/kube-dns Service).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub serve_dns: bool,
    /// Where DNS listens (default: --cluster-dns, put on --dns-interface when not local).
    #[arg(long)]
    pub dns_bind_address: Option<std::net::IpAddr>,
    /// The DNS port (0: any free port, for tests).
    #[arg(long, default_value_t = 53)]
    pub dns_port: u16,
    /// Where the DNS address goes when the node does not have it: `lo`, or
    /// the name of a dummy interface to make (needs the `dummy` module).
    #[arg(long, default_value = "lo")]
    pub dns_interface: String,
    /// Resolvers for names outside the cluster domain, `IP` or `IP:PORT`
    /// (default: the nameservers of /etc/resolv.conf).
    #[arg(long, value_delimiter = ',')]
    pub dns_upstream: Vec<String>,
    /// The nftables table (family ip) the proxy owns; nothing else touches it.
    #[arg(long, default_value = "skiff_proxy")]
    pub nft_table: String,
    /// Route every other node's pod CIDR through its InternalIP (host-gw:
    /// the nodes must share one L2 network, as VMs on one virtual switch).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub host_gw: bool,
    /// Where /metrics is served (`host:port`; port 0: any free port; empty: off).
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: String,
    /// Remove the table (and the host-gw routes) and exit.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] skiff_proto::client::ClientError),
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    #[error("{0}")]
    Flags(String),
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

    /// Where and how DNS is served; `None` when it is off.
    fn dns_settings(&self) -> Result<Option<dns::DnsSettings>, Error> {
        if !self.serve_dns {
            return Ok(None);
        }
        let cluster_dns: Option<std::net::IpAddr> = self.cluster_dns.parse().ok();
        let Some(address) = self.dns_bind_address.or(cluster_dns) else {
            return Ok(None);
        };
        let upstreams = if self.dns_upstream.is_empty() {
            let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            dns::upstream::nameservers(&conf, &[address])
        } else {
            dns::upstream::parse(&self.dns_upstream).map_err(Error::Flags)?
        };
        Ok(Some(dns::DnsSettings {
            address,
            port: self.dns_port,
            domain: self.cluster_domain.clone(),
            interface: self.dns_interface.clone(),
            upstreams,
        }))
    }
}

/// Runs the proxy with the real `nft` and `ip` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    run_with(
        config,
        Arc::new(nft::RealNft),
        Arc::new(dns::link::IpLink),
        Arc::new(routes::IpRoutes),
        shutdown,
    )
    .await
}

/// [`run`] with the caller's `nft`, links and routes (tests: the recording fakes).
pub async fn run_with<N: Nft>(
    config: Config,
    nft: Arc<N>,
    links: Arc<dyn dns::link::Links>,
    host_routes: Arc<dyn routes::Routes>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let dns_settings = config.dns_settings()?;
    if config.cleanup {
        // The table may be left over from the other mode: try it in both,
        // but only the nftables mode needs nft to be there.
        match nft.apply(&rules::delete(&config.nft_table)) {
            Err(e) if config.mode == Mode::Nftables => return Err(e.into()),
            _ => {}
        }
        if config.host_gw {
            routes::sync(host_routes.as_ref(), &[]);
        }
        if let Some(s) = &dns_settings {
            links
                .remove(&s.interface, s.address)
                .map_err(|e| Error::Flags(e.to_string()))?;
        }
        tracing::info!(table = %config.nft_table, "removed");
        return Ok(());
    }
    let client = skiff_proto::client::connect(config.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(metrics::Metrics::default());
    // Like DNS: no metrics (port taken) leaves Services working.
    let metrics_server = if config.metrics_bind_address.is_empty() {
        None
    } else {
        match metrics::serve(&config.metrics_bind_address, metrics.clone()).await {
            Ok((local, task)) => {
                tracing::info!(%local, "serving /metrics");
                Some(task)
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics are not served");
                None
            }
        }
    };
    // DNS trouble (port 53 taken, no root) leaves Services working.
    let dns = match &dns_settings {
        Some(s) => match dns::Dns::start(s, links.clone()).await {
            Ok(d) => {
                ensure_dns_service(&client, s.address).await;
                Some(d)
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster DNS is not served");
                None
            }
        },
        None => None,
    };
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
    .map({
        let metrics = metrics.clone();
        move |e| {
            // Changes only: the initial list has nothing to program yet.
            if let Ok(watcher::Event::Apply(s) | watcher::Event::Delete(s)) = &e {
                metrics.note_change(s, SystemTime::now());
            }
            e
        }
    })
    .boxed();
    let (nodes, node_writer) = reflector::store::<Node>();
    // Without host-gw the Nodes are not watched at all.
    let node_events = if config.host_gw {
        watcher::watcher(Api::<Node>::all(client.clone()), Default::default())
            .default_backoff()
            .reflect(node_writer)
            .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
            .boxed()
    } else {
        futures::stream::pending().boxed()
    };
    // Event handlers only say "something changed"; the sync loop reads the stores.
    let notify = changed.clone();
    let watch = tokio::spawn(async move {
        let mut events = futures::stream::select_all([
            svc_events
                .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
                .boxed(),
            slice_events
                .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
                .boxed(),
            node_events,
        ]);
        while let Some(e) = events.next().await {
            match e {
                Ok(()) => notify.notify_one(),
                Err(e) => tracing::warn!(error = %e, "watching Services and EndpointSlices"),
            }
        }
    });
    let settings = config.settings();
    let mut relay = match config.mode {
        Mode::Nftables => None,
        Mode::Userspace => {
            // A table left by an earlier nftables run would catch the
            // packets before our sockets do.
            if let Err(e) = nft.apply(&rules::delete(&config.nft_table)) {
                tracing::debug!(error = %e, "no nftables table to remove");
            }
            Some(userspace::Userspace::new(links.clone(), config.udp_timeout))
        }
    };
    let sync = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        if config.host_gw {
            let _ = nodes.wait_until_ready().await;
        }
        // What the table holds (None: unknown, so the next sync loads it whole).
        let mut last: Option<rules::Programme> = None;
        let mut last_routes = None;
        loop {
            if config.host_gw {
                let want = routes::plan(&snapshot(&nodes), &node);
                // Again after a failure: the gateway may be reachable now.
                if last_routes.as_ref() != Some(&want) {
                    let failed = routes::sync(host_routes.as_ref(), &want);
                    last_routes = (failed == 0).then_some(want);
                }
            }
            // Before the snapshot: each change noted is in the stores already.
            let changes = metrics.take_pending();
            let started = Instant::now();
            let ports = model::service_ports(
                &snapshot(&services),
                &snapshot(&slices),
                Some(node.as_str()),
            );
            if let Some(dns) = &dns {
                dns.update(dns::zone::Zone::build(
                    &config.cluster_domain,
                    &snapshot(&services),
                    &snapshot(&slices),
                ));
            }
            let programmed = if let Some(relay) = relay.as_mut() {
                let done = relay.sync(&ports, settings.cluster_dns.as_deref()).await;
                if done != userspace::Synced::default() {
                    tracing::info!(
                        service_ports = ports.len(),
                        opened = done.opened,
                        closed = done.closed,
                        failed = done.failed,
                        ms = started.elapsed().as_secs_f64() * 1000.0,
                        "listeners synced"
                    );
                }
                done.failed == 0
            } else {
                let want = rules::programme(&ports, &settings);
                // Whole on start (stale rules go) and after a failure;
                // otherwise only what changed.
                let (transaction, whole) = match &last {
                    None => (Some(rules::full(&want, &settings)), true),
                    Some(had) => (rules::update(had, &want, &settings.table), false),
                };
                match transaction {
                    None => true,
                    Some(tx) => match nft.apply(&tx) {
                        Ok(()) => {
                            tracing::info!(
                                service_ports = ports.len(),
                                whole,
                                lines = tx.lines().count(),
                                ms = started.elapsed().as_secs_f64() * 1000.0,
                                "rules synced"
                            );
                            last = Some(want);
                            true
                        }
                        Err(e) => {
                            tracing::error!(error = %e, whole, "cannot load the rules; the next sync loads the whole table");
                            last = None;
                            false
                        }
                    },
                }
            };
            if programmed {
                metrics.observe_sync(started.elapsed(), SystemTime::now(), Some(&changes));
            } else {
                metrics.observe_sync(started.elapsed(), SystemTime::now(), None);
                metrics.restore_pending(changes);
            }
            // Every 30 s without events too: a route the kernel refused
            // (its gateway not yet reachable) is tried again.
            let _ = tokio::time::timeout(Duration::from_secs(30), changed.notified()).await;
            // Many events arrive together (a rollout): one sync for them.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = sync => {}
        _ = shutdown => {}
    }
    watch.abort();
    if let Some(task) = metrics_server {
        task.abort();
    }
    if let Some(dns) = dns {
        dns.stop().await;
    }
    if let Some(relay) = relay {
        relay.stop().await;
        tracing::info!("stopped; listeners closed, ClusterIPs off lo");
        return Ok(());
    }
    nft.apply(&rules::delete(&config.nft_table))?;
    tracing::info!(table = %config.nft_table, "stopped; table removed");
    Ok(())
}

/// The `kube-system/kube-dns` Service that holds the cluster DNS address,
/// as upstream's add-on has it (no selector: the rules leave the address to
/// the DNS server). Made once; an existing one is left as it is.
async fn ensure_dns_service(client: &kube::Client, address: std::net::IpAddr) {
    use k8s_openapi::api::core::v1::Service;
    let api: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let svc: Service = match serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS",
                                "kubernetes.io/cluster-service": "true"}},
        "spec": {"clusterIP": address.to_string(), "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ]},
    })) {
        Ok(s) => s,
        Err(_) => return,
    };
    match api.create(&Default::default(), &svc).await {
        Ok(_) => tracing::info!(%address, "created kube-system/kube-dns"),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => tracing::warn!(error = %e, "cannot create kube-system/kube-dns"),
    }
}

fn snapshot<K: kube::Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state().iter().map(|o| o.as_ref().clone()).collect()
}
