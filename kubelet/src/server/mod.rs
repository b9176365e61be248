//! The kubelet's own HTTPS API on `--port` (10250), which the API server
//! calls for what only the node has: container logs ([`logs`], behind
//! `kubectl logs`), exec ([`exec`], behind `kubectl exec`), attach
//! ([`attach`], behind `kubectl attach` and `kubectl run -i`), port-forward
//! ([`portforward`]), and `/healthz`. Exec, attach and port-forward take
//! WebSocket and SPDY/3.1 upgrades alike ([`spdy_upgrade`], [`spdy_conn`],
//! [`spdy_remotecommand`]).
//!
//! TLS as upstream's kubelet does it without a serving certificate given:
//! a self-signed certificate for the node's name and address, made once in
//! `<root-dir>/pki/` (key mode 0600). Callers must present a client
//! certificate signed by `--client-ca-file` (default: the cluster CA in the
//! kubelet's kubeconfig) — the API server does, with its kubelet-client
//! certificate. Any such certificate is allowed everything (upstream asks
//! the API server with a SubjectAccessReview; Skiff has no authorizer yet).

pub mod attach;
pub mod exec;
pub mod logs;
pub mod portforward;
pub mod spdy_conn;
pub mod spdy_remotecommand;
pub mod spdy_upgrade;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the kubelet's serving certificate: {0}")]
    Cert(String),
    #[error("client CA: {0}")]
    ClientCa(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The serving certificate and key in `dir` (PEM), made self-signed for
/// `names` and `ips` when missing.
pub fn serving_cert(
    dir: &Path,
    names: &[String],
    ips: &[IpAddr],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ServerError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let (crt, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if !crt.exists() || !key.exists() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let mut sans: Vec<String> = names.to_vec();
        sans.extend(ips.iter().map(|ip| ip.to_string()));
        let mut params =
            rcgen::CertificateParams::new(sans).map_err(|e| ServerError::Cert(e.to_string()))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("{}@kubelet", names.first().map_or("node", String::as_str)),
        );
        let pair = rcgen::KeyPair::generate().map_err(|e| ServerError::Cert(e.to_string()))?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| ServerError::Cert(e.to_string()))?;
        std::fs::write(&crt, cert.pem()).map_err(io(&crt))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key)
            .map_err(io(&key))?;
        std::io::Write::write_all(&mut f, pair.serialize_pem().as_bytes()).map_err(io(&key))?;
    }
    let certs = CertificateDer::pem_file_iter(&crt)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Cert(format!("{}: {e}", crt.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| ServerError::Cert(format!("{}: {e}", key.display())))?;
    Ok((certs, key))
}

/// The TLS config: our certificate, client certificates required and
/// verified against `client_cas` (DER).
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: &[CertificateDer<'static>],
) -> Result<rustls::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in client_cas {
        roots
            .add(ca.clone())
            .map_err(|e| ServerError::ClientCa(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ServerError::ClientCa(
            "none: give --client-ca-file, or a kubeconfig with the cluster's CA".into(),
        ));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ServerError::ClientCa(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The routes.
pub fn router<R: Runtime>(runtime: Arc<R>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs::<R>),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(exec::exec::<R>).post(exec::exec::<R>),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(attach::attach::<R>).post(attach::attach::<R>),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(portforward::port_forward::<R>).post(portforward::port_forward::<R>),
        )
        .with_state(runtime)
}

/// Binds `addr` (port 0: any free port; the caller reports the real one).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })
}

/// Serves `router` over TLS on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    router: Router,
    stop: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet API: accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "kubelet API: TLS handshake refused");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .into_owned();
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "kubelet API connection");
                },
                _ = stop.cancelled() => {}
            }
        });
    }
}
