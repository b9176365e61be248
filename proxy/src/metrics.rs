//! `/metrics` in the Prometheus text format, written by hand (three
//! series; no client library needed), on `--metrics-bind-address`:
//!
//! - `skiff_proxy_network_programming_duration_seconds` (histogram): from
//!   an EndpointSlice change to the sync that put it into effect (rules
//!   loaded, or listeners updated). The change's time is the slice's
//!   `endpoints.kubernetes.io/last-change-trigger-time` annotation (when
//!   the pod changed, as upstream's controller writes it) or, without it,
//!   when this proxy saw the slice change — then it measures only the
//!   proxy's own part.
//! - `skiff_proxy_sync_proxy_rules_duration_seconds` (histogram): one sync.
//! - `skiff_proxy_sync_proxy_rules_last_timestamp_seconds` (gauge): when
//!   the last sync succeeded (Unix time).
//!
//! Buckets are kube-proxy's, so dashboards made for it read these alike.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The annotation upstream's EndpointSlice controller puts on a slice.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

pub const PROGRAMMING: &str = "skiff_proxy_network_programming_duration_seconds";
pub const SYNC: &str = "skiff_proxy_sync_proxy_rules_duration_seconds";
pub const LAST_SYNC: &str = "skiff_proxy_sync_proxy_rules_last_timestamp_seconds";

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds, ascending (`+Inf` is implied).
    bounds: Vec<f64>,
    /// Per bound: observations ≤ it (not cumulative; made so on rendering).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: Vec<f64>) -> Histogram {
        let counts = vec![0; bounds.len()];
        Histogram {
            bounds,
            counts,
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// kube-proxy's network programming buckets: 0.25 s, 0.5 s, every second
/// to 59 s, every 5 s to 115 s, every 30 s to 300 s.
pub fn programming_buckets() -> Vec<f64> {
    let mut b = vec![0.25, 0.5];
    b.extend((1..=59).map(f64::from));
    b.extend((0..12).map(|i| 60.0 + 5.0 * f64::from(i)));
    b.extend((0..7).map(|i| 120.0 + 30.0 * f64::from(i)));
    b
}

/// kube-proxy's sync buckets: 1 ms doubling 15 times (to ~16 s).
pub fn sync_buckets() -> Vec<f64> {
    (0..15).map(|i| 0.001 * f64::from(1u32 << i)).collect()
}

#[derive(Debug)]
struct Inner {
    programming: Histogram,
    sync: Histogram,
    last_sync: Option<f64>,
}

/// The proxy's metrics; shared by the sync loop and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Slice changes not yet programmed: (namespace, name) → the earliest
    /// change time since the last sync.
    pending: Mutex<BTreeMap<(String, String), SystemTime>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            inner: Mutex::new(Inner {
                programming: Histogram::new(programming_buckets()),
                sync: Histogram::new(sync_buckets()),
                last_sync: None,
            }),
            pending: Mutex::default(),
        }
    }
}

/// When the change that made `slice` happened: its trigger-time annotation
/// (RFC 3339), else `seen`.
pub fn change_time(slice: &EndpointSlice, seen: SystemTime) -> SystemTime {
    slice
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TRIGGER_TIME))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(SystemTime::from)
        .unwrap_or(seen)
}

impl Metrics {
    /// A slice changed (added, updated or deleted), seen at `seen`.
    pub fn note_change(&self, slice: &EndpointSlice, seen: SystemTime) {
        let key = (
            slice.metadata.namespace.clone().unwrap_or_default(),
            slice.metadata.name.clone().unwrap_or_default(),
        );
        let at = change_time(slice, seen);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = pending.entry(key).or_insert(at);
        *earliest = (*earliest).min(at);
    }

    /// The changes noted so far, for the sync about to start (each in the
    /// reflector's store already: a store is written before its event is passed on).
    pub fn take_pending(&self) -> BTreeMap<(String, String), SystemTime> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes a failed sync did not program, kept for the next one.
    pub fn restore_pending(&self, changes: BTreeMap<(String, String), SystemTime>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (k, at) in changes {
            let earliest = pending.entry(k).or_insert(at);
            *earliest = (*earliest).min(at);
        }
    }

