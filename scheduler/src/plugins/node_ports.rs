//! NodePorts: a pod asking for a host port fits only nodes where no pod holds the same port
//! and protocol on an overlapping address (`0.0.0.0` overlaps every address).

use crate::framework::{CycleState, FilterPlugin, Status};
use crate::snapshot::{NodeInfo, PodInfo};

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if clash {
            Status::unschedulable(REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node_with_pods, pod};
    use serde_json::{Value, json};

    fn with_port(port: i64, protocol: &str, ip: &str) -> Value {
        let mut p = json!({"containerPort": 80, "hostPort": port, "protocol": protocol});
        if !ip.is_empty() {
            p["hostIP"] = json!(ip);
        }
        json!({"containers": [{"name": "c", "image": "i", "ports": [p]}]})
    }

    #[test]
    fn table() {
        let used = || {
            node_with_pods(
                "n",
                json!({}),
                vec![
                    pod(with_port(8080, "TCP", "")),
                    pod(with_port(53, "UDP", "10.0.0.1")),
                ],
            )
        };
        let cases = [
            (json!({}), Code::Success),
            (with_port(8080, "TCP", ""), Code::Unschedulable),
            (with_port(8080, "TCP", "10.0.0.2"), Code::Unschedulable), // 0.0.0.0 overlaps
            (with_port(8080, "UDP", ""), Code::Success),
            (with_port(8081, "TCP", ""), Code::Success),
            (with_port(53, "UDP", "10.0.0.1"), Code::Unschedulable),
            (with_port(53, "UDP", "10.0.0.2"), Code::Success),
            (with_port(53, "UDP", ""), Code::Unschedulable),
            // containerPort alone (no hostPort) takes nothing on the node
            (
                json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080}]}]}),
                Code::Success,
            ),
        ];
        for (spec, want) in cases {
            let p = pod(spec.clone());
            let s = NodePorts.filter(&p, &used(), &CycleState::default());
            assert_eq!(s.code, want, "{spec}");
            if want != Code::Success {
                assert_eq!(s.reasons, [REASON]);
            }
        }
    }
}
