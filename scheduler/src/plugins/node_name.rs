//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node.

use crate::framework::{CycleState, FilterPlugin, Status};
use crate::snapshot::{NodeInfo, PodInfo};

pub const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(wanted) if !wanted.is_empty() && wanted != node.name => {
                Status::unresolvable(REASON)
            }
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{filter, node, pod};
    use serde_json::json;

    #[test]
    fn table() {
        let cases = [
            (json!({}), "n1", Code::Success),
            (json!({"nodeName": ""}), "n1", Code::Success),
            (json!({"nodeName": "n1"}), "n1", Code::Success),
            (
                json!({"nodeName": "n2"}),
                "n1",
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (spec, node_name, want) in cases {
            let s = filter(&NodeName, &pod(spec.clone()), &node(node_name, json!({})));
            assert_eq!(s.code, want, "{spec} on {node_name}");
            if want != Code::Success {
                assert_eq!(s.reasons, [REASON]);
            }
        }
    }
}
