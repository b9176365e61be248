//! State shared by the writer thread and every request handler.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redb::Database;
use tokio::sync::broadcast;

use super::apply::Applied;
use super::read::RevisionEvents;
use crate::lease::Lessor;
use crate::metrics::Metrics;

/// What watchers receive: the revisions one committed batch produced.
pub type CommittedBatch = Arc<Vec<RevisionEvents>>;

pub(crate) struct Shared {
    pub db: Database,
    /// The revision of the last committed change.
    revision: AtomicI64,
    compact_revision: AtomicI64,
    pub events: broadcast::Sender<CommittedBatch>,
    pub lessor: Mutex<Lessor>,
    pub cluster_id: u64,
    pub member_id: u64,
    pub min_lease_ttl: i64,
    pub metrics: Metrics,
}

impl Shared {
    pub fn new(
        db: Database,
        revision: i64,
        compact_revision: i64,
        lessor: Lessor,
        (cluster_id, member_id): (u64, u64),
        min_lease_ttl: i64,
    ) -> Self {
        // The channel keeps its last N batches alive even after every watch
        // stream has taken them, and under load one batch holds hundreds of
        // events. 256 is enough for a stream briefly busy sending; one that
        // falls further behind catches up from the event log on disk.
        let (events, _) = broadcast::channel(256);
        Shared {
            db,
            revision: AtomicI64::new(revision),
            compact_revision: AtomicI64::new(compact_revision),
            events,
            lessor: Mutex::new(lessor),
            cluster_id,
            member_id,
            min_lease_ttl,
            metrics: Metrics::default(),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_revision.load(Ordering::Acquire)
    }

    /// Makes a committed batch visible: leases, then the events, then the
    /// revision. So once the revision reads `R`, every batch up to `R` has
    /// been handed to the broadcast: a watch stream that subscribed earlier
    /// has it queued, and one that subscribes later starts after it.
    pub fn publish(&self, applied: Applied) {
        if !applied.changed {
            return;
        }
        if !applied.lease_effects.is_empty() {
            self.lessor
                .lock()
                .expect("lessor lock")
                .apply(&applied.lease_effects, Instant::now());
        }
        self.compact_revision
            .store(applied.compact_revision, Ordering::Release);
        if !applied.produced.is_empty() {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Arc::new(applied.produced));
        }
        self.revision.store(applied.revision, Ordering::Release);
    }
}
