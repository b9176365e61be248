//! Nodes: the node table and the fields nodes can be selected by.

use serde_json::{Value, json};

use crate::object::{get, items, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col, wide};

pub struct NodeStrategy;

impl Strategy for NodeStrategy {
    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Status", "The status of the node"),
            col("Roles", "The roles of the node"),
            table::age_column(),
            col("Version", "Kubelet Version reported by the node."),
            wide(col(
                "Internal-IP",
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            )),
            wide(col(
                "External-IP",
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            )),
            wide(col(
                "OS-Image",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            )),
            wide(col(
                "Kernel-Version",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            )),
            wide(col(
                "Container-Runtime",
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let ready = items(obj, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == Some("Ready"));
        // As upstream's printNode: a Ready condition that is not True
        // (False or Unknown, e.g. a node whose kubelet stopped posting)
        // prints NotReady; only a node without one prints Unknown.
        let mut status = match ready.map(|c| str_at(c, &["status"])) {
            Some(Some("True")) => "Ready".to_string(),
            Some(_) => "NotReady".to_string(),
            None => "Unknown".to_string(),
        };
        if get(obj, &["spec", "unschedulable"]) == Some(&json!(true)) {
            status.push_str(",SchedulingDisabled");
        }
        let mut roles: Vec<String> = get(obj, &["metadata", "labels"])
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .keys()
                    .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/").map(String::from))
                    .chain(
                        labels
                            .get("kubernetes.io/role")
                            .and_then(Value::as_str)
                            .map(String::from),
                    )
                    .collect()
            })
            .unwrap_or_default();
        roles.sort();
        let address = |kind: &str| {
            items(obj, &["status", "addresses"])
                .iter()
                .find(|a| str_at(a, &["type"]) == Some(kind))
                .and_then(|a| str_at(a, &["address"]))
                .unwrap_or("<none>")
                .to_string()
        };
        let info = |field: &str| {
            str_at(obj, &["status", "nodeInfo", field])
                .unwrap_or("")
                .to_string()
        };
        vec![
            table::name(obj),
            json!(status),
            json!(table::joined(roles)),
            table::age(obj),
            json!(info("kubeletVersion")),
            json!(address("InternalIP")),
            json!(address("ExternalIP")),
            json!(if info("osImage").is_empty() {
                "<unknown>".into()
            } else {
                info("osImage")
            }),
            json!(if info("kernelVersion").is_empty() {
                "<unknown>".into()
            } else {
                info("kernelVersion")
            }),
            json!(if info("containerRuntimeVersion").is_empty() {
                "<unknown>".into()
            } else {
                info("containerRuntimeVersion")
            }),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        match path {
            "spec.unschedulable" => Some(
                get(obj, &["spec", "unschedulable"])
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_cell(ready: Option<&str>, unschedulable: bool) -> Value {
        let conditions: Vec<Value> = ready
            .map(|s| json!({"type": "Ready", "status": s}))
            .into_iter()
            .collect();
        let node = json!({
            "metadata": {"name": "n1"},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions},
        });
        NodeStrategy.cells(&node)[1].clone()
    }

    #[test]
    fn status_column_reads_as_upstream() {
        for (ready, cordoned, want) in [
            (Some("True"), false, "Ready"),
            (Some("False"), false, "NotReady"),
            // A kubelet that stopped posting: the node controller sets Unknown.
            (Some("Unknown"), false, "NotReady"),
            (None, false, "Unknown"),
            (Some("True"), true, "Ready,SchedulingDisabled"),
            (Some("Unknown"), true, "NotReady,SchedulingDisabled"),
        ] {
            assert_eq!(
                status_cell(ready, cordoned),
                json!(want),
                "{ready:?} {cordoned}"
            );
        }
    }
}
