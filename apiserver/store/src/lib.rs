//! `skiff-store`: Skiff's embedded etcd-compatible store.
//!
//! Everything in Skiff keeps its state in etcd. This crate lets the API
//! server run without one: it serves the part of the etcd v3 gRPC API that the
//! API server and `etcdctl` use (KV, Watch, Lease, Cluster's member list,
//! Maintenance's status) over an embedded redb database, the way k3s serves
//! etcd's API from SQLite with kine. Clients cannot tell the difference; the
//! conformance suite in `tests/` runs unchanged against this store and a
//! real etcd.
//!
//! Where to start reading:
//!
//! - [`run`] / [`start`]: serve a store (what the `skiff-store` binary and
//!   `skiff-apiserver` call).
//! - [`mvcc`]: the data model. `mvcc/schema.rs` has the on-disk layout,
//!   `mvcc/apply.rs` the write rules, `mvcc/writer.rs` the group commit,
//!   `mvcc/read.rs` reads at any revision.
//! - [`watch`]: how one stream serves many watches, from history and live.
//! - `lease.rs`: lease deadlines; `server/`: the gRPC adapters.
//! - [`harness`]: starting this store or a real etcd as processes, for tests
//!   and the benchmark (`skiff-store bench`, in [`bench`]).

mod authority;
pub mod bench;
mod config;
pub mod error;
pub mod harness;
mod http;
mod lease;
pub mod metrics;
pub mod mvcc;
mod server;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use skiff_proto::etcd::{
    cluster_server::ClusterServer, kv_server::KvServer, lease_server::LeaseServer,
    maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::StoreError;
pub use mvcc::{Store, StoreOptions};
pub use server::ETCD_API_VERSION;

/// gRPC framing on top of a request, as etcd allows (its `grpcOverheadBytes`).
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// A store being served. Stop it with [`Running::stop`].
pub struct Running {
    /// Where clients reach it, e.g. `http://127.0.0.1:2379`.
    pub client_urls: Vec<String>,
    pub store: Store,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    writer: mvcc::WriterThread,
}

/// Opens the store and starts serving it; returns once it accepts clients.
pub async fn start(config: Config) -> Result<Running, StoreError> {
    let (store, writer) = Store::open(config.store_options())?;
    let stop = CancellationToken::new();
    let mut listeners = Vec::new();
    let mut client_urls = Vec::new();
    for url in &config.listen_client_urls {
        let addr = parse_client_url(url)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| StoreError::Startup(format!("cannot listen on {url}: {err}")))?;
        let bound = listener
            .local_addr()
            .map_err(|err| StoreError::Startup(err.to_string()))?;
        client_urls.push(format!("http://{bound}"));
        listeners.push(listener);
    }
    let advertised = if config.advertise_client_urls.is_empty() {
        client_urls.clone()
    } else {
        config.advertise_client_urls.clone()
    };
    let max_message = config.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let grpc = tonic::service::Routes::new(
        KvServer::new(server::KvService {
            store: store.clone(),
        })
        .max_decoding_message_size(max_message),
    )
    .add_service(
        WatchServer::new(server::WatchService {
            store: store.clone(),
            options: config.watch_options(),
            stop: stop.clone(),
        })
        .max_decoding_message_size(max_message),
    )
    .add_service(LeaseServer::new(server::LeaseService {
        store: store.clone(),
        stop: stop.clone(),
    }))
    .add_service(ClusterServer::new(server::ClusterService {
        store: store.clone(),
        name: config.name.clone(),
        client_urls: advertised,
    }))
    .add_service(MaintenanceServer::new(server::MaintenanceService {
        store: store.clone(),
    }));
    let router = grpc.into_axum_router().merge(http::routes(store.clone()));

    let mut tasks = Vec::new();
    for (listener, url) in listeners.into_iter().zip(&client_urls) {
        tracing::info!(url = %url, "serving etcd v3 clients");
        let listener = authority::ClientListener(listener);
        let serve = axum::serve(listener, router.clone())
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        tasks.push(tokio::spawn(async move {
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "client listener failed");
            }
        }));
    }
    tasks.push(tokio::spawn(
        store.clone().expire_leases(stop.clone().cancelled_owned()),
    ));
    Ok(Running {
        client_urls,
        store,
        stop,
        tasks,
        writer,
    })
}

impl Running {
    /// Stops accepting clients, ends open streams, lets the writer finish
    /// what it was given, and closes the database.
    pub async fn stop(self) {
        let Running {
            store,
            stop,
            tasks,
            writer,
            ..
        } = self;
        stop.cancel();
        for task in tasks {
            // Connections get a moment to finish; the store is safe either way,
            // since nothing is acknowledged before it is on disk.
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a listener did not stop within 5s");
            }
        }
        drop(store);
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        tracing::info!("store stopped");
    }
}

/// Serves a store until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StoreError> {
    let running = start(config).await?;
    shutdown.await;
    running.stop().await;
    Ok(())
}

/// `http://host:port` → a socket address. `localhost` means 127.0.0.1.
fn parse_client_url(url: &str) -> Result<SocketAddr, StoreError> {
    let bad = |why: &str| StoreError::Startup(format!("--listen-client-urls: {url:?} {why}"));
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(bad(
                "uses https, which skiff-store does not serve yet; use http:// on loopback",
            ));
        }
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "has scheme {scheme:?}; expected http://host:port"
            )));
        }
        None => return Err(bad("has no scheme; expected http://host:port")),
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest
        .strip_prefix("localhost:")
        .map_or_else(|| rest.to_string(), |port| format!("127.0.0.1:{port}"));
    rest.parse()
        .map_err(|_| bad("is not host:port with a numeric IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_urls() {
        assert_eq!(
            parse_client_url("http://127.0.0.1:2379").unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
        assert_eq!(
            parse_client_url("http://localhost:0/").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_client_url("http://[::1]:2379").unwrap(),
            "[::1]:2379".parse().unwrap()
        );
        for bad in [
            "https://127.0.0.1:2379",
            "127.0.0.1:2379",
            "http://example.com:2379",
            "unix://x",
        ] {
            assert!(parse_client_url(bad).is_err(), "{bad}");
        }
    }
}
