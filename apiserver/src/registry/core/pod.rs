//! Pods: defaults and validation of pod specs (shared with every workload's
//! template), the pod table, and the fields pods can be selected by.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::object::{default, get, i64_at, items, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col, wide};
use crate::validation::{FieldError, NameRule, validate_labels, validate_name};

pub struct PodStrategy;

impl Strategy for PodStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            default_pod_spec(spec);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match get(obj, &["spec"]) {
            Some(spec) => validate_pod_spec(spec, "spec"),
            None => vec![FieldError::required("spec", "")],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        // A running pod's spec is fixed except for a few fields.
        let mutable_only = |spec: Option<&Value>| {
            let mut spec = spec.cloned().unwrap_or(Value::Null);
            for list in ["containers", "initContainers"] {
                if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in containers {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
            }
            if let Some(spec) = spec.as_object_mut() {
                for field in [
                    "activeDeadlineSeconds",
                    "tolerations",
                    "terminationGracePeriodSeconds",
                ] {
                    spec.remove(field);
                }
            }
            spec
        };
        if mutable_only(get(new, &["spec"])) != mutable_only(get(old, &["spec"])) {
            errors.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        errors
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec"));
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col(
                "Ready",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            table::age_column(),
            wide(col(
                "IP",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            )),
            wide(col(
                "Node",
                "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.",
            )),
            wide(col(
                "Nominated Node",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
            )),
            wide(col(
                "Readiness Gates",
                "If specified, all readiness gates will be evaluated for pod readiness.",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let statuses = items(obj, &["status", "containerStatuses"]);
        let total = items(obj, &["spec", "containers"]).len();
        let ready = statuses
            .iter()
            .filter(|s| s.get("ready") == Some(&json!(true)))
            .count();
        let restarts: i64 = statuses
            .iter()
            .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
            .sum();
        let last_restart = statuses
            .iter()
            .filter_map(|s| str_at(s, &["lastState", "terminated", "finishedAt"]))
            .max()
            .map(|t| format!(" ({} ago)", table::since(Some(t))));
        let restarts = match (restarts, last_restart) {
            (0, _) | (_, None) => restarts.to_string(),
            (n, Some(ago)) => format!("{n}{ago}"),
        };
        let gates = items(obj, &["spec", "readinessGates"]);
        let gates = if gates.is_empty() {
            "<none>".to_string()
        } else {
            let conditions = items(obj, &["status", "conditions"]);
            let met = gates
                .iter()
                .filter(|g| {
                    let kind = str_at(g, &["conditionType"]);
                    conditions.iter().any(|c| {
                        str_at(c, &["type"]) == kind && str_at(c, &["status"]) == Some("True")
                    })
                })
                .count();
            format!("{met}/{}", gates.len())
        };
        vec![
            table::name(obj),
            json!(format!("{ready}/{total}")),
            json!(pod_status_reason(obj)),
            json!(restarts),
            table::age(obj),
            json!(
                str_at(obj, &["status", "podIP"])
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
            ),
            json!(
                str_at(obj, &["spec", "nodeName"])
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
            ),
            json!(
                str_at(obj, &["status", "nominatedNodeName"])
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
            ),
            json!(gates),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        let at = |p: &[&str]| str_at(obj, p).unwrap_or("").to_string();
        Some(match path {
            "spec.nodeName" => at(&["spec", "nodeName"]),
            "spec.restartPolicy" => at(&["spec", "restartPolicy"]),
            "spec.schedulerName" => at(&["spec", "schedulerName"]),
            "spec.serviceAccountName" => at(&["spec", "serviceAccountName"]),
            "spec.hostNetwork" => get(obj, &["spec", "hostNetwork"])
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            "status.phase" => at(&["status", "phase"]),
            "status.podIP" => at(&["status", "podIP"]),
            "status.nominatedNodeName" => at(&["status", "nominatedNodeName"]),
            _ => return None,
        })
    }
}

/// What the STATUS column says: the phase, or the most telling container
/// state ("ContainerCreating", "CrashLoopBackOff", "Init:0/1", "Completed"),
/// or "Terminating" once deletion started.
pub fn pod_status_reason(obj: &Value) -> String {
    let mut reason = str_at(obj, &["status", "phase"])
        .unwrap_or("Pending")
        .to_string();
    if let Some(r) = str_at(obj, &["status", "reason"]).filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let init_specs = items(obj, &["spec", "initContainers"]).len();
    let mut initializing = false;
    for (i, status) in items(obj, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        if let Some(terminated) = get(status, &["state", "terminated"])
            && i64_at(terminated, &["exitCode"]) == Some(0)
        {
            continue;
        }
        initializing = true;
        reason = if let Some(t) = get(status, &["state", "terminated"]) {
            match str_at(t, &["reason"]).filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => format!("Init:ExitCode:{}", i64_at(t, &["exitCode"]).unwrap_or(0)),
            }
        } else if let Some(r) = str_at(status, &["state", "waiting", "reason"])
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_specs}")
        };
        break;
    }
    if !initializing {
        let mut has_running = false;
        for status in items(obj, &["status", "containerStatuses"]).iter().rev() {
            if let Some(r) =
                str_at(status, &["state", "waiting", "reason"]).filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if let Some(t) = get(status, &["state", "terminated"]) {
                reason = match str_at(t, &["reason"]).filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => match i64_at(t, &["signal"]).filter(|s| *s != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", i64_at(t, &["exitCode"]).unwrap_or(0)),
                    },
                };
            } else if get(status, &["state", "running"]).is_some()
                && status.get("ready") == Some(&json!(true))
            {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null()) {
        reason = if str_at(obj, &["status", "reason"]) == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

/// Upstream's defaults for a pod spec (used for pod templates too).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, &["restartPolicy"], json!("Always"));
    default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default(spec, &["schedulerName"], json!("default-scheduler"));
    default(spec, &["terminationGracePeriodSeconds"], json!(30));
    default(spec, &["securityContext"], json!({}));
    default(spec, &["enableServiceLinks"], json!(true));
    default(spec, &["serviceAccountName"], json!("default"));
    let account = spec
        .get("serviceAccountName")
        .cloned()
        .unwrap_or(json!("default"));
    default(spec, &["serviceAccount"], account);
    default(spec, &["priority"], json!(0));
    default(spec, &["preemptionPolicy"], json!("PreemptLowerPriority"));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers {
                default_container(container);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes {
            for (source, field) in [
                ("configMap", "defaultMode"),
                ("secret", "defaultMode"),
                ("downwardAPI", "defaultMode"),
                ("projected", "defaultMode"),
            ] {
                if volume.get(source).is_some_and(Value::is_object) {
                    default(volume, &[source, field], json!(0o644));
                }
            }
            if volume.get("hostPath").is_some_and(Value::is_object) {
                default(volume, &["hostPath", "type"], json!(""));
            }
        }
    }
}

fn default_container(container: &mut Value) {
    if !container.is_object() {
        return;
    }
    let image = str_at(container, &["image"]).unwrap_or("");
    // An image without a tag, or tagged latest, is always pulled.
    let last = image.rsplit('/').next().unwrap_or(image);
    let policy = if image.contains('@') {
        "IfNotPresent"
    } else if !last.contains(':') || last.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(container, &["imagePullPolicy"], json!(policy));
    default(
        container,
        &["terminationMessagePath"],
        json!("/dev/termination-log"),
    );
    default(container, &["terminationMessagePolicy"], json!("File"));
    default(container, &["resources"], json!({}));
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            default(port, &["protocol"], json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if container.get(probe).is_some_and(Value::is_object) {
            default(container, &[probe, "timeoutSeconds"], json!(1));
            default(container, &[probe, "periodSeconds"], json!(10));
            default(container, &[probe, "successThreshold"], json!(1));
            default(container, &[probe, "failureThreshold"], json!(3));
            if let Some(http) = container.get_mut(probe).and_then(|p| p.get_mut("httpGet")) {
                default(http, &["scheme"], json!("HTTP"));
                default(http, &["path"], json!("/"));
            }
        }
    }
}

/// Checks a pod spec found at `path` (e.g. `spec.template.spec`).
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let containers = items(spec, &["containers"]);
    if containers.is_empty() {
        errors.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut volumes = HashSet::new();
    for (i, volume) in items(spec, &["volumes"]).iter().enumerate() {
        let field = format!("{path}.volumes[{i}].name");
        match str_at(volume, &["name"]) {
            Some(name) if !name.is_empty() => {
                errors.extend(validate_name(&field, name, NameRule::Dns1123Label));
                if !volumes.insert(name.to_string()) {
                    errors.push(FieldError::duplicate(field, json!(name)));
                }
            }
            _ => errors.push(FieldError::required(field, "")),
        }
    }
    let mut names = HashSet::new();
    for (list, entries) in [
        ("initContainers", items(spec, &["initContainers"])),
        ("containers", containers),
    ] {
        for (i, container) in entries.iter().enumerate() {
            let at = format!("{path}.{list}[{i}]");
            errors.extend(validate_container(container, &at, &volumes, &mut names));
        }
    }
    let restart = str_at(spec, &["restartPolicy"]).unwrap_or("Always");
    if !["Always", "OnFailure", "Never"].contains(&restart) {
        errors.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            json!(restart),
            &["Always", "OnFailure", "Never"],
        ));
    }
    let dns = str_at(spec, &["dnsPolicy"]).unwrap_or("ClusterFirst");
    let dns_policies = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
    if !dns_policies.contains(&dns) {
        errors.push(FieldError::not_supported(
            format!("{path}.dnsPolicy"),
            json!(dns),
            &dns_policies,
        ));
    }
    if let Some(grace) = i64_at(spec, &["terminationGracePeriodSeconds"])
        && grace < 0
    {
        errors.push(FieldError::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            json!(grace),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(name) = str_at(spec, &["nodeName"]).filter(|n| !n.is_empty()) {
        errors.extend(validate_name(
            &format!("{path}.nodeName"),
            name,
            NameRule::Dns1123Subdomain,
        ));
    }
    errors.extend(validate_labels(
        &format!("{path}.nodeSelector"),
        spec.get("nodeSelector"),
    ));
    errors
}

fn validate_container(
    container: &Value,
    at: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match str_at(container, &["name"]) {
        Some(name) if !name.is_empty() => {
            errors.extend(validate_name(
                &format!("{at}.name"),
                name,
                NameRule::Dns1123Label,
            ));
            if !names.insert(name.to_string()) {
                errors.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
            }
        }
        _ => errors.push(FieldError::required(format!("{at}.name"), "")),
    }
    if str_at(container, &["image"]).is_none_or(str::is_empty) {
        errors.push(FieldError::required(format!("{at}.image"), ""));
    }
    let mut port_names = HashSet::new();
    for (j, port) in items(container, &["ports"]).iter().enumerate() {
        let p = format!("{at}.ports[{j}]");
        match i64_at(port, &["containerPort"]) {
            Some(n) if (1..=65535).contains(&n) => {}
            Some(n) => errors.push(FieldError::invalid(
                format!("{p}.containerPort"),
                json!(n),
                "must be between 1 and 65535, inclusive",
            )),
            None => errors.push(FieldError::required(format!("{p}.containerPort"), "")),
        }
        if let Some(host) = i64_at(port, &["hostPort"])
            && !(0..=65535).contains(&host)
        {
            errors.push(FieldError::invalid(
                format!("{p}.hostPort"),
                json!(host),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = str_at(port, &["protocol"]).unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            errors.push(FieldError::not_supported(
                format!("{p}.protocol"),
                json!(protocol),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if let Some(name) = str_at(port, &["name"]).filter(|n| !n.is_empty()) {
            if name.len() > 15
                || !crate::validation::is_dns1123_label(name)
                || !name.bytes().any(|b| b.is_ascii_lowercase())
            {
                errors.push(FieldError::invalid(format!("{p}.name"), json!(name), "must contain at least one letter, be no more than 15 characters, and consist of lower case alphanumeric characters or '-'"));
            }
            if !port_names.insert(name.to_string()) {
                errors.push(FieldError::duplicate(format!("{p}.name"), json!(name)));
            }
        }
    }
    for (j, env) in items(container, &["env"]).iter().enumerate() {
        let field = format!("{at}.env[{j}].name");
        match str_at(env, &["name"]) {
            Some(name) if is_env_var_name(name) => {}
            Some(name) => errors.push(FieldError::invalid(field, json!(name), "a valid environment variable name must consist only of printable ASCII characters other than '='")),
            None => errors.push(FieldError::required(field, "")),
        }
    }
    for (j, mount) in items(container, &["volumeMounts"]).iter().enumerate() {
        let m = format!("{at}.volumeMounts[{j}]");
        match str_at(mount, &["name"]) {
            Some(name) if volumes.contains(name) => {}
            Some(name) => errors.push(FieldError::not_found(format!("{m}.name"), json!(name))),
            None => errors.push(FieldError::required(format!("{m}.name"), "")),
        }
        if str_at(mount, &["mountPath"]).is_none_or(str::is_empty) {
            errors.push(FieldError::required(format!("{m}.mountPath"), ""));
        }
    }
    errors
}

fn is_env_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=')
}

/// Guaranteed when every container has equal requests and limits for CPU
/// and memory; BestEffort when none has any; Burstable otherwise.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let Some(spec) = spec else {
        return "BestEffort";
    };
    let containers: Vec<&Value> = items(spec, &["containers"])
        .iter()
        .chain(items(spec, &["initContainers"]))
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = get(c, &["resources", "requests"]).and_then(Value::as_object);
        let limits = get(c, &["resources", "limits"]).and_then(Value::as_object);
        any |= requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty());
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn defaults() {
        let mut p = pod(
            json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}, {"name": "side", "image": "busybox:1.36"}]}),
        );
        PodStrategy.default(&mut p);
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        // Default tolerations are admission's, on pod creation only.
        assert!(p["spec"].get("tolerations").is_none());
        // Defaulting twice changes nothing.
        let once = p.clone();
        PodStrategy.default(&mut p);
        assert_eq!(p, once);
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"containers": [{"name": "a", "image": "x"}]}), vec![]),
            (
                json!({"containers": []}),
                vec!["spec.containers: Required value"],
            ),
            (
                json!({"containers": [{"name": "a"}]}),
                vec!["spec.containers[0].image: Required value"],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}),
                vec!["spec.containers[1].name: Duplicate value: \"a\""],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]}),
                vec![
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
                vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
            ),
            (
                json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}),
                vec![
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
        ];
        for (spec, want) in cases {
            let got: Vec<String> = PodStrategy
                .validate(&pod(spec.clone()))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{spec}");
        }
    }

    #[test]
    fn updates_may_change_images_only() {
        let old = pod(json!({"containers": [{"name": "a", "image": "x:1"}]}));
        let image = pod(json!({"containers": [{"name": "a", "image": "x:2"}]}));
        assert!(PodStrategy.validate_update(&image, &old).is_empty());
        let command =
            pod(json!({"containers": [{"name": "a", "image": "x:1", "command": ["sh"]}]}));
        assert_eq!(PodStrategy.validate_update(&command, &old)[0].field, "spec");
    }

    #[test]
    fn status_column() {
        let waiting = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod_status_reason(&waiting), "ContainerCreating");
        let init = json!({"spec": {"initContainers": [{}, {}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}});
        assert_eq!(pod_status_reason(&init), "Init:1/2");
        let done = json!({"status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(pod_status_reason(&done), "Completed");
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status_reason(&deleting), "Terminating");
    }

    #[test]
    fn qos() {
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
        assert_eq!(qos_class(Some(&json!({"containers": [{}]}))), "BestEffort");
    }
}
