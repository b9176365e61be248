//! Resource quantities and what a pod requests, computed as Kubernetes does.
//!
//! - [`parse_quantity`] reads `"250m"`, `"1.5"`, `"128Mi"`, `"1e3"`, `"2G"` into an integer in
//!   a chosen unit (millicores for cpu, bytes for memory), rounding up like `Quantity.MilliValue`.
//! - [`pod_requests`]: the sum of the containers' requests, or the largest init container when
//!   that is more (sidecars, i.e. init containers with `restartPolicy: Always`, keep running and
//!   add to both), plus `spec.overhead`.
//! - [`pod_non_zero_requests`]: the same, except that a container that does not say how much
//!   cpu or memory it needs counts as 100m and 200Mi — what scoring uses, as upstream, so that
//!   pods without requests still spread.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// What a container without a cpu request counts as when scoring (millicores).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// What a container without a memory request counts as when scoring (bytes).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// How many pods (only meaningful for a node's allocatable).
    pub pods: i64,
    /// Extended resources (`nvidia.com/gpu`, `hugepages-2Mi`, …), in their plain unit.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each resource the larger of the two.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// Reads a `ResourceList` (requests, limits, capacity, allocatable).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, quantity: &str) {
        match name {
            "cpu" => self.milli_cpu = parse_quantity(quantity, 3).unwrap_or(0),
            "memory" => self.memory = parse_quantity(quantity, 0).unwrap_or(0),
            "ephemeral-storage" => {
                self.ephemeral_storage = parse_quantity(quantity, 0).unwrap_or(0)
            }
            "pods" => self.pods = parse_quantity(quantity, 0).unwrap_or(0),
            other if is_scalar_resource(other) => {
                self.scalar
                    .insert(other.to_string(), parse_quantity(quantity, 0).unwrap_or(0));
            }
            _ => {}
        }
    }
}

/// Extended resources (a domain-prefixed name outside `kubernetes.io/`), hugepages and
/// attachable volumes: the ones NodeResourcesFit checks besides cpu, memory and storage.
fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

/// Parses a Kubernetes quantity and returns `value × 10^scale`, rounded up (scale 3 gives
/// milli-units, as `MilliValue()`; scale 0 gives `Value()`). `None` when it is not a quantity.
pub fn parse_quantity(text: &str, scale: u32) -> Option<i64> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c as u8 - b'0'))?;
    }
    // value = mantissa × 10^(exp10 - fraction digits) × 2^exp2
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse::<i32>().ok()?, 0),
        _ => return None,
    };
    let exp10 = exp10 - fraction.len() as i32 + scale as i32;
    let mut numerator = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    let mut denominator: i128 = 1;
    if exp10 >= 0 {
        numerator = numerator.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        denominator = 10i128.checked_pow((-exp10) as u32)?;
    }
    // Round away from zero, as resource.Quantity does for MilliValue/Value.
    let value = (numerator + denominator - 1) / denominator;
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let mut r = Resources::default();
    // The API server defaults a missing request to the limit; do the same for pods that
    // reached us without that defaulting.
    if let Some(limits) = limits {
        for (name, q) in limits {
            if requests.is_none_or(|req| !req.contains_key(name)) {
                r.set(name, &q.0);
            }
        }
    }
    if let Some(requests) = requests {
        for (name, q) in requests {
            r.set(name, &q.0);
        }
    }
    if non_zero {
        let says = |name: &str| {
            requests.is_some_and(|m| m.contains_key(name))
                || limits.is_some_and(|m| m.contains_key(name))
        };
        if !says("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !says("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&container_requests(c, non_zero));
    }
    // Init containers run one after another before the containers; sidecars (restartPolicy
    // Always) start in order and keep running, so they add to everything after them.
    let mut init_max = Resources::default();
    let mut sidecars = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            sum.add(&r);
            sidecars.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut during = r;
            during.add(&sidecars);
            init_max.max_with(&during);
        }
    }
    sum.max_with(&init_max);
    if let Some(overhead) = &spec.overhead {
        sum.add(&Resources::from_list(overhead));
    }
    sum
}

/// What the pod needs from a node: max(sum of containers, largest init container) + overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    requests(pod, false)
}

/// As [`pod_requests`], with 100m cpu / 200Mi memory for each container that sets none.
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    requests(pod, true)
}

