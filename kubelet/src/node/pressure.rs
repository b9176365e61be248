//! The Node's pressure conditions from hard eviction thresholds, as upstream's
//! eviction manager reports them: `MemoryPressure` when `memory.available` is
//! under its threshold, `DiskPressure` for `nodefs.available`, `PIDPressure`
//! for `pid.available`. A threshold is an amount (`100Mi`) or a percentage of
//! the total (`10%`).

use super::host::Sample;
use super::quantity::{QuantityError, parse_bytes};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    /// Hundredths of a percent, so `7.5%` is exact.
    Percent(u32),
}

impl Threshold {
    /// The amount below which `total` is under pressure.
    pub fn of(self, total: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (total as u128 * p as u128 / 10_000) as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    pub memory: Option<Threshold>,
    pub nodefs: Option<Threshold>,
    pub pids: Option<Threshold>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThresholdError {
    #[error("{0:?}: expected signal<amount, such as memory.available<100Mi")]
    Form(String),
    #[error("{0:?}: the signals are memory.available, nodefs.available and pid.available")]
    Signal(String),
    #[error(transparent)]
    Quantity(#[from] QuantityError),
}

impl Thresholds {
    pub fn parse(items: &[String]) -> Result<Thresholds, ThresholdError> {
        let mut t = Thresholds::default();
        for item in items.iter().filter(|i| !i.is_empty()) {
            let (signal, amount) = item
                .split_once('<')
                .ok_or_else(|| ThresholdError::Form(item.clone()))?;
            let amount = amount.trim();
            let threshold = match amount.strip_suffix('%') {
                Some(p) => {
                    let p: f64 = p.parse().map_err(|_| ThresholdError::Form(item.clone()))?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(ThresholdError::Form(item.clone()));
                    }
                    Threshold::Percent((p * 100.0).round() as u32)
                }
                None => Threshold::Bytes(parse_bytes(amount)?),
            };
            match signal.trim() {
                "memory.available" => t.memory = Some(threshold),
                "nodefs.available" => t.nodefs = Some(threshold),
                "pid.available" => t.pids = Some(threshold),
                other => return Err(ThresholdError::Signal(other.to_string())),
            }
        }
        Ok(t)
    }
}

/// One condition as the Node status shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pressure {
    pub type_: &'static str,
    pub under: bool,
    pub reason: &'static str,
    pub message: &'static str,
}

/// The three pressure conditions for `sample` (`memory_total` is the Node's
/// memory capacity, what a memory percentage is taken of).
pub fn conditions(sample: &Sample, memory_total: u64, t: &Thresholds) -> [Pressure; 3] {
    let below = |available: u64, threshold: Option<Threshold>, total: u64| {
        threshold.is_some_and(|th| available < th.of(total))
    };
    let memory = below(sample.memory_available, t.memory, memory_total);
    let disk = below(sample.nodefs_available, t.nodefs, sample.nodefs_capacity);
    let pids = below(sample.pids_available, t.pids, sample.pid_max);
    [
        if memory {
            Pressure {
                type_: "MemoryPressure",
                under: true,
                reason: "KubeletHasInsufficientMemory",
                message: "kubelet has insufficient memory available",
            }
        } else {
            Pressure {
                type_: "MemoryPressure",
                under: false,
                reason: "KubeletHasSufficientMemory",
                message: "kubelet has sufficient memory available",
            }
        },
        if disk {
            Pressure {
                type_: "DiskPressure",
                under: true,
                reason: "KubeletHasDiskPressure",
                message: "kubelet has disk pressure",
            }
        } else {
            Pressure {
                type_: "DiskPressure",
                under: false,
                reason: "KubeletHasNoDiskPressure",
                message: "kubelet has no disk pressure",
            }
        },
        if pids {
            Pressure {
                type_: "PIDPressure",
                under: true,
                reason: "KubeletHasInsufficientPID",
                message: "kubelet has insufficient PID available",
            }
        } else {
            Pressure {
                type_: "PIDPressure",
                under: false,
                reason: "KubeletHasSufficientPID",
                message: "kubelet has sufficient PID available",
            }
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    fn defaults() -> Thresholds {
        Thresholds::parse(&[
            "memory.available<100Mi".into(),
            "nodefs.available<10%".into(),
            "pid.available<5%".into(),
        ])
        .unwrap()
    }

    #[test]
    fn parse_thresholds() {
        let t = defaults();
        assert_eq!(t.memory, Some(Threshold::Bytes(100 << 20)));
        assert_eq!(t.nodefs, Some(Threshold::Percent(1000)));
        assert_eq!(t.pids, Some(Threshold::Percent(500)));
        assert_eq!(Threshold::Percent(750).of(1000), 75);
        assert!(matches!(
            Thresholds::parse(&["memory.available>1".into()]),
            Err(ThresholdError::Form(_))
        ));
        assert!(matches!(
            Thresholds::parse(&["imagefs.available<1%".into()]),
            Err(ThresholdError::Signal(_))
        ));
        assert!(Thresholds::parse(&["nodefs.available<120%".into()]).is_err());
    }

    #[test]
    fn pressure_table() {
        let ok = Sample {
            memory_available: 4 * GI,
            nodefs_available: 50 * GI,
            nodefs_capacity: 100 * GI,
            pids_available: 4_000_000,
            pid_max: 4_194_304,
        };
        let cases = [
            (ok, [false, false, false]),
            (
                Sample {
                    memory_available: 99 << 20,
                    ..ok
                },
                [true, false, false],
            ),
            (
                Sample {
                    memory_available: 100 << 20,
                    ..ok
                },
                [false, false, false],
            ),
            (
                Sample {
                    nodefs_available: 9 * GI,
                    ..ok
                },
                [false, true, false],
            ),
            (
                Sample {
                    pids_available: 1000,
                    ..ok
                },
                [false, false, true],
            ),
        ];
        for (sample, want) in cases {
            let got = conditions(&sample, 8 * GI, &defaults()).map(|p| p.under);
            assert_eq!(got, want, "{sample:?}");
        }
        let none = conditions(
            &Sample {
                memory_available: 0,
                ..ok
            },
            8 * GI,
            &Thresholds::default(),
        );
        assert!(none.iter().all(|p| !p.under), "no threshold, no pressure");
        assert_eq!(none[0].reason, "KubeletHasSufficientMemory");
    }
}
