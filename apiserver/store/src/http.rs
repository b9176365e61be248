//! Plain HTTP on the client port, beside gRPC: etcd's `/health` and
//! `/version`, and the `/healthz`, `/readyz` and `/metrics` every Skiff
//! program serves.

use axum::{Router, http::header, response::IntoResponse, routing::get};

use crate::Store;
use crate::server::ETCD_API_VERSION;

pub(crate) fn routes(store: Store) -> Router {
    let metrics_store = store.clone();
    let health_store = store;
    Router::new()
        .route(
            "/health",
            get(move || {
                let store = health_store.clone();
                async move {
                    // Healthy when a read goes through, as etcd's check is a read.
                    let ok = store
                        .range(skiff_proto::etcd::RangeRequest { key: b"health".to_vec(), ..Default::default() })
                        .await
                        .is_ok();
                    let body = if ok { r#"{"health":"true"}"# } else { r#"{"health":"false"}"# };
                    ([(header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        )
        .route(
            "/version",
            get(|| async {
                let body = format!(r#"{{"etcdserver":"{ETCD_API_VERSION}","etcdcluster":"{ETCD_API_VERSION}","skiff":"{}"}}"#, env!("CARGO_PKG_VERSION"));
                ([(header::CONTENT_TYPE, "application/json")], body)
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let store = metrics_store.clone();
                async move {
                    let body = store.metrics().render(store.revision(), store.compact_revision(), store.db_size());
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
                }
            }),
        )
}