/// `status.allocatable`, or `status.capacity` when a node reports no allocatable.
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    status
        .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
        .map(Resources::from_list)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        let cases: &[(&str, u32, Option<i64>)] = &[
            ("1", 3, Some(1000)),
            ("250m", 3, Some(250)),
            ("0.5", 3, Some(500)),
            ("1.5", 3, Some(1500)),
            ("100u", 3, Some(1)), // 0.0001 cores rounds up to 1m
            ("1n", 0, Some(1)),
            ("128Mi", 0, Some(128 * 1024 * 1024)),
            ("1Gi", 0, Some(1 << 30)),
            ("1.5Gi", 0, Some(3 << 29)),
            ("2G", 0, Some(2_000_000_000)),
            ("1k", 0, Some(1000)),
            ("1Ki", 0, Some(1024)),
            ("1e3", 0, Some(1000)),
            ("1E3", 3, Some(1_000_000)),
            ("+5", 0, Some(5)),
            ("-5m", 3, Some(-5)),
            ("", 0, None),
            ("abc", 0, None),
            ("1.2.3", 0, None),
            ("5Xi", 0, None),
        ];
        for (text, scale, want) in cases {
            assert_eq!(
                parse_quantity(text, *scale),
                *want,
                "{text} at scale {scale}"
            );
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn c(cpu: Option<&str>, mem: Option<&str>) -> serde_json::Value {
        let mut requests = serde_json::Map::new();
        if let Some(cpu) = cpu {
            requests.insert("cpu".into(), json!(cpu));
        }
        if let Some(mem) = mem {
            requests.insert("memory".into(), json!(mem));
        }
        json!({"name": "c", "image": "i", "resources": {"requests": requests}})
    }

    #[test]
    fn pod_requests_table() {
        let mi = 1024 * 1024;
        // (spec, cpu, memory, non-zero cpu, non-zero memory)
        let cases = vec![
            (
                json!({"containers": [c(Some("100m"), Some("64Mi")), c(Some("200m"), None)]}),
                300,
                64 * mi,
                300,
                (64 + 200) * mi,
            ),
            (json!({"containers": [c(None, None)]}), 0, 0, 100, 200 * mi),
            // explicit zero is not missing: it stays zero when scoring too
            (json!({"containers": [c(Some("0"), Some("0"))]}), 0, 0, 0, 0),
            // a big init container wins over the sum of the containers
            (
                json!({"containers": [c(Some("100m"), Some("10Mi"))],
                       "initContainers": [c(Some("1"), Some("1Mi"))]}),
                1000,
                10 * mi,
                1000,
                10 * mi,
            ),
            // a sidecar adds to the containers and to the init containers after it
            (
                json!({"containers": [c(Some("100m"), Some("10Mi"))],
                       "initContainers": [
                           {"name": "side", "image": "i", "restartPolicy": "Always",
                            "resources": {"requests": {"cpu": "50m", "memory": "1Mi"}}},
                           c(Some("500m"), Some("1Mi"))]}),
                550,
                11 * mi,
                550,
                11 * mi,
            ),
            // overhead is added
            (
                json!({"containers": [c(Some("100m"), Some("10Mi"))],
                       "overhead": {"cpu": "10m", "memory": "1Mi"}}),
                110,
                11 * mi,
                110,
                11 * mi,
            ),
            // limits only: the request is the limit
            (
                json!({"containers": [{"name": "c", "image": "i",
                       "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]}),
                2000,
                1024 * mi,
                2000,
                1024 * mi,
            ),
        ];
        for (i, (spec, cpu, mem, nz_cpu, nz_mem)) in cases.into_iter().enumerate() {
            let p = pod(spec);
            let r = pod_requests(&p);
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "case {i} requests");
            let nz = pod_non_zero_requests(&p);
            assert_eq!(
                (nz.milli_cpu, nz.memory),
                (nz_cpu, nz_mem),
                "case {i} non-zero"
            );
        }
    }

    #[test]
    fn extended_resources_and_allocatable() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "8", "pods": "10"},
                       "allocatable": {"cpu": "7500m", "memory": "1Gi", "pods": "110",
                                       "nvidia.com/gpu": "2", "kubernetes.io/other": "3"}}
        }))
        .unwrap();
        let a = node_allocatable(&node);
        assert_eq!(a.milli_cpu, 7500);
        assert_eq!(a.memory, 1 << 30);
        assert_eq!(a.pods, 110);
        assert_eq!(a.scalar.get("nvidia.com/gpu"), Some(&2));
        assert_eq!(a.scalar.get("kubernetes.io/other"), None);
    }
}
