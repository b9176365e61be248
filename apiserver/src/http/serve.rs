//! Serving: TLS (HTTP/2 and HTTP/1.1 by ALPN) or plain HTTP on loopback,
//! one task per connection. The identity in a verified client certificate
//! is attached to every request of its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::authn::{UserInfo, user_from_certificate};

/// The user a connection's client certificate names, if it presented one.
#[derive(Debug, Clone)]
pub struct PeerUser(pub Option<UserInfo>);

/// Whether requests on this listener are trusted without credentials (the
/// loopback-only plain-HTTP port).
#[derive(Debug, Clone, Copy)]
pub struct Trusted(pub bool);

/// Accepts connections until `stop`, TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    stop: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            peer,
            acceptor.clone(),
            router.clone(),
            stop.clone(),
        ));
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    stop: CancellationToken,
) {
    match acceptor {
        Some(acceptor) => {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| user_from_certificate(cert.as_ref()));
            let router = router
                .layer(Extension(PeerUser(user)))
                .layer(Extension(Trusted(false)));
            drive(TokioIo::new(tls), router, stop).await;
        }
        None => {
            let router = router
                .layer(Extension(PeerUser(None)))
                .layer(Extension(Trusted(true)));
            drive(TokioIo::new(tcp), router, stop).await;
        }
    }
}

async fn drive<I>(io: I, router: Router, stop: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
