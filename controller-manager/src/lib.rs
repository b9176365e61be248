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
//! - [`gc`] (ownerReferences: background, foreground, orphan), [`namespace`]
//!   (empties a deleted namespace), [`serviceaccount`] (`default` in each).
//! - [`endpoints`]: each selector Service's Endpoints and EndpointSlices.
//! - [`nodeipam`]: a pod CIDR per Node from `--cluster-cidr`.
//! - [`nodelifecycle`]: silent nodes marked Unknown and tainted, their pods
//!   marked not Ready and evicted when their tolerations run out.
//! - [`podgc`]: terminated pods over the threshold, pods of deleted nodes,
//!   and never-scheduled pods being deleted, removed.

pub mod cache;
pub mod client;
pub mod deployment;
pub mod endpoints;
pub mod expectations;
pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod owner;
pub mod podgc;
pub mod queue;
pub mod replicaset;
pub mod server;
pub mod serviceaccount;
pub mod worker;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::runtime::reflector;
use kube::{Api, Client};

use crate::cache::{Handlers, Synced};
use crate::client::KubeCluster;
use crate::deployment::controller::DeploymentController;
use crate::endpoints::controller::{EndpointSliceController, EndpointsController};
use crate::endpoints::mirror_controller::EndpointSliceMirroringController;
use crate::expectations::Expectations;
use crate::namespace::NamespaceController;
use crate::nodeipam::{Allocator, NodeIpamController};
use crate::nodelifecycle::controller::NodeLifecycleController;
use crate::queue::WorkQueue;
use crate::replicaset::controller::ReplicaSetController;
use crate::serviceaccount::ServiceAccountController;
use crate::worker::{ControllerMetrics, run_workers};
use skiff_proto::leader;

/// The Lease instances of the controller manager share, as upstream's.
pub const LEASE_NAME: &str = "kube-controller-manager";

/// Command line (kube-controller-manager's flag names).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "skiff-controller-manager",
    version,
    about = "Skiff's controller manager: ReplicaSet, Deployment, Endpoints, EndpointSlice, EndpointSlice mirroring, garbage collector, namespace, ServiceAccount, node IPAM, node lifecycle and pod GC controllers."
)]
pub struct Config {
    /// kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// CIDR range of the cluster's pods (node IPAM hands out a /24 per node).
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,

    /// Give each Node a pod CIDR from --cluster-cidr (on by default in
    /// Skiff, where --cluster-cidr has a default; upstream's is false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub allocate_node_cidrs: bool,

    /// Size (prefix length) of each Node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,

    /// How long a node may be silent before it is marked NotReady.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// Unhealthy nodes tainted NoExecute (so evicted from) per second, per
    /// zone, while the zone is healthy or fully disrupted.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,

    /// The same while the zone is partially disrupted and larger than
    /// `--large-cluster-size-threshold` (smaller ones taint none).
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,

    /// Share of unhealthy nodes (more than 2) that makes a zone partially
    /// disrupted.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,

    /// Zones of at most this many nodes taint none while partially disrupted.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,

    /// How long a new node may take to post its first Ready condition.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub node_startup_grace_period: Duration,

    /// How often every node's health is checked (besides every heartbeat).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub node_monitor_period: Duration,

    /// `--leader-elect` and its timings: the Lease is
    /// kube-system/kube-controller-manager.
    #[command(flatten)]
    pub leader: leader::Flags,

    /// Deployments reconciled at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,

    /// ReplicaSets reconciled at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,

    /// Services whose Endpoints are synced at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,

    /// Services whose EndpointSlices are synced at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,

    /// Most endpoints in one EndpointSlice.
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: usize,

    /// Endpoints objects mirrored into EndpointSlices at the same time.
    #[arg(long, default_value_t = 5)]
    pub mirroring_concurrent_service_endpoint_syncs: usize,

    /// Most addresses of one Endpoints subset that are mirrored (and so
    /// most endpoints in one mirrored EndpointSlice).
    #[arg(long, default_value_t = endpoints::mirroring::MAX_PER_SUBSET)]
    pub mirroring_max_endpoints_per_subset: usize,

