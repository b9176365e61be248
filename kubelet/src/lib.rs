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
//! - [`pods`]: one worker per pod bound here — plan from what the runtime
//!   holds, act through the CRI, post the status.
//! - [`runtime`]: the CRI calls as a trait, the client over the runtime's
//!   socket, and the in-memory fake the pod tests run on.
//! - [`crictl`]: `skiff-kubelet crictl pods|ps|images|pull|exec|logs|inspect`,
//!   a crictl-like debug CLI over the same client and socket, to look inside
//!   a node.
//!
//! # Volumes
//!
//! [`pods::volumes`] gives pods their `spec.volumes`: `emptyDir` (on disk,
//! or a tmpfs for `medium: Memory`, `size=` from `sizeLimit`), `hostPath`
//! (with upstream's `type` checks), `configMap`, `secret` (on a tmpfs),
//! `downwardAPI` and `projected` (files written atomically, a `..data` link
//! swapped by rename, as upstream's AtomicWriter), and
//! `persistentVolumeClaim` (the bound PersistentVolume, when it is
//! `hostPath` or `local`). They live in
//! `<root-dir>/pods/<uid>/volumes/<plugin>/<name>` and reach containers as
//! CRI mounts per `volumeMounts` (`readOnly`, `subPath`, `subPathExpr`),
//! which the runtime bind-mounts. The worker sets them up before the
//! sandbox — a volume that cannot be set up holds the pod in
//! ContainerCreating with a `FailedMount` event — and again every 10 s
//! while the pod runs, which is how ConfigMap and Secret changes reach the
//! files; they are unmounted and removed with the pod.
//!
//! The Node is `Ready` when the runtime answers `Status` with RuntimeReady
//! and NetworkReady; otherwise `Ready=False` says why (no runtime on the
//! socket yet: the embedded runtime of issue 6 does not serve the CRI yet).

pub mod config;
pub mod crictl;
pub mod eviction;
pub mod image_gc;
pub mod node;
pub mod pods;
pub mod runtime;
pub mod server;

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
    #[error("{0}")]
    ImageGc(String),
    #[error("--root-dir {path}: {source}")]
    RootDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the runtime's streaming server (exec): {0}")]
    Streams(std::io::Error),
    #[error("the kubelet API: {0}")]
    Server(#[from] server::ServerError),
}

/// The start of the Ready=False message when the runtime does not answer.
pub const RUNTIME_DOWN: &str = "container runtime not connected";
/// Ready=False while the runtime serves images but not containers (the
/// embedded runtime today: its RuntimeService is still being built).
pub const NO_RUNTIME_SERVICE: &str =
    "container runtime not ready: it does not serve the CRI RuntimeService";

/// Readiness from the runtime's own conditions, as upstream words it.
pub fn readiness(
    status: &Result<skiff_proto::cri::RuntimeStatus, runtime::RuntimeError>,
) -> Readiness {
    let status = match status {
        Ok(s) => s,
        Err(runtime::RuntimeError::Call(s)) if s.code() == tonic::Code::Unimplemented => {
            return Readiness::NotReady(NO_RUNTIME_SERVICE.into());
        }
        Err(e) => return Readiness::NotReady(format!("{RUNTIME_DOWN}: {e}")),
    };
    let condition = |t: &str| status.conditions.iter().find(|c| c.r#type == t);
    for (t, what) in [
        ("RuntimeReady", "container runtime"),
        ("NetworkReady", "container runtime network"),
    ] {
        match condition(t) {
            Some(c) if c.status => {}
            Some(c) => {
                return Readiness::NotReady(format!(
                    "{what} not ready: {t}=false reason:{} message:{}",
                    c.reason, c.message
                ));
            }
            None => return Readiness::NotReady(format!("{what} not ready: no {t} condition")),
        }
    }
    Readiness::Ready
}

/// The Node's `images`: largest first, at most 50, as upstream reports them.
pub fn node_images(
    images: &[skiff_proto::cri::Image],
) -> Vec<k8s_openapi::api::core::v1::ContainerImage> {
    let mut list: Vec<_> = images
        .iter()
        .map(|i| k8s_openapi::api::core::v1::ContainerImage {
            names: Some(i.repo_digests.iter().chain(&i.repo_tags).cloned().collect()),
            size_bytes: Some(i.size as i64),
        })
        .collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.size_bytes));
    list.truncate(50);
    list
}

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
            kubelet_port: i32::from(config.port),
        },
        thresholds,
    ))
}

