//! Deployments, ReplicaSets, DaemonSets and StatefulSets: their defaults,
//! the checks they share (a selector that matches the template's labels, a
//! valid pod template), and their tables.

use serde_json::{Value, json};

use crate::object::{default, get, i64_at, items, str_at};
use crate::registry::Strategy;
use crate::registry::core::pod::{default_pod_spec, validate_pod_spec};
use crate::registry::table::{self, Column, col, int_col, label_selector_string, wide};
use crate::selectors::LabelSelector;
use crate::validation::{FieldError, validate_labels};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
}

pub struct Workload(Kind);

pub static DEPLOYMENT: Workload = Workload(Kind::Deployment);
pub static REPLICA_SET: Workload = Workload(Kind::ReplicaSet);
pub static DAEMON_SET: Workload = Workload(Kind::DaemonSet);
pub static STATEFUL_SET: Workload = Workload(Kind::StatefulSet);

/// The selector and template checks every workload makes: a non-empty
/// selector that matches the template's labels, and a valid pod template
/// whose restart policy is `allowed`.
pub fn validate_template(obj: &Value, allowed_restart: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let selector = get(obj, &["spec", "selector"]);
    let parsed = match selector {
        None | Some(Value::Null) => {
            errors.push(FieldError::required("spec.selector", ""));
            None
        }
        Some(s) => match LabelSelector::from_object(s) {
            Ok(parsed) if parsed.is_empty() => {
                errors.push(FieldError::invalid(
                    "spec.selector",
                    s.clone(),
                    "empty selector is invalid for deployment",
                ));
                None
            }
            Ok(parsed) => Some(parsed),
            Err(why) => {
                errors.push(FieldError::invalid("spec.selector", s.clone(), why));
                None
            }
        },
    };
    let labels = get(obj, &["spec", "template", "metadata", "labels"]);
    errors.extend(validate_labels("spec.template.metadata.labels", labels));
    if let Some(parsed) = parsed
        && !parsed.matches(labels)
    {
        errors.push(FieldError::invalid(
            "spec.template.metadata.labels",
            labels.cloned().unwrap_or(json!({})),
            "`selector` does not match template `labels`",
        ));
    }
    match get(obj, &["spec", "template", "spec"]) {
        Some(spec) => {
            errors.extend(validate_pod_spec(spec, "spec.template.spec"));
            let restart = str_at(spec, &["restartPolicy"]).unwrap_or("Always");
            if !allowed_restart.contains(&restart) {
                errors.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    json!(restart),
                    allowed_restart,
                ));
            }
        }
        None => errors.push(FieldError::required("spec.template.spec.containers", "")),
    }
    errors
}

