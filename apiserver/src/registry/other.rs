//! The smaller groups: discovery.k8s.io, coordination.k8s.io,
//! events.k8s.io and batch.

use k8s_openapi::api::{batch, coordination, discovery, events};
use serde_json::{Value, json};

use super::table::{self, Column, col, wide};
use super::{Resource, Strategy, Sub, type_ops};
use crate::object::{default, get, i64_at, items, str_at};
use crate::validation::{FieldError, NameRule};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            strategy: &EndpointSliceStrategy,
            ..Resource::new(
                "discovery.k8s.io",
                "EndpointSlice",
                "endpointslices",
                "endpointslice",
                type_ops::<discovery::v1::EndpointSlice>(),
            )
        },
        Resource {
            strategy: &LeaseStrategy,
            ..Resource::new(
                "coordination.k8s.io",
                "Lease",
                "leases",
                "lease",
                type_ops::<coordination::v1::Lease>(),
            )
        },
        Resource {
            short_names: &["ev"],
            name_rule: NameRule::PathSegment,
            strategy: &super::events::EventsV1Strategy,
            stored_as: Some(super::events::AS_CORE_EVENT),
            ..Resource::new(
                "events.k8s.io",
                "Event",
                "events",
                "event",
                type_ops::<events::v1::Event>(),
            )
        },
        Resource {
            categories: &["all"],
            subresources: &[Sub::Status],
            tracks_generation: true,
            strategy: &JobStrategy,
            ..Resource::new("batch", "Job", "jobs", "job", type_ops::<batch::v1::Job>())
        },
    ]
}

struct EndpointSliceStrategy;

impl Strategy for EndpointSliceStrategy {
    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col(
                "AddressType",
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            col(
                "Ports",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            col(
                "Endpoints",
                "endpoints is a list of unique endpoints in this slice.",
            ),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let ports: Vec<String> = items(obj, &["ports"])
            .iter()
            .filter_map(|p| i64_at(p, &["port"]))
            .map(|p| p.to_string())
            .collect();
        let addresses: Vec<String> = items(obj, &["endpoints"])
            .iter()
            .flat_map(|e| {
                items(e, &["addresses"])
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
            })
            .collect();
        let shown = if addresses.len() > 3 {
            format!(
                "{} + {} more...",
                addresses[..3].join(","),
                addresses.len() - 3
            )
        } else {
            table::joined(addresses)
        };
        vec![
            table::name(obj),
            json!(str_at(obj, &["addressType"]).unwrap_or("")),
            json!(table::joined(ports)),
            json!(shown),
            table::age(obj),
        ]
    }
}

struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Holder", "The holder of the lease"),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj),
            json!(super::core::lease_holder(obj)),
            table::age(obj),
        ]
    }
}

struct JobStrategy;

impl Strategy for JobStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        default(spec, &["parallelism"], json!(1));
        default(spec, &["completions"], json!(1));
        default(spec, &["backoffLimit"], json!(6));
        default(spec, &["completionMode"], json!("NonIndexed"));
        default(spec, &["suspend"], json!(false));
        default(spec, &["manualSelector"], json!(false));
        default(
            spec,
            &["podReplacementPolicy"],
            json!("TerminatingOrFailed"),
        );
        if let Some(template) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
            super::core::pod::default_pod_spec(template);
        }
    }

    /// Unless the user chose a selector, the job selects its pods by its own
    /// uid, which it puts on the template (upstream's generated selector).
    fn prepare_for_create(&self, obj: &mut Value) {
        if get(obj, &["spec", "manualSelector"]) == Some(&json!(true)) {
            return;
        }
        let uid = str_at(obj, &["metadata", "uid"]).unwrap_or("").to_string();
        let name = crate::object::name(obj).to_string();
        let labels = crate::object::object_at(obj, &["spec", "template", "metadata", "labels"]);
        for key in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
            labels.insert(key.into(), json!(uid));
        }
        for key in ["batch.kubernetes.io/job-name", "job-name"] {
            labels.insert(key.into(), json!(name));
        }
        obj["spec"]["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match get(obj, &["spec", "template", "spec"]) {
            Some(spec) => {
                errors.extend(super::core::pod::validate_pod_spec(
                    spec,
                    "spec.template.spec",
                ));
                let restart = str_at(spec, &["restartPolicy"]).unwrap_or("Always");
                if !["OnFailure", "Never"].contains(&restart) {
                    errors.push(FieldError::not_supported(
                        "spec.template.spec.restartPolicy",
                        json!(restart),
                        &["OnFailure", "Never"],
                    ));
                }
            }
            None => errors.push(FieldError::required("spec.template", "")),
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Status", "Status of the job."),
            col("Completions", "The completion status of the job."),
            col("Duration", "Time required to complete the job."),
            table::age_column(),
            wide(col(
                "Containers",
                "Names of each container in the template.",
            )),
            wide(col(
                "Images",
                "Images referenced by each container in the template.",
            )),
            wide(col(
                "Selector",
                "Query over pods that should match the pod count.",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let conditions = items(obj, &["status", "conditions"]);
        let has = |kind: &str| {
            conditions.iter().any(|c| {
                str_at(c, &["type"]) == Some(kind) && str_at(c, &["status"]) == Some("True")
            })
        };
        let status = if has("Complete") {
            "Complete"
        } else if has("Failed") {
            "Failed"
        } else if get(obj, &["spec", "suspend"]) == Some(&json!(true)) {
            "Suspended"
        } else if get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null()) {
            "Terminating"
        } else {
            "Running"
        };
        let completions = match i64_at(obj, &["spec", "completions"]) {
            Some(n) => format!("{}/{n}", i64_at(obj, &["status", "succeeded"]).unwrap_or(0)),
            None => format!(
                "{}/1 of {}",
                i64_at(obj, &["status", "succeeded"]).unwrap_or(0),
                i64_at(obj, &["spec", "parallelism"]).unwrap_or(1)
            ),
        };
        let start =
            str_at(obj, &["status", "startTime"]).and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let end = str_at(obj, &["status", "completionTime"])
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let duration = start.map_or(String::new(), |s| {
            table::human_duration(end.duration_since(s).as_secs())
        });
        let containers = items(obj, &["spec", "template", "spec", "containers"]);
        vec![
            table::name(obj),
            json!(status),
            json!(completions),
            json!(duration),
            table::age(obj),
            json!(
                containers
                    .iter()
                    .filter_map(|c| str_at(c, &["name"]))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            json!(
                containers
                    .iter()
                    .filter_map(|c| str_at(c, &["image"]))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            json!(table::label_selector_string(get(
                obj,
                &["spec", "selector"]
            ))),
        ]
    }
}
