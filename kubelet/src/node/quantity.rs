//! The few resource quantities the kubelet computes with: CPU in millicores and
//! bytes, parsed from flags like `cpu=100m,memory=100Mi` and written back in
//! Kubernetes' canonical forms (`4`, `250m`, `16318412Ki`).

use std::collections::BTreeMap;

/// Why a quantity or a `name=quantity` list could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantityError {
    #[error("{0:?}: expected name=quantity")]
    NotAPair(String),
    #[error("{0:?}: not a quantity (examples: 100m, 2, 512Mi, 1G)")]
    Quantity(String),
    #[error("{0:?}: only cpu, memory, ephemeral-storage and pid can be reserved")]
    UnknownResource(String),
}

/// Millicores from `2`, `0.5`, `250m`.
pub fn parse_cpu(s: &str) -> Result<u64, QuantityError> {
    let bad = || QuantityError::Quantity(s.to_string());
    if let Some(m) = s.strip_suffix('m') {
        return m.parse().map_err(|_| bad());
    }
    let cores: f64 = s.parse().map_err(|_| bad())?;
    if !(cores.is_finite() && cores >= 0.0) {
        return Err(bad());
    }
    Ok((cores * 1000.0).round() as u64)
}

/// Bytes from `128974848`, `129e6`, `129M`, `123Mi`, `1Gi`, `1k`.
pub fn parse_bytes(s: &str) -> Result<u64, QuantityError> {
    let bad = || QuantityError::Quantity(s.to_string());
    const SUFFIXES: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            let n: u64 = n.parse().map_err(|_| bad())?;
            return n.checked_mul(factor).ok_or_else(bad);
        }
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let f: f64 = s.parse().map_err(|_| bad())?;
    if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 {
        Ok(f as u64)
    } else {
        Err(bad())
    }
}

/// Reserved amounts by resource, from `cpu=100m,memory=100Mi` pieces.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reserved {
    pub milli_cpu: u64,
    pub memory: u64,
    pub ephemeral_storage: u64,
    pub pids: u64,
}

impl Reserved {
    pub fn parse(pairs: &[String]) -> Result<Reserved, QuantityError> {
        let mut r = Reserved::default();
        for pair in pairs.iter().filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| QuantityError::NotAPair(pair.clone()))?;
            match name.trim() {
                "cpu" => r.milli_cpu += parse_cpu(value.trim())?,
                "memory" => r.memory += parse_bytes(value.trim())?,
                "ephemeral-storage" => r.ephemeral_storage += parse_bytes(value.trim())?,
                "pid" => r.pids += parse_bytes(value.trim())?,
                other => return Err(QuantityError::UnknownResource(other.to_string())),
            }
        }
        Ok(r)
    }

    pub fn plus(&self, other: &Reserved) -> Reserved {
        Reserved {
            milli_cpu: self.milli_cpu + other.milli_cpu,
            memory: self.memory + other.memory,
            ephemeral_storage: self.ephemeral_storage + other.ephemeral_storage,
            pids: self.pids + other.pids,
        }
    }
}

/// Millicores as Kubernetes writes them: whole cores as `4`, else `3900m`.
pub fn format_cpu(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// Bytes as the kubelet writes memory: in Ki when they divide evenly, as upstream
/// reports `memory: 16318412Ki`.
pub fn format_bytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

/// A map of quantities for `capacity` / `allocatable`.
pub fn resource_list(
    milli_cpu: u64,
    memory: u64,
    ephemeral: u64,
    pods: u32,
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    BTreeMap::from([
        ("cpu".to_string(), Quantity(format_cpu(milli_cpu))),
        ("memory".to_string(), Quantity(format_bytes(memory))),
        (
            "ephemeral-storage".to_string(),
            Quantity(format_bytes(ephemeral)),
        ),
        ("pods".to_string(), Quantity(pods.to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        for (s, want) in [
            ("2", Ok(2000)),
            ("0.5", Ok(500)),
            ("250m", Ok(250)),
            ("1.2345", Ok(1235)),
        ] {
            assert_eq!(parse_cpu(s), want, "{s}");
        }
        for s in ["", "x", "-1", "m", "1.5m"] {
            assert!(parse_cpu(s).is_err(), "{s}");
        }
    }

    #[test]
    fn byte_quantities() {
        let cases = [
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 123 << 20),
            ("1Gi", 1 << 30),
            ("1k", 1000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
        for s in ["", "Mi", "1.5Gi", "-3", "99999999999Ei"] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
    }

    #[test]
    fn reserved_lists() {
        let r = Reserved::parse(&["cpu=100m".into(), "memory=100Mi".into(), "pid=1000".into()])
            .unwrap();
        assert_eq!(
            r,
            Reserved {
                milli_cpu: 100,
                memory: 100 << 20,
                ephemeral_storage: 0,
                pids: 1000
            }
        );
        assert_eq!(
            Reserved::parse(&["gpu=1".into()]),
            Err(QuantityError::UnknownResource("gpu".into()))
        );
        assert_eq!(
            Reserved::parse(&["cpu".into()]),
            Err(QuantityError::NotAPair("cpu".into()))
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(format_cpu(4000), "4");
        assert_eq!(format_cpu(3900), "3900m");
        assert_eq!(format_bytes(16_710_053_888), "16318412Ki");
        assert_eq!(format_bytes(1001), "1001");
    }
}
