//! `skiff-apiserver`: the Kubernetes API that kubectl drives.
//!
//! Where to start reading:
//!
//! - [`start`] / [`run`]: what the server consists of and how it starts.
//! - [`registry`]: the resource table. Adding a kind is one entry there plus
//!   its strategy (defaults, validation, table columns, selectable fields).
//! - [`handlers`]: one file per verb, generic over the table;
//!   `handlers/mod.rs` routes a request to them.
//! - [`storage`]: objects in etcd (or the embedded store) and the watch cache.
//! - [`error`]: the one place errors become Kubernetes `Status` objects.
//! - [`http`]: TLS serving, authentication, limits, content negotiation.

pub mod admission;
pub mod authn;
pub mod bench;
pub mod bootstrap;
mod config;
pub mod error;
#[doc(hidden)]
pub mod exercise;
pub mod handlers;
pub mod http;
pub mod managed;
pub mod object;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod selectors;
pub mod storage;
pub mod validation;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::admission::{Admission, Cidr};
use crate::handlers::{Api, SharedApi};
use crate::http::middleware::{Auth, Limits};
use crate::storage::Storage;
use crate::storage::cache::WatchCache;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedded store: {0}")]
    Store(#[from] skiff_store::StoreError),
    #[error("cannot reach etcd at {endpoints}: {why}")]
    Etcd { endpoints: String, why: String },
    #[error("certificates: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("--token-auth-file: {0}")]
    Tokens(#[from] authn::AuthnError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the bootstrap objects: {0}")]
    Bootstrap(error::ApiError),
}

/// A running API server. Stop it with [`Running::stop`].
pub struct Running {
    /// `https://<address>:<port>`.
    pub url: String,
    pub port: u16,
    /// The loopback plain-HTTP URL, when `--insecure-port` is on.
    pub insecure_url: Option<String>,
    /// A kubeconfig for the cluster admin (`system:masters`).
    pub admin_kubeconfig: PathBuf,
    pub api: SharedApi,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    store: Option<skiff_store::Running>,
}

fn create_private_dir(path: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartError::DataDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Starts the API server; returns once it accepts requests.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let service_range = Cidr::parse(&config.service_cluster_ip_range)
        .map_err(|e| StartError::Config(format!("--service-cluster-ip-range: {e}")))?;
    let node_ports = config.node_port_range().map_err(StartError::Config)?;
    if config.insecure_port != 0 && !config.insecure_bind_address.is_loopback() {
        return Err(StartError::Config(format!(
            "--insecure-bind-address {} is not a loopback address: plain HTTP is only allowed on loopback",
            config.insecure_bind_address
        )));
    }
    create_private_dir(&config.data_dir)?;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();

    // Storage: the given etcd, or the embedded store on a private port.
    let (endpoints, store) = if config.etcd_servers.is_empty() {
        let store_config =
            skiff_store::Config::new(config.data_dir.join("store"), "http://127.0.0.1:0");
        let running = skiff_store::start(store_config).await?;
        (running.client_urls.clone(), Some(running))
    } else {
        (config.etcd_servers.clone(), None)
    };
    let storage = Storage::connect(&endpoints)
        .await
        .map_err(|e| StartError::Etcd {
            endpoints: endpoints.join(","),
            why: e.to_string(),
        })?;
    storage
        .current_revision()
        .await
        .map_err(|e| StartError::Etcd {
            endpoints: endpoints.join(","),
            why: e.to_string(),
        })?;

    let cache = WatchCache::start(
        &storage,
        registry::RESOURCES.iter().filter(|r| r.review.is_none()),
        config.watch_history,
        &stop,
    );
    let admission = Admission {
        service_range,
        node_ports,
        toleration_seconds: (
            config.default_not_ready_toleration_seconds,
            config.default_unreachable_toleration_seconds,
        ),
    };
    let advertise = config
        .advertise_address
        .unwrap_or(if config.bind_address.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            config.bind_address
        });

    // Certificates and the admin's kubeconfig.
    let mut hosts: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        admission.api_service_ip().to_string(),
        advertise.to_string(),
    ];
    if let Ok(host) = nix::unistd::gethostname() {
        hosts.push(host.to_string_lossy().into_owned());
    }
    if !config.bind_address.is_unspecified() {
        hosts.push(config.bind_address.to_string());
    }
    hosts.extend(config.tls_sans.iter().cloned());
    hosts.sort();
    hosts.dedup();
    let pki = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            pki::Pki::from_files(cert, key, config.client_ca_file.as_deref())?
        }
        (None, None) => pki::Pki::load_or_create(&config.data_dir.join("pki"), &hosts)?,
        _ => {
            return Err(StartError::Config(
                "--tls-cert-file and --tls-private-key-file go together".into(),
            ));
        }
    };
    let tls = Arc::new(pki.server_config(config.client_ca_file.as_deref())?);
    let tokens = config
        .token_auth_file
        .as_deref()
        .map(authn::TokenFile::load)
        .transpose()?;

    let listener = bind(SocketAddr::new(config.bind_address, config.secure_port)).await?;
    let port = listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: SocketAddr::new(config.bind_address, config.secure_port),
            source,
        })?
        .port();
    let url = format!("https://{}", SocketAddr::new(advertise, port));
    let admin_kubeconfig = config.data_dir.join("admin.kubeconfig");
    match pki.issue_client_cert("kubernetes-admin", &["system:masters"], 365) {
        Ok((cert, key)) => pki::write_kubeconfig(
            &admin_kubeconfig,
            "skiff",
            &url,
            pki.ca_pem(),
            "kubernetes-admin",
            pki::Credentials::ClientCertificate {
                cert_pem: cert,
                key_pem: key,
            },
        )?,
        Err(err) => {
            tracing::warn!(error = %err, "no admin kubeconfig written (the serving certificate was given without a CA key)")
        }
    }

    // Its identity towards kubelets (`pods/log`), as upstream's
    // --kubelet-client-certificate: issued by our CA, renewed every start.
    let kubelet_client = match pki.issue_client_cert(
        "kube-apiserver-kubelet-client",
        &["system:masters"],
        365,
    ) {
        Ok((cert, key)) => match handlers::log_client_config(&cert, &key) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(error = %e, "no kubelet-client TLS config: kubectl logs will not work");
                None
            }
        },
        Err(_) => None,
    };
    let api: SharedApi = Arc::new(Api {
        storage: storage.clone(),
        cache,
        admission,
        max_watch: Duration::from_secs(30 * 60),
        bookmark_interval: Duration::from_secs(60),
        kubelet_client,
    });
    bootstrap::bootstrap(&api, advertise, port)
        .await
        .map_err(StartError::Bootstrap)?;

    let limits = Arc::new(Limits {
        inflight: tokio::sync::Semaphore::new(config.max_requests_inflight.max(1)),
        requests: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        watches: AtomicU64::new(0),
    });
    let router = routes(api.clone(), limits.clone(), Arc::new(Auth { tokens }));
    tasks.push(tokio::spawn(http::serve::serve(
        listener,
        Some(tls),
        router.clone(),
        stop.clone(),
    )));
    let mut insecure_url = None;
    if config.insecure_port != 0 {
        let addr = SocketAddr::new(config.insecure_bind_address, config.insecure_port);
        let plain = bind(addr).await?;
        insecure_url = Some(format!(
            "http://{}",
            plain
                .local_addr()
                .map_err(|source| StartError::Listen { addr, source })?
        ));
        tasks.push(tokio::spawn(http::serve::serve(
            plain,
            None,
            router,
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(compact_periodically(
        storage,
        config.etcd_compaction_interval,
        stop.clone(),
    )));
    tracing::info!(%url, kubeconfig = %admin_kubeconfig.display(), storage = %endpoints.join(","), "skiff-apiserver is serving");
    Ok(Running {
        url,
        port,
        insecure_url,
        admin_kubeconfig,
        api,
        stop,
        tasks,
        store,
    })
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

fn routes(api: SharedApi, limits: Arc<Limits>, auth: Arc<Auth>) -> Router {
    let metrics_limits = limits.clone();
    let metrics_api = api.clone();
    Router::new()
        .route(
            "/version",
            get(|| async { handlers::respond(::http::StatusCode::OK, &http::system::version()) }),
        )
        .route("/healthz", get(|| async { http::system::ok() }))
        .route("/livez", get(|| async { http::system::ok() }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move || {
                let (limits, api) = (metrics_limits.clone(), metrics_api.clone());
                async move {
                    let revision = api
                        .cache
                        .of(&registry::RESOURCES[0])
                        .map_or(0, |c| c.revision());
                    http::system::metrics(&limits, revision)
                }
            }),
        )
        .route("/openapi/v3", get(|| async { handlers::openapi::index() }))
        .route(
            "/openapi/v3/{*path}",
            get(|Path(path): Path<String>| async move {
                handlers::openapi::get(&path).unwrap_or_else(not_found)
            }),
        )
        .fallback(handlers::dispatch)
        .with_state(api.clone())
        .layer(axum::middleware::from_fn_with_state(
            limits,
            http::middleware::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            http::middleware::authenticate,
        ))
}

fn not_found() -> Response {
    error::ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
        retry_after: None,
    }
    .into_response()
}

/// Ready when storage answers and every watch cache has listed once.
async fn readyz(State(api): State<SharedApi>) -> Response {
    let storage_ok = api.storage.current_revision().await.is_ok();
    let caches_ok = registry::RESOURCES
        .iter()
        .filter(|r| r.review.is_none())
        .all(|r| api.cache.of(r).is_some_and(|c| c.revision() > 0));
    if storage_ok && caches_ok {
        http::system::ok()
    } else {
        error::ApiError::service_unavailable(format!(
            "not ready: storage {}, watch caches {}",
            if storage_ok { "ok" } else { "unreachable" },
            if caches_ok { "synced" } else { "syncing" }
        ))
        .into_response()
    }
}

/// Compacts etcd every `interval` to the revision seen one interval before,
/// so watch history stays available for at least that long (as
/// kube-apiserver does).
async fn compact_periodically(storage: Storage, interval: Duration, stop: CancellationToken) {
    let mut previous: Option<i64> = None;
    let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(revision) = previous
            && let Err(err) = storage.compact(revision).await
        {
            tracing::warn!(error = %err, revision, "etcd compaction failed");
        }
        previous = storage.current_revision().await.ok();
    }
}

impl Running {
    /// Stops serving, ends open watches and stops the embedded store.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        drop(self.api);
        if let Some(store) = self.store {
            store.stop().await;
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let running = start(config).await?;
    shutdown.await;
    running.stop().await;
    Ok(())
}
