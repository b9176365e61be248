//! Expectations (upstream `UIDTrackingControllerExpectations`): what a
//! controller asked the API server to create or delete and has not yet seen
//! in its cache. While any is outstanding, the controller does not size its
//! pods again, so a lagging cache never makes it create or delete twice.
//! Expectations older than five minutes are ignored (a lost watch event must
//! not stall a ReplicaSet forever), and a relist clears them all.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long an outstanding expectation holds a controller back at most.
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Entry {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

#[derive(Debug, Default)]
pub struct Expectations {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    /// Whether the controller may act on `key` (nothing outstanding, or expired).
    pub fn satisfied(&self, key: &str) -> bool {
        let entries = self.entries.lock().unwrap();
        match entries.get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || e.set_at.elapsed() > TTL,
        }
    }

    pub fn expect_creations(&self, key: &str, count: usize) {
        let mut entries = self.entries.lock().unwrap();
        let e = entries.entry(key.to_string()).or_insert_with(|| Entry {
            adds: 0,
            deletes: HashSet::new(),
            set_at: Instant::now(),
        });
        e.adds = count as i64;
        e.set_at = Instant::now();
    }

    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        let mut entries = self.entries.lock().unwrap();
        let e = entries.entry(key.to_string()).or_insert_with(|| Entry {
            adds: 0,
            deletes: HashSet::new(),
            set_at: Instant::now(),
        });
        e.deletes = pods.into_iter().collect();
        e.set_at = Instant::now();
    }

    /// A pod of `key` appeared in the cache (or a creation was not attempted).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.entries.lock().unwrap().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// `pod` of `key` went away, or will (deletionTimestamp), or its delete failed.
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.entries.lock().unwrap().get_mut(key) {
            e.deletes.remove(pod);
        }
    }

    /// The controller's object is gone.
    pub fn forget(&self, key: &str) {
        self.entries.lock().unwrap().remove(key);
    }

    /// The cache was relisted: it is complete, nothing is outstanding.
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }

    /// (creations, deletions) outstanding for `key`.
    pub fn outstanding(&self, key: &str) -> (i64, usize) {
        self.entries
            .lock()
            .unwrap()
            .get(key)
            .map_or((0, 0), |e| (e.adds.max(0), e.deletes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creations_and_deletions() {
        let exp = Expectations::default();
        assert!(exp.satisfied("ns/rs"));
        exp.expect_creations("ns/rs", 2);
        assert!(!exp.satisfied("ns/rs"));
        exp.creation_observed("ns/rs");
        assert!(!exp.satisfied("ns/rs"));
        exp.creation_observed("ns/rs");
        assert!(exp.satisfied("ns/rs"));

        exp.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        exp.deletion_observed("ns/rs", "ns/a");
        exp.deletion_observed("ns/rs", "ns/a");
        assert_eq!(exp.outstanding("ns/rs"), (0, 1));
        assert!(!exp.satisfied("ns/rs"));
        exp.deletion_observed("ns/rs", "ns/b");
        assert!(exp.satisfied("ns/rs"));
        // Others are independent.
        exp.expect_creations("ns/other", 1);
        assert!(exp.satisfied("ns/rs") && !exp.satisfied("ns/other"));
        exp.clear();
        assert!(exp.satisfied("ns/other"));
    }

    #[tokio::test(start_paused = true)]
    async fn expire_after_ttl() {
        let exp = Expectations::default();
        exp.expect_creations("ns/rs", 1);
        tokio::time::advance(TTL - Duration::from_secs(1)).await;
        assert!(!exp.satisfied("ns/rs"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(exp.satisfied("ns/rs"));
    }
}
