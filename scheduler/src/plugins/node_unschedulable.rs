//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::tolerates;
use crate::framework::{CycleState, FilterPlugin, Status};
use crate::snapshot::{NodeInfo, PodInfo};

pub const REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &CycleState) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if pod.tolerations().iter().any(|t| tolerates(t, &taint)) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
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
        let tolerate = json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable",
                                               "operator": "Exists", "effect": "NoSchedule"}]});
        let tolerate_all = json!({"tolerations": [{"operator": "Exists"}]});
        let wrong_effect = json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable",
                                                   "operator": "Exists", "effect": "NoExecute"}]});
        let cordoned = json!({"spec": {"unschedulable": true}});
        let cases = [
            (json!({}), json!({}), Code::Success),
            (
                json!({}),
                json!({"spec": {"unschedulable": false}}),
                Code::Success,
            ),
            (
                json!({}),
                cordoned.clone(),
                Code::UnschedulableAndUnresolvable,
            ),
            (tolerate, cordoned.clone(), Code::Success),
            (tolerate_all, cordoned.clone(), Code::Success),
            (wrong_effect, cordoned, Code::UnschedulableAndUnresolvable),
        ];
        for (spec, n, want) in cases {
            let s = filter(
                &NodeUnschedulable,
                &pod(spec.clone()),
                &node("n", n.clone()),
            );
            assert_eq!(s.code, want, "{spec} on {n}");
            if want != Code::Success {
                assert_eq!(s.reasons, [REASON]);
            }
        }
    }
}
