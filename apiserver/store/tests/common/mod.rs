//! Shared by the store's integration tests: start either server, and the
//! macro that runs one test case against both.

#![allow(dead_code)]

use std::time::Duration;

use skiff_store::harness::{Binaries, Kind, ServerProcess, ServerSettings};

pub use skiff_store::harness::Kind as ServerKind;

/// Progress notifications come this often in tests, on both servers.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Starts a fresh server of `kind` (its own data directory and ports).
pub async fn server(kind: Kind) -> ServerProcess {
    server_with(kind, &[]).await
}

/// Like [`server`], with more flags for skiff-store.
pub async fn server_with(kind: Kind, skiff_store_args: &[&str]) -> ServerProcess {
    let binaries = Binaries::new(env!("CARGO_BIN_EXE_skiff-store"));
    let settings = ServerSettings {
        progress_notify_interval: Some(PROGRESS_INTERVAL),
        skiff_store_args: skiff_store_args.iter().map(|a| a.to_string()).collect(),
    };
    match ServerProcess::start(kind, &binaries, settings).await {
        Ok(server) => server,
        Err(err) => panic!(
            "cannot start {}: {err}\n(the README's test command installs etcd-server; set SKIFF_ETCD_BIN to use another etcd)",
            kind.name()
        ),
    }
}

/// Runs each named `async fn(&ServerProcess)` twice: as `on_skiff_store::name`
/// against this crate's binary and as `on_etcd::name` against a real etcd.
/// The case code is the same for both, so a behaviour that differs fails one.
#[macro_export]
macro_rules! against_both {
    ($($case:ident),* $(,)?) => {
        mod on_skiff_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::common::server($crate::common::ServerKind::SkiffStore).await;
                    super::$case(&server).await;
                }
            )*
        }
        mod on_etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::common::server($crate::common::ServerKind::Etcd).await;
                    super::$case(&server).await;
                }
            )*
        }
    };
}

/// The gRPC status of a failed call.
pub fn status_of<T: std::fmt::Debug>(result: Result<T, etcd_client::Error>) -> tonic::Status {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => status,
        other => panic!("expected a gRPC error status, got {other:?}"),
    }
}

/// `GET http://<server>/<path>` over plain HTTP/1.1; returns the body.
pub fn http_get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect for HTTP");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_string()
}

/// The value of one sample in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{page}"))
}
