//! The smaller core kinds: endpoints, service accounts, events, volumes.

use serde_json::{Value, json};

use crate::object::{get, i64_at, items, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col, int_col, wide};

pub struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col(
                "Endpoints",
                "Endpoints is the list of endpoints in the service.",
            ),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let mut all = Vec::new();
        for subset in items(obj, &["subsets"]) {
            let ports: Vec<i64> = items(subset, &["ports"])
                .iter()
                .filter_map(|p| i64_at(p, &["port"]))
                .collect();
            for address in items(subset, &["addresses"]) {
                let ip = str_at(address, &["ip"]).unwrap_or("");
                if ports.is_empty() {
                    all.push(ip.to_string());
                }
                for port in &ports {
                    all.push(format!("{ip}:{port}"));
                }
            }
        }
        // Upstream shows three and counts the rest.
        let shown = if all.len() > 3 {
            format!("{} + {} more...", all[..3].join(","), all.len() - 3)
        } else if all.is_empty() {
            "<none>".into()
        } else {
            all.join(",")
        };
        vec![table::name(obj), json!(shown), table::age(obj)]
    }
}

pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            int_col(
                "Secrets",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj),
            json!(items(obj, &["secrets"]).len()),
            table::age(obj),
        ]
    }
}

pub struct EventStrategy;

