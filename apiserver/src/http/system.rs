//! `/version`, health checks and metrics.

use std::sync::atomic::Ordering::Relaxed;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::json;

use super::middleware::Limits;

/// What `/version` reports. The minor is "32" because kubectl's dispatcher
/// picks the kubectl it runs by it, and kubectl 1.32 is what Skiff is
/// tested with.
pub fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": format!("skiff-{}", env!("CARGO_PKG_VERSION")),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (skiff is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

pub fn ok() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}

pub fn metrics(limits: &Limits, revision: i64) -> Response {
    let body = format!(
        "# HELP apiserver_request_total Requests received.\n# TYPE apiserver_request_total counter\napiserver_request_total {}\n\
         # HELP apiserver_request_rejected_total Requests refused by the in-flight limit (429).\n# TYPE apiserver_request_rejected_total counter\napiserver_request_rejected_total {}\n\
         # HELP apiserver_long_running_requests_total Watches and other long-running requests started.\n# TYPE apiserver_long_running_requests_total counter\napiserver_long_running_requests_total {}\n\
         # HELP apiserver_storage_revision The storage revision the server last saw.\n# TYPE apiserver_storage_revision gauge\napiserver_storage_revision {revision}\n",
        limits.requests.load(Relaxed),
        limits.rejected.load(Relaxed),
        limits.watches.load(Relaxed),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}