    /// A sync that took `took` ended at `now`; `programmed`: the changes it
    /// put into effect (`None`: it failed).
    pub fn observe_sync(
        &self,
        took: Duration,
        now: SystemTime,
        programmed: Option<&BTreeMap<(String, String), SystemTime>>,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.sync.observe(took.as_secs_f64());
        let Some(changes) = programmed else { return };
        inner.last_sync = now.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
        for at in changes.values() {
            // A trigger time ahead of our clock (skew) counts as 0.
            let latency = now.duration_since(*at).unwrap_or_default();
            inner.programming.observe(latency.as_secs_f64());
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        inner.programming.render(
            PROGRAMMING,
            "From an EndpointSlice change to the sync that programmed it, in seconds.",
            &mut out,
        );
        inner
            .sync
            .render(SYNC, "How long a sync took, in seconds.", &mut out);
        let _ = writeln!(
            out,
            "# HELP {LAST_SYNC} When the last sync succeeded (Unix time).\n# TYPE {LAST_SYNC} gauge"
        );
        let _ = writeln!(out, "{LAST_SYNC} {}", inner.last_sync.unwrap_or(0.0));
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: cannot listen on {addr}: {source}")]
pub struct ServeError {
    pub addr: String,
    pub source: std::io::Error,
}

/// Serves `/metrics` (and `/healthz`) on `addr` (`host:port`, port 0 for
/// any free one) until the task is dropped; the bound address.
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let error = |source| ServeError {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = metrics.render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(annotations: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web-abc", "annotations": annotations},
            "addressType": "IPv4", "endpoints": []
        }))
        .unwrap()
    }

    #[test]
    fn change_time_is_the_trigger_annotation_or_when_seen() {
        let seen = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let cases = [
            (
                json!({TRIGGER_TIME: "2023-11-14T22:13:20Z"}),
                UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            ),
            (
                json!({TRIGGER_TIME: "2023-11-14T22:13:20.5Z"}),
                UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
            ),
            (json!({TRIGGER_TIME: "yesterday"}), seen),
            (json!({}), seen),
        ];
        for (annotations, want) in cases {
            assert_eq!(
                change_time(&slice(annotations.clone()), seen),
                want,
                "{annotations}"
            );
        }
    }

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // Two changes of one slice: the earliest counts; a failed sync keeps it.
        m.note_change(&slice(json!({TRIGGER_TIME: "2023-11-14T22:13:21Z"})), t0);
        m.note_change(&slice(json!({TRIGGER_TIME: "2023-11-14T22:13:20Z"})), t0);
        let pending = m.take_pending();
        assert_eq!(pending.len(), 1);
        m.observe_sync(Duration::from_millis(3), t0, None);
        m.restore_pending(pending);
        let pending = m.take_pending();
        m.observe_sync(
            Duration::from_millis(20),
            t0 + Duration::from_millis(1500),
            Some(&pending),
        );
        assert!(m.take_pending().is_empty());
        let text = m.render();
        let want = [
            "# TYPE skiff_proxy_network_programming_duration_seconds histogram",
            "skiff_proxy_network_programming_duration_seconds_bucket{le=\"1\"} 0",
            "skiff_proxy_network_programming_duration_seconds_bucket{le=\"2\"} 1",
            "skiff_proxy_network_programming_duration_seconds_bucket{le=\"300\"} 1",
            "skiff_proxy_network_programming_duration_seconds_bucket{le=\"+Inf\"} 1",
            "skiff_proxy_network_programming_duration_seconds_sum 1.5",
            "skiff_proxy_network_programming_duration_seconds_count 1",
            "# TYPE skiff_proxy_sync_proxy_rules_duration_seconds histogram",
            "skiff_proxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.001\"} 0",
            "skiff_proxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.004\"} 1",
            "skiff_proxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.032\"} 2",
            "skiff_proxy_sync_proxy_rules_duration_seconds_count 2",
            "# TYPE skiff_proxy_sync_proxy_rules_last_timestamp_seconds gauge",
            "skiff_proxy_sync_proxy_rules_last_timestamp_seconds 1700000001.5",
        ];
        for line in want {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        // Every series has HELP and TYPE; buckets are cumulative.
        assert_eq!(text.matches("# HELP ").count(), 3);
        assert_eq!(programming_buckets().len(), 2 + 59 + 12 + 7);
        assert_eq!(*programming_buckets().last().unwrap(), 300.0);
    }

    #[test]
    fn a_clock_behind_the_trigger_time_counts_zero() {
        let m = Metrics::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        m.note_change(&slice(json!({TRIGGER_TIME: "2023-11-14T22:13:25Z"})), now);
        let pending = m.take_pending();
        m.observe_sync(Duration::from_millis(1), now, Some(&pending));
        assert!(
            m.render()
                .contains("skiff_proxy_network_programming_duration_seconds_bucket{le=\"0.25\"} 1")
        );
    }
}
