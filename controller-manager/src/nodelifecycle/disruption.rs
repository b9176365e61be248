//! How fast unhealthy nodes are tainted NoExecute, zone by zone (upstream's
//! zone states and per-zone tainting rate limiters).
//!
//! Nodes are grouped in zones by their `topology.kubernetes.io/region` and
//! `topology.kubernetes.io/zone` labels (no labels: one zone). A zone is
//! - **FullDisruption** when none of its nodes is healthy and some are not;
//! - **PartialDisruption** when more than 2 of its nodes are unhealthy and
//!   they are at least `--unhealthy-zone-threshold` (0.55) of it;
//! - **Normal** otherwise.
//!
//! Tainting a node NoExecute is what starts evictions, so it is rate
//! limited per zone, with a burst of one: `--node-eviction-rate` (0.1 per
//! second: one node every 10 s) in a Normal or fully disrupted zone; in a
//! partially disrupted zone `--secondary-node-eviction-rate` (0.01) if the
//! zone has more than `--large-cluster-size-threshold` (50) nodes, else
//! none at all: in a small zone that many failures at once more likely
//! mean a network problem than dead nodes. When *every* zone is fully
//! disrupted nothing is tainted and existing NoExecute taints are removed
//! ([`super::health`]).
//!
//! Worked example, one zone of 4 nodes, the threshold 0.55: 2 unhealthy is
//! Normal (not more than 2); 3 unhealthy is 3/4 = 0.75 ≥ 0.55, so
//! PartialDisruption, and with 4 ≤ 50 nodes the rate is 0: the third node
//! is not tainted (nor the fourth, which makes it FullDisruption: then the
//! normal rate again, but if this is the only zone, every zone is fully
//! disrupted and the taints of the first two go too).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

pub use crate::endpoints::slices::ZONE_LABEL;
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The flags that set the rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Nodes tainted per second in a healthy zone (`--node-eviction-rate`).
    pub rate: f64,
    /// ... in a partially disrupted large zone (`--secondary-node-eviction-rate`).
    pub secondary_rate: f64,
    /// Share of unhealthy nodes that makes a zone partially disrupted.
    pub unhealthy_threshold: f64,
    /// Zones of at most this many nodes get no tainting when partially disrupted.
    pub large_cluster: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rate: 0.1,
            secondary_rate: 0.01,
            unhealthy_threshold: 0.55,
            large_cluster: 50,
        }
    }
}

/// The zone a node is in: `region/zone`, empty parts when unlabelled.
pub fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!("{}/{}", get(REGION_LABEL), get(ZONE_LABEL))
}

/// Upstream's `ComputeZoneState`.
pub fn zone_state(healthy: usize, unhealthy: usize, threshold: f64) -> ZoneState {
    let total = healthy + unhealthy;
    if healthy == 0 && unhealthy > 0 {
        ZoneState::FullDisruption
    } else if unhealthy > 2 && unhealthy as f64 / total as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Nodes a zone of `size` nodes in `state` may taint per second.
pub fn tainting_rate(state: ZoneState, size: usize, s: &Settings) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => s.rate,
        ZoneState::PartialDisruption if size > s.large_cluster => s.secondary_rate,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// (healthy, unhealthy) counts of each zone.
pub type ZoneCounts = BTreeMap<String, (usize, usize)>;

/// The state of every zone, and whether all of them are fully disrupted.
pub fn zone_states(counts: &ZoneCounts, threshold: f64) -> (BTreeMap<String, ZoneState>, bool) {
    let states: BTreeMap<String, ZoneState> = counts
        .iter()
        .map(|(z, (h, u))| (z.clone(), zone_state(*h, *u, threshold)))
        .collect();
    let all_full = !states.is_empty() && states.values().all(|s| *s == ZoneState::FullDisruption);
    (states, all_full)
}

/// A token bucket of burst one (client-go's `TokenBucketRateLimiter` with
/// upstream's `evictionLimiterBurst`), on the controller's clock.
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    /// When the last token was taken.
    last: Option<Timestamp>,
}

impl Limiter {
    /// Takes the token if `qps` has refilled it by `now`; else how long until
    /// it will have (None: never, the rate is 0).
    pub fn try_take(&mut self, qps: f64, now: Timestamp) -> Result<(), Option<Duration>> {
        if qps <= 0.0 || !qps.is_finite() {
            return Err(None);
        }
        let period = Duration::from_secs_f64(1.0 / qps);
        if let Some(last) = self.last {
            let since = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
            if since < period {
                return Err(Some(period - since));
            }
        }
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zone_states_as_upstream_computes_them() {
        // (healthy, unhealthy, want)
        let cases = [
            (0, 0, ZoneState::Normal),
            (3, 0, ZoneState::Normal),
            (0, 1, ZoneState::FullDisruption),
            (0, 5, ZoneState::FullDisruption),
            (1, 2, ZoneState::Normal), // 2 unhealthy is never "partial"
            (1, 3, ZoneState::PartialDisruption), // 0.75 ≥ 0.55
            (3, 3, ZoneState::Normal), // 0.5 < 0.55
            (9, 11, ZoneState::PartialDisruption), // 0.55 exactly
            (10, 10, ZoneState::Normal),
        ];
        for (h, u, want) in cases {
            assert_eq!(zone_state(h, u, 0.55), want, "{h} healthy, {u} not");
        }
    }

    #[test]
    fn tainting_rates_by_state_and_size() {
        let s = Settings::default();
        let cases = [
            (ZoneState::Normal, 3, 0.1),
            (ZoneState::FullDisruption, 3, 0.1),
            (ZoneState::PartialDisruption, 3, 0.0),
            (ZoneState::PartialDisruption, 50, 0.0),
            (ZoneState::PartialDisruption, 51, 0.01),
        ];
        for (state, size, want) in cases {
            assert_eq!(tainting_rate(state, size, &s), want, "{state:?} of {size}");
        }
    }

    #[test]
    fn all_zones_fully_disrupted_only_when_every_one_is() {
        let counts: ZoneCounts = [("r/a".to_string(), (0, 2)), ("r/b".to_string(), (1, 1))].into();
        let (states, all) = zone_states(&counts, 0.55);
        assert_eq!(states["r/a"], ZoneState::FullDisruption);
        assert_eq!(states["r/b"], ZoneState::Normal);
        assert!(!all);
        let counts: ZoneCounts = [("r/a".to_string(), (0, 2)), ("r/b".to_string(), (0, 1))].into();
        assert!(zone_states(&counts, 0.55).1);
        assert!(!zone_states(&ZoneCounts::new(), 0.55).1);
    }

    #[test]
    fn zones_come_from_region_and_zone_labels() {
        let node = |labels: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n", "labels": labels}})).unwrap()
        };
        assert_eq!(zone_of(&node(json!(null))), "/");
        assert_eq!(
            zone_of(&node(json!({REGION_LABEL: "eu", ZONE_LABEL: "eu-1a"}))),
            "eu/eu-1a"
        );
    }

    #[test]
    fn the_limiter_lets_one_through_per_period() {
        let at = |ms: i64| Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap();
        let mut l = Limiter::default();
        assert_eq!(
            l.try_take(0.1, at(0)),
            Ok(()),
            "the first is free (burst 1)"
        );
        assert_eq!(
            l.try_take(0.1, at(4_000)),
            Err(Some(Duration::from_secs(6)))
        );
        assert_eq!(l.try_take(0.1, at(10_000)), Ok(()));
        assert_eq!(l.try_take(0.0, at(99_000)), Err(None), "rate 0: never");
    }
}
