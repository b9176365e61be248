//! Workers: take a key from the queue, reconcile it, and put it back with
//! backoff on error or after the delay the reconcile asked for. Counts what
//! `/metrics` shows.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cache::Key;
use crate::client::WriteError;
use crate::queue::WorkQueue;

/// Why a reconcile failed (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("{0}")]
    Other(String),
}

/// One controller's reconcile.
pub trait Reconcile: Send + Sync + 'static {
    /// Its name in logs, metrics and events (`replicaset-controller`).
    fn name(&self) -> &'static str;
    /// Moves `key` one step toward what it declares; `Ok(Some(d))`: look again after `d`.
    fn reconcile(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Option<Duration>, ReconcileError>> + Send;
}

/// Counters of one controller.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    pub reconciles: AtomicU64,
    pub errors: AtomicU64,
    pub duration_micros: AtomicU64,
    pub queue_depth: AtomicU64,
}

impl ControllerMetrics {
    /// Prometheus text for this controller.
    pub fn render(&self, controller: &str, out: &mut String) {
        use std::fmt::Write;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "skiff_controller_reconcile_total{{controller=\"{controller}\"}} {}",
            get(&self.reconciles)
        );
        let _ = writeln!(
            out,
            "skiff_controller_reconcile_errors_total{{controller=\"{controller}\"}} {}",
            get(&self.errors)
        );
        let _ = writeln!(
            out,
            "skiff_controller_reconcile_duration_seconds_sum{{controller=\"{controller}\"}} {:.6}",
            get(&self.duration_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "skiff_controller_queue_depth{{controller=\"{controller}\"}} {}",
            get(&self.queue_depth)
        );
    }
}

/// Runs `workers` workers until the queue shuts down.
pub async fn run_workers<R: Reconcile>(
    reconciler: Arc<R>,
    queue: Arc<WorkQueue<Key>>,
    metrics: Arc<ControllerMetrics>,
    workers: usize,
) {
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (r, q, m) = (reconciler.clone(), queue.clone(), metrics.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(key) = q.get().await {
                m.queue_depth.store(q.len() as u64, Ordering::Relaxed);
                let started = tokio::time::Instant::now();
                let result = r.reconcile(&key).await;
                m.reconciles.fetch_add(1, Ordering::Relaxed);
                m.duration_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                match result {
                    Ok(after) => {
                        q.forget(&key);
                        if let Some(after) = after {
                            q.add_after(key.clone(), after);
                        }
                    }
                    Err(err) => {
                        m.errors.fetch_add(1, Ordering::Relaxed);
                        let level_info = matches!(err, ReconcileError::Write(WriteError::Conflict(_)) | ReconcileError::Write(WriteError::AlreadyExists(_)));
                        if level_info {
                            tracing::debug!(controller = r.name(), %key, error = %err, "stale cache; retrying");
                        } else {
                            tracing::warn!(controller = r.name(), %key, error = %err, "reconcile failed; retrying");
                        }
                        q.add_rate_limited(key.clone());
                    }
                }
                q.done(&key);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
