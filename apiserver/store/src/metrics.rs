//! Counters the store exposes on `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    pub range: AtomicU64,
    pub put: AtomicU64,
    pub delete_range: AtomicU64,
    pub txn: AtomicU64,
    pub compact: AtomicU64,
    pub lease_grant: AtomicU64,
    pub lease_revoke: AtomicU64,
    pub lease_keep_alive: AtomicU64,
    pub lease_expired: AtomicU64,
    pub watch_streams: AtomicI64,
    pub watchers: AtomicI64,
    pub watch_events_sent: AtomicU64,
    /// Write batches committed (or aborted) by the writer.
    pub batches: AtomicU64,
    /// Requests in those batches; divided by `batches`, the group-commit factor.
    pub batched_requests: AtomicU64,
    pub largest_batch: AtomicU64,
    pub batch_micros: AtomicU64,
    /// Durable commits of the database (the log before them is deleted).
    pub checkpoints: AtomicU64,
}

impl Metrics {
    pub fn record_batch(&self, size: usize, took: Duration) {
        self.batches.fetch_add(1, Relaxed);
        self.batched_requests.fetch_add(size as u64, Relaxed);
        self.largest_batch.fetch_max(size as u64, Relaxed);
        self.batch_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Renders every counter, plus the store-wide numbers given.
    pub fn render(&self, revision: i64, compact_revision: i64, db_bytes: u64) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "skiff_store_revision",
            "Current store revision.",
            "gauge",
            revision.to_string(),
        );
        gauge(
            "skiff_store_compact_revision",
            "Revision history is compacted to.",
            "gauge",
            compact_revision.to_string(),
        );
        gauge(
            "skiff_store_db_bytes",
            "Size of the database file.",
            "gauge",
            db_bytes.to_string(),
        );
        gauge(
            "skiff_store_watch_streams",
            "Open watch streams.",
            "gauge",
            self.watch_streams.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_watchers",
            "Active watches.",
            "gauge",
            self.watchers.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_watch_events_sent_total",
            "Events sent to watchers.",
            "counter",
            self.watch_events_sent.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_write_batches_total",
            "Write batches (one log sync each).",
            "counter",
            self.batches.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_batched_requests_total",
            "Write requests applied in batches.",
            "counter",
            self.batched_requests.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_largest_batch",
            "Most requests in one batch.",
            "gauge",
            self.largest_batch.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_batch_seconds_total",
            "Time spent applying and committing batches.",
            "counter",
            format!("{:.6}", self.batch_micros.load(Relaxed) as f64 / 1e6),
        );
        gauge(
            "skiff_store_checkpoints_total",
            "Durable commits of the database file; the log before each is deleted.",
            "counter",
            self.checkpoints.load(Relaxed).to_string(),
        );
        gauge(
            "skiff_store_leases_expired_total",
            "Leases revoked because they expired.",
            "counter",
            self.lease_expired.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP skiff_store_requests_total gRPC requests by method.\n# TYPE skiff_store_requests_total counter"
        );
        for (method, counter) in [
            ("Range", &self.range),
            ("Put", &self.put),
            ("DeleteRange", &self.delete_range),
            ("Txn", &self.txn),
            ("Compact", &self.compact),
            ("LeaseGrant", &self.lease_grant),
            ("LeaseRevoke", &self.lease_revoke),
            ("LeaseKeepAlive", &self.lease_keep_alive),
        ] {
            let _ = writeln!(
                out,
                "skiff_store_requests_total{{method=\"{method}\"}} {}",
                counter.load(Relaxed)
            );
        }
        out
    }
}
