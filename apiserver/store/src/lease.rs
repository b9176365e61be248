//! The lessor: when each granted lease expires.
//!
//! Leases themselves (id and TTL) and the keys attached to them are on disk
//! and change only through the writer. Deadlines live only in memory, as in
//! etcd: after a restart every lease gets its full TTL again, so a store that
//! was down does not expire every lease the moment it comes back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mvcc::LeaseEffect;

/// How long an expired lease waits before its revoke is retried, if the
/// first attempt did not go through.
const REVOKE_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Tracked {
    ttl: i64,
    deadline: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Lessor {
    leases: HashMap<i64, Tracked>,
}

impl Lessor {
    /// Starts tracking leases loaded from disk, each with its full TTL.
    pub fn load(leases: impl IntoIterator<Item = (i64, i64)>, now: Instant) -> Self {
        let leases = leases
            .into_iter()
            .map(|(id, ttl)| {
                (
                    id,
                    Tracked {
                        ttl,
                        deadline: now + secs(ttl),
                    },
                )
            })
            .collect();
        Lessor { leases }
    }

    /// Applies what a committed batch did.
    pub fn apply(&mut self, effects: &[LeaseEffect], now: Instant) {
        for effect in effects {
            match *effect {
                LeaseEffect::Granted { id, ttl } => {
                    self.leases.insert(
                        id,
                        Tracked {
                            ttl,
                            deadline: now + secs(ttl),
                        },
                    );
                }
                LeaseEffect::Revoked { id } => {
                    self.leases.remove(&id);
                }
            }
        }
    }

    /// A keep-alive: the lease lives a full TTL from now. Returns the TTL, or
    /// `None` when the lease does not exist or has already expired.
    pub fn renew(&mut self, id: i64, now: Instant) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        if lease.deadline <= now {
            return None;
        }
        lease.deadline = now + secs(lease.ttl);
        Some(lease.ttl)
    }

    /// (remaining seconds, granted TTL) of a live lease.
    pub fn time_to_live(&self, id: i64, now: Instant) -> Option<(i64, i64)> {
        let lease = self.leases.get(&id)?;
        let remaining = lease.deadline.saturating_duration_since(now).as_secs() as i64;
        Some((remaining, lease.ttl))
    }

    /// Leases whose deadline has passed. Each is reported once per retry
    /// period, so a revoke in flight is not queued twice.
    pub fn take_expired(&mut self, now: Instant) -> Vec<i64> {
        let mut expired = Vec::new();
        for (id, lease) in &mut self.leases {
            if lease.deadline <= now {
                expired.push(*id);
                lease.deadline = now + REVOKE_RETRY;
            }
        }
        expired.sort_unstable();
        expired
    }

    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.leases.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(ttl.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_with_paused_clock() {
        let t0 = Instant::now();
        let mut lessor = Lessor::default();
        lessor.apply(&[LeaseEffect::Granted { id: 7, ttl: 10 }], t0);
        assert_eq!(lessor.time_to_live(7, t0 + secs(4)), Some((6, 10)));
        assert!(lessor.take_expired(t0 + secs(9)).is_empty());
        // A keep-alive at 9s pushes the deadline to 19s.
        assert_eq!(lessor.renew(7, t0 + secs(9)), Some(10));
        assert!(lessor.take_expired(t0 + secs(18)).is_empty());
        assert_eq!(lessor.take_expired(t0 + secs(19)), vec![7]);
        // Reported once, then again only after the retry period.
        assert!(lessor.take_expired(t0 + secs(20)).is_empty());
        assert_eq!(lessor.take_expired(t0 + secs(19) + REVOKE_RETRY), vec![7]);
        // An expired lease cannot be kept alive.
        assert_eq!(lessor.renew(7, t0 + secs(100)), None);
        lessor.apply(&[LeaseEffect::Revoked { id: 7 }], t0);
        assert_eq!(lessor.time_to_live(7, t0), None);
        assert!(lessor.ids().is_empty());
    }

    #[test]
    fn loaded_leases_get_a_full_ttl() {
        let t0 = Instant::now();
        let lessor = Lessor::load([(1, 30), (2, 5)], t0);
        assert_eq!(lessor.time_to_live(1, t0), Some((30, 30)));
        assert_eq!(lessor.ids(), vec![1, 2]);
    }
}