/// The names and images of the template's containers, for wide output.
fn containers_and_images(obj: &Value) -> (String, String) {
    let containers = items(obj, &["spec", "template", "spec", "containers"]);
    let names = containers
        .iter()
        .filter_map(|c| str_at(c, &["name"]))
        .collect::<Vec<_>>()
        .join(",");
    let images = containers
        .iter()
        .filter_map(|c| str_at(c, &["image"]))
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

fn count(obj: &Value, path: &[&str]) -> i64 {
    i64_at(obj, path).unwrap_or(0)
}

impl Strategy for Workload {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        match self.0 {
            Kind::Deployment => {
                default(spec, &["replicas"], json!(1));
                default(spec, &["strategy", "type"], json!("RollingUpdate"));
                if str_at(spec, &["strategy", "type"]) == Some("RollingUpdate") {
                    default(
                        spec,
                        &["strategy", "rollingUpdate", "maxSurge"],
                        json!("25%"),
                    );
                    default(
                        spec,
                        &["strategy", "rollingUpdate", "maxUnavailable"],
                        json!("25%"),
                    );
                }
                default(spec, &["revisionHistoryLimit"], json!(10));
                default(spec, &["progressDeadlineSeconds"], json!(600));
            }
            Kind::ReplicaSet => default(spec, &["replicas"], json!(1)),
            Kind::DaemonSet => {
                default(spec, &["updateStrategy", "type"], json!("RollingUpdate"));
                if str_at(spec, &["updateStrategy", "type"]) == Some("RollingUpdate") {
                    default(
                        spec,
                        &["updateStrategy", "rollingUpdate", "maxUnavailable"],
                        json!(1),
                    );
                    default(
                        spec,
                        &["updateStrategy", "rollingUpdate", "maxSurge"],
                        json!(0),
                    );
                }
                default(spec, &["revisionHistoryLimit"], json!(10));
            }
            Kind::StatefulSet => {
                default(spec, &["replicas"], json!(1));
                default(spec, &["podManagementPolicy"], json!("OrderedReady"));
                default(spec, &["updateStrategy", "type"], json!("RollingUpdate"));
                if str_at(spec, &["updateStrategy", "type"]) == Some("RollingUpdate") {
                    default(
                        spec,
                        &["updateStrategy", "rollingUpdate", "partition"],
                        json!(0),
                    );
                }
                default(spec, &["revisionHistoryLimit"], json!(10));
                default(
                    spec,
                    &["persistentVolumeClaimRetentionPolicy"],
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
        }
        if let Some(template) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
            default_pod_spec(template);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = validate_template(obj, &["Always"]);
        if let Some(replicas) = i64_at(obj, &["spec", "replicas"])
            && replicas < 0
        {
            errors.push(FieldError::invalid(
                "spec.replicas",
                json!(replicas),
                "must be greater than or equal to 0",
            ));
        }
        if self.0 == Kind::Deployment {
            let kind = str_at(obj, &["spec", "strategy", "type"]).unwrap_or("RollingUpdate");
            if !["Recreate", "RollingUpdate"].contains(&kind) {
                errors.push(FieldError::not_supported(
                    "spec.strategy.type",
                    json!(kind),
                    &["Recreate", "RollingUpdate"],
                ));
            }
            if kind == "Recreate"
                && get(obj, &["spec", "strategy", "rollingUpdate"]).is_some_and(|r| !r.is_null())
            {
                errors.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
            let zero = |v: Option<&Value>| {
                matches!(v, Some(Value::Number(n)) if n.as_i64() == Some(0))
                    || matches!(v, Some(Value::String(s)) if s == "0%" || s == "0")
            };
            let surge = get(obj, &["spec", "strategy", "rollingUpdate", "maxSurge"]);
            let unavailable = get(
                obj,
                &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
            );
            if kind == "RollingUpdate" && zero(surge) && zero(unavailable) {
                errors.push(FieldError::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    unavailable.cloned().unwrap_or(json!(0)),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        let (new_selector, old_selector) = (
            get(new, &["spec", "selector"]),
            get(old, &["spec", "selector"]),
        );
        if new_selector != old_selector {
            errors.push(FieldError::immutable(
                "spec.selector",
                new_selector.cloned().unwrap_or(Value::Null),
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        let containers = wide(col(
            "Containers",
            "Names of each container in the template.",
        ));
        let images = wide(col(
            "Images",
            "Images referenced by each container in the template.",
        ));
        let selector = wide(col(
            "Selector",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        ));
        let mut columns = vec![table::name_column()];
        columns.extend(match self.0 {
            Kind::Deployment => vec![
                col("Ready", "Number of the pod with ready state"),
                int_col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                int_col("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                table::age_column(),
            ],
            Kind::ReplicaSet => vec![
                int_col("Desired", "Number of desired pods. This is a pointer to distinguish between explicit zero and unspecified."),
                int_col("Current", "Replicas is the most recently observed number of replicas."),
                int_col("Ready", "The number of ready replicas for this replica set."),
                table::age_column(),
            ],
            Kind::DaemonSet => vec![
                int_col("Desired", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
                int_col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
                int_col("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
                int_col("Up-to-date", "The total number of nodes that are running updated daemon pod"),
                int_col("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
                col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
                table::age_column(),
            ],
            Kind::StatefulSet => vec![col("Ready", "Number of the pod with ready state"), table::age_column()],
        });
        columns.extend([containers, images]);
        if self.0 != Kind::StatefulSet {
            columns.push(selector);
        }
        columns
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = containers_and_images(obj);
        let selector = label_selector_string(get(obj, &["spec", "selector"]));
        let desired = count(obj, &["spec", "replicas"]);
        let ready = count(obj, &["status", "readyReplicas"]);
        let mut cells = vec![table::name(obj)];
        cells.extend(match self.0 {
            Kind::Deployment => vec![
                json!(format!("{ready}/{desired}")),
                json!(count(obj, &["status", "updatedReplicas"])),
                json!(count(obj, &["status", "availableReplicas"])),
                table::age(obj),
            ],
            Kind::ReplicaSet => vec![
                json!(desired),
                json!(count(obj, &["status", "replicas"])),
                json!(ready),
                table::age(obj),
            ],
            Kind::DaemonSet => vec![
                json!(count(obj, &["status", "desiredNumberScheduled"])),
                json!(count(obj, &["status", "currentNumberScheduled"])),
                json!(count(obj, &["status", "numberReady"])),
                json!(count(obj, &["status", "updatedNumberScheduled"])),
                json!(count(obj, &["status", "numberAvailable"])),
                json!(table::selector_string(get(
                    obj,
                    &["spec", "template", "spec", "nodeSelector"]
                ))),
                table::age(obj),
            ],
            Kind::StatefulSet => vec![json!(format!("{ready}/{desired}")), table::age(obj)],
        });
        cells.extend([json!(containers), json!(images)]);
        if self.0 != Kind::StatefulSet {
            cells.push(json!(selector));
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn defaults() {
        let mut d = deployment(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}),
        );
        DEPLOYMENT.default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(
            DEPLOYMENT.validate(&d).is_empty(),
            "{:?}",
            DEPLOYMENT.validate(&d)
        );
    }

    #[test]
    fn the_classic_mistakes() {
        // The two-error case from kubectl-wire.md §14.
        let d = deployment(json!({
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }));
        let got: Vec<String> = DEPLOYMENT
            .validate(&d)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`".to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string(),
        ]);
        let no_selector = deployment(
            json!({"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}),
        );
        assert_eq!(
            DEPLOYMENT.validate(&no_selector)[0].to_string(),
            "spec.selector: Required value"
        );
        let never = deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}}}),
        );
        assert_eq!(
            DEPLOYMENT.validate(&never)[0].to_string(),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        );
    }

    #[test]
    fn selector_is_immutable() {
        let old = deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b", "c": "d"}}, "spec": {"containers": [{"name": "a", "image": "b"}]}}}),
        );
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["c"] = json!("d");
        assert_eq!(
            DEPLOYMENT.validate_update(&new, &old)[0].field,
            "spec.selector"
        );
    }

    #[test]
    fn table() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let cells = DEPLOYMENT.cells(&d);
        assert_eq!(cells.len(), DEPLOYMENT.columns().len());
        assert_eq!(&cells[1..4], &[json!("2/3"), json!(3), json!(2)]);
        assert_eq!(cells[5], "web");
        assert_eq!(cells[7], "app=web");
    }
}
