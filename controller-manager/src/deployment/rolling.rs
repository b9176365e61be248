//! `maxSurge` / `maxUnavailable`: from what the user wrote (a number or a
//! percentage) to numbers of pods, rounded the way Kubernetes rounds them.
//!
//! Upstream's `ResolveFenceposts` scales a percentage by the desired replica
//! count; surge rounds **up** (so a rollout can always make progress by adding
//! pods), unavailable rounds **down** (so it never takes away more than
//! asked). If both come out 0, unavailable becomes 1: the rollout must be able
//! to move somehow.
//!
//! Worked example: replicas 10, maxSurge 25%, maxUnavailable 25%:
//! surge = ceil(10 × 25 / 100) = ceil(2.5) = 3, unavailable = floor(2.5) = 2,
//! so during the rollout there are at most 13 pods and at least 8 available.
//! With replicas 1 and 25%/25%: surge = ceil(0.25) = 1, unavailable = 0.
//! With replicas 3, maxSurge 0, maxUnavailable 10%: surge 0, unavailable
//! floor(0.3) = 0 → both 0 → unavailable becomes 1.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The value was neither a number nor a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for IntOrString: {0:?} is not a number or a percentage")]
pub struct BadIntOrPercent(pub String);

/// Upstream's `GetScaledValueFromIntOrPercent`: a number as is, a percentage
/// of `total` rounded up (`round_up`) or down.
pub fn scaled_value(
    value: &IntOrString,
    total: i32,
    round_up: bool,
) -> Result<i32, BadIntOrPercent> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| BadIntOrPercent(s.clone()))?;
            let product = percent * i64::from(total);
            let scaled = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            Ok(scaled as i32)
        }
    }
}

/// Surge and unavailable for `desired` replicas (upstream `ResolveFenceposts`).
/// A missing value counts as 0 (the API server defaults both to 25%).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), BadIntOrPercent> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// The deployment's desired replicas (defaulted to 1 like the API server).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    let kind = d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref());
    !matches!(kind, Some("Recreate"))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = rolling.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavailable = rolling.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    // Invalid values are refused by the API server's validation; treat as 0.
    resolve_fenceposts(surge, unavailable, replicas(d)).unwrap_or((0, 1))
}

/// Upstream `MaxSurge`: 0 unless RollingUpdate.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// Upstream `MaxUnavailable`: 0 unless RollingUpdate or when replicas is 0;
/// never more than replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = replicas(d);
    if !is_rolling(d) || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> IntOrString {
        match s.parse::<i32>() {
            Ok(n) => IntOrString::Int(n),
            Err(_) => IntOrString::String(s.into()),
        }
    }

    #[test]
    fn fenceposts_table() {
        // (replicas, maxSurge, maxUnavailable) → (surge, unavailable)
        let cases: &[(i32, &str, &str, i32, i32)] = &[
            // numbers pass through as they are
            (10, "2", "1", 2, 1),
            (10, "0", "3", 0, 3),
            (10, "5", "0", 5, 0),
            (3, "20", "20", 20, 20), // more than replicas: bounded later (max_unavailable)
            // both zero → unavailable 1
            (10, "0", "0", 0, 1),
            (0, "0", "0", 0, 1),
            // percentages: surge rounds up, unavailable rounds down
            (10, "25%", "25%", 3, 2),
            (4, "25%", "25%", 1, 1),
            (1, "25%", "25%", 1, 0),
            (3, "25%", "25%", 1, 0),
            (5, "25%", "25%", 2, 1),
            (7, "25%", "25%", 2, 1),
            (8, "25%", "25%", 2, 2),
            (100, "25%", "25%", 25, 25),
            (101, "25%", "25%", 26, 25),
            (3, "50%", "50%", 2, 1),
            (1, "50%", "50%", 1, 0),
            (10, "10%", "10%", 1, 1),
            (9, "10%", "10%", 1, 0),
            (11, "10%", "10%", 2, 1),
            (3, "0%", "10%", 0, 1), // floor(0.3) = 0, both 0 → 1
            (3, "0%", "34%", 0, 1), // floor(1.02) = 1
            (3, "33%", "0%", 1, 0), // ceil(0.99) = 1
            (10, "100%", "0%", 10, 0),
            (10, "0%", "100%", 0, 10),
            (0, "25%", "25%", 0, 1),
            (1, "1%", "1%", 1, 0),
            (200, "1%", "1%", 2, 2),
            (199, "1%", "1%", 2, 1),
            // mixed forms
            (10, "2", "30%", 2, 3),
            (10, "30%", "2", 3, 2),
        ];
        for &(replicas, surge, unavailable, want_surge, want_unavailable) in cases {
            let got = resolve_fenceposts(Some(&v(surge)), Some(&v(unavailable)), replicas).unwrap();
            assert_eq!(
                got,
                (want_surge, want_unavailable),
                "replicas {replicas}, maxSurge {surge}, maxUnavailable {unavailable}"
            );
        }
    }

    /// Every percentage 0..=100 for both, across replica counts 0..=40, against
    /// the definition written with floating point as upstream does it.
    #[test]
    fn percentages_match_the_float_definition() {
        for replicas in 0..=40 {
            for surge in 0..=100 {
                for unavailable in [0, 1, 10, 25, 33, 50, 99, 100] {
                    let s = IntOrString::String(format!("{surge}%"));
                    let u = IntOrString::String(format!("{unavailable}%"));
                    let (gs, gu) = resolve_fenceposts(Some(&s), Some(&u), replicas).unwrap();
                    let fs = (f64::from(surge) * f64::from(replicas) / 100.0).ceil() as i32;
                    let mut fu =
                        (f64::from(unavailable) * f64::from(replicas) / 100.0).floor() as i32;
                    if fs == 0 && fu == 0 {
                        fu = 1;
                    }
                    assert_eq!((gs, gu), (fs, fu), "{replicas} {surge}% {unavailable}%");
                }
            }
        }
    }

    #[test]
    fn invalid_values_are_errors() {
        for bad in ["25", "abc", "%", "x%", ""] {
            let err = resolve_fenceposts(Some(&IntOrString::String(bad.into())), None, 10);
            assert_eq!(err, Err(BadIntOrPercent(bad.into())), "{bad:?}");
        }
    }

    fn deployment(replicas: i32, strategy: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "strategy": strategy,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}}}
        }))
        .unwrap()
    }

    #[test]
    fn deployment_level_bounds() {
        let rolling = |s: &str, u: &str| json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": v(s), "maxUnavailable": v(u)}});
        // (replicas, strategy, maxSurge, maxUnavailable)
        let cases = [
            (10, rolling("2", "1"), 2, 1),
            (3, rolling("1", "5"), 1, 3), // unavailable bounded by replicas
            (0, rolling("1", "1"), 1, 0), // 0 replicas → 0 unavailable
            (10, json!({"type": "Recreate"}), 0, 0),
            (10, json!({}), 3, 2), // no rollingUpdate: the 25% defaults
            (10, rolling("0%", "0%"), 0, 1),
        ];
        for (replicas, strategy, surge, unavailable) in cases {
            let d = deployment(replicas, strategy.clone());
            assert_eq!(
                (max_surge(&d), max_unavailable(&d)),
                (surge, unavailable),
                "{replicas} {strategy}"
            );
        }
    }
}