/// Registers the Node, heartbeats, and runs its pods through the runtime on
/// the CRI socket, until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let socket = config.runtime_socket();
    let embedded = match &config.container_runtime_endpoint {
        Some(_) => None,
        None => Some(serve_embedded_runtime(&config, &socket)?),
    };
    let runtime = runtime::CriClient::connect_lazy(&socket);
    let result = run_with_runtime(config, Arc::new(runtime), shutdown).await;
    if let Some((stop, task)) = embedded {
        let _ = stop.send(());
        let _ = task.await;
    }
    result
}

/// Starts the embedded runtime's CRI server on `socket`: its image store in
/// `<root-dir>/runtime/images`, with every archive in `<root-dir>/images`
/// imported first (air-gapped labs drop `docker save` or OCI archives there).
fn serve_embedded_runtime(
    config: &Config,
    socket: &std::path::Path,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    Error,
> {
    use skiff_runtime::cri::images::{Images, PullSettings};
    let root_err = |source: std::io::Error| Error::RootDir {
        path: config.root_dir.clone(),
        source,
    };
    let store = skiff_runtime::image::ImageStore::open(config.root_dir.join("runtime/images"))
        .map_err(|e| root_err(std::io::Error::other(e.to_string())))?;
    let store = Arc::new(store);
    let import_from = config.root_dir.join("images");
    if import_from.is_dir() {
        match skiff_runtime::image::import_dir(&store, &import_from) {
            Ok(report) => {
                for (path, images) in &report.imported {
                    let names: Vec<&str> = images
                        .iter()
                        .flat_map(|i| i.names.iter().map(String::as_str))
                        .collect();
                    tracing::info!(archive = %path.display(), ?names, "imported");
                }
                for (path, err) in &report.failed {
                    tracing::warn!(archive = %path.display(), error = %err, "not imported");
                }
            }
            Err(e) => {
                tracing::warn!(dir = %import_from.display(), error = %e, "cannot import images")
            }
        }
    }
    let default_creds = config.root_dir.join("config.json");
    let settings = PullSettings {
        insecure_registries: config.insecure_registries.iter().cloned().collect(),
        credentials_file: config
            .image_credentials
            .clone()
            .or_else(|| default_creds.exists().then_some(default_creds)),
    };
    // The RuntimeService: sandboxes networked by the first .conflist in
    // --cni-conf-dir (none: the runtime reports NetworkReady=false), and
    // containers whose shims are this very binary (`skiff-kubelet runtime …`).
    let cni = match skiff_runtime::cni::NetworkList::load_dir(&config.cni_conf_dir) {
        Ok(list) => {
            tracing::info!(network = %list.name, dir = %config.cni_conf_dir.display(), "CNI network");
            Some(skiff_runtime::cni::Cni {
                list,
                exec: Arc::new(skiff_runtime::cni::exec::RealExec {
                    dirs: vec![config.cni_bin_dir.clone()],
                }),
                cache_dir: config.root_dir.join("runtime/cni-cache"),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "no CNI network: pods cannot start until one is configured");
            None
        }
    };
    let runtime = skiff_runtime::cri::runtime::RuntimeSvc {
        sandboxes: Arc::new(skiff_runtime::sandbox::Sandboxes {
            pod_cidr: Default::default(),
            run_dir: config.root_dir.join("runtime/sandboxes"),
            namespaces: Arc::new(skiff_runtime::sandbox::namespaces::LinuxNamespaces),
            cni,
        }),
        images: store.clone(),
        dir: config.root_dir.join("runtime/containers"),
        shim: skiff_runtime::cri::runtime::ShimCommand {
            exe: std::env::current_exe().map_err(root_err)?,
            prefix: vec!["runtime".into()],
            log_rotation: skiff_runtime::container::shim::LogRotation {
                max_size: config.container_log_max_size,
                max_files: config.container_log_max_files as usize,
            },
        },
        streams: Arc::new(skiff_runtime::stream::Streams::start().map_err(Error::Streams)?),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let socket = socket.to_path_buf();
    let images = Images::new(store, settings);
    let task = tokio::spawn(async move {
        let served = skiff_runtime::cri::serve(&socket, images, Some(runtime), async {
            let _ = stopped.await;
        })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the embedded runtime's CRI server stopped");
        }
    });
    Ok((stop, task))
}

/// [`run`] with a runtime of the caller's (tests: [`runtime::fake::FakeRuntime`]).
pub async fn run_with_runtime<R: runtime::Runtime>(
    config: Config,
    runtime: Arc<R>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (mut facts, thresholds) = facts(&config)?;
    let gc_policy = image_gc::Policy::new(
        config.image_gc_high_threshold,
        config.image_gc_low_threshold,
        config.minimum_image_ttl_duration,
    )
    .map_err(Error::ImageGc)?;
    let memory_total = facts.host.memory_bytes;
    // Read once: the client, and the cluster CA the kubelet API trusts.
    let kube_config = skiff_proto::client::config(config.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(kube_config.clone())
        .map_err(skiff_proto::client::ClientError::from)?;
    let node_name = facts.name.clone();
    let host_ip = facts.ip.to_string();
    // The kubelet API first: the Node reports the port it really got.
    let listener = server::bind(std::net::SocketAddr::new(config.address, config.port)).await?;
    facts.kubelet_port = listener
        .local_addr()
        .map(|a| i32::from(a.port()))
        .unwrap_or(i32::from(config.port));
    let (chain, key) = server::serving_cert(
        &config.root_dir.join("pki"),
        &[node_name.clone(), facts.hostname.clone()],
        &[facts.ip],
    )?;
    let tls = server::tls_config(chain, key, &client_cas(&config, &kube_config)?)?;
    let agent = Arc::new(NodeAgent::new(
        client.clone(),
        facts,
        config.root_dir.clone(),
        thresholds,
        config.node_status_update_frequency,
        config.node_lease_duration_seconds,
    ));
    let stop = CancellationToken::new();

    // The runtime's readiness and images, checked at the status rhythm,
    // read by the heartbeat.
    let view = Arc::new(std::sync::Mutex::new(node::RuntimeView {
        readiness: Readiness::NotReady(format!("{RUNTIME_DOWN}: not checked yet")),
        images: Vec::new(),
    }));
    let (probe_view, probe_runtime, probe_stop) = (view.clone(), runtime.clone(), stop.clone());
    let probe_agent = agent.clone();
    let every = config.node_status_update_frequency;
    let probe = tokio::spawn(async move {
        loop {
            let readiness = readiness(&probe_runtime.status().await);
            let images = probe_runtime
                .list_images()
                .await
                .map(|images| node_images(&images))
                .unwrap_or_default();
            let ready = readiness == Readiness::Ready;
            let changed = match probe_view.lock() {
                Ok(mut v) => {
                    let changed = v.readiness != readiness;
                    if changed {
                        tracing::info!(readiness = ?readiness, "runtime readiness changed");
                    }
                    *v = node::RuntimeView { readiness, images };
                    changed
                }
                Err(_) => false,
            };
            if changed {
                probe_agent.status_now.notify_one();
            }
            // Not ready yet (starting; waiting for the pod CIDR): look again
            // soon, as upstream's kubelet does until its node is Ready.
            let wait = if ready {
                every
            } else {
                every.min(std::time::Duration::from_secs(1))
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = probe_stop.cancelled() => return,
            }
        }
    });
    let read_view = view.clone();
    // Registered in the background, retried until the API server answers:
    // static pods run meanwhile (a control plane that is itself static pods
    // comes up this way).
    let (heartbeat_agent, heartbeat_stop) = (agent.clone(), stop.clone());
    let heartbeats = tokio::spawn(async move {
        if register(&heartbeat_agent, &heartbeat_stop).await {
            let view = move || {
                read_view
                    .lock()
                    .map(|v| v.clone())
                    .unwrap_or_else(|_| node::RuntimeView {
                        readiness: Readiness::NotReady(RUNTIME_DOWN.into()),
                        images: Vec::new(),
                    })
            };
            heartbeat_agent.run(view, heartbeat_stop).await;
        }
    });
    let events = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "kubelet".into(),
            instance: Some(node_name.clone()),
        },
    );
    let ctx = Arc::new(pods::PodContext {
        runtime,
        client,
        events,
        host_ip,
        log_root: config.root_dir.join("logs").display().to_string(),
        // Absolute and without links: volume mounts are found again by
        // comparing with /proc/self/mountinfo.
        pods_dir: config
            .root_dir
            .canonicalize()
            .unwrap_or_else(|_| config.root_dir.clone())
            .join("pods"),
        dns: pods::config::DnsSettings {
            servers: config.cluster_dns.clone(),
            domain: config.cluster_domain.clone(),
            resolv_conf: (!config.resolv_conf.is_empty())
                .then(|| std::path::PathBuf::from(&config.resolv_conf)),
        },
        max_restart_period: config.max_container_restart_period,
        mounter: Arc::new(pods::volumes::mounter::HostMounter),
        evictions: Arc::new(pods::evict::Evictions::default()),
    });
    // Image GC on its period, and the eviction manager (which asks image
    // GC for room first under disk pressure).
    let image_gc = Arc::new(tokio::sync::Mutex::new(image_gc::ImageGc::new(gc_policy)));
    let gc_task = tokio::spawn(image_gc::run(
        ctx.runtime.clone(),
        image_gc.clone(),
        config.root_dir.clone(),
        config.image_gc_period,
        stop.clone(),
    ));
    let usage = Arc::new(eviction::usage::HostUsage {
        cgroup_root: "/sys/fs/cgroup".into(),
        pods_dir: ctx.pods_dir.clone(),
        log_root: ctx.log_root.clone(),
    });
    let eviction_task = tokio::spawn(eviction::run(
        ctx.clone(),
        eviction::Settings {
            node: node_name.clone(),
            root_dir: config.root_dir.clone(),
            memory_total,
            thresholds,
            period: config.eviction_monitoring_period,
        },
        usage,
        image_gc,
        stop.clone(),
    ));
    let api = tokio::spawn(server::serve(
        listener,
        tls,
        server::router(ctx.runtime.clone()),
        stop.clone(),
    ));
    let pod_cidr = tokio::spawn(node::pod_cidr::sync(
        ctx.client.clone(),
        ctx.runtime.clone(),
        node_name.clone(),
        stop.clone(),
    ));
    let statics = pods::static_pods::start(
        config.pod_manifest_path.clone(),
        config.file_check_frequency,
        &node_name,
        &ctx.client,
        &stop,
    );
    let pod_manager = tokio::spawn(pods::run(ctx, node_name, statics.pods, stop.clone()));
    shutdown.await;
    stop.cancel();
    let _ = tokio::join!(
        heartbeats,
        probe,
        pod_manager,
        api,
        pod_cidr,
        gc_task,
        eviction_task
    );
    let _ = statics.task.await;
    Ok(())
}

/// Registers the Node, retrying (1 s, doubling to 8 s, as upstream keeps
/// trying) until it is done or `stop`; false when stopped first.
async fn register(agent: &NodeAgent, stop: &CancellationToken) -> bool {
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        match agent.register().await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register the Node: trying again in {wait:?}")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return false,
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(8));
    }
}

/// Who may call the kubelet API: `--client-ca-file`, else the CA of the
/// cluster the kubeconfig points at (Skiff's one CA signs the API server's
/// kubelet-client certificate too).
fn client_cas(
    config: &Config,
    kube_config: &kube::Config,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    if let Some(path) = &config.client_ca_file {
        return CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                Error::Server(server::ServerError::ClientCa(format!(
                    "--client-ca-file {}: {e}",
                    path.display()
                )))
            });
    }
    Ok(kube_config
        .root_cert
        .iter()
        .flatten()
        .cloned()
        .map(CertificateDer::from)
        .collect())
}
