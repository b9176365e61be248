//! Which pod goes first, and what its status says — upstream's ranking and
//! words, as pure functions.
//!
//! - memory: pods using more than they requested first, then lower
//!   priority first, then the most above their request first;
//! - disk (`ephemeral-storage`): the same with local storage;
//! - PIDs: lower priority first, then the most processes first.
//!
//! Worked example (memory): A (priority 0) uses 300Mi of a 500Mi request;
//! B (priority 1000) uses 200Mi with no request; C (priority 0) uses 50Mi
//! with no request. B and C exceed their requests, A does not: A is last.
//! Between B and C the lower priority goes first: C, then B, then A —
//! though B uses four times what C does.

use std::cmp::Reverse;

/// The resource the node is short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    Disk,
    Pids,
}

impl Resource {
    /// The name in upstream's eviction messages.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Disk => "ephemeral-storage",
            Resource::Pids => "pids",
        }
    }
}

/// A pod that may be evicted, with what it uses of the short resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    /// The pod's request of the resource (bytes; 0 for PIDs or none).
    pub request: u64,
    /// What it uses now (bytes, or processes).
    pub usage: u64,
}

/// Sorts `pods` so the first is the one to evict.
pub fn rank(resource: Resource, pods: &mut [Candidate]) {
    match resource {
        Resource::Memory | Resource::Disk => pods.sort_by_key(|p| {
            (
                Reverse(p.usage > p.request),
                p.priority,
                Reverse(p.usage.saturating_sub(p.request)),
                p.uid.clone(),
            )
        }),
        Resource::Pids => pods.sort_by_key(|p| (p.priority, Reverse(p.usage), p.uid.clone())),
    }
}

/// A byte count as Kubernetes prints quantities: the largest binary suffix
/// that divides it (`100Mi`, `51200Ki`), else plain bytes.
pub fn quantity(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// The pod status message, in upstream's words ("The node was low on
/// resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ").
/// Skiff measures a pod, not each container, so the second sentence is
/// about the pod.
pub fn message(resource: Resource, threshold: u64, available: u64, victim: &Candidate) -> String {
    let amount = |n: u64| match resource {
        Resource::Pids => n.to_string(),
        _ => quantity(n),
    };
    let mut m = format!(
        "The node was low on resource: {}. Threshold quantity: {}, available: {}. ",
        resource.name(),
        amount(threshold),
        amount(available)
    );
    if resource != Resource::Pids && victim.usage > victim.request {
        m.push_str(&format!(
            "Pod {} was using {}, request is {}, has larger consumption of {}. ",
            victim.name,
            amount(victim.usage),
            amount(victim.request),
            resource.name()
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn pod(name: &str, priority: i32, request: u64, usage: u64) -> Candidate {
        Candidate {
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            name: name.into(),
            priority,
            request,
            usage,
        }
    }

    fn order(resource: Resource, mut pods: Vec<Candidate>) -> Vec<String> {
        rank(resource, &mut pods);
        pods.into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn memory_and_disk_rank_over_request_then_priority_then_excess() {
        // The worked example.
        let example = vec![
            pod("a", 0, 500 * MI, 300 * MI),
            pod("b", 1000, 0, 200 * MI),
            pod("c", 0, 0, 50 * MI),
        ];
        assert_eq!(order(Resource::Memory, example.clone()), ["c", "b", "a"]);
        assert_eq!(order(Resource::Disk, example), ["c", "b", "a"]);
        let cases: Vec<(Vec<Candidate>, Vec<&str>)> = vec![
            // Same priority, both over: the larger excess first.
            (
                vec![pod("small", 0, 0, 10 * MI), pod("big", 0, 0, 90 * MI)],
                vec!["big", "small"],
            ),
            // Excess counts, not usage.
            (
                vec![pod("x", 0, 100 * MI, 150 * MI), pod("y", 0, 0, 60 * MI)],
                vec!["y", "x"],
            ),
            // Nobody over: priority, then excess (0 for all: by uid).
            (
                vec![
                    pod("hi", 5, 100 * MI, 10 * MI),
                    pod("lo", 1, 100 * MI, 10 * MI),
                ],
                vec!["lo", "hi"],
            ),
            // Negative priorities are lower still.
            (
                vec![pod("zero", 0, 0, MI), pod("neg", -10, 0, MI)],
                vec!["neg", "zero"],
            ),
        ];
        for (pods, want) in cases {
            assert_eq!(order(Resource::Memory, pods), want);
        }
    }

    #[test]
    fn pids_rank_by_priority_then_processes() {
        let pods = vec![
            pod("few", 0, 0, 3),
            pod("many", 0, 0, 300),
            pod("vip", 100, 0, 900),
        ];
        assert_eq!(order(Resource::Pids, pods), ["many", "few", "vip"]);
    }

    #[test]
    fn quantities_and_messages_read_as_upstream_writes_them() {
        assert_eq!(quantity(100 * MI), "100Mi");
        assert_eq!(quantity(51200 * 1024), "50Mi");
        assert_eq!(quantity(51201 * 1024), "51201Ki");
        assert_eq!(quantity(1000), "1000");
        assert_eq!(quantity(0), "0");
        let hog = pod("hog", 0, 0, 300 * MI);
        assert_eq!(
            message(Resource::Memory, 100 * MI, 50 * MI, &hog),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Pod hog was using 300Mi, request is 0, has larger consumption of memory. "
        );
        let modest = pod("modest", 0, 400 * MI, 300 * MI);
        assert_eq!(
            message(Resource::Disk, 10 << 30, 1 << 30, &modest),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 1Gi. "
        );
        assert_eq!(
            message(Resource::Pids, 100, 20, &hog),
            "The node was low on resource: pids. Threshold quantity: 100, available: 20. "
        );
    }
}
