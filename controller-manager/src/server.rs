//! `/healthz`, `/readyz` (every cache has listed once) and `/metrics`
//! (Prometheus text: reconciles, errors, durations, queue depths).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::cache::Synced;
use crate::worker::ControllerMetrics;

#[derive(Clone)]
pub struct Metrics {
    pub controllers: Vec<(&'static str, Arc<ControllerMetrics>)>,
    pub synced: Synced,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE skiff_controller_reconcile_total counter\n");
        out.push_str("# TYPE skiff_controller_reconcile_errors_total counter\n");
        out.push_str("# TYPE skiff_controller_reconcile_duration_seconds_sum counter\n");
        out.push_str("# TYPE skiff_controller_queue_depth gauge\n");
        for (name, m) in &self.controllers {
            m.render(name, &mut out);
        }
        out.push_str("# TYPE skiff_controller_caches_synced gauge\n");
        out.push_str(&format!(
            "skiff_controller_caches_synced {}\n",
            u8::from(self.synced.all())
        ));
        out
    }
}

pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(m): State<Metrics>| async move {
                if m.synced.all() {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move { m.render() }),
        )
        .with_state(metrics)
}

pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) {
    if let Err(err) = axum::serve(listener, router(metrics)).await {
        tracing::error!(error = %err, "health server failed");
    }
}