    /// Garbage collector workers.
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,

    /// Namespaces deleted at the same time.
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,

    /// Namespaces checked for their `default` ServiceAccount at the same time.
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_token_syncs: usize,

    /// Terminated pods kept before the oldest are deleted (0: no limit).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,

    /// How long a node must be gone before the pod GC deletes its pods
    /// (upstream's fixed 40 s quarantine).
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub pod_gc_orphan_quarantine: Duration,

    /// How often the pod GC looks (upstream's fixed 20 s).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub pod_gc_period: Duration,

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
    #[error(transparent)]
    Client(#[from] skiff_proto::client::ClientError),
    #[error("--cluster-cidr / --node-cidr-mask-size: {0}")]
    Ipam(#[from] nodeipam::IpamError),
    #[error("lost the leader election lease")]
    LostLease,
    #[error("cannot serve /healthz on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let client = skiff_proto::client::connect(config.kubeconfig.as_deref()).await?;
    run_with_client(config, client, shutdown).await
}

/// [`run`] with a client already built (tests, `skiff up`).
pub async fn run_with_client(
    config: Config,
    client: Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let allocator = Allocator::new(&config.cluster_cidr, config.node_cidr_mask_size)?;
    let instance = leader::hostname();
    let cluster = Arc::new(KubeCluster::new(client.clone(), instance));
    let (caches, writers) = cache::caches();
    let synced = Synced::default();

    let rs_ctl = Arc::new(ReplicaSetController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        expectations: Arc::new(Expectations::default()),
        queue: WorkQueue::new(),
    });
    let d_ctl = Arc::new(DeploymentController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        queue: WorkQueue::new(),
    });
    let (graph, gc_writers) = gc::Graph::new(gc::resources());
    let gc_ctl = Arc::new(gc::GarbageCollector {
        cluster: cluster.clone(),
        graph,
        queue: WorkQueue::new(),
    });
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    let (service_accounts, sa_writer) = reflector::store::<ServiceAccount>();
    let ns_ctl = Arc::new(NamespaceController {
        cluster: cluster.clone(),
        namespaces: namespaces.clone(),
        queue: WorkQueue::new(),
        resources: namespace::content_resources(),
    });
    let sa_ctl = Arc::new(ServiceAccountController {
        cluster: cluster.clone(),
        namespaces: namespaces.clone(),
        service_accounts: service_accounts.clone(),
        queue: WorkQueue::new(),
    });