impl Strategy for EventStrategy {
    fn columns(&self) -> Vec<Column> {
        let mut name = table::name_column();
        name.priority = 1;
        vec![
            col("Last Seen", "Time when last Event occurred"),
            col(
                "Type",
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            col(
                "Reason",
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
            ),
            col(
                "Object",
                "The object that this event is about. Mapped from event.involvedObject",
            ),
            wide(col(
                "Subobject",
                "The subobject that this event is about. Mapped from event.involvedObject.fieldPath",
            )),
            wide(col(
                "Source",
                "The component reporting this event. Should be a short machine understandable string.",
            )),
            col(
                "Message",
                "A human-readable description of the status of this operation.",
            ),
            wide(col("First Seen", "Time when first Event occurred")),
            wide(int_col("Count", "Number of times this event has occurred")),
            name,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let last = str_at(obj, &["lastTimestamp"])
            .or_else(|| str_at(obj, &["eventTime"]))
            .or_else(|| str_at(obj, &["metadata", "creationTimestamp"]));
        let first = str_at(obj, &["firstTimestamp"]).or_else(|| str_at(obj, &["eventTime"]));
        let kind = str_at(obj, &["involvedObject", "kind"])
            .unwrap_or("")
            .to_lowercase();
        let object = format!(
            "{kind}/{}",
            str_at(obj, &["involvedObject", "name"]).unwrap_or("")
        );
        let source = str_at(obj, &["source", "component"])
            .or_else(|| str_at(obj, &["reportingComponent"]))
            .unwrap_or("")
            .to_string();
        let source = match str_at(obj, &["source", "host"]).filter(|h| !h.is_empty()) {
            Some(host) => format!("{source}, {host}"),
            None => source,
        };
        vec![
            json!(table::since(last)),
            json!(str_at(obj, &["type"]).unwrap_or("")),
            json!(str_at(obj, &["reason"]).unwrap_or("")),
            json!(object),
            json!(str_at(obj, &["involvedObject", "fieldPath"]).unwrap_or("")),
            json!(source),
            json!(str_at(obj, &["message"]).unwrap_or("").trim()),
            json!(table::since(first)),
            json!(i64_at(obj, &["count"]).unwrap_or(1)),
            table::name(obj),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        let at = |p: &[&str]| str_at(obj, p).unwrap_or("").to_string();
        Some(match path {
            "involvedObject.kind" => at(&["involvedObject", "kind"]),
            "involvedObject.namespace" => at(&["involvedObject", "namespace"]),
            "involvedObject.name" => at(&["involvedObject", "name"]),
            "involvedObject.uid" => at(&["involvedObject", "uid"]),
            "involvedObject.apiVersion" => at(&["involvedObject", "apiVersion"]),
            "involvedObject.resourceVersion" => at(&["involvedObject", "resourceVersion"]),
            "involvedObject.fieldPath" => at(&["involvedObject", "fieldPath"]),
            "reason" => at(&["reason"]),
            "reportingComponent" => at(&["reportingComponent"]),
            "source" => at(&["source", "component"]),
            "type" => at(&["type"]),
            _ => return None,
        })
    }
}

fn access_modes(obj: &Value, path: &[&str]) -> String {
    let modes: Vec<String> = items(obj, path)
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .map(String::from)
        .collect();
    modes.join(",")
}

pub struct PersistentVolumeClaimStrategy;

impl Strategy for PersistentVolumeClaimStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col(
                "Status",
                "status represents the current information/status of a persistent volume claim.",
            ),
            col(
                "Volume",
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
            ),
            col(
                "Capacity",
                "capacity represents the actual resources of the underlying volume.",
            ),
            col(
                "Access Modes",
                "accessModes contains the desired access modes the volume should have.",
            ),
            col(
                "StorageClass",
                "storageClassName is the name of the StorageClass required by the claim.",
            ),
            col(
                "VolumeAttributesClass",
                "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.",
            ),
            table::age_column(),
            wide(col(
                "VolumeMode",
                "volumeMode defines what type of volume is required by the claim.",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let bound = str_at(obj, &["status", "phase"]) == Some("Bound");
        vec![
            table::name(obj),
            json!(str_at(obj, &["status", "phase"]).unwrap_or("Pending")),
            json!(str_at(obj, &["spec", "volumeName"]).unwrap_or("")),
            json!(if bound {
                str_at(obj, &["status", "capacity", "storage"]).unwrap_or("")
            } else {
                ""
            }),
            json!(if bound {
                access_modes(obj, &["status", "accessModes"])
            } else {
                String::new()
            }),
            json!(str_at(obj, &["spec", "storageClassName"]).unwrap_or("<unset>")),
            json!(str_at(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
            table::age(obj),
            json!(str_at(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
        ]
    }
}

pub struct PersistentVolumeStrategy;

impl Strategy for PersistentVolumeStrategy {
    fn default(&self, obj: &mut Value) {
        crate::object::default(
            obj,
            &["spec", "persistentVolumeReclaimPolicy"],
            json!("Retain"),
        );
        crate::object::default(obj, &["spec", "volumeMode"], json!("Filesystem"));
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Available"});
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col(
                "Capacity",
                "capacity is the description of the persistent volume's resources and capacity.",
            ),
            col(
                "Access Modes",
                "accessModes contains all ways the volume can be mounted.",
            ),
            col(
                "Reclaim Policy",
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
            ),
            col(
                "Status",
                "phase indicates if a volume is available, bound to a claim, or released by a claim.",
            ),
            col(
                "Claim",
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
            ),
            col(
                "StorageClass",
                "storageClassName is the name of StorageClass to which this persistent volume belongs.",
            ),
            col(
                "VolumeAttributesClass",
                "Name of VolumeAttributesClass to which this persistent volume belongs.",
            ),
            col(
                "Reason",
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
            ),
            table::age_column(),
            wide(col(
                "VolumeMode",
                "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let claim = match (
            str_at(obj, &["spec", "claimRef", "namespace"]),
            str_at(obj, &["spec", "claimRef", "name"]),
        ) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ => String::new(),
        };
        vec![
            table::name(obj),
            json!(str_at(obj, &["spec", "capacity", "storage"]).unwrap_or("")),
            json!(access_modes(obj, &["spec", "accessModes"])),
            json!(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]).unwrap_or("Retain")),
            json!(str_at(obj, &["status", "phase"]).unwrap_or("Pending")),
            json!(claim),
            json!(str_at(obj, &["spec", "storageClassName"]).unwrap_or("")),
            json!(str_at(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
            json!(str_at(obj, &["status", "reason"]).unwrap_or("")),
            table::age(obj),
            json!(str_at(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        (path == "spec.storageClassName").then(|| {
            str_at(obj, &["spec", "storageClassName"])
                .unwrap_or("")
                .to_string()
        })
    }
}

/// Fields shared by Lease and its table.
pub fn lease_holder(obj: &Value) -> String {
    get(obj, &["spec", "holderIdentity"])
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