    let ep_ctl = Arc::new(EndpointsController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        queue: WorkQueue::new(),
    });
    let eps_ctl = Arc::new(EndpointSliceController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        queue: WorkQueue::new(),
        expectations: Arc::new(Expectations::default()),
        max_per_slice: config.max_endpoints_per_slice,
    });
    let mirror_ctl = Arc::new(EndpointSliceMirroringController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        queue: WorkQueue::new(),
        expectations: Arc::new(Expectations::default()),
        max_per_slice: config.mirroring_max_endpoints_per_subset,
    });
    let ipam_ctl = Arc::new(NodeIpamController {
        cluster: cluster.clone(),
        nodes: caches.nodes.clone(),
        queue: WorkQueue::new(),
        allocator: std::sync::Mutex::new(allocator),
    });
    let nl_ctl = Arc::new(NodeLifecycleController {
        cluster: cluster.clone(),
        caches: caches.clone(),
        synced: synced.clone(),
        queue: WorkQueue::new(),
        heartbeats: Default::default(),
        taints_seen: Default::default(),
        grace: config.node_monitor_grace_period,
        startup_grace: config.node_startup_grace_period,
        clock: nodelifecycle::controller::system_clock(),
        eviction: nodelifecycle::disruption::Settings {
            rate: config.node_eviction_rate,
            secondary_rate: config.secondary_node_eviction_rate,
            unhealthy_threshold: config.unhealthy_zone_threshold,
            large_cluster: config.large_cluster_size_threshold,
        },
        zones: Default::default(),
    });
    let pod_gc = Arc::new(podgc::PodGc {
        cluster: cluster.clone(),
        caches: caches.clone(),
        synced: synced.clone(),
        settings: podgc::Settings {
            threshold: config.terminated_pod_gc_threshold,
            quarantine: config.pod_gc_orphan_quarantine,
        },
        clock: nodelifecycle::controller::system_clock(),
        missing_since: Default::default(),
    });

    let metric = || Arc::new(ControllerMetrics::default());
    let metrics = server::Metrics {
        controllers: vec![
            (deployment::controller::NAME, metric()),
            (replicaset::controller::NAME, metric()),
            (gc::NAME, metric()),
            (namespace::NAME, metric()),
            (serviceaccount::NAME, metric()),
            (endpoints::controller::ENDPOINTS_NAME, metric()),
            (endpoints::controller::SLICES_NAME, metric()),
            (endpoints::mirror_controller::NAME, metric()),
            (nodeipam::NAME, metric()),
            (nodelifecycle::controller::NAME, metric()),
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

    let mut shutdown = std::pin::pin!(shutdown);
    let elector = config.leader.elector(client.clone(), LEASE_NAME);
    if let Some(e) = &elector {
        tokio::select! {
            _ = e.acquire() => {}
            _ = &mut shutdown => {
                server.abort();
                return Ok(());
            }
        }
    }

    let allocate_cidrs = config.allocate_node_cidrs;
    let handlers = {
        let (r1, r2, r3) = (rs_ctl.clone(), rs_ctl.clone(), d_ctl.clone());
        let (d1, d2) = (d_ctl.clone(), d_ctl.clone());
        let (e1, e2, e3) = (ep_ctl.clone(), ep_ctl.clone(), ep_ctl.clone());
        let (s1, s2, s3) = (eps_ctl.clone(), eps_ctl.clone(), eps_ctl.clone());
        let (m1, m2, m3) = (mirror_ctl.clone(), mirror_ctl.clone(), mirror_ctl.clone());
        let (i1, l1, l2, l3) = (
            ipam_ctl.clone(),
            nl_ctl.clone(),
            nl_ctl.clone(),
            nl_ctl.clone(),
        );
        Handlers {
            deployments: Box::new(move |c| d1.on_deployment(c)),
            replica_sets: Box::new(move |c| {
                r1.on_replica_set(c.reborrow());
                d2.on_replica_set(c);
            }),
            pods: Box::new(move |c| {
                r2.on_pod(c.reborrow());
                r3.on_pod(c.reborrow());
                e1.on_pod(c.reborrow());
                s1.on_pod(c.reborrow());
                l1.on_pod(c);
            }),
            services: Box::new(move |c| {
                e2.on_service(c.reborrow());
                s2.on_service(c.reborrow());
                m1.on_service(c);
            }),
            endpoints: Box::new(move |c| {
                e3.on_endpoints(c.reborrow());
                m2.on_endpoints(c);
            }),
            endpoint_slices: Box::new(move |c| {
                s3.on_endpoint_slice(c.reborrow());
                m3.on_endpoint_slice(c);
            }),
            nodes: Box::new(move |c| {
                if allocate_cidrs {
                    i1.on_node(c.reborrow());
                }
                l2.on_node(c);
            }),
            leases: Box::new(move |c| l3.on_lease(c)),
        }
    };
    let mut watches = cache::spawn_watches(&client, &caches, writers, &synced, handlers);
    watches.extend(gc::spawn_watches(&client, gc_ctl.clone(), gc_writers));
    let (n1, s1, s2) = (ns_ctl.clone(), sa_ctl.clone(), sa_ctl.clone());
    watches.push(tokio::spawn(cache::watch(
        Api::<Namespace>::all(client.clone()),
        namespaces,
        ns_writer,
        Default::default(),
        Box::new(move |c| {
            n1.on_namespace(c.reborrow());
            s1.on_namespace(c);
        }),
    )));
    watches.push(tokio::spawn(cache::watch(
        Api::<ServiceAccount>::all(client.clone()),
        service_accounts,
        sa_writer,
        Default::default(),
        Box::new(move |c| s2.on_service_account(c)),
    )));
    // Upstream's WaitForCacheSync: no controller acts on half a picture. A
    // ReplicaSet reconciled before the pod cache has listed would see no
    // pods and create them all again (the restart test caught exactly that).
    // Events that arrive meanwhile wait in the queues.
    while !synced.all() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = &mut shutdown => {
                for w in &watches {
                    w.abort();
                }
                server.abort();
                return Ok(());
            }
        }
    }
    tracing::info!(
        "controllers started: deployment, replicaset, endpoints, endpointslice, endpointslicemirroring, garbage collector, namespace, serviceaccount, node ipam, node lifecycle, pod gc"
    );
    // Each loop's metrics, by the name it is listed under above.
    let m = |name: &str| {
        let found = metrics.controllers.iter().find(|(n, _)| *n == name);
        found.map(|(_, m)| m.clone()).unwrap_or_default()
    };
    let workers = vec![
        tokio::spawn(run_workers(
            d_ctl.clone(),
            d_ctl.queue.clone(),
            m(deployment::controller::NAME),
            config.concurrent_deployment_syncs,
        )),
        tokio::spawn(run_workers(
            rs_ctl.clone(),
            rs_ctl.queue.clone(),
            m(replicaset::controller::NAME),
            config.concurrent_replicaset_syncs,
        )),
        tokio::spawn(run_workers(
            gc_ctl.clone(),
            gc_ctl.queue.clone(),
            m(gc::NAME),
            config.concurrent_gc_syncs,
        )),
        tokio::spawn(run_workers(
            ns_ctl.clone(),
            ns_ctl.queue.clone(),
            m(namespace::NAME),
            config.concurrent_namespace_syncs,
        )),
        tokio::spawn(run_workers(
            sa_ctl.clone(),
            sa_ctl.queue.clone(),
            m(serviceaccount::NAME),
            config.concurrent_serviceaccount_token_syncs,
        )),
        tokio::spawn(run_workers(
            ep_ctl.clone(),
            ep_ctl.queue.clone(),
            m(endpoints::controller::ENDPOINTS_NAME),
            config.concurrent_endpoint_syncs,
        )),
        tokio::spawn(run_workers(
            eps_ctl.clone(),
            eps_ctl.queue.clone(),
            m(endpoints::controller::SLICES_NAME),
            config.concurrent_service_endpoint_syncs,
        )),
        tokio::spawn(run_workers(
            mirror_ctl.clone(),
            mirror_ctl.queue.clone(),
            m(endpoints::mirror_controller::NAME),
            config.mirroring_concurrent_service_endpoint_syncs,
        )),
        // One worker: allocations are serialised.
        tokio::spawn(run_workers(
            ipam_ctl.clone(),
            ipam_ctl.queue.clone(),
            m(nodeipam::NAME),
            1,
        )),
        tokio::spawn(run_workers(
            nl_ctl.clone(),
            nl_ctl.queue.clone(),
            m(nodelifecycle::controller::NAME),
            4,
        )),
    ];
    watches.push(tokio::spawn(
        nl_ctl.clone().monitor(config.node_monitor_period),
    ));
    watches.push(tokio::spawn(pod_gc.run(config.pod_gc_period)));

    let lost = match &elector {
        Some(e) => tokio::select! {
            _ = e.keep() => true,
            _ = &mut shutdown => false,
        },
        None => {
            shutdown.await;
            false
        }
    };
    tracing::info!("shutting down");
    for q in [
        &d_ctl.queue,
        &rs_ctl.queue,
        &gc_ctl.queue,
        &ns_ctl.queue,
        &sa_ctl.queue,
        &ep_ctl.queue,
        &eps_ctl.queue,
        &ipam_ctl.queue,
        &nl_ctl.queue,
    ] {
        q.shut_down();
    }
    for w in watches {
        w.abort();
    }
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    server.abort();
    match elector {
        Some(_) if lost => Err(Error::LostLease),
        Some(e) => {
            e.release().await;
            Ok(())
        }
        None => Ok(()),
    }
}
